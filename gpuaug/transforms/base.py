"""Transform base classes: parameter drawing apart from application (kornia style).

A transform never owns random state. Its parameters are drawn from counter-based streams
keyed by the item (see :mod:`gpuaug.random`) and by the transform's *slot* (its position in
the pipeline), so they are a pure function of ``(seed, epoch, item index)``.

Per-clip parameters of one transform are a dict ``{name: (B,) tensor}`` that always has
``"apply"`` (bool). :meth:`Transform.draw` produces the drawn values; :meth:`Transform.run`
applies the op to the selected clips only and adds the values it resolved against the
actual clip lengths (sample positions, bank indices) to the same dict, so that the dict is
both the record and a replayable input.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, ClassVar

import torch
from torch import Tensor

from .._sync import host_of, mirrored, read_later, take_rows
from ..backend import BACKENDS, resolve
from ..policy.table import CLEAN, SEVERITY
from ..random import stream_id, uniform

__all__ = ["Context", "Transform", "Draw", "merge_rows"]

#: ``draw(name) -> (B,) float64 uniform in [0, 1)``, one independent stream per name.
Draw = Callable[[str], Tensor]


@dataclass
class Context:
    """What transforms need at application time besides the audio.

    Attributes:
        sample_rate: Hz of the batch.
        alignments: optional ``(B, K, 2)`` int64 word intervals ``[start, end)`` in samples
            (rows with ``end <= start`` unused), for word dropping; kept on the host.
    """

    sample_rate: int
    alignments: Tensor | None = None

    def subset(self, index: Tensor) -> "Context":
        """The context of the clips ``index`` (per-clip fields sliced)."""
        al = None if self.alignments is None else self.alignments[host_of(index).to(self.alignments.device)]
        return Context(self.sample_rate, alignments=al)


def merge_rows(wave: Tensor, lengths: Tensor, index: Tensor, sub: Tensor, sub_lengths: Tensor):
    """Put the processed rows ``sub`` back at ``index`` of ``wave``.

    Shapes: wave (B, C, T), sub (n, C, T_sub); returns a (B, C, T_out) tensor with
    ``T_out = T`` when no length can grow, else ``max`` over the new lengths. ``index`` may
    be on the host or the device; lengths are combined on their host mirrors (no sync).
    """
    host_index = host_of(index)
    new_host = host_of(lengths).clone()
    new_host[host_index] = host_of(sub_lengths)
    new_lengths = mirrored(new_host, lengths.device)
    index = index if index.device == wave.device else mirrored(host_index, wave.device)
    if sub.shape[-1] == wave.shape[-1]:
        out = wave.clone()
        out[index] = sub
        return out, new_lengths
    T_out = int(new_host.max()) if new_host.numel() else 0
    out = wave.new_zeros(*wave.shape[:-1], T_out)
    keep = min(T_out, wave.shape[-1])
    out[..., :keep] = wave[..., :keep]
    t = min(T_out, sub.shape[-1])
    rows = out[index]
    rows.zero_()
    rows[..., :t] = sub[..., :t]
    out[index] = rows
    return out, new_lengths


class Transform:
    """Base of every augmentation and container.

    Subclasses (leaves) define:
        name: short id used in records and the perception table.
        changes_length: whether the op can change clip lengths.
        draw_params(draw, batch) -> dict of (B,) tensors (without "apply").
        apply(wave (n, C, T), lengths (n,), params (n,), ctx) -> (wave, lengths, resolved)
        perception(params) -> ((B,) severity codes, (B, 2) valence/activation deltas, NaN
            where the study gives none) for clips where the transform is applied.
        possible_tags() -> set of tags the configured parameter ranges can produce.
    """

    name: ClassVar[str] = "transform"
    changes_length: ClassVar[bool] = False
    #: The op name in :mod:`gpuaug.backend` for transforms whose op has kernels (else None).
    kernel_op: ClassVar[str | None] = None

    def __init__(self, p: float = 1.0, backend: str | None = None):
        if not 0.0 <= float(p) <= 1.0:
            raise ValueError(f"{type(self).__name__}: p must be in [0, 1], got {p}")
        if backend is not None and (self.kernel_op is None or backend not in BACKENDS):
            allowed = BACKENDS if self.kernel_op else "None (no kernels for this transform)"
            raise ValueError(f"{type(self).__name__}: backend must be one of {allowed}, got {backend!r}")
        self.p = float(p)
        self.backend = backend
        self.slot = self.name

    def backend_for(self, device) -> str:
        """The backend that runs this transform's op on ``device`` (see :func:`gpuaug.backend.resolve`)."""
        return resolve(self.kernel_op, device, self.backend) if self.kernel_op else "torch"

    # ---- structure -------------------------------------------------------------------
    def bind(self, slot: str) -> None:
        """Give the transform its pipeline slot (the prefix of its random streams)."""
        self.slot = slot

    def leaves(self) -> list["Transform"]:
        return [self]

    # ---- parameters ------------------------------------------------------------------
    def sample(self, keys: Tensor) -> dict[str, dict[str, Tensor]]:
        """Draw this transform's parameters for items ``keys``: ``{slot: {name: (B,)}}``."""
        B = keys.shape[0]

        def draw(name: str) -> Tensor:
            return uniform(keys, stream_id(f"{self.slot}/{name}"))

        params = self.draw_params(draw, B)
        params["apply"] = draw("apply") < self.p
        return {self.slot: params}

    def draw_params(self, draw: Draw, batch: int) -> dict[str, Tensor]:
        return {}

    # ---- application -----------------------------------------------------------------
    def run(self, wave: Tensor, lengths: Tensor, params: dict, ctx: Context, active: Tensor):
        """Apply to clips where ``active & apply``; returns ``(wave, lengths)``.

        ``wave`` is ``(B, C, T)``; ``lengths`` carries a host mirror, ``active`` and the
        parameters are host tensors. Resolved values are written into ``params[self.slot]``
        (those only on the device at the end of the pipeline call, in one read).
        """
        own = params[self.slot]
        mask = active & own["apply"]  # host masks: the selection costs no sync
        own["apply"] = mask
        idx = mask.nonzero().flatten()
        if idx.numel() == 0:
            return wave, lengths
        whole = idx.numel() == mask.shape[0]
        if whole:  # every clip: no gather, no merge (ops never write in place)
            sub = {k: v for k, v in own.items() if k != "apply"}
            w, l, resolved = self.apply(wave, lengths, sub, ctx)
        else:  # parameters stay on the host (the ops upload what they need); one index upload
            dev_idx = mirrored(idx, wave.device)
            sub = {k: v[idx] for k, v in own.items() if k != "apply"}
            w, l, resolved = self.apply(wave[dev_idx], take_rows(lengths, idx, dev_idx), sub, ctx.subset(idx))
        if self.kernel_op is not None:  # the record says which backend ran
            resolved["backend"] = torch.full((idx.numel(),), BACKENDS.index(self.backend_for(wave.device)))
        for k, v in resolved.items():  # host values (or mirrors) now; device-only values at the end of the call
            read_later(v.detach(), lambda value, k=k: self._store(own, k, idx, value))
        if whole:
            return w, l
        return merge_rows(wave, lengths, dev_idx, w, l)

    @staticmethod
    def _store(own: dict, key: str, idx: Tensor, value: Tensor) -> None:
        """Write the resolved host ``value`` of the clips ``idx`` into ``own[key]`` (a new tensor)."""
        full = own.get(key)
        full = torch.zeros(own["apply"].shape[0], dtype=value.dtype) if full is None else full.clone()
        full[idx] = value.to(full.dtype)
        own[key] = full

    def apply(self, wave: Tensor, lengths: Tensor, params: dict, ctx: Context):
        raise NotImplementedError

    # ---- perception ------------------------------------------------------------------
    def perception(self, params: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
        raise NotImplementedError

    def possible_tags(self) -> set[str]:
        raise NotImplementedError

    def annotate(self, entry: dict) -> dict:
        """Add readable fields (strings, e.g. a noise category name) to one clip's record."""
        return entry

    def describe(self) -> str:
        return f"{type(self).__name__}(p={self.p})"

    def __repr__(self) -> str:
        return self.describe()


def severity(tag: str, batch: int) -> Tensor:
    """``(B,)`` int64 tensor filled with the severity code of ``tag``."""
    return torch.full((batch,), SEVERITY[tag], dtype=torch.int64)


def no_delta(batch: int) -> Tensor:
    """``(B, 2)`` deltas of zero (the transform does not move the label)."""
    return torch.zeros(batch, 2, dtype=torch.float64)


def draw_range(draw: Draw, name: str, lo: float, hi: float) -> Tensor:
    """Uniform values in ``[lo, hi]`` from the stream ``name`` (float64, ``(B,)``)."""
    return lo + (hi - lo) * draw(name)


def draw_choice(draw: Draw, name: str, values) -> Tensor:
    """A uniformly chosen element of ``values`` per clip (float64, ``(B,)``)."""
    v = torch.as_tensor(values, dtype=torch.float64)
    i = torch.clamp((draw(name) * v.numel()).long(), max=v.numel() - 1)
    return v[i]


def draw_index(draw: Draw, name: str, n: int) -> Tensor:
    """A uniform integer in ``[0, n)`` per clip (int64)."""
    return torch.clamp((draw(name) * n).long(), max=max(n - 1, 0))


CLEAN_CODE = SEVERITY[CLEAN]
