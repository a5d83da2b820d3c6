"""Tempo transforms: whole-utterance speed and speed-up of a segment."""
from __future__ import annotations

import torch

from .._sync import host_of
from ..functional.speed import speed, speed_segment
from ..policy.table import ALTERING, RETAINING, lookup
from .base import Draw, Transform, draw_choice, draw_range, no_delta, severity

__all__ = ["Speed", "SpeedSegment", "RETAINING_SPEED_TOLERANCE", "RETAINING_SEGMENT_FRACTION"]

#: Seeds 000/001 recommendation: do not change the whole utterance's speed by more than 5 %.
RETAINING_SPEED_TOLERANCE = 0.05
#: ... and speed up segments of at most 25 % of the clip (factor 1.25 measured).
RETAINING_SEGMENT_FRACTION = 0.25
STUDY_SEGMENT_FACTOR = 1.25
_EPS = 1e-9


class Speed(Transform):
    """Resample the whole clip by a per-clip ``factor`` (> 1 faster/shorter; pitch moves too).

    Args: ``min_factor``/``max_factor`` (uniform) or ``factor_choices`` (e.g. ``(0.75, 1.25)``);
    ``backend`` of the resampler (op ``"warp"``, see :mod:`gpuaug.backend`; recorded).
    Perception: ``retaining`` when ``|factor - 1| <= 0.05``, else ``altering`` with the study's
    deltas of the 0.75x / 1.25x conditions.
    """

    name = "speed"
    changes_length = True
    kernel_op = "warp"

    def __init__(self, *, min_factor: float = 0.95, max_factor: float = 1.05, factor_choices=None, p: float = 1.0,
                 backend: str | None = None):
        super().__init__(p, backend)
        values = factor_choices if factor_choices is not None else (min_factor, max_factor)
        if min(values) <= 0 or (factor_choices is None and min_factor > max_factor):
            raise ValueError(f"Speed: factors must be positive and min <= max, got {values}")
        self.min_factor, self.max_factor = float(min(values)), float(max(values))
        self.factor_choices = None if factor_choices is None else tuple(float(f) for f in factor_choices)

    def draw_params(self, draw: Draw, batch: int):
        if self.factor_choices is not None:
            return {"factor": draw_choice(draw, "factor", self.factor_choices)}
        return {"factor": draw_range(draw, "factor", self.min_factor, self.max_factor)}

    def apply(self, wave, lengths, params, ctx):
        out, out_len = speed(wave, lengths, factor=params["factor"], backend=self.backend_for(wave.device))
        return out, out_len, {}

    def perception(self, params):
        f = params["factor"]
        B = f.shape[0]
        retain = (f - 1).abs() <= RETAINING_SPEED_TOLERANCE + _EPS
        fast, slow = lookup("speed_utterance", "1.25x"), lookup("speed_utterance", "0.75x")
        delta = torch.where((f > 1)[:, None], torch.tensor([fast.delta_valence, fast.delta_activation]),
                            torch.tensor([slow.delta_valence, slow.delta_activation]))
        return torch.where(retain, severity(RETAINING, B), severity(ALTERING, B)), torch.where(retain[:, None], no_delta(B), delta)

    def possible_tags(self):
        lo, hi = 1 - RETAINING_SPEED_TOLERANCE - _EPS, 1 + RETAINING_SPEED_TOLERANCE + _EPS
        values = self.factor_choices or (self.min_factor, self.max_factor)
        tags = {ALTERING} if min(values) < lo or max(values) > hi else set()
        if self.factor_choices is None:
            retain = self.min_factor <= hi and self.max_factor >= lo
        else:
            retain = any(lo <= f <= hi for f in values)
        return tags | ({RETAINING} if retain else set())

    def describe(self):
        f = self.factor_choices or (self.min_factor, self.max_factor)
        return f"Speed(factor={f}, p={self.p})"


class SpeedSegment(Transform):
    """Play one per-clip segment ``factor`` times faster; the rest of the clip is untouched.

    Args:
        factor: speed-up of the segment (seed: 1.25).
        min_fraction, max_fraction: segment length as a fraction of the clip (<= 0.25 keeps
            the seeds' recommendation); its start is uniform over the clip.
        backend: backend of the resampler (op ``"warp"``, see :mod:`gpuaug.backend`; recorded).
    Perception: ``retaining`` for factor in (1, 1.25] and fraction <= 0.25, else ``unverified``.
    """

    name = "speed_segment"
    changes_length = True
    kernel_op = "warp"

    def __init__(self, *, factor: float = 1.25, min_fraction: float = 0.1, max_fraction: float = 0.25, p: float = 1.0,
                 backend: str | None = None):
        super().__init__(p, backend)
        if factor <= 0 or not 0 < min_fraction <= max_fraction <= 1:
            raise ValueError(f"SpeedSegment: need factor > 0 and 0 < min_fraction <= max_fraction <= 1, "
                             f"got {factor}, {min_fraction}, {max_fraction}")
        self.factor, self.fraction = float(factor), (float(min_fraction), float(max_fraction))

    def draw_params(self, draw: Draw, batch: int):
        return {"factor": torch.full((batch,), self.factor, dtype=torch.float64),
                "fraction": draw_range(draw, "fraction", *self.fraction), "u_start": draw("start")}

    def apply(self, wave, lengths, params, ctx):
        L = host_of(lengths)  # segments from host values (no sync)
        seg = (params["fraction"] * L).round().long()
        start = (params["u_start"] * (L - seg + 1)).long()
        out, out_len = speed_segment(wave, lengths, start=start, length=seg, factor=params["factor"],
                                     backend=self.backend_for(wave.device))
        return out, out_len, {"start": start, "length": seg}

    def _retain(self, factor, fraction):
        return (factor > 1) & (factor <= STUDY_SEGMENT_FACTOR + _EPS) & (fraction <= RETAINING_SEGMENT_FRACTION + _EPS)

    def perception(self, params):
        B = params["factor"].shape[0]
        retain = self._retain(params["factor"], params["fraction"])
        return torch.where(retain, severity(RETAINING, B), severity("unverified", B)), no_delta(B)

    def possible_tags(self):
        ok = bool(self._retain(torch.tensor(self.factor), torch.tensor(self.fraction[1])))
        return {RETAINING} if ok else {"unverified"}
