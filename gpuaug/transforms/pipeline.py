"""The pipeline: keys -> parameters -> application -> record, perception tags, label actions.

Example::

    pipe = Pipeline([AddNoise(bank, snr_db_choices=(0, 10, 20)), Fade()], sample_rate=16000,
                    require="retaining")
    out = pipe(wave, lengths, seed=0, epoch=3, index=item_indices)
    out.wave, out.lengths, out.tags, out.labels.loss_weight, out.record[0]
    again = pipe(wave, lengths, params=out.params)           # bit-identical replay
"""
from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch import Tensor

from .._sync import deferred_reads, host_of
from ..backend import BACKENDS
from ..functional._batch import as_3d, check_wave, finite_checked, restore_rank
from ..policy.labels import LabelAction, LabelPolicy
from ..policy.table import ALTERING, CLEAN, RETAINING, SEVERITY
from ..random import item_keys
from .base import Context, Transform
from .containers import Compose

__all__ = ["Pipeline", "AugmentResult", "PerceptionPolicyError"]

_TAG_OF_CODE = {v: k for k, v in SEVERITY.items()}


class PerceptionPolicyError(ValueError):
    """A pipeline required to be perception-retaining contains something that is not."""


@dataclass
class AugmentResult:
    """Output of a :class:`Pipeline` call.

    Attributes:
        wave: ``(B, T')`` or ``(B, C, T')`` augmented audio, zero padded.
        lengths: ``(B,)`` int64 valid samples after augmentation.
        params: ``{slot: {name: (B,) tensor}}`` every drawn and resolved parameter (CPU);
            pass it back as ``params=`` to replay exactly.
        tags: per-clip perception tag (``clean | retaining | unverified | altering``).
        labels: the label handling decided by the pipeline's :class:`LabelPolicy`.
        leaves: ``{slot: leaf transform}`` (names and readable annotations of the record).
        severity: ``(B,)`` int64 severity codes behind ``tags``.
        study_delta: ``(B, 2)`` float64 summed study deltas of the altering transforms applied.
    """

    wave: Tensor
    lengths: Tensor
    params: dict
    tags: list[str]
    labels: LabelAction
    leaves: dict
    severity: Tensor
    study_delta: Tensor

    @property
    def record(self) -> list[list[dict]]:
        """Per clip, the applied transforms with their parameters as plain numbers."""
        B = self.lengths.shape[0]
        out: list[list[dict]] = [[] for _ in range(B)]
        for slot, leaf in self.leaves.items():
            p = self.params[slot]
            cols = {k: v.tolist() for k, v in p.items() if k != "apply"}
            for b in p["apply"].nonzero().flatten().tolist():
                entry = {"transform": leaf.name, "slot": slot, **{k: c[b] for k, c in cols.items()}}
                if "backend" in entry:
                    entry["backend_name"] = BACKENDS[int(entry["backend"])]
                out[b].append(leaf.annotate(entry))
        return out


