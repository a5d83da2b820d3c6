"""STFT / ISTFT shared by the spectral voice ops (:mod:`.vtln`, :mod:`.mss`).

The framing is the one of the sarulab recipes (librosa defaults): ``n_fft = 2048``,
``hop = 512``, periodic Hann window, centred frames with **zero** (constant) centre padding.
Frame ``m`` covers samples ``[m * hop - n_fft / 2, m * hop + n_fft / 2)`` of the clip.

Variable lengths: a clip of ``L`` valid samples owns the frames whose centre lies in
``[0, L]``, i.e. ``1 + L // hop`` frames, exactly what ``torch.stft(center=True)`` gives for
the clip alone. In a batch, the clip's padding is zeroed before the STFT, so its own frames
are bit-for-bit the frames it would get alone; the batch's later frames (which can still
overlap the clip's last samples) are dropped from both the overlap-add and its window
envelope by :func:`istft`. This keeps "batched == each clip alone" exact, which
``torch.istft`` cannot do (it has one envelope for the whole batch).

Log magnitude: ``log(max(|X|, MAG_FLOOR))`` with ``MAG_FLOOR = 1e-8`` (-160 dB re an STFT
magnitude of 1; a full-scale sine gives ~ 512). The sarulab code has no floor and turns
digital silence into -inf / NaN. Frames whose input spectrum is exactly zero (a frame of
digital silence) have no phase to restore and are resynthesised as zero.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "N_FFT",
    "HOP",
    "N_BINS",
    "MAG_FLOOR",
    "frame_counts",
    "stft",
    "log_magnitude",
    "istft",
    "resynthesize",
]

N_FFT = 2048
HOP = 512
N_BINS = N_FFT // 2 + 1
MAG_FLOOR = 1e-8


def _window(dtype: torch.dtype, device: torch.device) -> Tensor:
    return torch.hann_window(N_FFT, periodic=True, dtype=dtype, device=device)


def frame_counts(lengths: Tensor) -> Tensor:
    """Frames owned by clips of ``lengths`` samples: ``1 + lengths // HOP`` (int64, same shape)."""
    return 1 + lengths // HOP


def stft(rows: Tensor) -> Tensor:
    """Centred STFT of real signals.

    Args:
        rows: ``(R, T)`` real signals (padding must already be zero).

    Returns:
        ``(R, N_BINS, M)`` complex spectrum, ``M = 1 + T // HOP`` frames; bin ``k`` is
        ``k * fs / N_FFT`` Hz.
    """
    return torch.stft(
        rows,
        N_FFT,
        HOP,
        window=_window(rows.dtype, rows.device),
        center=True,
        pad_mode="constant",
        return_complex=True,
    )


def log_magnitude(spec: Tensor) -> Tensor:
    """``log(max(|spec|, MAG_FLOOR))`` (natural log), real tensor of ``spec``'s shape."""
    return torch.log(spec.abs().clamp_min(MAG_FLOOR))


def istft(spec: Tensor, n_frames: Tensor, length: int) -> Tensor:
    """Inverse of :func:`stft` using only each row's first ``n_frames`` frames.

    Weighted overlap-add of ``irfft(frame) * window`` divided by the row's own window
    envelope ``sum_m window**2`` over its kept frames (as ``torch.istft``, but per row).

    Args:
        spec: ``(R, N_BINS, M)`` complex spectrum of :func:`stft` on ``length`` samples
            (``M = 1 + length // HOP``).
        n_frames: ``(R,)`` int64, frames kept per row (later frames are ignored).
        length: output samples ``T``.

    Returns:
        ``(R, T)`` real signals (samples not covered by a kept frame are 0).
    """
    R, _, M = spec.shape
    window = _window(spec.real.dtype, spec.device)
    keep = (torch.arange(M, device=spec.device) < n_frames[:, None]).to(window.dtype)
    frames = torch.fft.irfft(spec, n=N_FFT, dim=1) * window[:, None] * keep[:, None, :]
    total = N_FFT + HOP * (M - 1)
    fold = dict(output_size=(1, total), kernel_size=(1, N_FFT), stride=(1, HOP))
    y = F.fold(frames, **fold).reshape(R, total)
    env = F.fold((window**2)[None, :, None] * keep[:, None, :], **fold).reshape(R, total)
    ok = env > 1e-8
    y = torch.where(ok, y / torch.where(ok, env, torch.ones_like(env)), torch.zeros_like(y))
    start = N_FFT // 2
    return y[:, start : start + length]


def resynthesize(log_mag: Tensor, spec: Tensor, n_frames: Tensor, length: int) -> Tensor:
    """Signal with magnitude ``exp(log_mag)`` and the phase of ``spec``.

    Frames where ``spec`` is exactly zero (digital silence) stay zero.

    Args:
        log_mag: ``(R, N_BINS, M)`` new natural-log magnitudes.
        spec: ``(R, N_BINS, M)`` complex spectrum whose phase is kept.
        n_frames: ``(R,)`` frames owned by each row (see :func:`frame_counts`).
        length: output samples ``T``.

    Returns:
        ``(R, T)`` real signals.
    """
    active = (spec.abs().amax(dim=1, keepdim=True) > 0).to(log_mag.dtype)
    new = torch.polar(torch.exp(log_mag) * active, spec.angle())
    return istft(new, n_frames, length)
