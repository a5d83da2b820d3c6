"""Tempo transforms: whole-utterance speed and speed-up of a segment."""
from __future__ import annotations

import math
from fractions import Fraction

import torch
from torch import Tensor

from .._sync import host_of
from ..backend import SEGMENT_WARP, WARP
from ..functional.speed import MAX_FACTOR, MIN_FACTOR, speed, speed_segment
from ..functional.tempo import tempo_segment
from .base import Draw, Transform
from .space import Limit, Uniform

__all__ = ["Speed", "SpeedSegment", "SEGMENT_MODES", "FACTOR_GRID", "exact_segment_lengths", "on_grid"]

#: :class:`Speed` rounds factors drawn from a range to a multiple of ``1 / FACTOR_GRID``
#: (0.2 %: 3.4 cents of pitch). The CPU kernel tabulates its sinc at
#: :data:`~gpuaug.kernels._sinc_table.TABLE_PHASES` phases, a multiple of this grid, so every
#: output position of such a factor falls on a tabulated phase: no interpolation between phases.
FACTOR_GRID = 512

#: How :class:`SpeedSegment` speeds a segment up: ``resample`` (tape-like: pitch rises with
#: the tempo, the seeds' rated condition as far as the papers tell) or ``tempo`` (phase
#: vocoder: pitch kept; not rated).
SEGMENT_MODES = ("resample", "tempo")


#: Largest denominator ``q`` of a segment factor ``p / q`` that :func:`exact_segment_lengths` makes exact.
_MAX_DENOMINATOR = 64


