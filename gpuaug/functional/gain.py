"""Per-clip gain in decibels."""
from __future__ import annotations

import torch
from torch import Tensor

from ._batch import check_wave, per_clip, zero_padding

__all__ = ["gain"]


def gain(wave: Tensor, lengths: Tensor, *, gain_db) -> tuple[Tensor, Tensor]:
    """Scale each clip by ``10 ** (gain_db / 20)`` (an amplitude gain in dB).

    No clipping or limiting is applied: a positive gain may push samples past full scale.

    Args:
        wave: ``(B, T)`` or ``(B, C, T)`` floating waveform.
        lengths: ``(B,)`` valid samples per clip.
        gain_db: gain in decibels (amplitude, ``20 * log10``), a scalar or ``(B,)``;
            0 dB leaves a clip unchanged, -6.02 dB halves it.

    Shapes:
        Output wave has the input's shape, dtype and device; lengths are unchanged.

    Raises:
        ValueError: non-finite ``gain_db``, or a gain so large that the output overflows
            the dtype (it would otherwise contain Inf / NaN).
    """
    lengths = check_wave(wave, lengths)
    B = wave.shape[0]
    g_db = per_clip(gain_db, B, name="gain_db", device=wave.device, dtype=torch.float64)
    factor = torch.pow(10.0, g_db / 20.0).to(wave.dtype)
    shape = (B,) + (1,) * (wave.dim() - 1)
    out = zero_padding(wave * factor.reshape(shape), lengths)
    if B and not bool(torch.isfinite(out).all()):
        raise ValueError(f"gain_db={g_db.tolist()} overflows {wave.dtype}")
    return out, lengths
