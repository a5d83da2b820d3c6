"""Voice transforms: pitch shift and the seed-003 voice modifications (McAdams, VTLN, MSS)."""
from __future__ import annotations

import torch

from ..functional.mcadams import mcadams
from ..functional.mss import modulation_smoothing
from ..functional.pitch import pitch_shift
from ..functional.vtln import vtln
from ..policy.table import ALTERING, UNVERIFIED, lookup
from .base import Draw, Transform, draw_choice, draw_range, no_delta, severity

__all__ = ["PitchShift", "McAdams", "VTLN", "ModulationSmoothing", "SMALL_PITCH_SEMITONES"]

#: Seed 004's perturbation size; larger shifts are treated as the study's altering pitch change.
SMALL_PITCH_SEMITONES = 1.0
_EPS = 1e-9


class PitchShift(Transform):
    """Shift pitch by per-clip semitones, duration preserved.

    Args: ``min_semitones``/``max_semitones`` (uniform) or ``semitone_choices`` (seed 004:
    ``(-1, 1)``; seed 000's factors 0.75 / 1.25 are ``12*log2(f)`` = -4.98 / +3.86).
    ``backend``: of the resampling half (op ``"warp"``, see :mod:`gpuaug.backend`; recorded).
    Perception: ``unverified`` for ``|s| <= 1`` (seed 004, not in the study); ``altering``
    beyond, with the study's pitch 1.25x / 0.75x deltas (the label-flip rate grows with the
    shift, so shifts between 1 and 3.86 semitones are treated as altering too).
    """

    name = "pitch_shift"
    kernel_op = "warp"

    def __init__(self, *, min_semitones: float = -1.0, max_semitones: float = 1.0, semitone_choices=None,
                 p: float = 1.0, backend: str | None = None):
        super().__init__(p, backend)
        if semitone_choices is None and min_semitones > max_semitones:
            raise ValueError(f"PitchShift: min_semitones {min_semitones} > max_semitones {max_semitones}")
        self.range = (float(min_semitones), float(max_semitones))
        self.choices = None if semitone_choices is None else tuple(float(s) for s in semitone_choices)

    def draw_params(self, draw: Draw, batch: int):
        if self.choices is not None:
            return {"semitones": draw_choice(draw, "semitones", self.choices)}
        return {"semitones": draw_range(draw, "semitones", *self.range)}

    def apply(self, wave, lengths, params, ctx):
        out, out_len = pitch_shift(wave, lengths, semitones=params["semitones"], sample_rate=ctx.sample_rate,
                                   backend=self.backend_for(wave.device))
        return out, out_len, {}

    def perception(self, params):
        s = params["semitones"]
        B = s.shape[0]
        small = s.abs() <= SMALL_PITCH_SEMITONES + _EPS
        up, down = lookup("pitch", "1.25x"), lookup("pitch", "0.75x")
        delta = torch.where((s > 0)[:, None], torch.tensor([up.delta_valence, up.delta_activation]),
                            torch.tensor([down.delta_valence, down.delta_activation]))
        return (torch.where(small, severity(UNVERIFIED, B), severity(ALTERING, B)),
                torch.where(small[:, None], no_delta(B), delta))

    def possible_tags(self):
        values = self.choices or self.range
        tags = {ALTERING} if max(abs(v) for v in values) > SMALL_PITCH_SEMITONES + _EPS else set()
        small = any(abs(v) <= SMALL_PITCH_SEMITONES + _EPS for v in values) or (
            self.choices is None and self.range[0] <= 0 <= self.range[1])
        return tags | ({UNVERIFIED} if small else set())


class _AlphaTransform(Transform):
    """A voice modification with one per-clip ``alpha``; perception ``unverified``."""

    limits: tuple[float, float] = (float("-inf"), float("inf"))

    def __init__(self, *, min_alpha: float, max_alpha: float, p: float = 1.0, backend: str | None = None):
        super().__init__(p, backend)
        lo, hi = self.limits
        if not lo <= min_alpha <= max_alpha <= hi:
            raise ValueError(f"{type(self).__name__}: need {lo} <= min_alpha <= max_alpha <= {hi}, "
                             f"got {min_alpha}, {max_alpha}")
        self.range = (float(min_alpha), float(max_alpha))

    def draw_params(self, draw: Draw, batch: int):
        return {"alpha": draw_range(draw, "alpha", *self.range)}

    def perception(self, params):
        B = params["alpha"].shape[0]
        return severity(UNVERIFIED, B), no_delta(B)

    def possible_tags(self):
        return {UNVERIFIED}

    def describe(self):
        return f"{type(self).__name__}(alpha={self.range}, p={self.p})"


class McAdams(_AlphaTransform):
    """McAdams LPC-pole warping (VPC B2 recipe, level preserved). Seed 003: alpha 0.75-1.25."""

    name = "mcadams"
    kernel_op = "mcadams"
    limits = (0.5, 1.5)

    def __init__(self, *, min_alpha: float = 0.75, max_alpha: float = 1.25, p: float = 1.0, backend: str | None = None):
        super().__init__(min_alpha=min_alpha, max_alpha=max_alpha, p=p, backend=backend)

    def apply(self, wave, lengths, params, ctx):
        out, out_len = mcadams(wave, lengths, alpha=params["alpha"], sample_rate=ctx.sample_rate,
                               backend=self.backend_for(wave.device))
        return out, out_len, {}


class VTLN(_AlphaTransform):
    """Vocal tract length normalisation warp (sarulab recipe). alpha in [-0.2, 0.2]."""

    name = "vtln"
    limits = (-0.2, 0.2)

    def __init__(self, *, min_alpha: float = -0.2, max_alpha: float = 0.2, p: float = 1.0):
        super().__init__(min_alpha=min_alpha, max_alpha=max_alpha, p=p)

    def apply(self, wave, lengths, params, ctx):
        out, out_len = vtln(wave, lengths, alpha=params["alpha"])
        return out, out_len, {}


class ModulationSmoothing(_AlphaTransform):
    """Modulation spectrum smoothing (sarulab recipe). alpha in [0.05, 0.3]."""

    name = "modulation_smoothing"
    limits = (0.05, 0.3)

    def __init__(self, *, min_alpha: float = 0.05, max_alpha: float = 0.3, p: float = 1.0):
        super().__init__(min_alpha=min_alpha, max_alpha=max_alpha, p=p)

    def apply(self, wave, lengths, params, ctx):
        out, out_len = modulation_smoothing(wave, lengths, alpha=params["alpha"])
        return out, out_len, {}
