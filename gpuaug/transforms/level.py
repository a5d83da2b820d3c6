"""Level transforms: gain and the seeds' slow fades."""
from __future__ import annotations

from ..backend import FADE, GAIN
from ..functional.fade import FADE_SHAPES, fade
from ..functional.gain import gain
from .base import Transform
from .space import Limit

__all__ = ["Gain", "Fade", "STUDY_FADE_RATE_PER_S", "FADE_DIRECTIONS"]

#: Seeds 000/001 fades: loudness changes by 2 % per second.
STUDY_FADE_RATE_PER_S = 0.02
#: Fade directions; the parameter ``direction`` is the index (0 = in, 1 = out).
FADE_DIRECTIONS = ("in", "out")


class Gain(Transform):
    """Per-clip gain in dB. Perception: ``unverified`` (loudness is an arousal cue).

    Args: ``min_gain_db``/``max_gain_db`` (uniform, within +-60 dB); ``backend`` of the op
    (op ``"gain"``, see :mod:`gpuaug.backend`; recorded).
    """

    name = "gain"
    kernel_op = GAIN
    LIMITS = {"gain_db": Limit(-60.0, 60.0, "dB")}

    def __init__(self, *, min_gain_db: float = -6.0, max_gain_db: float = 6.0, p: float = 1.0,
                 backend: str | None = None):
        super().__init__(p, backend)
        self.declare("gain_db", lo=min_gain_db, hi=max_gain_db, args="(min_gain_db, max_gain_db)")

    def apply(self, wave, lengths, params, ctx):
        out, out_len = gain(wave, lengths, gain_db=params["gain_db"], backend=self.backend_for(wave.device))
        return out, out_len, {}


class Fade(Transform):
    """Fade in or out over the clip at ``rate_per_s`` (fraction of level per second).

    Args:
        rate_per_s: seeds' 0.02 (2 % per second), in [0, 1].
        directions: subset of :data:`FADE_DIRECTIONS`, one chosen per clip (recorded as the
            index ``direction`` and ``direction_name``).
        shape: ``linear`` | ``exponential``.
        backend: backend of the op (op ``"fade"``, see :mod:`gpuaug.backend`; recorded).
    Perception (rules ``fade``): ``retaining`` for linear fades at rates up to the study's
    2 %/s, else ``unverified``.
    """

    name = "fade"
    kernel_op = FADE
    LIMITS = {"rate_per_s": Limit(0.0, 1.0, "1/s", "fraction of the level lost or gained per second"),
              "direction": Limit(names=FADE_DIRECTIONS), "shape": Limit(names=FADE_SHAPES)}

    def __init__(self, *, rate_per_s: float = STUDY_FADE_RATE_PER_S, directions=FADE_DIRECTIONS,
                 shape: str = "linear", p: float = 1.0, backend: str | None = None):
        super().__init__(p, backend)
        self.declare("rate_per_s", value=rate_per_s)
        self.declare("direction", choices=directions, args="directions")
        self.shape = self.option("shape", shape)
        self.directions = tuple(self.space["direction"].names)

    def apply(self, wave, lengths, params, ctx):
        out, out_len = fade(wave, lengths, **self.epilogue(params, ctx), backend=self.backend_for(wave.device))
        return out, out_len, {}

    def epilogue(self, params, ctx) -> dict:
        """The fade of the clips ``params`` as the ``fade=`` argument of
        :func:`gpuaug.functional.reverb.reverb` (and the keyword arguments of
        :func:`~gpuaug.functional.fade.fade`): a preceding Reverb applies it in its output pass
        (:meth:`gpuaug.transforms.Reverb.fuses_with`)."""
        sign = 1 - 2 * params["direction"]  # in -> +1, out -> -1
        return {"sample_rate": ctx.sample_rate, "rate_per_s": params["rate_per_s"], "direction": sign,
                "shape": self.shape}
