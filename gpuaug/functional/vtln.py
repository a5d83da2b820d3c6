"""Vocal tract length normalisation (VTLN) by all-pass frequency warping of the STFT.

Recipe of the sarulab lightweight speaker anonymisation (SLT 2021): the log magnitude of
every STFT frame is resampled on the warped frequency axis
``wq = w + 2 atan(alpha sin w / (1 - alpha cos w))`` (radians, ``w`` in ``[0, pi]``) with
``Lw(w) = interp(w, wq, L)``; the original phase is kept. ``alpha > 0`` moves spectral
content (formants) up, ``alpha < 0`` down; at 16 kHz, alpha = 0.15 moves 1 kHz to ~1.34 kHz.

Deviations from the reference, on purpose: the magnitude is floored before the log and
digital-silence frames stay silent (see :mod:`.stft_util`); the output keeps the input
length (the reference ISTFT drops the last ``L mod 512`` samples); no level normalisation.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor

from gpuaug._sync import host_of
from ._batch import NARROW_FLOATS, as_3d, check_wave, in_float32, per_clip, restore_rank, zero_padding
from .stft_util import N_BINS, frame_counts, log_magnitude, resynthesize, stft

__all__ = ["vtln", "warp_interpolation"]

ALPHA_MAX = 0.2
_RANGE_TOL = 1e-6  # float32 parameters (e.g. 0.2 -> 0.2000000030) still count as in range


def warp_interpolation(alpha: Tensor) -> tuple[Tensor, Tensor]:
    """Interpolation indices and weights of the VTLN warp, per clip.

    ``Lw[k] = (1 - frac[k]) * L[index[k] - 1] + frac[k] * L[index[k]]`` is ``np.interp(w[k],
    wq, L)`` for the grid ``w = linspace(0, pi, N_BINS)`` and ``wq`` the warped grid
    (clamped at both ends like ``np.interp``).

    Args:
        alpha: ``(B,)`` float64 warping coefficients in ``(-1, 1)``.

    Returns:
        ``index``: ``(B, N_BINS)`` int64 in ``[1, N_BINS - 1]``; ``frac``: ``(B, N_BINS)``
        float64 in ``[0, 1]``.
    """
    w = torch.linspace(0.0, math.pi, N_BINS, dtype=torch.float64, device=alpha.device)
    a = alpha[:, None]
    wq = w + 2.0 * torch.atan(a * torch.sin(w) / (1.0 - a * torch.cos(w)))
    query = w.expand_as(wq).contiguous()
    index = torch.searchsorted(wq, query, right=True).clamp(1, N_BINS - 1)
    lo, hi = wq.gather(1, index - 1), wq.gather(1, index)
    frac = ((query - lo) / (hi - lo)).clamp(0.0, 1.0)
    return index, frac


def vtln(wave: Tensor, lengths: Tensor, *, alpha) -> tuple[Tensor, Tensor]:
    """Warp the spectral envelope of each clip (VTLN), keeping phase and length.

    Args:
        wave: ``(B, T)`` or ``(B, C, T)`` float waveforms (channels are warped alike).
        lengths: ``(B,)`` valid samples per clip.
        alpha: per-clip warping coefficient in ``[-0.2, 0.2]`` (scalar or ``(B,)``);
            ``> 0`` raises formants, ``0`` is the identity up to float rounding.

    Returns:
        ``(wave, lengths)``: same shape, dtype and device; padding zero. All-silent clips
        come back unchanged (zero). float16 / bfloat16 waves are computed in float32.

    Raises:
        ValueError: ``alpha`` outside ``[-0.2, 0.2]``, or a bad ``wave`` / ``lengths``.
    """
    lengths = check_wave(wave, lengths)
    B = wave.shape[0]
    alpha = per_clip(alpha, B, name="alpha", device=wave.device, dtype=torch.float64)
    if bool((host_of(alpha).abs() > ALPHA_MAX + _RANGE_TOL).any()):
        raise ValueError(f"alpha must lie in [-{ALPHA_MAX}, {ALPHA_MAX}], got {host_of(alpha).tolist()}")
    if wave.numel() == 0:
        return wave.clone(), lengths
    if wave.dtype in NARROW_FLOATS:  # torch's FFTs refuse 16-bit floats on the CPU: compute in float32
        return in_float32(vtln, wave, lengths, alpha=alpha, name="vtln")
    x, was_2d = as_3d(zero_padding(wave, lengths))
    B, C, T = x.shape
    rows = x.reshape(B * C, T)
    n_frames = frame_counts(lengths).repeat_interleave(C)

    spec = stft(rows)  # (R, F, M)
    log_mag = log_magnitude(spec)
    index, frac = warp_interpolation(alpha.clamp(-ALPHA_MAX, ALPHA_MAX))
    index = index.repeat_interleave(C, dim=0)[:, :, None].expand_as(log_mag)
    frac = frac.to(log_mag.dtype).repeat_interleave(C, dim=0)[:, :, None]
    warped = torch.lerp(log_mag.gather(1, index - 1), log_mag.gather(1, index), frac)

    y = resynthesize(warped, spec, n_frames, T).reshape(B, C, T)
    return restore_rank(zero_padding(y, lengths), was_2d), lengths
