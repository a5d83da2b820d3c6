"""Linear prediction by Burg's method, batched over frames.

:func:`burg_lpc` reproduces ``librosa.lpc`` (Marple's formulation of Burg's method:
reflection coefficients from the forward / backward prediction errors, the denominator
updated by Marple's eq. 17) for a whole batch of frames at once. Only the model order is
looped over; every frame is processed in the same vectorised step, in float64.
"""
from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["burg_lpc"]


def burg_lpc(frames: Tensor, order: int) -> Tensor:
    """LPC coefficients of each frame by Burg's method (as ``librosa.lpc``).

    The model is ``x[n] = -sum_{k=1..order} a[k] x[n-k] + e[n]``, i.e. the returned
    ``a`` is the denominator of the all-pole synthesis filter ``1 / A(z)`` with
    ``a[..., 0] = 1``.

    Degenerate frames never give NaN: where the prediction-error energy (Marple's DEN) is
    not positive the reflection coefficient is 0, so an all-zero frame gives
    ``a = [1, 0, ..., 0]``; reflection coefficients are clamped to ``[-1, 1]`` (their exact
    range, which rounding can leave on ill-conditioned frames such as constants). Otherwise
    this is librosa's recursion step for step (``den + tiny`` bias included); results agree
    to float64 rounding (sums are accumulated in a different order).

    Args:
        frames: floating tensor ``(..., N)``; each row along the last dim is one frame.
            Must be finite.
        order: model order ``p >= 1``; needs ``N >= p + 1``.

    Returns:
        ``(..., p + 1)`` coefficients in ``frames``' dtype and device (computed in float64).

    Raises:
        TypeError: ``frames`` is not a floating tensor or ``order`` is not an int.
        ValueError: ``order < 1``, frames shorter than ``order + 1`` or non-finite samples.
    """
    if not isinstance(frames, Tensor) or not frames.is_floating_point():
        raise TypeError("frames must be a floating torch.Tensor")
    if isinstance(order, bool) or not isinstance(order, int):
        raise TypeError(f"order must be an int, got {type(order).__name__}")
    if order < 1:
        raise ValueError(f"order must be >= 1, got {order}")
    if frames.dim() < 1 or frames.shape[-1] < order + 1:
        raise ValueError(
            f"frames need at least order + 1 = {order + 1} samples along the last dim, "
            f"got shape {tuple(frames.shape)}"
        )
    if not bool(torch.isfinite(frames).all()):
        raise ValueError("frames contain NaN or Inf samples")

    lead = frames.shape[:-1]
    x = frames.reshape(-1, frames.shape[-1]).to(torch.float64)
    tiny = torch.finfo(torch.float64).tiny
    a = x.new_zeros(x.shape[0], order + 1)
    a[:, 0] = 1.0
    fwd = x[:, 1:]
    bwd = x[:, :-1]
    den = torch.linalg.vecdot(fwd, fwd) + torch.linalg.vecdot(bwd, bwd)
    for i in range(order):
        num = torch.linalg.vecdot(bwd, fwd)
        k = torch.where(den > 0, -2.0 * num / (den + tiny), torch.zeros_like(den)).clamp(-1.0, 1.0)
        kc = k[:, None]
        # Levinson step: a_i[j] = a_{i-1}[j] + k a_{i-1}[i + 1 - j], j = 1 .. i + 1
        update = torch.addcmul(a[:, 1 : i + 2], kc, a[:, : i + 1].flip(-1))
        a = torch.cat([a[:, :1], update, a[:, i + 2 :]], dim=-1)
        fwd, bwd = torch.addcmul(fwd, kc, bwd), torch.addcmul(bwd, kc, fwd)
        den = (1.0 - k * k) * den - bwd[:, -1] ** 2 - fwd[:, 0] ** 2
        fwd = fwd[:, 1:]
        bwd = bwd[:, :-1]
    return a.reshape(*lead, order + 1).to(frames.dtype)
