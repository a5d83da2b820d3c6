"""Windowed-sinc resampler at arbitrary positions: kernels of :func:`gpuaug.functional.resample.warp`.

One output sample per CUDA thread (``@cuda.jit``, or the CUDA C twin ``warp_sinc.cu`` through
CuPy), or a ``prange`` over clips x chunks of output samples on the CPU (``@njit``). The taps
are walked around ``floor(p)`` and their weights computed on the fly in float64 (no gathered
``(B, T_out, taps)`` block), with the exact definition of the module docstring of
:mod:`gpuaug.functional.resample`: Hann-windowed sinc with ``zeros`` crossings per side,
normalised by the sum of the weights of all taps (also those outside ``[0, L)``, which read
zero), per-output-sample positions and cutoffs. The same kernel serves ``speed``,
``speed_segment`` (positions are the piecewise time map) and the resampling half of
``pitch_shift``.

Numba kernels (one body for both targets, :func:`_warp_point`): ``sin(pi u)`` and the window
``cos(pi u / zeros)`` advance from tap to tap by a rotation (the step ``u -> u + f``), so an
output sample costs about 9 trigonometric calls instead of 2 per tap; the recurrence adds
~1e-16 absolute error per tap, and the taps within half a sample of ``p`` evaluate ``sin``
directly (there ``sinc``'s ``1 / u`` would amplify that error). A cutoff of 1 at an integer
position returns the input sample itself (the torch path's exact unit impulse), so the
untouched parts of ``speed_segment`` stay bit-exact. The CUDA C kernel evaluates every
weight directly, as the torch path does.

CPU launches run under :data:`gpuaug.kernels._numba_glue.CPU_LOCK` (fork safety), through
:func:`gpuaug.kernels._launch.run_numba`.

Registered (:func:`gpuaug.backend.register_kernel`) as op ``warp``: :func:`warp_kernel`
``("numba", "cpu", 0)`` and ``("numba", "cuda", 0)``, :func:`warp_cupy` ``("cupy", "cuda", 1)``
(the CPU kernel measured faster than torch: ``benchmarks/results/kernel-timings.md``).
"""
from __future__ import annotations

import math
from functools import lru_cache
from pathlib import Path

import numba
import numpy as np
import torch
from numba import cuda, prange

from gpuaug.backend import WARP, register_kernel
from gpuaug.kernels._launch import kernel_float, run_numba
from gpuaug.kernels._numba_glue import cuda_entry, grid_1d, jit_cpu, jit_cuda, launch_per_sample

__all__ = ["warp_kernel", "warp_cupy", "launch_cuda", "CUDA_THREADS", "CPU_CHUNK"]


#: Threads per block of the CUDA kernels (one output sample per thread).
CUDA_THREADS = 128
#: Output samples per CPU work item (consecutive samples share the cutoff's trig terms).
CPU_CHUNK = 256

def _warp_point(x, b, c, L, p, f, zeros, ds, dc, wds, wdc):
    """``y[j]`` of the resample module docstring for clip ``b``, channel ``c`` (float64).

    ``x``: ``(B, C, T)`` input; ``L``: valid length; ``p``: position; ``f``: cutoff;
    ``(ds, dc) = (sin, cos)(pi f)`` and ``(wds, wdc) = (sin, cos)(pi f / zeros)``: the
    rotations of ``sin(pi u)`` and of the window angle from one tap to the next.
    """
    h = math.ceil(zeros / f)
    if p < -(h + 1.0) or p > L + h + 1.0:  # every tap outside the clip
        return 0.0
    base = math.floor(p)
    centre = int(base)
    if f == 1.0 and p == base:  # exact unit impulse
        if centre >= 0 and centre < L:
            return numba.float64(x[b, c, centre])
        return 0.0
    first = centre - h
    u = (first - p) * f
    n = math.floor(u + 0.5)
    r = math.pi * (u - n)
    s = math.sin(r)  # sin(pi u)
    cs = math.cos(r)  # cos(pi u)
    if n % 2 != 0:
        s = -s
        cs = -cs
    a = math.pi * u / zeros
    ws = math.sin(a)
    wc = math.cos(a)  # window: 0.5 + 0.5 * cos(pi u / zeros)
    num = 0.0
    den = 0.0
    for i in range(first, centre + h + 1):
        u = (i - p) * f
        if u == 0.0:
            w = 1.0
        elif abs(u) < 0.5:  # the recurrence's absolute error would be amplified by 1 / u
            w = math.sin(math.pi * u) / (math.pi * u) * (0.5 + 0.5 * wc)
        elif abs(u) < zeros:
            w = s / (math.pi * u) * (0.5 + 0.5 * wc)
        else:
            w = 0.0
        den += w
        if i >= 0 and i < L:
            num += w * numba.float64(x[b, c, i])
        s, cs = s * dc + cs * ds, cs * dc - s * ds
        ws, wc = ws * wdc + wc * wds, wc * wdc - ws * wds
    return num / den


