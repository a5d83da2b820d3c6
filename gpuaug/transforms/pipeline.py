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

from .._sync import deferred_reads, host_of, mirrored, read_later
from ..backend import BACKENDS
from ..functional._batch import as_3d, check_wave, finite_checked, restore_rank
from ..functional.level import OUTPUT_LEVELS, check_output_level, output_level
from ..policy.evaluate import rule_of
from ..policy.labels import LabelAction, LabelPolicy
from ..policy.perception import NOT_APPLIED, Perception, combine
from ..policy.table import CLEAN, RETAINING, SEVERITY
from ..random import item_keys
from .base import Context, Transform
from .containers import Compose

__all__ = ["Pipeline", "AugmentResult", "PerceptionPolicyError", "OUTPUT_LEVELS", "RECORD_ONLY"]

#: Record entries that are not pipeline leaves (no ``slot``): the output level the pipeline
#: applied and the crop :class:`~gpuaug.data.AugmentCollate` took. Replay ignores them.
RECORD_ONLY = ("output_level", "crop")

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
        study_delta: ``(B, 2)`` float64 summed study deltas of the altering transforms applied
            (seed 001's reading; see :attr:`perception` for the flip-rate weighted ones).
        output_level: ``{"policy", "level", "applied", "gain", "peak"}``: the pipeline's
            output-level policy and level, and per clip (``(B,)`` host tensors) whether any
            transform was applied, the gain the policy applied (1 where none) and the clip's
            peak before it (``None`` for ``"keep"``, which measures nothing).
        perception: the rules each leaf met per clip and their combination
            (:class:`~gpuaug.policy.perception.Perception`); each record entry names its rule
            (``rule``), ``tag`` and ``evidence``.
        selected: ``(B,)`` bool host mask of the clips the call was allowed to augment (its
            ``select=``; ``None``: every clip). Clips outside it are returned bit for bit,
            ``clean``, with ``apply`` False in every slot of ``params`` and an empty record.
    """

    wave: Tensor
    lengths: Tensor
    params: dict
    tags: list[str]
    labels: LabelAction
    leaves: dict
    severity: Tensor
    study_delta: Tensor
    output_level: dict | None = None
    selected: Tensor | None = None
    perception: Perception | None = None

    @property
    def applied(self) -> Tensor:
        """``(B,)`` bool host mask: clips at least one transform (leaf) was applied to. A
        selected clip can stay unaugmented: each transform applies with its own ``p``."""
        out = torch.zeros(self.lengths.shape[0], dtype=torch.bool)
        for slot in self.leaves:
            out |= self.params[slot]["apply"]
        return out

    @property
    def record(self) -> list[list[dict]]:
        """Per clip, the applied transforms with their parameters as plain numbers."""
        B = self.lengths.shape[0]
        out: list[list[dict]] = [[] for _ in range(B)]
        for slot, leaf in self.leaves.items():
            p = self.params[slot]
            cols = {k: v.tolist() for k, v in p.items() if k != "apply"}
            rules = None if self.perception is None else self.perception.rules.get(slot)
            rules = None if rules is None else rules.tolist()  # host ints, read once
            for b in p["apply"].nonzero().flatten().tolist():
                entry = {"transform": leaf.name, "slot": slot, **{k: c[b] for k, c in cols.items()}}
                if "backend" in entry:
                    entry["backend_name"] = BACKENDS[int(entry["backend"])]
                entry = leaf.annotate(entry)
                if rules is not None:  # the perception rule the clip met (gpuaug.policy.rules)
                    rule = rule_of(rules[b])
                    entry["tag"] = rule.tag if rule is not None else "unverified"
                    entry["rule"] = rule.id if rule is not None else f"{leaf.name}: no rule (not rated)"
                    entry["evidence"] = rule.evidence if rule is not None else "not rated"
                out[b].append(entry)
        lvl = self.output_level
        if lvl is not None and lvl["policy"] != "keep":  # "keep" does and measures nothing: no entry
            peak = None if lvl["peak"] is None else lvl["peak"].tolist()
            for b, g in zip(lvl["applied"].nonzero().flatten().tolist(), lvl["gain"][lvl["applied"]].tolist()):
                entry = {"transform": "output_level", "policy": lvl["policy"], "level": lvl["level"], "gain": g}
                if peak is not None:
                    entry["peak"] = peak[b]
                out[b].append(entry)
        return out


def _copy_params(params):
    """An independent copy of replay ``params`` (nested dicts / lists / tuples of tensors, whose
    tensors are cloned; other leaves deep-copied): what ``copy.deepcopy`` gives, ~8x cheaper
    (21 tensors of a retaining batch: 0.06 against 0.5 ms)."""
    if isinstance(params, Tensor):
        return params.clone()
    if isinstance(params, dict):
        return {k: _copy_params(v) for k, v in params.items()}
    if isinstance(params, (list, tuple)):
        return type(params)(_copy_params(v) for v in params)
    return copy.deepcopy(params)


class Pipeline:
    """A root transform plus sample rate, perception requirement and label policy.

    Args:
        transforms: a :class:`Transform` or a list (wrapped in :class:`Compose`).
        sample_rate: Hz of the audio it will receive.
        require: ``None`` or ``"retaining"``: refuse transforms whose configured
            parameter ranges can produce an ``altering`` or ``unverified`` clip.
        allow: names of transforms exempted from ``require`` (explicit opt-in).
        label_policy: what happens to labels of altering / unverified clips.
        output_level: the pipeline's last step, per clip, on the clips at least one transform
            was applied to (the others are returned bit for bit), a pure gain (never a clip):

            * ``"peak_limit"`` (**default**): a clip whose peak exceeds ``output_peak`` is
              scaled down to peak at it; the others are untouched.
            * ``"keep"``: nothing; augmented clips may exceed full scale (noise at 0 dB SNR
              doubles the power: 38 of 41 EmoDB clips went above 1.0, peak 4.75; McAdams up
              to 2.72).
            * ``"normalize"``: every augmented clip is scaled to peak exactly at ``output_peak``.

            Why ``peak_limit`` by default: a model is evaluated on decoded recordings, which
            never exceed full scale, so training on up to 4.75x full scale is a level
            mismatch only augmented clips have; limiting is a single gain per clip, so SNR,
            spectra and every recorded parameter stay valid, and clips within full scale keep
            their level (``normalize`` would also level every augmented clip, removing
            loudness, an arousal cue, relative to the clean ones). This changed outputs:
            before, the behaviour was ``"keep"``; pass ``output_level="keep"`` for it.
            The gain applied (and the peak before it) of each augmented clip is its record's
            last entry, ``{"transform": "output_level", "policy", "level", "gain", "peak"}``
            (read back with the call's one deferred read, no extra sync); with ``"keep"`` the
            record has no such entry (as before). Replay recomputes it (same audio, same gain).
        output_peak: the ceiling (``peak_limit``) or target (``normalize``) peak, linear,
            default 1.0 (full scale).
    """

    def __init__(self, transforms, *, sample_rate: int = 16000, require: str | None = None,
                 allow=(), label_policy: LabelPolicy | None = None, output_level: str = "peak_limit",
                 output_peak: float = 1.0):
        self.output_peak = check_output_level(output_level, output_peak)
        self.output_level = output_level
        root = transforms if isinstance(transforms, Transform) else Compose(transforms)
        root.bind("root")
        self.root = root
        self.sample_rate = int(sample_rate)
        self.label_policy = label_policy or LabelPolicy()
        self.require = require
        if require not in (None, RETAINING):
            raise ValueError(f"require must be None or 'retaining', got {require!r}")
        if require == RETAINING:  # the rules of gpuaug.policy.rules on every leaf's declared ranges
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
                 index=None, params: dict | None = None, alignments: Tensor | None = None,
                 word_text: list | None = None, speakers: list | None = None, select=None) -> AugmentResult:
        """Augment a batch. See the module docstring; ``params`` replays a previous result.

        Args:
            wave: ``(B, T)`` or ``(B, C, T)`` float audio at ``sample_rate``, zero padded.
            lengths: ``(B,)`` int valid samples (default: ``T`` for every clip).
            seed, epoch, index: what the parameters are drawn from (``index``: ``(B,)`` item
                indices, default ``arange(B)``); ignored with ``params``.
            params: replay these parameters (an :attr:`AugmentResult.params` of ``B`` clips).
            alignments: ``(B, K, 2)`` int64 word intervals in samples (word dropping).
            word_text: per clip the ``K`` words of ``alignments`` (lists of str), or None.
            speakers: per clip its speaker (str or None), or None (same-speaker inserts).
            select: ``(B,)`` bool mask of the clips to augment, on the host (a device mask
                with a host mirror, :func:`gpuaug._sync.mirrored`, costs nothing; one without
                costs a sync), or ``None`` for every clip. Parameters are drawn (or replayed)
                for every clip as usual, so a clip's parameters do not depend on which others
                are selected; outside the selection ``apply`` is set False, so each transform
                gathers, runs on and merges back exactly the selected clips it applies to, and
                the other clips come back bit for bit (``clean``, empty record). With no clip
                selected nothing is read, changed or scanned for NaN / Inf (no sync).
        """
        if lengths is None:
            lengths = torch.full((wave.shape[0],), wave.shape[-1], dtype=torch.int64)
        if select is not None:  # a (B,) bool host tensor
            select = host_of(select) if isinstance(select, Tensor) else torch.as_tensor(select)  # mirror: no sync
            if select.dtype != torch.bool:
                raise TypeError(f"select must be a (B,) bool mask, got dtype {select.dtype}")
            if isinstance(wave, Tensor) and select.shape != (wave.shape[0],):
                raise ValueError(f"select must have shape (B,) = ({wave.shape[0]},), got {tuple(select.shape)}")
        idle = select is not None and not bool(select.any())  # host mask: no sync
        if idle:
            with finite_checked():  # nothing will be read: shapes and lengths only, no scan
                lengths = check_wave(wave, lengths)
        else:
            lengths = check_wave(wave, lengths)
        B = wave.shape[0]
        if params is not None:
            self.check_params(params, B)
        params = _copy_params(params) if params is not None else self.sample(B, seed=seed, epoch=epoch, index=index)
        w3, was_2d = as_3d(wave)
        for name, per_clip in (("word_text", word_text), ("speakers", speakers)):
            if per_clip is not None and len(per_clip) != B:
                raise ValueError(f"{name} must have one entry per clip ({B}), got {len(per_clip)}")
        ctx = Context(self.sample_rate, alignments=None if alignments is None else host_of(alignments),
                      word_text=None if word_text is None else list(word_text),
                      speakers=None if speakers is None else list(speakers),
                      caller_storage=w3.untyped_storage().data_ptr())
        # masks, parameters and lengths live on the host; the selection is the root's active mask
        active = torch.ones(B, dtype=torch.bool) if select is None else select.clone()
        with finite_checked(), deferred_reads() as deferred:  # checked above; finite stays finite
            w3, lengths = self.root.run(w3, lengths, params, ctx, active)
            w3, level = self._output_level(w3, params, B, inplace=ctx.owns(w3))
            deferred.flush()  # the call's last sync: deferred checks and device-only record values
        perception = self.perception(params, B)
        severity, delta = perception.severity, perception.delta
        return AugmentResult(
            wave=restore_rank(w3, was_2d), lengths=lengths, params=params,
            tags=[_TAG_OF_CODE[c] for c in severity.tolist()],
            labels=self.label_policy.actions(perception),
            leaves={leaf.slot: leaf for leaf in self.leaves}, severity=severity, study_delta=delta,
            output_level=level, selected=select, perception=perception,
        )

    def _output_level(self, w3: Tensor, params: dict, batch: int, inplace: bool) -> tuple[Tensor, dict]:
        """The output-level step on the clips any leaf was applied to (host flags); gain and
        peak come back with the call's deferred read. ``inplace``: ``w3`` is the call's own
        intermediate (not the caller's storage), so it is scaled in place."""
        applied = torch.zeros(batch, dtype=torch.bool)
        for leaf in self.leaves:
            applied |= params[leaf.slot]["apply"]
        level = {"policy": self.output_level, "level": self.output_peak, "applied": applied,
                 "gain": torch.ones(batch, dtype=torch.float32), "peak": None}
        if self.output_level == "keep" or not bool(applied.any()):  # host flags: no sync
            return w3, level
        w3, gain, peak = output_level(w3, self.output_level, self.output_peak, mask=mirrored(applied, w3.device),
                                      inplace=inplace)
        read_later(gain, lambda v: level.__setitem__("gain", v.clone()))
        read_later(peak, lambda v: level.__setitem__("peak", v.clone()))
        return w3, level

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

    def perception(self, params: dict, batch: int) -> Perception:
        """Per clip, the rule each applied leaf met (:mod:`gpuaug.policy.rules`) and their
        combination: worst tag, summed deltas of the altering ones (host tensors)."""
        rules = {}
        for leaf in self.leaves:
            p = params[leaf.slot]
            applied = p["apply"]
            idx = torch.full((batch,), NOT_APPLIED, dtype=torch.int64)
            if bool(applied.any()):
                idx = torch.where(applied, leaf.rules(p), NOT_APPLIED)
            rules[leaf.slot] = idx
        return combine(rules, batch)

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
        records = [[e for e in rec if not (e.get("transform") in RECORD_ONLY and "slot" not in e)]
                   for rec in records]  # the output level is recomputed, the crop already taken
        unknown = sorted({e.get("slot") for rec in records for e in rec} - set(params), key=str)
        if unknown:
            raise ValueError(f"records do not match this pipeline: unknown slots {unknown}; "
                             f"this pipeline's leaves are {sorted(params)}")
        leaf_of = {leaf.slot: leaf for leaf in self.leaves}
        for b, rec in enumerate(records):
            for entry in rec:
                own = params[entry["slot"]]
                own["apply"][b] = True
                if hasattr(leaf_of[entry["slot"]], "check_record"):  # bank items still held (by identity)
                    leaf_of[entry["slot"]].check_record(entry)
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
