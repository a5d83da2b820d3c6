"""Per-clip gain in decibels.

:func:`gain` dispatches on ``backend`` (op name ``"gain"``, see :mod:`gpuaug.backend`); the
elementwise kernel lives in :mod:`gpuaug.kernels.elementwise`. Validation, the factor and the
overflow check are shared by both paths.
"""
from __future__ import annotations

import torch
from torch import Tensor

from gpuaug._sync import check_later, host_of
from ..backend import GAIN, kernel_for
from ._batch import as_3d, check_wave, per_clip, restore_rank, zero_padding

__all__ = ["gain"]


def gain(wave: Tensor, lengths: Tensor, *, gain_db, backend: str | None = None) -> tuple[Tensor, Tensor]:
    """Scale each clip by ``10 ** (gain_db / 20)`` (an amplitude gain in dB).

    No clipping or limiting is applied: a positive gain may push samples past full scale.

    Args:
        wave: ``(B, T)`` or ``(B, C, T)`` floating waveform.
        lengths: ``(B,)`` valid samples per clip.
        gain_db: gain in decibels (amplitude, ``20 * log10``), a scalar or ``(B,)``;
            0 dB leaves a clip unchanged, -6.02 dB halves it.
        backend: ``"auto"`` | ``"torch"`` | ``"numba"`` | ``"cupy"`` or None (op ``"gain"``).

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
    kernel = kernel_for(GAIN, wave.device, backend)[1]
    if kernel is not None:
        w3, was_2d = as_3d(wave)
        out, overflow = kernel(w3, lengths, factor)
        out, finite = restore_rank(out, was_2d), ~overflow.any()
    else:
        shape = (B,) + (1,) * (wave.dim() - 1)
        prod = wave * factor.reshape(shape)
        finite = torch.isfinite(prod).all()
        out = zero_padding(prod, lengths)
    if B:  # some product (padding included) is Inf / NaN: checked at the end of a pipeline call
        check_later(finite, lambda ok: f"gain_db={host_of(g_db).tolist()} overflows {wave.dtype}")
    return out, lengths