_point_cpu = jit_cpu(_warp_point)


@jit_cpu
def _steps_cpu(f, zeros):
    """``(ds, dc, wds, wdc)`` of :func:`_warp_point` for cutoff ``f``: ``(sin, cos)(pi f)`` and
    ``(sin, cos)(pi f / zeros)``, the per-tap rotation steps of the sinc and of the window."""
    return math.sin(math.pi * f), math.cos(math.pi * f), math.sin(math.pi * f / zeros), math.cos(math.pi * f / zeros)
_point_cuda = cuda.jit(device=True)(_warp_point)


@jit_cpu(parallel=True)
def _warp_cpu(x, lengths, pos, fc, new_lengths, out, zeros):
    B, C, t_out = out.shape
    n_chunks = (t_out + CPU_CHUNK - 1) // CPU_CHUNK
    for q in prange(B * n_chunks):
        b = q // n_chunks
        stop = min((q % n_chunks + 1) * CPU_CHUNK, new_lengths[b])
        last_f = -1.0
        ds = dc = wds = wdc = 0.0
        for j in range((q % n_chunks) * CPU_CHUNK, stop):
            f = fc[b, j]
            if f != last_f:
                last_f = f
                ds, dc, wds, wdc = _steps_cpu(f, zeros)
            for c in range(C):
                out[b, c, j] = _point_cpu(x, b, c, lengths[b], pos[b, j], f, zeros, ds, dc, wds, wdc)


@jit_cuda
def _warp_cuda(x, lengths, pos, fc, new_lengths, out, zeros):
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
    f = fc[b, j]
    out[b, c, j] = _point_cuda(x, b, c, lengths[b], pos[b, j], f, zeros, math.sin(math.pi * f),
                               math.cos(math.pi * f), math.sin(math.pi * f / zeros), math.cos(math.pi * f / zeros))


#: The ``@cuda.jit`` kernels and the signatures the wrappers below launch them with (views of
#: C-contiguous tensors, Python ints as int64, floats as float64): compiled by the compile
#: gate (:mod:`gpuaug.kernels._compile_gate`) and by ``auto``'s probe on a GPU.
CUDA_KERNELS = {
    "_warp_cuda": cuda_entry(WARP, CUDA_THREADS, "{f}[:,:,::1], int64[::1], float64[:,::1], float64[:,::1], "
                                                   "int64[::1], {f}[:,:,::1], int64"),
}


def launch_cuda(x, lengths, pos, fc, new_lengths, out, zeros: int, stream=0) -> None:
    """Launch the Numba CUDA kernel on device arrays (or numpy arrays under the simulator).

    Shapes: ``x`` ``(B, C, T)``, ``out`` ``(B, C, T_out)`` (written entirely), ``lengths`` /
    ``new_lengths`` ``(B,)`` int64, ``pos`` / ``fc`` ``(B, T_out)`` float64.
    """
    launch_per_sample(_warp_cuda, out.shape, CUDA_THREADS, stream, x, lengths, pos, fc, new_lengths, out, zeros)


#: NVRTC options of the CuPy module (the compile gate passes the same to nvcc and NVRTC).
CUPY_OPTIONS = ("--std=c++14",)
#: The CUDA C kernels (``__global__``) of each ``.cu`` source: op, threads per block, names.
CUDA_C_KERNELS = {
    "warp_sinc.cu": {"op": WARP, "threads": CUDA_THREADS, "kernels": ("warp_sinc_f32", "warp_sinc_f64"),
                     "options": CUPY_OPTIONS},
}


