"""Writing 16-bit PCM WAV files with the standard library (no audio dependency needed)."""
from __future__ import annotations

import wave as _wave
from pathlib import Path

import numpy as np
import torch


def write_wav(path: str | Path, audio: torch.Tensor, sample_rate: int) -> None:
    """Write ``audio`` ((T,) or (C, T) float in [-1, 1]; clipped) as 16-bit PCM."""
    if isinstance(sample_rate, bool) or int(sample_rate) != sample_rate or int(sample_rate) <= 0:
        raise ValueError(f"sample_rate must be a positive integer number of Hz, got {sample_rate!r}")
    x = audio.detach().cpu().double()
    x = x[None] if x.dim() == 1 else x
    pcm = (np.clip(x.numpy().T, -1.0, 1.0) * 32767.0).round().astype("<i2")
    with _wave.open(str(path), "wb") as f:
        f.setnchannels(pcm.shape[1])
        f.setsampwidth(2)
        f.setframerate(int(sample_rate))
        f.writeframes(pcm.tobytes())
