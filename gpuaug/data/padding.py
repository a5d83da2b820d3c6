"""Padding a list of clips into a batch."""
from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor

__all__ = ["pad_batch"]


def pad_batch(clips: Sequence[Tensor]) -> tuple[Tensor, Tensor]:
    """Stack 1-D ``(T_i,)`` (or ``(C, T_i)``) clips into ``(B, T)`` (or ``(B, C, T)``) + lengths.

    All clips must have the same rank and channel count; padding is zero.
    """
    if len(clips) == 0:
        raise ValueError("pad_batch needs at least one clip")
    ranks = {c.dim() for c in clips}
    if len(ranks) != 1 or ranks.pop() not in (1, 2):
        raise ValueError("clips must all be 1-D (T,) or all 2-D (C, T)")
    if clips[0].dim() == 2 and len({c.shape[0] for c in clips}) != 1:
        raise ValueError(f"mismatched channel counts: {sorted({c.shape[0] for c in clips})}")
    lengths = torch.tensor([c.shape[-1] for c in clips], dtype=torch.int64)
    out = clips[0].new_zeros(len(clips), *clips[0].shape[:-1], int(lengths.max()))
    for i, c in enumerate(clips):  # a copy per clip into the padded buffer (collation, not DSP)
        out[i, ..., : c.shape[-1]] = c
    return out, lengths