@lru_cache(maxsize=None)
def _cupy_functions(device_index: int):
    import cupy

    src = Path(__file__).with_name("warp_sinc.cu").read_text()
    with cupy.cuda.Device(device_index):
        module = cupy.RawModule(code=src, options=CUPY_OPTIONS)
        return {torch.float32: module.get_function("warp_sinc_f32"),
                torch.float64: module.get_function("warp_sinc_f64")}


def _probe_cupy(device_index: int) -> None:
    """``auto``'s probe of the CuPy kernels: compile with NVRTC and load them on the device."""
    _cupy_functions(device_index)


def _launch_cupy(x, lengths, pos, fc, new_lengths, out, zeros: int) -> None:
    import cupy

    B, C, T = x.shape
    t_out = out.shape[-1]
    blocks, threads = grid_1d(B * C * t_out, CUDA_THREADS)
    kernel = _cupy_functions(x.device.index)[x.dtype]
    stream = torch.cuda.current_stream(x.device).cuda_stream
    with cupy.cuda.Device(x.device.index), cupy.cuda.ExternalStream(stream):
        args = [cupy.asarray(t) for t in (x, lengths, pos, fc, new_lengths, out)]
        kernel((blocks,), (threads,), (*args, np.int64(B), np.int64(C), np.int64(T), np.int64(t_out),
                                            np.int32(zeros)))


def _warp_tensors(x: torch.Tensor, lengths: torch.Tensor, pos: torch.Tensor, fc: torch.Tensor,
                  new_lengths: torch.Tensor) -> list[torch.Tensor]:
    """The kernels' tensors ``[x, lengths, pos, fc, new_lengths, out]`` (C-contiguous, ``x`` in
    float32 / float64, ``out`` zeros ``(B, C, T_out)`` in ``x``'s compute dtype)."""
    x = kernel_float(x)
    pos, fc = pos.to(torch.float64).contiguous(), fc.to(torch.float64).contiguous()
    out = x.new_zeros(x.shape[0], x.shape[1], pos.shape[1])
    return [x, lengths.contiguous(), pos, fc, new_lengths.contiguous(), out]


@register_kernel(WARP, "numba", "cpu")
@register_kernel(WARP, "numba", "cuda")
def warp_kernel(x: torch.Tensor, lengths: torch.Tensor, pos: torch.Tensor, fc: torch.Tensor,
                new_lengths: torch.Tensor, *, zeros: int) -> torch.Tensor:
    """The Numba kernel (``@njit`` on CPU tensors, ``@cuda.jit`` on CUDA tensors) on checked
    inputs; returns ``(B, C, T_out)``.

    Args:
        x: ``(B, C, T)`` float input (not modified; no autograd). Other float dtypes than
            float32 / float64 are computed in float32 and cast back.
        lengths, new_lengths: ``(B,)`` int64 valid input / output samples.
        pos, fc: ``(B, T_out)`` float64 positions (input samples) and cutoffs (fraction of the
            input Nyquist frequency) of every output sample, finite on the valid ones.
        zeros: sinc zero crossings per side.

    Output padding (``j >= new_lengths``) is zero; everything stays on ``x``'s device.
    """
    tensors = _warp_tensors(x, lengths, pos, fc, new_lengths)
    out = tensors[-1]
    if out.numel():
        run_numba(_warp_cpu, launch_cuda, tensors, zeros)
    return out.to(x.dtype)


@register_kernel(WARP, "cupy", "cuda", auto_rank=1, probe=_probe_cupy)
def warp_cupy(x: torch.Tensor, lengths: torch.Tensor, pos: torch.Tensor, fc: torch.Tensor,
              new_lengths: torch.Tensor, *, zeros: int) -> torch.Tensor:
    """The CUDA C kernel (``warp_sinc.cu`` through CuPy, CUDA tensors): :func:`warp_kernel`'s
    arguments and result."""
    tensors = _warp_tensors(x, lengths, pos, fc, new_lengths)
    out = tensors[-1]
    if out.numel():
        _launch_cupy(*tensors, zeros)
    return out.to(x.dtype)
