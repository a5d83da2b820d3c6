"""Output level of a batch: keep, peak-limit or peak-normalise each clip (a pure gain, no clipping).

``output_level(wave, policy, level=1.0, mask=None) -> (wave, gain, peak)``: ``wave``
is ``(B, T)`` or ``(B, C, T)`` zero padded, ``peak`` the ``(B,)`` float32 max ``|x|`` of each
clip (over its channels) before the gain, ``gain`` the ``(B,)`` float32 factor applied:

* ``"keep"``: 1 (nothing changes; ``peak`` is still measured);
* ``"peak_limit"``: ``min(1, level / peak)``: only a clip whose peak exceeds ``level`` is
  scaled down, to that peak (never above it in float32); the others are left bit for bit;
* ``"normalize"``: ``level / peak``: every clip peaks at ``level`` (a silent clip keeps gain 1).

Clips where ``mask`` (a ``(B,)`` bool tensor on the wave's device) is False get gain 1. The
gain is computed and applied on the wave's device (no host sync); a gain of 1 is an exact
no-op in floating point. On the CPU (op ``row_peak``) the peaks come from one integer max of
bit patterns per row (:mod:`gpuaug.kernels.row_reduce`) and, in place, only the clips whose
gain is not 1 are multiplied.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor

from ..kernels.row_reduce import scale_rows_
from ._batch import row_peak_kernel

__all__ = ["OUTPUT_LEVELS", "check_output_level", "output_level"]

#: The output-level policies of :func:`output_level` and :class:`gpuaug.transforms.Pipeline`.
OUTPUT_LEVELS = ("keep", "peak_limit", "normalize")


def check_output_level(policy: str, level: float) -> float:
    """Validate ``policy`` / ``level``; returns ``level`` as a float (``ValueError`` otherwise)."""
    if policy not in OUTPUT_LEVELS:
        raise ValueError(f"output_level must be one of {OUTPUT_LEVELS}, got {policy!r}")
    if isinstance(level, bool):
        raise TypeError(f"output_peak must be a number, got {level!r}")
    level = float(level)
    if not (math.isfinite(level) and level > 0):
        raise ValueError(f"output_peak must be a finite number > 0 (linear full scale), got {level}")
    return level


def output_level(wave: Tensor, policy: str = "peak_limit", level: float = 1.0,
                 mask: Tensor | None = None, *, inplace: bool = False) -> tuple[Tensor, Tensor, Tensor]:
    """Apply the output-level ``policy`` per clip; see the module docstring. ``inplace``: scale
    ``wave`` itself (a buffer the caller owns, e.g. a pipeline's intermediate) instead of a copy
    (no new batch-sized buffer)."""
    level = check_output_level(policy, level)
    B = wave.shape[0]
    flat = wave.reshape(B, -1)
    kernel = row_peak_kernel(wave)
    if flat.shape[1] == 0:
        peak = torch.zeros(B, dtype=torch.float32, device=wave.device)
    elif kernel is not None:  # CPU: one integer max of bit patterns per row (gpuaug.kernels.row_reduce)
        peak = kernel(flat)[0].to(torch.float32)
    else:  # no |x| temporary (amax + amin: less CPU time than abs().amax() or aminmax)
        peak = torch.maximum(flat.amax(dim=1), -flat.amin(dim=1)).to(torch.float32)
    one = torch.ones_like(peak)
    if policy == "keep":
        return wave, one, peak
    safe = torch.where(peak > 0, peak, one)
    if policy == "peak_limit":
        # one ulp below level / peak: the limited peak never rounds above ``level`` (float32)
        gain = torch.where(peak > level, torch.nextafter(level / safe, torch.zeros_like(safe)), one)
    else:  # normalize
        gain = torch.where(peak > 0, level / safe, one)
    if mask is not None:
        gain = torch.where(mask, gain, one)
    scale = gain.to(wave.dtype if wave.is_floating_point() else torch.float32).reshape(B, *([1] * (wave.dim() - 1)))
    if not inplace:
        return wave * scale, gain, peak
    if kernel is not None and wave.is_contiguous():  # scale only the clips whose gain is not 1, in place
        return scale_rows_(wave, scale.reshape(B)), gain, peak
    return wave.mul_(scale), gain, peak