def exact_segment_lengths(target: Tensor, factor: Tensor, lengths: Tensor) -> Tensor:
    """``(B,)`` int64 segment lengths near ``target`` (host float samples) that a speed-up by
    ``factor`` (host ``(B,)``) maps to a whole number of samples exactly: the nearest multiple
    of ``p`` where ``factor`` is the fraction ``p / q`` (``q <= 64``) as a float, else
    ``round(target)``; never above ``lengths`` (:class:`SpeedSegment`)."""
    quantum = torch.ones(factor.shape, dtype=torch.int64)
    for f in torch.unique(factor).tolist():  # distinct factors (one for a fixed factor), not clips
        r = Fraction(f).limit_denominator(_MAX_DENOMINATOR)
        if r.numerator / r.denominator == f:
            quantum[factor == f] = r.numerator
    seg = torch.round(target / quantum).long() * quantum
    return torch.minimum(seg, lengths.long() // quantum * quantum)


def on_grid(factor: Tensor, lo: float, hi: float, grid: int) -> Tensor:
    """``factor`` (host float64 ``(B,)``, drawn in ``[lo, hi]``) rounded to the nearest multiple
    of ``1 / grid`` inside ``[lo, hi]``; unchanged where the range holds no multiple."""
    k_lo, k_hi = math.ceil(lo * grid), math.floor(hi * grid)
    k_lo += k_lo / grid < lo  # the products' rounding: stay inside the range
    k_hi -= k_hi / grid > hi
    if k_lo > k_hi:
        return factor
    return torch.clamp(torch.round(factor * grid), k_lo, k_hi) / grid


class Speed(Transform):
    """Resample the whole clip by a per-clip ``factor`` (> 1 faster/shorter; pitch moves too).

    Args: ``min_factor``/``max_factor`` (uniform) or ``factor_choices`` (e.g. ``(0.75, 1.25)``),
    within [0.5, 2]; ``grid``: a factor drawn from the range is rounded to the nearest multiple
    of ``1 / grid`` inside it (default :data:`FACTOR_GRID` = 512: steps of 0.2 %, 3.4 cents; the
    record holds the rounded factor, the one applied and the one the rules read; on the CPU the
    kernel then reads its sinc table without interpolation, 1.17x less CPU time:
    ``benchmarks/results/kernel-timings.md``); ``None``
    draws it continuously (choices are never rounded); ``backend`` of the resampler (op
    ``"warp"``, see :mod:`gpuaug.backend`; recorded).
    Perception (rules ``speed``): ``retaining`` when ``|factor - 1| <= 0.05`` (the seeds'
    recommendation, not a rated condition), else ``altering`` with the deltas of the rated
    0.75x / 1.25x condition on the same side. The change resamples, so pitch moves with tempo;
    the papers do not say how they changed speed.
    """

    name = "speed"
    changes_length = True
    kernel_op = WARP
    LIMITS = {"factor": Limit(MIN_FACTOR, MAX_FACTOR, "x", "speed factor (> 1 faster)")}

    def __init__(self, *, min_factor: float = 0.95, max_factor: float = 1.05, factor_choices=None,
                 grid: int | None = FACTOR_GRID, p: float = 1.0, backend: str | None = None):
        super().__init__(p, backend)
        if grid is not None and (isinstance(grid, bool) or not isinstance(grid, int) or grid < 1):
            raise ValueError(f"Speed: grid must be a positive int or None, got {grid!r}")
        if factor_choices is None:
            self.declare("factor", lo=min_factor, hi=max_factor, args="(min_factor, max_factor)")
        else:
            self.declare("factor", choices=factor_choices, args="factor_choices")
        self.grid = grid if isinstance(self.space["factor"], Uniform) else None

    def draw_params(self, draw: Draw, batch: int):
        params = super().draw_params(draw, batch)
        if self.grid is not None:
            d = self.space["factor"]
            params["factor"] = on_grid(params["factor"], d.lo, d.hi, self.grid)
        return params

    def describe(self) -> str:
        text = super().describe()
        return text if self.grid is None else text.replace(", p=", f", grid=1/{self.grid}, p=", 1)

    def apply(self, wave, lengths, params, ctx):
        out, out_len = speed(wave, lengths, factor=params["factor"], backend=self.backend_for(wave.device))
        return out, out_len, {}


class SpeedSegment(Transform):
    """Play one per-clip segment ``factor`` times faster; the rest of the clip is untouched.

    Args:
        factor: speed-up of the segment (seed: 1.25), in [0.5, 2].
        min_fraction, max_fraction: segment length as a fraction of the clip (<= 0.25 keeps
            the seeds' recommendation); its start is uniform over the clip.
        mode: ``resample`` (default; the segment's pitch rises with its tempo, as a tape
            played faster) or ``tempo`` (:func:`~gpuaug.functional.tempo.tempo_segment`:
            phase vocoder, pitch kept; unverified: not in the papers).
        backend: backend of the fused segment kernel (op ``"segment_warp"``, see
            :mod:`gpuaug.backend`; recorded), shared with the phase lock in ``tempo`` mode.
    Perception (rules ``speed_segment``): ``retaining`` for ``resample`` with factor in
    (1, 1.25] and fraction <= 0.25, else ``unverified``.

    Segment length: ``fraction * L`` rounded to the nearest multiple of ``p`` where the factor
    is exactly a fraction ``p / q`` with ``q <= 64`` (1.25 = 5 / 4: a multiple of 5 samples,
    at most 2 samples off), so the segment of ``n`` samples becomes exactly ``m = n q / p`` and
    is played exactly ``factor`` times faster (plain rounding of ``n / factor`` made it
    ``n / round(n / factor)``, up to ``1 / (2 m)`` off, different per clip); other factors keep
    ``round(fraction * L)``. On the CPU this also lets every clip share one sinc table whose
    phases the positions hit exactly (:mod:`gpuaug.kernels.segment_warp`).
    """

    name = "speed_segment"
    changes_length = True
    kernel_op = SEGMENT_WARP
    LIMITS = {"factor": Limit(MIN_FACTOR, MAX_FACTOR, "x", "speed factor of the segment (> 1 faster)"),
              "fraction": Limit(0.0, 1.0, "of the clip", lo_open=True), "mode": Limit(names=SEGMENT_MODES)}

    def __init__(self, *, factor: float = 1.25, min_fraction: float = 0.1, max_fraction: float = 0.25,
                 mode: str = "resample", p: float = 1.0, backend: str | None = None):
        super().__init__(p, backend)
        self.declare("factor", value=factor)
        self.declare("fraction", lo=min_fraction, hi=max_fraction, args="(min_fraction, max_fraction)")
        self.mode = self.option("mode", mode)

    def draw_params(self, draw: Draw, batch: int):
        return {**super().draw_params(draw, batch), "u_start": draw("start")}

    def apply(self, wave, lengths, params, ctx):
        L = host_of(lengths)  # segments from host values (no sync)
        seg = exact_segment_lengths(params["fraction"] * L, params["factor"], L)
        start = (params["u_start"] * (L - seg + 1)).long()
        if self.mode == "tempo":
            # the requested backend: the phase lock (op "phase_lock") resolves on its own
            out, out_len = tempo_segment(wave, lengths, start=start, length=seg, factor=params["factor"],
                                         sample_rate=ctx.sample_rate, backend=self.backend)
        else:
            out, out_len = speed_segment(wave, lengths, start=start, length=seg, factor=params["factor"],
                                         backend=self.backend_for(wave.device))
        return out, out_len, {"start": start, "length": seg}

