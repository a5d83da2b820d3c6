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
from ..backend import BACKENDS, ROW_SCATTER, check_op, kernel_for, resolve
from ..policy.evaluate import Cat, evaluate, possible
from ..policy.rules import Interval
from ..random import stream_id, uniform
from .space import Choice, Limit, Space, Uniform, annotate_space, declare, describe_space, draw_space

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
        word_text: optional per clip the ``K`` words of ``alignments`` (lists of str).
        speakers: optional per clip its speaker (str or None), for same-speaker inserts.
        caller_storage: ``data_ptr()`` of the storage of the audio the caller passed in (set by
            :class:`~gpuaug.transforms.Pipeline`): a wave on any other storage is the call's own
            intermediate, into which a transform applied to some clips merges them in place.
    """

    sample_rate: int
    alignments: Tensor | None = None
    word_text: list | None = None
    speakers: list | None = None
    caller_storage: int | None = None

    def subset(self, index: Tensor) -> "Context":
        """The context of the clips ``index`` (per-clip fields sliced)."""
        host = host_of(index)
        al = None if self.alignments is None else self.alignments[host.to(self.alignments.device)]
        rows = host.tolist()
        words = None if self.word_text is None else [self.word_text[i] for i in rows]
        speakers = None if self.speakers is None else [self.speakers[i] for i in rows]
        return Context(self.sample_rate, alignments=al, word_text=words, speakers=speakers,
                       caller_storage=self.caller_storage)

    def owns(self, wave: Tensor) -> bool:
        """Whether ``wave`` is the call's own intermediate (not on the caller's storage)."""
        return self.caller_storage is not None and wave.untyped_storage().data_ptr() != self.caller_storage


def merge_rows(wave: Tensor, lengths: Tensor, index: Tensor, sub: Tensor, sub_lengths: Tensor, *,
               inplace: bool = False):
    """Put the processed rows ``sub`` back at ``index`` of ``wave``.

    Shapes: wave (B, C, T), sub (n, C, T_sub); returns a (B, C, T_out) tensor with
    ``T_out = T`` when no length can grow, else ``max`` over the new lengths. ``index`` may
    be on the host or the device; lengths are combined on their host mirrors (no sync).
    ``inplace``: ``wave`` is a buffer of the caller's own (a pipeline's intermediate); where
    the shape is kept, the rows are written into it instead of a copy. The rows are written
    by op ``row_scatter`` (:func:`gpuaug.kernels.ragged.row_scatter_kernel` on the CPU: one
    contiguous copy per row; ``index_copy_`` / ``index_fill_`` elsewhere).
    """
    host_index = host_of(index)
    new_host = host_of(lengths).clone()
    new_host[host_index] = host_of(sub_lengths)
    new_lengths = mirrored(new_host, lengths.device)
    index = index if index.device == wave.device else mirrored(host_index, wave.device)
    T_out = wave.shape[-1] if sub.shape[-1] == wave.shape[-1] else (int(new_host.max()) if new_host.numel() else 0)
    if inplace and T_out == wave.shape[-1]:  # e.g. a speed-up of some clips, not of the longest
        out = wave
    elif T_out == wave.shape[-1]:
        out = wave.clone(memory_format=torch.contiguous_format)
    else:  # one copy of the batch (the rows of ``index`` are overwritten below)
        out = wave.new_empty(*wave.shape[:-1], T_out)
        keep = min(T_out, wave.shape[-1])
        out[..., :keep] = wave[..., :keep]
        if T_out > keep:
            out[..., keep:] = 0
    kernel = kernel_for(ROW_SCATTER, out.device, shared=True)[1] if out.dtype in (torch.float32, torch.float64) else None
    if kernel is not None and out.is_contiguous() and out.dim() == 3:
        kernel(out, host_index, sub.to(out.dtype))
        return out, new_lengths
    t = min(T_out, sub.shape[-1])
    out[..., :t].index_copy_(0, index, sub[..., :t])
    if t < T_out:
        out[..., t:].index_fill_(0, index, 0)
    return out, new_lengths


class Transform:
    """Base of every augmentation and container.

    Subclasses (leaves) define:
        name: short id used in records and the perception rules.
        changes_length: whether the op can change clip lengths.
        LIMITS: ``{parameter: Limit}``, what each declared parameter may take at all; the
            constructor builds ``self.space`` (what is drawn) with :meth:`declare`, which
            checks the arguments against ``LIMITS`` (see :mod:`gpuaug.transforms.space`).
        draw_params(draw, batch) -> dict of (B,) tensors (without "apply"); by default the
            draws of ``self.space``; subclasses add their uniforms for bank picks, offsets...
        apply(wave (n, C, T), lengths (n,), params (n,), ctx) -> (wave, lengths, resolved)
        policy_view(params) / policy_space(): the values the perception rules
            (:mod:`gpuaug.policy.rules`) read, per clip and as declared ranges; by default the
            declared parameters, subclasses add resolved ones (a noise item's category).
    """

    name: ClassVar[str] = "transform"
    changes_length: ClassVar[bool] = False
    #: The op in :mod:`gpuaug.backend` (one of its :data:`~gpuaug.backend.OPS` constants) for
    #: transforms whose op has kernels, else None; checked when the class is defined.
    kernel_op: ClassVar[str | None] = None
    #: What each declared parameter may take (validation of the constructor's arguments).
    LIMITS: ClassVar[dict[str, Limit]] = {}

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        check_op(cls.kernel_op, f"{cls.__name__}.kernel_op")  # a misspelt op raises at import

    def __init__(self, p: float = 1.0, backend: str | None = None):
        check_op(self.kernel_op, f"{type(self).__name__}.kernel_op")
        if not 0.0 <= float(p) <= 1.0:
            raise ValueError(f"{type(self).__name__}: p must be in [0, 1], got {p}")
        if backend is not None and (self.kernel_op is None or backend not in BACKENDS):
            allowed = BACKENDS if self.kernel_op else "None (no kernels for this transform)"
            raise ValueError(f"{type(self).__name__}: backend must be one of {allowed}, got {backend!r}")
        self.p = float(p)
        self.backend = backend
        self.slot = self.name
        self.space: Space = {}
        #: Non-drawn categorical settings (``{name: value}``, checked by :meth:`option`); the
        #: rules read them as constant values, :meth:`describe` prints them.
        self.options: dict[str, str] = {}

    def declare(self, name: str, **kwargs) -> None:
        """Declare the draw of parameter ``name`` (see :func:`gpuaug.transforms.space.declare`)."""
        self.space[name] = declare(type(self).__name__, self.LIMITS, name, **kwargs)

    def option(self, name: str, value, args: str | None = None):
        """Check a non-drawn categorical option against ``LIMITS[name].names``, keep it in
        :attr:`options` (the policy reads it as a constant value); returns it."""
        names = self.LIMITS[name].names
        if value not in names:
            raise ValueError(f"{type(self).__name__}: {args or name}={value!r} is not one of {names}")
        self.options[name] = value
        return value

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
        return draw_space(self.space, draw, batch)

    # ---- application -----------------------------------------------------------------
    def fuses_with(self, nxt: "Transform", device) -> bool:
        """Whether ``nxt``, the next transform of a sequence, can run inside this one's
        :meth:`apply` (as ``epilogue=nxt.epilogue(params, ctx)``) on ``device``; the base
        class fuses nothing."""
        return False

    def run(self, wave: Tensor, lengths: Tensor, params: dict, ctx: Context, active: Tensor, then=None):
        """Apply to clips where ``active & apply``; returns ``(wave, lengths)``.

        ``wave`` is ``(B, C, T)``; ``lengths`` carries a host mirror, ``active`` and the
        parameters are host tensors. Resolved values are written into ``params[self.slot]``
        (those only on the device at the end of the pipeline call, in one read).
        ``then``: ``(nxt, nxt_active)``, the next transform of a sequence that
        :meth:`fuses_with` accepted and its active mask: where it applies to exactly the same
        clips (host masks) it runs inside this one's :meth:`apply` and is recorded here as if
        it had run on its own; otherwise it runs after this one as usual.
        """
        own = params[self.slot]
        mask = active & own["apply"]  # host masks: the selection costs no sync
        if then is not None:
            nxt, nxt_active = then
            nxt_mask = nxt_active & params[nxt.slot]["apply"]
            if not torch.equal(nxt_mask, mask) or not bool(mask.any()):
                wave, lengths = self.run(wave, lengths, params, ctx, active)
                return nxt.run(wave, lengths, params, ctx, nxt_active)
            params[nxt.slot]["apply"] = nxt_mask
        own["apply"] = mask
        idx = mask.nonzero().flatten()
        if idx.numel() == 0:
            return wave, lengths
        whole = idx.numel() == mask.shape[0]
        rows = (lambda v: v) if whole else (lambda v: v[idx])
        sub_ctx = ctx if whole else ctx.subset(idx)
        fused = {}
        if then is not None:
            fused["epilogue"] = nxt.epilogue({k: rows(v) for k, v in params[nxt.slot].items() if k != "apply"}, sub_ctx)
        sub = {k: rows(v) for k, v in own.items() if k != "apply"}
        in_place = not whole and not fused and self.mixes_rows(wave)
        if whole:  # every clip: no gather, no merge (ops never write in place)
            w, l, resolved = self.apply(wave, lengths, sub, sub_ctx, **fused)
        elif in_place:  # the op reads and writes the rows of the whole batch: no gather, no merge
            w, l, resolved = self.apply(wave, lengths, sub, sub_ctx, rows=idx)
        else:  # parameters stay on the host (the ops upload what they need); one index upload
            dev_idx = mirrored(idx, wave.device)
            # index_select: one copy per row (wave[dev_idx] is an element-wise gather, ~7x the CPU time)
            w, l, resolved = self.apply(wave.index_select(0, dev_idx), take_rows(lengths, idx, dev_idx), sub, sub_ctx,
                                        **fused)
        for t, res in ((self, resolved), *(((nxt, {}),) if fused else ())):
            if t.kernel_op is not None:  # the record says which backend ran
                res["backend"] = torch.full((idx.numel(),), BACKENDS.index(t.backend_for(wave.device)))
            t_own = params[t.slot]
            for k, v in res.items():  # host values (or mirrors) now; device-only values at the end of the call
                read_later(v.detach(), lambda value, k=k, t=t, t_own=t_own: t._store(t_own, k, idx, value))
        if whole or in_place:
            return w, l
        return merge_rows(wave, lengths, dev_idx, w, l, inplace=ctx.owns(wave))

    def mixes_rows(self, wave: Tensor) -> bool:
        """Whether :meth:`apply` takes ``rows=`` (host int64 rows of the whole batch ``wave``,
        the parameters per row) and returns the whole batch with only those rows changed, so
        that :meth:`run` neither gathers nor merges them. The base class: never."""
        return False

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
    def policy_view(self, params: dict[str, Tensor]) -> dict:
        """Per clip, the values the perception rules read: ``{name: (B,) float64 | Cat}``.
        Default: every declared parameter (categorical ones as :class:`~gpuaug.policy.evaluate.Cat`)
        and every :attr:`options` value (the same for every clip)."""
        B = params["apply"].shape[0]
        view = {name: Cat(torch.full((B,), self.LIMITS[name].names.index(v)), self.LIMITS[name].names)
                for name, v in self.options.items()}
        for name, d in self.space.items():
            if isinstance(d, Choice) and d.names is not None:
                view[name] = Cat(params[name].long(), self.LIMITS[name].names)
            else:
                view[name] = params[name]
        return view

    def policy_space(self) -> dict:
        """The declared ranges as the rules read them: ``{name: Interval | numbers | names}``."""
        out = {name: (v,) for name, v in self.options.items()}
        for name, d in self.space.items():
            if isinstance(d, Uniform):
                out[name] = Interval(d.lo, d.hi)
            elif isinstance(d, Choice) and d.names is not None:
                out[name] = tuple(d.names)
            else:
                out[name] = tuple(d.values)
        return out

    def rules(self, params: dict[str, Tensor]) -> Tensor:
        """``(B,)`` int64: the rule of :data:`~gpuaug.policy.rules.RULES` each clip meets."""
        return evaluate(self.name, self.policy_view(params), params["apply"].shape[0])

    def possible_tags(self) -> set[str]:
        """The tags the declared ranges can produce (the same rules, on representative values)."""
        return possible(self.name, self.policy_space())

    def annotate(self, entry: dict) -> dict:
        """Add readable fields (names of categorical values, e.g. a noise category) to a record entry."""
        return annotate_space(self.space, self.LIMITS, entry)

    def describe(self) -> str:
        parts = [f"{k}={v}" for k, v in self.options.items()] + ([describe_space(self.space)] if self.space else [])
        return f"{type(self).__name__}({', '.join(parts + [f'p={self.p}'])})"

    def __repr__(self) -> str:
        return self.describe()


def draw_index(draw: Draw, name: str, n: int) -> Tensor:
    """A uniform integer in ``[0, n)`` per clip (int64)."""
    return torch.clamp((draw(name) * n).long(), max=max(n - 1, 0))

