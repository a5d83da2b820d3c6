"""Reading audio files for datasets and banks: soundfile decoding with clear errors.

Everything here runs on the CPU (in DataLoader workers or once when a bank is built).
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

__all__ = ["read_audio", "to_mono", "resample", "load_resampled", "check_sample_rate"]


def _wav_data_shortfall(path: Path) -> tuple[int, int] | None:
    """For a RIFF/RF64 WAVE file: ``(declared, present)`` bytes of its ``data`` chunk when the
    file holds fewer bytes than the header declares (a truncated file); else ``None``.

    Headers that do not declare a size (``0`` or ``0xFFFFFFFF``, written by streaming tools
    that never finalise the header), files that are not WAVE and malformed chunk lists are
    left to libsndfile.
    """
    import struct

    try:
        size = path.stat().st_size
        with path.open("rb") as f:
            head = f.read(12)
            if len(head) < 12 or head[8:12] != b"WAVE" or head[:4] not in (b"RIFF", b"RF64", b"BW64"):
                return None
            rf64 = head[:4] != b"RIFF"
            ds64_data = None
            pos = 12
            while pos + 8 <= size:
                f.seek(pos)
                cid, csize = struct.unpack("<4sI", f.read(8))
                if cid == b"ds64" and rf64:
                    body = f.read(16)
                    if len(body) == 16:
                        ds64_data = struct.unpack("<QQ", body)[1]
                elif cid == b"data":
                    declared = ds64_data if (rf64 and csize == 0xFFFFFFFF) else csize
                    if declared is None or declared in (0, 0xFFFFFFFF):
                        return None
                    present = size - (pos + 8)
                    return (int(declared), int(present)) if present < declared else None
                pos += 8 + csize + (csize & 1)  # chunks are word-aligned
    except (OSError, struct.error):
        return None
    return None


def read_audio(path: str | Path) -> tuple[Tensor, int]:
    """Decode an audio file at its own sample rate.

    Args:
        path: any format libsndfile reads (wav, flac, ogg, ...).

    Returns:
        ``(wave, sample_rate)``: ``wave`` is a float32 ``(C, T)`` tensor (``C`` channels,
        ``T`` samples, full scale +-1), ``sample_rate`` in Hz.

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: the file cannot be decoded, is truncated (a WAV whose ``data`` chunk
            holds fewer bytes than its header declares, or fewer frames decoded than the
            file declares), has no samples, or contains NaN / Inf (each message names the file).
    """
    import soundfile as sf

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"audio file not found: {path}")
    short = _wav_data_shortfall(path)
    if short is not None:
        declared, present = short
        raise ValueError(f"audio file {path} is truncated: its WAV header declares {declared} bytes of "
                         f"audio data but the file holds only {max(present, 0)}")
    try:
        with sf.SoundFile(str(path)) as f:
            # frame counts of compressed streams (MP3, Ogg) may be estimates: check exact ones only
            declared_frames = f.frames if f.format not in ("MPEG", "OGG") else 0
            sr = f.samplerate
            data = f.read(dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError) as e:
        raise ValueError(f"cannot read audio file {path}: {e}") from e
    if 0 < declared_frames < 2**62 and data.shape[0] < declared_frames:
        raise ValueError(f"audio file {path} is truncated: it declares {declared_frames} frames but only "
                         f"{data.shape[0]} could be decoded")
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


def check_sample_rate(value, name: str = "sample_rate") -> int:
    """``value`` as an int number of Hz; ``ValueError`` naming ``name`` unless it is a positive integer."""
    ok = isinstance(value, (int, np.integer)) and not isinstance(value, bool)
    if not ok and isinstance(value, (float, np.floating)) and float(value).is_integer():
        ok = True
    if not ok or int(value) <= 0:
        raise ValueError(f"{name} must be a positive integer number of Hz, got {value!r}")
    return int(value)


def resample(x: Tensor, old_sr: int, new_sr: int) -> Tensor:
    """Resample ``(..., T)`` from ``old_sr`` to ``new_sr`` Hz with julius (cached kernels).

    Raises:
        ValueError: ``old_sr`` or ``new_sr`` is not a positive integer (the message names it).
    """
    old_sr, new_sr = check_sample_rate(old_sr, "old_sr"), check_sample_rate(new_sr, "new_sr")
    if old_sr == new_sr:
        return x
    with torch.no_grad():
        return _resampler(old_sr, new_sr)(x)


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

    Raises:
        ValueError: ``sample_rate`` is not a positive integer, or see :func:`read_audio`.
    """
    sample_rate = check_sample_rate(sample_rate, "sample_rate")
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
