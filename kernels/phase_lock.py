"""Identity phase locking of the pitch shift's phase vocoder, frame by frame on the CPU.

The torch path :func:`gpuaug.functional.pitch._phase_lock` finds the nearest spectral peak of
every bin with ``cummax`` / ``cummin`` over the whole ``(N, F, M)`` block, gathers the
increments, and solves ``phase[k, f] = phase[k - 1, p] + (dp[k, p] + a[k, f])`` for all frames
at once with a prefix scan (``ceil(log2(M))`` passes of gathers over the block), which suits
a GPU. On a CPU the plain recursion is ``log2(M)`` times less work, and the peak search fits
in the same pass: this kernel runs a ``prange`` over the ``N`` rows (clips x channels) and, per
frame, one forward sweep over the bins (last peak at or below each bin) and one backward
sweep (next peak above; nearest wins, ties to the lower one) that writes the locked phase.
Peaks, ties and terms are those of the torch path; the sums run left to right instead of in
scan order, so phases differ by rounding only (~1e-11 rad after 1,000 frames).

Registered (:func:`gpuaug.backend.register_kernel`): :func:`phase_lock_kernel` as op
``phase_lock``, ``("numba", "cpu", 0)``; :func:`~gpuaug.functional.pitch.pitch_shift` and
:func:`~gpuaug.functional.tempo.tempo_segment` resolve that op on its own (``auto``: this kernel
on CPU tensors; see :mod:`gpuaug.backend`). Measured faster than the torch scan on the CPU
(``benchmarks/results/kernel-timings.md``). No CUDA twin: on a GPU the scan's passes are
parallel.
"""
from __future__ import annotations

import numpy as np
import torch
from numba import prange

from gpuaug.backend import PHASE_LOCK, register_kernel
from gpuaug.kernels._launch import kernel_float, run_numba
from gpuaug.kernels._numba_glue import jit_cpu

__all__ = ["phase_lock_kernel"]


@jit_cpu
def nearest_peaks(m, prev, peak):
    """``peak[f]``: the nearest local peak of the magnitudes ``m`` ``(F,)`` to bin ``f`` (a peak:
    ``m[f] > m[f - 1]`` and ``m[f] >= m[f + 1]``, beyond the edges ``-1``; a tie goes to the lower
    peak), the rule of :func:`gpuaug.functional.pitch._phase_lock`. ``prev`` ``(F,)`` int64 is
    scratch (the last peak at or below each bin); ``peak`` ``(F,)`` int64 is written."""
    F = m.shape[0]
    last = -1
    for f in range(F):
        below = m[f - 1] if f > 0 else -1.0
        above = m[f + 1] if f < F - 1 else -1.0
        if m[f] > below and m[f] >= above:
            last = f
        prev[f] = last
    nxt = F
    for f in range(F - 1, -1, -1):
        if prev[f] == f:
            nxt = f
        lo = prev[f]
        peak[f] = lo if lo >= 0 and (nxt >= F or f - lo <= nxt - f) else nxt


@jit_cpu(parallel=True)
def _phase_lock_cpu(mag, dp, ang, out):
    N, F, M = mag.shape
    for n in prange(N):
        prev = np.empty(F, np.int64)
        peak = np.empty(F, np.int64)
        for f in range(F):
            out[n, f, 0] = ang[n, f, 0]
        for k in range(1, M):
            nearest_peaks(mag[n, :, k], prev, peak)
            for f in range(F):
                p = peak[f]
                out[n, f, k] = out[n, p, k - 1] + (dp[n, p, k] + ang[n, f, k])


@register_kernel(PHASE_LOCK, "numba", "cpu")
def phase_lock_kernel(mag: torch.Tensor, dp: torch.Tensor, ang: torch.Tensor) -> torch.Tensor:
    """Locked phases ``(N, F, M)`` float64 (not wrapped) of :func:`gpuaug.functional.pitch._phase_lock`.

    CPU tensors of one shape ``(N, F, M)``: ``mag`` float (output magnitudes, finite, >= 0),
    ``dp = d[k - 1] - a[k]`` and ``ang = a[k]`` float64. Inputs are not modified.
    """
    if not (mag.shape == dp.shape == ang.shape) or mag.dim() != 3:
        raise ValueError(f"mag, dp and ang must be (N, F, M) of one shape, got "
                         f"{tuple(mag.shape)} / {tuple(dp.shape)} / {tuple(ang.shape)}")
    if mag.device.type != "cpu":
        raise ValueError(f"the phase_lock kernel runs on CPU tensors, got {mag.device}")
    mag = kernel_float(mag)
    dp = dp.detach().to(torch.float64).contiguous()
    ang = ang.detach().to(torch.float64).contiguous()
    out = torch.empty_like(ang)
    if out.numel():
        run_numba(_phase_lock_cpu, None, [mag, dp, ang, out])
    return out