class Pipeline:
    """A root transform plus sample rate, perception requirement and label policy.

    Args:
        transforms: a :class:`Transform` or a list (wrapped in :class:`Compose`).
        sample_rate: Hz of the audio it will receive.
        require: ``None`` or ``"retaining"``: refuse transforms whose configured
            parameter ranges can produce an ``altering`` or ``unverified`` clip.
        allow: names of transforms exempted from ``require`` (explicit opt-in).
        label_policy: what happens to labels of altering / unverified clips.
    """

    def __init__(self, transforms, *, sample_rate: int = 16000, require: str | None = None,
                 allow=(), label_policy: LabelPolicy | None = None):
        root = transforms if isinstance(transforms, Transform) else Compose(transforms)
        root.bind("root")
        self.root = root
        self.sample_rate = int(sample_rate)
        self.label_policy = label_policy or LabelPolicy()
        self.require = require
        if require not in (None, RETAINING):
            raise ValueError(f"require must be None or 'retaining', got {require!r}")
        if require == RETAINING:
            bad = []
            for leaf in root.leaves():
                extra = leaf.possible_tags() - {RETAINING, CLEAN}
                if extra and leaf.name not in set(allow):
                    bad.append(f"{leaf.describe()} can produce {sorted(extra)} clips")
            if bad:
                raise PerceptionPolicyError(
                    "pipeline must be perception-retaining, but: " + "; ".join(bad)
                    + ". Narrow the parameter ranges, or pass allow=[names] to opt in explicitly."
                )

    @property
    def leaves(self) -> list[Transform]:
        return self.root.leaves()

    def sample(self, batch: int, *, seed: int = 0, epoch: int = 0, index=None) -> dict:
        """Draw all parameters for ``batch`` items without touching audio (CPU only)."""
        idx = torch.arange(batch) if index is None else torch.as_tensor(index, dtype=torch.int64).cpu()
        if idx.shape != (batch,):
            raise ValueError(f"index must have shape ({batch},), got {tuple(idx.shape)}")
        return self.root.sample(item_keys(seed, epoch, idx))

    def __call__(self, wave: Tensor, lengths: Tensor | None = None, *, seed: int = 0, epoch: int = 0,
                 index=None, params: dict | None = None, alignments: Tensor | None = None) -> AugmentResult:
        """Augment a batch. See the module docstring; ``params`` replays a previous result."""
        if lengths is None:
            lengths = torch.full((wave.shape[0],), wave.shape[-1], dtype=torch.int64)
        lengths = check_wave(wave, lengths)
        B = wave.shape[0]
        if params is not None:
            self.check_params(params, B)
        params = copy.deepcopy(params) if params is not None else self.sample(B, seed=seed, epoch=epoch, index=index)
        w3, was_2d = as_3d(wave)
        ctx = Context(self.sample_rate, alignments=None if alignments is None else host_of(alignments))
        active = torch.ones(B, dtype=torch.bool)  # masks, parameters and lengths live on the host
        with finite_checked(), deferred_reads() as deferred:  # checked above; finite stays finite
            w3, lengths = self.root.run(w3, lengths, params, ctx, active)
            deferred.flush()  # the call's last sync: deferred checks and device-only record values
        severity, delta = self.perception(params, B)
        return AugmentResult(
            wave=restore_rank(w3, was_2d), lengths=lengths, params=params,
            tags=[_TAG_OF_CODE[c] for c in severity.tolist()],
            labels=self.label_policy.actions(severity, delta),
            leaves={leaf.slot: leaf for leaf in self.leaves}, severity=severity, study_delta=delta,
        )

    @property
    def slots(self) -> list[str]:
        """Every slot of the tree (containers and leaves), in depth-first order: the keys of
        the ``params`` this pipeline draws and replays."""
        out, stack = [], [self.root]
        while stack:
            node = stack.pop()
            out.append(node.slot)
            stack.extend(reversed(getattr(node, "transforms", [])))
        return out

    def check_params(self, params, batch: int) -> None:
        """Refuse replay ``params`` that do not fit this pipeline (drawn by another pipeline,
        or for another batch size) with a ``ValueError`` naming the missing and unexpected
        slots, instead of a bare ``KeyError`` half-way through the call."""
        if not isinstance(params, dict):
            raise TypeError(f"params must be the dict of an AugmentResult.params, got {type(params).__name__}")
        want = self.slots
        missing = [s for s in want if s not in params]
        unexpected = [s for s in params if s not in set(want)]
        if missing or unexpected:
            raise ValueError(
                "params do not match this pipeline (were they drawn by another one?): "
                f"missing slots {missing}, unexpected slots {unexpected}; this pipeline's slots are {want}")
        for slot in want:
            own = params[slot]
            apply = own.get("apply") if isinstance(own, dict) else None
            if not isinstance(apply, Tensor) or apply.shape != (batch,):
                got = "no 'apply' flags" if not isinstance(apply, Tensor) else f"'apply' of shape {tuple(apply.shape)}"
                raise ValueError(f"params[{slot!r}] has {got}, expected a ({batch},) tensor for this batch of {batch}")

    def perception(self, params: dict, batch: int) -> tuple[Tensor, Tensor]:
        """Per clip: worst severity code over applied leaves, summed study deltas of altering ones."""
        severity = torch.full((batch,), SEVERITY[CLEAN], dtype=torch.int64)
        delta = torch.zeros(batch, 2, dtype=torch.float64)
        for leaf in self.leaves:
            p = params[leaf.slot]
            applied = p["apply"]
            if not bool(applied.any()):
                continue
            codes, d = leaf.perception(p)
            codes = torch.where(applied, codes, SEVERITY[CLEAN])
            severity = torch.maximum(severity, codes)
            delta = delta + torch.where((applied & (codes == SEVERITY[ALTERING]))[:, None], d, 0.0)
        return severity, delta

    def describe(self) -> str:
        return self.root.describe()

    def params_from_records(self, records: list[list[dict]]) -> dict:
        """Rebuild replayable ``params`` from :attr:`AugmentResult.record` (plain numbers).

        Leaves run in declaration order, so the leaves' own ``apply`` flags are enough:
        containers are set to pass every clip through (their choices are already encoded in
        which leaves a clip's record lists).
        """
        B = len(records)
        params: dict[str, dict] = {}
        for leaf in self.leaves:
            params[leaf.slot] = {"apply": torch.zeros(B, dtype=torch.bool)}
        unknown = sorted({e.get("slot") for rec in records for e in rec} - set(params), key=str)
        if unknown:
            raise ValueError(f"records do not match this pipeline: unknown slots {unknown}; "
                             f"this pipeline's leaves are {sorted(params)}")
        for b, rec in enumerate(records):
            for entry in rec:
                own = params[entry["slot"]]
                own["apply"][b] = True
                for k, v in entry.items():
                    if k in ("transform", "slot") or isinstance(v, str):
                        continue
                    dtype = torch.bool if isinstance(v, bool) else torch.int64 if isinstance(v, int) else torch.float64
                    own.setdefault(k, torch.zeros(B, dtype=dtype))[b] = v
        stack = [self.root]
        while stack:
            node = stack.pop()
            if node.slot not in params:
                params[node.slot] = {"apply": torch.ones(B, dtype=torch.bool), "replay": torch.ones(B, dtype=torch.bool)}
            stack.extend(getattr(node, "transforms", []))
        return params

    __repr__ = describe
