"""Modulation spectrum smoothing (MSS): low-pass the time trajectories of log magnitudes.

Recipe of the sarulab lightweight speaker anonymisation (SLT 2021): for each STFT bin,
the sequence of log magnitudes over frames is filtered by a 2nd-order Butterworth low-pass
(``scipy.signal.butter(2, alpha)``), applied with ``scipy.signal.filtfilt`` twice (the
second time on the time-reversed result, as the reference code does), i.e. ``|H|**4``
zero-phase. The signal is resynthesised with the original phase and scaled so that its
energy over the valid samples equals the input's.

``alpha`` is the cutoff relative to the frame-rate Nyquist: the frame rate is
``fs / 512`` (31.25 Hz at 16 kHz), so the cutoff is ``alpha * fs / 1024`` Hz (alpha 0.1 ->
1.56 Hz at 16 kHz). The effect is tied to hop 512 and to ``fs``.

Variable lengths: each clip's recursion runs over its own ``1 + L // 512`` frames (odd
extension and reversal use per-clip index maps; the loop is over time steps only,
vectorised over clips, channels and bins). filtfilt needs more than ``padlen = 9`` frames:
clips with ``1 + L // 512 <= 9`` frames (``L < 4608`` samples, 0.29 s at 16 kHz) pass
through unchanged. Multi-channel clips are smoothed and energy-matched per channel.

Deviations from the reference, on purpose: floored log magnitude and silent frames kept
silent (see :mod:`.stft_util`; the reference turns digital silence into NaN); the output
keeps the input length; all-silent clips pass through unchanged.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor

from gpuaug._sync import host_of
from ._batch import NARROW_FLOATS, as_3d, check_wave, in_float32, per_clip, restore_rank, valid_mask, zero_padding
from .stft_util import HOP, frame_counts, log_magnitude, resynthesize, stft

__all__ = ["modulation_smoothing", "butter2_lowpass", "lfilter_zi2", "PADLEN"]

ALPHA_MIN, ALPHA_MAX = 0.05, 0.3
_RANGE_TOL = 1e-6  # float32 parameters still count as in range
PADLEN = 9  # scipy's filtfilt default: 3 * max(len(a), len(b))


def butter2_lowpass(cutoff: Tensor) -> tuple[Tensor, Tensor]:
    """2nd-order digital Butterworth low-pass by the bilinear transform (``scipy.signal.butter(2, cutoff)``).

    Args:
        cutoff: ``(B,)`` normalised cutoffs in ``(0, 1)`` (1 = Nyquist).

    Returns:
        ``b``, ``a``: ``(B, 3)`` numerator and denominator (``a[:, 0] = 1``), ``cutoff``'s dtype.
    """
    k = torch.tan(math.pi * cutoff / 2)  # pre-warped analog cutoff (fs = 2 convention)
    k2 = k * k
    norm = 1.0 / (1.0 + math.sqrt(2.0) * k + k2)
    b0 = k2 * norm
    b = torch.stack([b0, 2.0 * b0, b0], dim=-1)
    a = torch.stack([torch.ones_like(k), 2.0 * (k2 - 1.0) * norm, (1.0 - math.sqrt(2.0) * k + k2) * norm], dim=-1)
    return b, a


def lfilter_zi2(b: Tensor, a: Tensor) -> Tensor:
    """Steady-state initial state of a 2nd-order filter (``scipy.signal.lfilter_zi``).

    Args:
        b, a: ``(B, 3)`` coefficients with ``a[:, 0] = 1``.

    Returns:
        ``(B, 2)`` transposed-direct-form-II state for a unit step input.
    """
    r0 = b[:, 1] - a[:, 1] * b[:, 0]
    r1 = b[:, 2] - a[:, 2] * b[:, 0]
    z0 = (r0 + r1) / (1.0 + a[:, 1] + a[:, 2])
    return torch.stack([z0, r1 - a[:, 2] * z0], dim=-1)


def _lfilter(x: Tensor, b: Tensor, a: Tensor, zi: Tensor) -> Tensor:
    """``scipy.signal.lfilter(b, a, x, zi=zi * x[0])`` along dim 0 of ``x`` ``(N, R, F)``.

    ``b``, ``a``: ``(R, 3)``; ``zi``: ``(R, 2)``. The FIR part and the initial state are
    applied vectorised; only the all-pole recursion loops over the ``N`` time steps.
    """
    b0, b1, b2 = b[:, 0:1], b[:, 1:2], b[:, 2:3]  # (R, 1): broadcast over bins
    a1, a2 = a[:, 1:2], a[:, 2:3]
    w = b0 * x
    w[1:] += b1 * x[:-1]
    w[2:] += b2 * x[:-2]
    w[0] += zi[:, 0:1] * x[0]
    w[1] += zi[:, 1:2] * x[0]
    y = torch.empty_like(w)
    prev1 = prev2 = torch.zeros_like(w[0])
    for n in range(w.shape[0]):
        cur = w[n] - a1 * prev1 - a2 * prev2
        y[n] = cur
        prev1, prev2 = cur, prev1
    return y


def _gather_time(seq: Tensor, index: Tensor) -> Tensor:
    """``out[i, r] = seq[index[i, r], r]`` for ``seq`` ``(N, R, F)`` and ``index`` ``(N', R)``."""
    rows = torch.arange(seq.shape[1], device=seq.device)
    return seq[index, rows[None, :]]


def _odd_extend(seq: Tensor, n: Tensor) -> Tensor:
    """scipy's ``odd_ext`` by ``PADLEN`` of each row's first ``n[r]`` steps.

    ``seq``: ``(M, R, F)``; ``n``: ``(R,)`` with ``PADLEN < n <= M`` (other rows get
    garbage). Returns ``(M + 2 * PADLEN, R, F)``; row ``r`` is valid on its first
    ``n[r] + 2 * PADLEN`` steps.
    """
    M = seq.shape[0]
    k = torch.arange(M + 2 * PADLEN, device=seq.device)[:, None] - PADLEN  # (N', 1)
    n = n[None, :]
    left, right = k < 0, k >= n
    src = torch.where(left, -k, torch.where(right, 2 * n - 2 - k, k)).clamp(0, M - 1)
    out = _gather_time(seq, src)
    first = seq[0]
    last = _gather_time(seq, (n - 1).clamp(0, M - 1))[0]
    anchor = torch.where(left[..., None], first, last)
    return torch.where((left | right)[..., None], 2.0 * anchor - out, out)


def _reverse(seq: Tensor, n: Tensor) -> Tensor:
    """Reverse each row's first ``n[r]`` steps of ``seq`` ``(N, R, F)`` (later steps: garbage)."""
    N = seq.shape[0]
    i = torch.arange(N, device=seq.device)[:, None]
    return _gather_time(seq, (n[None, :] - 1 - i).clamp(0, N - 1))


def _filtfilt_twice(seq: Tensor, n: Tensor, b: Tensor, a: Tensor, zi: Tensor) -> Tensor:
    """``y = filtfilt(x); y = filtfilt(y[::-1])[::-1]`` per row over its first ``n[r]`` steps.

    ``seq``: ``(M, R, F)``. With ``G = lfilter(reverse(lfilter(odd_ext(x))))`` (scipy's
    filtfilt before its final reversal), ``filtfilt(x)[::-1] = G[P : P + n]``; the second
    call takes exactly that reversed sequence and ends with the reversal, so both calls
    reduce to ``x -> G[P : P + n]`` and no extra reversal is needed.
    """
    M = seq.shape[0]
    n_ext = n + 2 * PADLEN
    for _ in range(2):
        ext = _lfilter(_odd_extend(seq, n), b, a, zi)
        seq = _lfilter(_reverse(ext, n_ext), b, a, zi)[PADLEN : PADLEN + M]
    return seq


def modulation_smoothing(wave: Tensor, lengths: Tensor, *, alpha) -> tuple[Tensor, Tensor]:
    """Smooth the modulation spectrum of each clip (low-pass its log-magnitude trajectories).

    Args:
        wave: ``(B, T)`` or ``(B, C, T)`` float waveforms.
        lengths: ``(B,)`` valid samples per clip.
        alpha: per-clip normalised cutoff in ``[0.05, 0.3]`` (1 = frame-rate Nyquist,
            ``fs / 1024`` Hz); smaller smooths more.

    Returns:
        ``(wave, lengths)``: same shape, dtype and device, padding zero; energy over the
        valid samples equals the input's (per channel). Clips shorter than 10 frames
        (``L < 4608`` samples) and all-silent clips come back unchanged. float16 / bfloat16
        waves are computed in float32 and returned in their dtype.

    Raises:
        ValueError: ``alpha`` outside ``[0.05, 0.3]``, or a bad ``wave`` / ``lengths``.
    """
    lengths = check_wave(wave, lengths)
    B = wave.shape[0]
    alpha = per_clip(alpha, B, name="alpha", device=wave.device, dtype=torch.float64)
    a_host = host_of(alpha)
    if bool(((a_host < ALPHA_MIN - _RANGE_TOL) | (a_host > ALPHA_MAX + _RANGE_TOL)).any()):
        raise ValueError(f"alpha must lie in [{ALPHA_MIN}, {ALPHA_MAX}], got {a_host.tolist()}")
    x, was_2d = as_3d(zero_padding(wave, lengths))
    B, C, T = x.shape
    if x.numel() == 0 or 1 + T // HOP <= PADLEN:  # no clip has enough frames to filter
        return restore_rank(x, was_2d), lengths
    if wave.dtype in NARROW_FLOATS:  # torch's FFTs refuse 16-bit floats on the CPU: compute in float32
        return in_float32(modulation_smoothing, wave, lengths, alpha=alpha, name="modulation_smoothing")
    rows = x.reshape(B * C, T)
    row_lengths = lengths.repeat_interleave(C)
    n_frames = frame_counts(row_lengths)

    spec = stft(rows)  # (R, F, M)
    b, a = butter2_lowpass(alpha.clamp(ALPHA_MIN, ALPHA_MAX))
    zi = lfilter_zi2(b, a)
    b, a, zi = (t.to(x.dtype).repeat_interleave(C, dim=0) for t in (b, a, zi))
    seq = log_magnitude(spec).permute(2, 0, 1)  # (M, R, F): time first for the recursion
    smoothed = _filtfilt_twice(seq, n_frames, b, a, zi).permute(1, 2, 0)
    y = resynthesize(smoothed, spec, n_frames, T) * valid_mask(row_lengths, T).to(x.dtype)

    e_in = rows.to(torch.float64).square().sum(-1)
    e_out = y.to(torch.float64).square().sum(-1)
    gain = torch.where(e_out > 0, torch.sqrt(e_in / e_out.clamp_min(1e-300)), torch.zeros_like(e_out))
    y = (y.to(torch.float64) * gain[:, None]).to(x.dtype)  # in float64: a huge gain on a tiny y stays finite
    y = torch.where((n_frames > PADLEN)[:, None], y, rows)
    return restore_rank(y.reshape(B, C, T), was_2d), lengths
