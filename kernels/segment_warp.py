"""Fused segment speed-up: the splice and the resampling of :func:`gpuaug.functional.speed.speed_segment` in one pass.

The general :func:`~gpuaug.kernels.warp_sinc.warp_kernel` needs the ``(B, T_out)`` float64
positions and cutoffs of every output sample, which the torch side builds and which cost
more than the kernel on long clips (the segment is 10-25 % of a clip). This kernel takes
the per-clip segment ``(s, n, m)`` instead and evaluates the piecewise-linear time map of
:func:`~gpuaug.functional.speed.speed_segment` on the fly, with the same float64 arithmetic:

* ``j < s`` and ``j >= s + m``: a copy of input sample ``j`` / ``j - m + n`` (bit for bit,
  as the warp's unit impulse at cutoff 1 and integer positions);
* ``s <= j < s + m``: :func:`~gpuaug.kernels.warp_sinc._warp_point` at
  ``p = s + (j - s) * (n / max(m, 1))`` with cutoff ``rolloff * min(1, 1 / (n / max(m, 1)))``.

So it reproduces the torch path's ``warp`` of those positions exactly as the general kernel
does. CPU: ``prange`` over clips x chunks of :data:`~gpuaug.kernels.warp_sinc.CPU_CHUNK`
output samples; CUDA: one output sample per thread. Selected by ``speed_segment`` whenever
the ``warp`` op resolves to ``numba`` (no separate registration).
"""
from __future__ import annotations

import math

import numba
import torch
from numba import cuda, prange

from gpuaug.kernels._launch import kernel_float, run_numba
from gpuaug.kernels._numba_glue import cuda_entry, jit_cpu, jit_cuda, launch_per_sample
from gpuaug.kernels.warp_sinc import CPU_CHUNK, CUDA_THREADS, _point_cpu, _point_cuda

__all__ = ["segment_warp_kernel"]


def _segment_sample(x, b, c, j, L, s, n, m, zeros, rolloff):
    """Output sample ``j`` of clip ``b``, channel ``c`` (float64): copy or windowed sinc.

    ``L``, ``s``, ``n``, ``m`` are integers (valid length, segment start, input and output
    segment lengths).
    """
    if j < s:
        src = j
    elif j >= s + m:
        src = j - m + n
    else:
        slope = n / max(m, 1.0)
        p = s + (j - s) * slope
        f = rolloff * min(1.0 / slope, 1.0)
        # the CUDA device function: a plain-Python callee is an untyped global on the real
        # CUDA target (only the simulator accepts it)
        return _point_cuda(x, b, c, L, p, f, zeros, math.sin(math.pi * f), math.cos(math.pi * f),
                           math.sin(math.pi * f / zeros), math.cos(math.pi * f / zeros))
    if src < L:
        return numba.float64(x[b, c, src])
    return 0.0


_sample_cuda = cuda.jit(device=True)(_segment_sample)


@jit_cpu(parallel=True)
def _segment_cpu(x, lengths, seg, new_lengths, out, zeros, rolloff):
    B, C, t_out = out.shape
    n_chunks = (t_out + CPU_CHUNK - 1) // CPU_CHUNK
    for q in prange(B * n_chunks):
        b = q // n_chunks
        L = lengths[b]
        s, n, m = seg[b, 0], seg[b, 1], seg[b, 2]
        s64, n64, m64 = numba.float64(s), numba.float64(n), numba.float64(m)
        slope = n64 / max(m64, 1.0)
        f = rolloff * min(1.0 / slope, 1.0)
        ds, dc = math.sin(math.pi * f), math.cos(math.pi * f)
        wds, wdc = math.sin(math.pi * f / zeros), math.cos(math.pi * f / zeros)
        for j in range((q % n_chunks) * CPU_CHUNK, min((q % n_chunks + 1) * CPU_CHUNK, new_lengths[b])):
            if j < s or j >= s + m:
                src = j if j < s else j - m + n
                for c in range(C):
                    out[b, c, j] = x[b, c, src] if src < L else 0.0
            else:
                p = s64 + (j - s64) * slope
                for c in range(C):
                    out[b, c, j] = _point_cpu(x, b, c, L, p, f, zeros, ds, dc, wds, wdc)


@jit_cuda
def _segment_cuda(x, lengths, seg, new_lengths, out, zeros, rolloff):
    B, C, t_out = out.shape
    q = cuda.grid(1)
    if q >= B * C * t_out:
        return
    j = q % t_out
    b = q // (C * t_out)
    c = (q // t_out) % C
    if j >= new_lengths[b]:
        out[b, c, j] = 0.0
        return
    out[b, c, j] = _sample_cuda(x, b, c, j, lengths[b], seg[b, 0], seg[b, 1], seg[b, 2], zeros, rolloff)


#: The ``@cuda.jit`` kernels and the signatures the wrappers below launch them with (views of
#: C-contiguous tensors, Python ints as int64, floats as float64): compiled by the compile
#: gate (:mod:`gpuaug.kernels._compile_gate`) and by ``auto``'s probe on a GPU.
#: Op ``warp``: the kernel runs whenever that op resolves to ``numba`` (see the module docstring).
CUDA_KERNELS = {
    "_segment_cuda": cuda_entry("warp", CUDA_THREADS, "{f}[:,:,::1], int64[::1], int64[:,::1], int64[::1], "
                                                      "{f}[:,:,::1], int64, float64"),
}


def _launch_cuda(x, lengths, seg, new_lengths, out, zeros, rolloff, stream=0) -> None:
    launch_per_sample(_segment_cuda, out.shape, CUDA_THREADS, stream, x, lengths, seg, new_lengths, out, zeros, rolloff)


def segment_warp_kernel(x: torch.Tensor, lengths: torch.Tensor, start: torch.Tensor, n: torch.Tensor,
                        m: torch.Tensor, new_lengths: torch.Tensor, zeros: int, rolloff: float,
                        t_out: int | None = None) -> torch.Tensor:
    """Numba segment speed-up of checked inputs; returns the ``(B, C, max(new_lengths))`` output.

    Args:
        x: ``(B, C, T)`` float input (not modified; no autograd; float16/bfloat16 computed in
            float32 and cast back).
        lengths, new_lengths: ``(B,)`` int64 valid input / output samples.
        start, n, m: ``(B,)`` int64 segment start (``<= L``), input length and output length.
        zeros: sinc zero crossings per side; rolloff: anti-aliasing margin in ``(0, 1]``.
        t_out: ``max(new_lengths)`` when the caller knows it on the host (else read back).

    Output padding is zero; everything stays on ``x``'s device.
    """
    xf = kernel_float(x)
    if t_out is None:  # the caller knows it from the host lengths (no device read)
        t_out = int(new_lengths.max()) if new_lengths.numel() else 0
    out = xf.new_zeros(xf.shape[0], xf.shape[1], t_out)
    if out.numel():
        seg = torch.stack([start, n, m], dim=1).to(torch.int64).contiguous()
        run_numba(_segment_cpu, _launch_cuda, [xf, lengths.contiguous(), seg, new_lengths.contiguous(), out],
                  int(zeros), float(rolloff))
    return out.to(x.dtype)
