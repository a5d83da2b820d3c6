"""Voice transforms: pitch shift and the seed-003 voice modifications (McAdams, VTLN, MSS)."""
from __future__ import annotations

from ..backend import MCADAMS, WARP
from ..functional.mcadams import mcadams
from ..functional.mss import modulation_smoothing
from ..functional.pitch import MAX_SEMITONES, pitch_shift
from ..functional.vtln import vtln
from .base import Transform
from .space import Limit

__all__ = ["PitchShift", "McAdams", "VTLN", "ModulationSmoothing", "SEED003_GRIDS"]

#: Seed 003's sweeps: fixed 0.05-step alpha grids (the attacks are run at each point).
SEED003_GRIDS = {
    "mcadams": tuple(round(0.75 + 0.05 * k, 2) for k in range(11)),
    "vtln": tuple(round(-0.2 + 0.05 * k, 2) for k in range(9)),
    "modulation_smoothing": tuple(round(0.05 + 0.05 * k, 2) for k in range(6)),
}


class PitchShift(Transform):
    """Shift pitch by per-clip semitones, duration preserved.

    Args: ``min_semitones``/``max_semitones`` (uniform) or ``semitone_choices`` (seed 004:
    ``(-1, 1)``; seed 000's factors 0.75 / 1.25 are ``12*log2(f)`` = -4.98 / +3.86), within
    +-24 semitones. ``backend``: of the resampling half (op ``"warp"``, see
    :mod:`gpuaug.backend`; recorded) and of the phase lock (op ``"phase_lock"``, resolved on its own).
    Perception (rules ``pitch_shift``): ``unverified`` for ``|s| <= 1`` (seed 004, not in the
    study); ``altering`` at the rated 0.75x / 1.25x and, with the deltas of the rated shift on
    the same side, at any larger shift (the label-flip rate grows with the shift).
    """

    name = "pitch_shift"
    kernel_op = WARP
    LIMITS = {"semitones": Limit(-MAX_SEMITONES, MAX_SEMITONES, "semitones")}

    def __init__(self, *, min_semitones: float = -1.0, max_semitones: float = 1.0, semitone_choices=None,
                 p: float = 1.0, backend: str | None = None):
        super().__init__(p, backend)
        if semitone_choices is None:
            self.declare("semitones", lo=min_semitones, hi=max_semitones, args="(min_semitones, max_semitones)")
        else:
            self.declare("semitones", choices=semitone_choices, args="semitone_choices")

    def apply(self, wave, lengths, params, ctx):
        # the requested backend, not warp's resolution: the phase lock (op "phase_lock") resolves on its own
        out, out_len = pitch_shift(wave, lengths, semitones=params["semitones"], sample_rate=ctx.sample_rate,
                                   backend=self.backend)
        return out, out_len, {}


class _AlphaTransform(Transform):
    """A voice modification with one per-clip ``alpha`` (uniform, or ``alpha_choices`` such as
    the seed-003 grid :data:`SEED003_GRIDS`); perception ``unverified``."""

    def __init__(self, *, min_alpha: float, max_alpha: float, alpha_choices=None, p: float = 1.0,
                 backend: str | None = None):
        super().__init__(p, backend)
        if alpha_choices is None:
            self.declare("alpha", lo=min_alpha, hi=max_alpha, args="(min_alpha, max_alpha)")
        else:
            self.declare("alpha", choices=alpha_choices, args="alpha_choices")


class McAdams(_AlphaTransform):
    """McAdams LPC-pole warping (VPC B2 recipe, level preserved). Seed 003: alpha 0.75-1.25."""

    name = "mcadams"
    kernel_op = MCADAMS
    LIMITS = {"alpha": Limit(0.5, 1.5, "", "McAdams coefficient (pole angle exponent)")}

    def __init__(self, *, min_alpha: float = 0.75, max_alpha: float = 1.25, alpha_choices=None, p: float = 1.0,
                 backend: str | None = None):
        super().__init__(min_alpha=min_alpha, max_alpha=max_alpha, alpha_choices=alpha_choices, p=p, backend=backend)

    def apply(self, wave, lengths, params, ctx):
        out, out_len = mcadams(wave, lengths, alpha=params["alpha"], sample_rate=ctx.sample_rate,
                               backend=self.backend_for(wave.device))
        return out, out_len, {}


class VTLN(_AlphaTransform):
    """Vocal tract length normalisation warp (sarulab recipe). alpha in [-0.2, 0.2]."""

    name = "vtln"
    LIMITS = {"alpha": Limit(-0.2, 0.2, "", "all-pass frequency warping coefficient")}

    def __init__(self, *, min_alpha: float = -0.2, max_alpha: float = 0.2, alpha_choices=None, p: float = 1.0):
        super().__init__(min_alpha=min_alpha, max_alpha=max_alpha, alpha_choices=alpha_choices, p=p)

    def apply(self, wave, lengths, params, ctx):
        out, out_len = vtln(wave, lengths, alpha=params["alpha"])
        return out, out_len, {}


class ModulationSmoothing(_AlphaTransform):
    """Modulation spectrum smoothing (sarulab recipe). alpha in [0.05, 0.3]."""

    name = "modulation_smoothing"
    LIMITS = {"alpha": Limit(0.05, 0.3, "", "low-pass cutoff of the modulation spectrum (fraction)")}

    def __init__(self, *, min_alpha: float = 0.05, max_alpha: float = 0.3, alpha_choices=None, p: float = 1.0):
        super().__init__(min_alpha=min_alpha, max_alpha=max_alpha, alpha_choices=alpha_choices, p=p)

    def apply(self, wave, lengths, params, ctx):
        out, out_len = modulation_smoothing(wave, lengths, alpha=params["alpha"])
        return out, out_len, {}
