"""Padding a list of clips into a batch, and integer PCM to float."""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from torch import Tensor

__all__ = ["pad_batch", "pcm_to_float", "PCM_SCALE"]

#: Integer PCM dtypes and their ``(offset, full scale)``: ``float = (pcm - offset) / scale``,
#: as ``soundfile`` reads them (``int16 / 2**15``, ``int32 / 2**31``, ``uint8 (x - 128) / 128``).
PCM_SCALE = {
    torch.int16: (0, 2.0**15),
    torch.int32: (0, 2.0**31),
    torch.int8: (0, 2.0**7),
    torch.uint8: (128, 2.0**7),
}


def pcm_to_float(wave, *, name: str = "wave") -> Tensor:
    """``wave`` as a floating tensor: integer PCM rescaled to ``[-1, 1]``, floats unchanged.

    ``int16`` is divided by 32768, ``int32`` by ``2**31``, ``int8`` by 128 and ``uint8`` is
    ``(x - 128) / 128`` (offset binary, as in 8-bit WAV), the scaling of ``soundfile``; the
    result is float32. Floating tensors (any precision) are returned as they are; numpy arrays
    are converted first.

    Raises:
        TypeError: not a tensor / array, or a dtype that is not audio (bool, complex, int64:
            an int64 array is ambiguous, convert it to float yourself).
    """
    if isinstance(wave, np.ndarray):
        wave = torch.from_numpy(np.ascontiguousarray(wave))
    if not isinstance(wave, Tensor):
        raise TypeError(f"{name} must be a tensor or numpy array, got {type(wave).__name__}")
    if wave.is_floating_point():
        return wave
    if wave.dtype not in PCM_SCALE:
        raise TypeError(f"{name} has dtype {wave.dtype}, which is not audio: give floating samples or integer PCM "
                        f"({', '.join(str(d) for d in PCM_SCALE)})")
    offset, scale = PCM_SCALE[wave.dtype]
    x = wave.to(torch.float32)
    if offset:
        x = x - offset
    return x / scale


def pad_batch(clips: Sequence[Tensor]) -> tuple[Tensor, Tensor]:
    """Stack 1-D ``(T_i,)`` (or ``(C, T_i)``) clips into ``(B, T)`` (or ``(B, C, T)``) + lengths.

    All clips must have the same rank and channel count; padding is zero. Integer PCM clips
    (``int16``, ``int32``, ``int8``, ``uint8``) are converted to float32 in ``[-1, 1]`` with
    :func:`pcm_to_float` (``int16 / 32768``, ...); the batch has the widest floating dtype of
    the (converted) clips, so no clip is truncated or narrowed.
    """
    if len(clips) == 0:
        raise ValueError("pad_batch needs at least one clip")
    clips = [pcm_to_float(c, name=f"clip {i}") for i, c in enumerate(clips)]
    ranks = {c.dim() for c in clips}
    if len(ranks) != 1 or ranks.pop() not in (1, 2):
        raise ValueError("clips must all be 1-D (T,) or all 2-D (C, T)")
    if clips[0].dim() == 2 and len({c.shape[0] for c in clips}) != 1:
        raise ValueError(f"mismatched channel counts: {sorted({c.shape[0] for c in clips})}")
    if len({c.device for c in clips}) != 1:
        raise ValueError(f"clips are on different devices: {sorted({str(c.device) for c in clips})}")
    dtype = clips[0].dtype
    for c in clips[1:]:
        dtype = torch.promote_types(dtype, c.dtype)
    lengths = torch.tensor([c.shape[-1] for c in clips], dtype=torch.int64)
    out = clips[0].new_zeros(len(clips), *clips[0].shape[:-1], int(lengths.max()), dtype=dtype)
    for i, c in enumerate(clips):  # a copy per clip into the padded buffer (collation, not DSP)
        out[i, ..., : c.shape[-1]] = c
    return out, lengths
