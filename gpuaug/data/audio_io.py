"""Reading audio files for datasets and banks: soundfile decoding with clear errors.

Everything here runs on the CPU (in DataLoader workers or once when a bank is built).
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

__all__ = ["read_audio", "to_mono", "resample", "load_resampled"]


def read_audio(path: str | Path) -> tuple[Tensor, int]:
    """Decode an audio file at its own sample rate.

    Args:
        path: any format libsndfile reads (wav, flac, ogg, ...).

    Returns:
        ``(wave, sample_rate)``: ``wave`` is a float32 ``(C, T)`` tensor (``C`` channels,
        ``T`` samples, full scale +-1), ``sample_rate`` in Hz.

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: the file cannot be decoded, has no samples, or contains NaN / Inf
            (each message names the file).
    """
    import soundfile as sf

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"audio file not found: {path}")
    try:
        data, sr = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError) as e:
        raise ValueError(f"cannot read audio file {path}: {e}") from e
    if data.shape[0] == 0:
        raise ValueError(f"audio file {path} is empty (0 samples)")
    if not np.isfinite(data).all():
        raise ValueError(f"audio file {path} contains NaN/Inf samples")
    return torch.from_numpy(np.ascontiguousarray(data.T)), int(sr)


def to_mono(wave: Tensor) -> Tensor:
    """Down-mix ``(C, T)`` to ``(T,)`` by the mean over channels; ``(T,)`` passes through."""
    if wave.dim() == 1:
        return wave
    if wave.dim() != 2:
        raise ValueError(f"expected (T,) or (C, T) audio, got shape {tuple(wave.shape)}")
    return wave.mean(dim=0)


@lru_cache(maxsize=16)
def _resampler(old_sr: int, new_sr: int):
    """A cached julius resampler (building its sinc kernels costs seconds for e.g. 44.1 -> 16 kHz)."""
    import julius

    return julius.ResampleFrac(old_sr, new_sr)


def resample(x: Tensor, old_sr: int, new_sr: int) -> Tensor:
    """Resample ``(..., T)`` from ``old_sr`` to ``new_sr`` Hz with julius (cached kernels)."""
    if int(old_sr) == int(new_sr):
        return x
    with torch.no_grad():
        return _resampler(int(old_sr), int(new_sr))(x)


def load_resampled(path: str | Path, sample_rate: int, *, channel: int | None = None,
                   max_seconds: float | None = None) -> Tensor:
    """Read a file as mono float32 ``(T,)`` at ``sample_rate`` Hz (julius resampling).

    Args:
        path: audio file.
        sample_rate: target rate in Hz.
        channel: keep only this channel (e.g. ``0`` for a multi-channel room impulse
            response, where averaging channels with different direct-path delays would
            comb-filter); ``None`` averages all channels.
        max_seconds: keep only the first ``max_seconds`` seconds (cut before resampling).
    """
    wave, sr = read_audio(path)
    if channel is not None:
        if not 0 <= channel < wave.shape[0]:
            raise ValueError(f"{path} has {wave.shape[0]} channel(s); channel {channel} does not exist")
        wave = wave[channel]
    x = to_mono(wave)
    if max_seconds is not None:
        if max_seconds <= 0:
            raise ValueError(f"max_seconds must be > 0, got {max_seconds}")
        x = x[: max(1, int(round(max_seconds * sr)))]
    return resample(x, sr, sample_rate).contiguous()
