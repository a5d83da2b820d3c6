"""Level transforms: gain and the seeds' slow fades."""
from __future__ import annotations

import torch

from ..functional.fade import fade
from ..functional.gain import gain
from ..policy.table import RETAINING, UNVERIFIED
from .base import Draw, Transform, draw_index, draw_range, no_delta, severity

__all__ = ["Gain", "Fade", "STUDY_FADE_RATE_PER_S"]

#: Seeds 000/001 fades: loudness changes by 2 % per second.
STUDY_FADE_RATE_PER_S = 0.02


class Gain(Transform):
    """Per-clip gain in dB. Perception: ``unverified`` (loudness is an arousal cue).

    Args: ``min_gain_db``/``max_gain_db`` (uniform); ``backend`` of the op (op ``"gain"``, see
    :mod:`gpuaug.backend`; recorded).
    """

    name = "gain"
    kernel_op = "gain"

    def __init__(self, *, min_gain_db: float = -6.0, max_gain_db: float = 6.0, p: float = 1.0,
                 backend: str | None = None):
        super().__init__(p, backend)
        if min_gain_db > max_gain_db:
            raise ValueError(f"Gain: min_gain_db {min_gain_db} > max_gain_db {max_gain_db}")
        self.range = (float(min_gain_db), float(max_gain_db))

    def draw_params(self, draw: Draw, batch: int):
        return {"gain_db": draw_range(draw, "gain_db", *self.range)}

    def apply(self, wave, lengths, params, ctx):
        out, out_len = gain(wave, lengths, gain_db=params["gain_db"], backend=self.backend_for(wave.device))
        return out, out_len, {}

    def perception(self, params):
        B = params["gain_db"].shape[0]
        return severity(UNVERIFIED, B), no_delta(B)

    def possible_tags(self):
        return {UNVERIFIED}


class Fade(Transform):
    """Fade in or out over the clip at ``rate_per_s`` (fraction of level per second).

    Args:
        rate_per_s: seeds' 0.02 (2 % per second).
        directions: subset of ``("in", "out")``, one chosen per clip.
        shape: ``linear`` | ``exponential``.
        backend: backend of the op (op ``"fade"``, see :mod:`gpuaug.backend`; recorded).
    Perception: ``retaining`` at rates up to the study's 2 %/s, else ``unverified``.
    """

    name = "fade"
    kernel_op = "fade"

    def __init__(self, *, rate_per_s: float = STUDY_FADE_RATE_PER_S, directions=("in", "out"),
                 shape: str = "linear", p: float = 1.0, backend: str | None = None):
        super().__init__(p, backend)
        if not 0 <= rate_per_s <= 1:
            raise ValueError(f"Fade: rate_per_s must be in [0, 1], got {rate_per_s}")
        bad = [d for d in directions if d not in ("in", "out")]
        if bad or not directions:
            raise ValueError(f"Fade: directions must be a non-empty subset of ('in', 'out'), got {directions}")
        self.rate_per_s, self.directions, self.shape = float(rate_per_s), tuple(directions), shape

    def draw_params(self, draw: Draw, batch: int):
        sign = torch.tensor([1 if d == "in" else -1 for d in self.directions])
        return {"rate_per_s": torch.full((batch,), self.rate_per_s, dtype=torch.float64),
                "direction": sign[draw_index(draw, "direction", len(self.directions))]}

    def apply(self, wave, lengths, params, ctx):
        out, out_len = fade(wave, lengths, sample_rate=ctx.sample_rate, rate_per_s=params["rate_per_s"],
                            direction=params["direction"], shape=self.shape, backend=self.backend_for(wave.device))
        return out, out_len, {}

    def perception(self, params):
        B = params["rate_per_s"].shape[0]
        retain = params["rate_per_s"] <= STUDY_FADE_RATE_PER_S + 1e-12
        return torch.where(retain, severity(RETAINING, B), severity(UNVERIFIED, B)), no_delta(B)

    def possible_tags(self):
        return {RETAINING} if self.rate_per_s <= STUDY_FADE_RATE_PER_S + 1e-12 else {UNVERIFIED}

    def annotate(self, entry):
        entry["direction_name"] = "in" if entry["direction"] > 0 else "out"
        return entry
