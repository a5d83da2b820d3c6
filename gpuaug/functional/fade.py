"""Slow fade in / fade out over a whole clip (the perception study's "fade", 2 % per second).

:func:`fade` dispatches on ``backend`` (op name ``"fade"``, see :mod:`gpuaug.backend`); the
elementwise kernel lives in :mod:`gpuaug.kernels.elementwise`. Validation is shared.
"""
from __future__ import annotations

import math
import numbers

import torch
from torch import Tensor

from gpuaug._sync import host_of
from ..backend import FADE, kernel_for
from ._batch import as_3d, check_wave, per_clip, per_clip_int, restore_rank, valid_mask

__all__ = ["fade", "fade_args", "FADE_SHAPES"]

FADE_SHAPES = ("linear", "exponential")


def fade(
    wave: Tensor,
    lengths: Tensor,
    *,
    sample_rate: float,
    rate_per_s,
    direction,
    shape: str = "linear",
    backend: str | None = None,
) -> tuple[Tensor, Tensor]:
    """Fade each clip in or out at ``rate_per_s`` (fraction of full amplitude per second).

    With ``n`` the sample index (``0 <= n < L``, ``L`` the clip's valid length) and
    ``s = n / sample_rate`` seconds since the clip start, the fade-out amplitude gain is

    * ``"linear"``: ``g(n) = clamp(1 - rate_per_s * s, 0, 1)`` (loses ``rate_per_s`` of
      full amplitude per second; reaches 0 after ``1 / rate_per_s`` s and stays there);
    * ``"exponential"``: ``g(n) = (1 - rate_per_s) ** s`` (multiplied by ``1 - rate_per_s``
      each second, i.e. ``-20 * log10(1 - rate_per_s)`` dB per second).

    Both start at exactly 1 on the first sample. A fade in is the time mirror over the
    clip's own valid length, ``g_in(n) = g(L - 1 - n)``, so it reaches exactly 1 on the last
    valid sample. Example: a 5 s clip at 2 %/s linear ends near 0.9 when faded out and
    starts near 0.9 when faded in (``1 - 0.02 * (L - 1) / sample_rate`` exactly).

    Args:
        wave: ``(B, T)`` or ``(B, C, T)`` floating waveform.
        lengths: ``(B,)`` valid samples per clip.
        sample_rate: samples per second (one positive number for the batch).
        rate_per_s: fraction of full amplitude per second, scalar or ``(B,)``; ``>= 0``
            (``<= 1`` for ``"exponential"``). The perception study used 0.02.
        direction: integer scalar or ``(B,)``: ``+1`` fade in, ``-1`` fade out,
            ``0`` leave the clip unchanged.
        shape: ``"linear"`` or ``"exponential"`` (one for the whole batch).
        backend: ``"auto"`` | ``"torch"`` | ``"numba"`` | ``"cupy"`` or None (op ``"fade"``).

    Shapes:
        Output wave has the input's shape, dtype and device; lengths are unchanged.
        Gains are computed in float64 and cast to the wave's dtype.

    Raises:
        ValueError: unknown ``shape``, non-positive ``sample_rate``, ``rate_per_s`` out of
            range, or ``direction`` not in ``{-1, 0, 1}``.
    """
    lengths = check_wave(wave, lengths)
    B, T = wave.shape[0], wave.shape[-1]
    dev = wave.device
    rate, direc = fade_args(B, dev, sample_rate=sample_rate, rate_per_s=rate_per_s, direction=direction, shape=shape)
    kernel = kernel_for(FADE, dev, backend)[1]
    if kernel is not None:
        w3, was_2d = as_3d(wave)
        return restore_rank(kernel(w3, lengths, rate, direc, sample_rate=sample_rate, shape=shape), was_2d), lengths

    n = torch.arange(T, device=dev, dtype=torch.int64).expand(B, T)
    # samples since the fade's full-gain end: n for fade out, L - 1 - n for fade in
    n = torch.where((direc > 0)[:, None], (lengths[:, None] - 1 - n).clamp(min=0), n)
    secs = n.to(torch.float64) / float(sample_rate)
    if shape == "linear":
        g = (1.0 - rate[:, None] * secs).clamp(0.0, 1.0)
    else:
        g = torch.pow((1.0 - rate)[:, None], secs)
    g = torch.where((direc == 0)[:, None], torch.ones_like(g), g)
    g = (g * valid_mask(lengths, T)).to(wave.dtype)
    w3, was_2d = as_3d(wave)
    return restore_rank(w3 * g[:, None, :], was_2d), lengths


def fade_args(B: int, device, *, sample_rate: float, rate_per_s, direction, shape: str) -> tuple[Tensor, Tensor]:
    """Validated per-clip fade parameters of :func:`fade` (same arguments): ``(rate, direc)``,
    ``(B,)`` float64 rates per second and int64 directions on ``device``."""
    dev = device
    if shape not in FADE_SHAPES:
        raise ValueError(f"shape must be one of {FADE_SHAPES}, got {shape!r}")
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, numbers.Real):
        raise TypeError(f"sample_rate must be a number, got {type(sample_rate).__name__}")
    if not (math.isfinite(float(sample_rate)) and sample_rate > 0):
        raise ValueError(f"sample_rate must be positive and finite, got {sample_rate}")
    rate = per_clip(rate_per_s, B, name="rate_per_s", device=dev, dtype=torch.float64)
    direc = per_clip_int(direction, B, name="direction", device=dev)
    if B:
        hi = 1.0 if shape == "exponential" else math.inf
        r, d = host_of(rate), host_of(direc)  # checked on the host (no sync)
        if bool(((r < 0) | (r > hi)).any()):
            raise ValueError(f"rate_per_s must lie in [0, {hi}] for a {shape} fade, got {r.tolist()}")
        if bool(((d < -1) | (d > 1)).any()):
            raise ValueError(f"direction must be -1, 0 or +1, got {d.tolist()}")
    return rate, direc
