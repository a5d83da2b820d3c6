"""Gain and fades as elementwise kernels: :func:`gpuaug.functional.gain.gain` and
:func:`gpuaug.functional.fade.fade`.

One pass over the wave, no ``(B, T)`` gain table: CUDA runs one thread per sample, the CPU a
``prange`` over clips x channels with a sequential inner loop over time. The same arithmetic
as the torch path, in the same order and dtype:

* gain: ``out = wave * factor`` with ``factor`` the per-clip ``10 ** (gain_db / 20)``
  already cast to the wave's dtype (by the op), padding set to zero. The kernel also flags,
  per clip, whether any product (padding included, as the torch path's ``isfinite`` check
  sees it) is not finite, so the op's shared overflow check needs no second pass.
* fade: the float64 gain :func:`_fade_gain` (linear ``clamp(1 - rate * s, 0, 1)`` or
  exponential ``(1 - rate) ** s`` with ``s`` the seconds since the full-gain end), cast to the
  wave's dtype and multiplied with the sample. The exponential shape evaluates ``pow`` per
  sample as torch does (results may differ from torch's vectorised ``pow`` by one float64 ulp
  before the cast).

On a GPU the compiler may fuse the linear fade's multiply-add (FMA): within one float64 ulp.
float16 / bfloat16 waves are computed in float32 and cast back; the gain flags a product
that rounds to Inf in the wave's dtype (:func:`overflow_limit`).

CPU launches run under :data:`gpuaug.kernels._numba_glue.CPU_LOCK` (fork safety), through
:func:`gpuaug.kernels._launch.run_numba`.

Registered (:func:`gpuaug.backend.register_kernel`): :func:`gain_kernel` as op ``gain`` and
:func:`fade_kernel` as op ``fade``, each ``("numba", "cpu", 0)`` and ``("numba", "cuda", 0)``
(the CPU kernels measured faster than torch: ``benchmarks/results/kernel-timings.md``).
"""
from __future__ import annotations

import math

import numba
import torch
from numba import cuda, prange

from gpuaug.backend import FADE, GAIN, register_kernel
from gpuaug.kernels._launch import kernel_float, run_numba
from gpuaug.kernels._numba_glue import cuda_entry, jit_cpu, jit_cuda, launch_per_sample

__all__ = ["gain_kernel", "fade_kernel", "overflow_limit", "launch_gain_cuda", "launch_fade_cuda",
           "FADE_SHAPE_CODES", "CUDA_THREADS", "check_fade_samples"]

#: Threads per block (one sample per thread).
CUDA_THREADS = 256
#: Kernel code of each fade shape of :data:`gpuaug.functional.fade.FADE_SHAPES`.
FADE_SHAPE_CODES = {"linear": 0, "exponential": 1}
#: The fade kernels count samples in int32 (:func:`_fade_gain`): clips must be shorter.
FADE_MAX_SAMPLES = 2**31 - 1


def check_fade_samples(T: int, op: str) -> None:
    """Raise ``ValueError`` (naming ``op``) for clips of ``T`` samples the fade kernels cannot count."""
    if T > FADE_MAX_SAMPLES:
        raise ValueError(f"{op}: the fade kernels take clips of at most {FADE_MAX_SAMPLES} samples, got {T}")

def _fade_gain(n, L, rate, direc, sample_rate, shape):
    """Fade gain (float64) of valid sample ``n`` of a clip of ``L`` samples (see ``fade``).

    ``direc``: +1 fade in, -1 fade out, 0 none; ``shape``: 0 linear, 1 exponential.
    """
    if direc == 0:
        return 1.0
    # samples since the full-gain end, as int32 (exact: clips hold < 2**31 samples, checked by the
    # launchers): int32 -> float64 converts in SIMD lanes (int64 does not before AVX-512), so the
    # CPU loops vectorise (0.19 -> 0.12 ms per 8 s clip, benchmarks/results/kernel-timings.md)
    m = numba.int32(L - 1 - n if direc > 0 else n)
    secs = m / sample_rate
    if shape == 0:  # min(max(g, 0), 1) written as selects: the CPU loops vectorise (same values)
        g = 1.0 - rate * secs
        g = g if g > 0.0 else 0.0
        return g if g < 1.0 else 1.0
    return (1.0 - rate) ** secs


_fade_gain_cpu = jit_cpu(_fade_gain)
_fade_gain_cuda = cuda.jit(device=True)(_fade_gain)


# ------------------------------------------------------------------------------- CPU (njit)


@jit_cpu(parallel=True, twin=True)
def _gain_cpu(w, lengths, factor, out, over, limit):
    B, C, T = w.shape
    for q in prange(B * C):
        b = q // C
        c = q % C
        L = lengths[b]
        f = factor[b]
        bad = False
        for t in range(L):
            v = w[b, c, t] * f
            out[b, c, t] = v
            bad |= not abs(v) < limit
        for t in range(L, T):
            bad |= not abs(w[b, c, t] * f) < limit
            out[b, c, t] = 0.0
        if bad:
            over[b] = 1


@jit_cpu
def fade_row(x, y, L, rate, direc, sample_rate, shape):
    """``y[t] = cast(fade gain of sample t of L); y[t] *= x[t]`` over the slices ``x``, ``y`` of
    one row's valid samples (1-D: the loop vectorises)."""
    for t in range(y.shape[0]):
        y[t] = _fade_gain_cpu(t, L, rate, direc, sample_rate, shape)  # cast, then multiply
        y[t] *= x[t]


@jit_cpu(parallel=True, twin=True)
def _fade_cpu(w, lengths, rate, direc, out, sample_rate, shape):
    B, C, _ = w.shape
    for q in prange(B * C):
        b = q // C
        c = q % C
        L = lengths[b]
        fade_row(w[b, c, :L], out[b, c, :L], L, rate[b], direc[b], sample_rate, shape)
        out[b, c, L:] = 0.0


# ------------------------------------------------------------------------------- CUDA


@jit_cuda
def _gain_cuda(w, lengths, factor, out, over, limit):
    B, C, T = w.shape
    q = cuda.grid(1)
    if q >= B * C * T:
        return
    t = q % T
    c = (q // T) % C
    b = q // (C * T)
    v = w[b, c, t] * factor[b]
    if not abs(v) < limit:
        over[b] = 1
    if t < lengths[b]:
        out[b, c, t] = v
    else:
        out[b, c, t] = 0.0


@jit_cuda
def _fade_cuda(w, lengths, rate, direc, out, sample_rate, shape):
    B, C, T = w.shape
    q = cuda.grid(1)
    if q >= B * C * T:
        return
    t = q % T
    c = (q // T) % C
    b = q // (C * T)
    L = lengths[b]
    if t < L:
        out[b, c, t] = _fade_gain_cuda(t, L, rate[b], direc[b], sample_rate, shape)  # cast, then multiply
        out[b, c, t] *= w[b, c, t]
    else:
        out[b, c, t] = 0.0


#: The ``@cuda.jit`` kernels and the signatures the wrappers below launch them with (views of
#: C-contiguous tensors, Python ints as int64, floats as float64): compiled by the compile
#: gate (:mod:`gpuaug.kernels._compile_gate`) and by ``auto``'s probe on a GPU.
CUDA_KERNELS = {
    "_gain_cuda": cuda_entry(GAIN, CUDA_THREADS,
                             "{f}[:,:,::1], int64[::1], {f}[::1], {f}[:,:,::1], uint8[::1], float64"),
    "_fade_cuda": cuda_entry(FADE, CUDA_THREADS,
                             "{f}[:,:,::1], int64[::1], float64[::1], int64[::1], {f}[:,:,::1], float64, int64"),
}


def launch_gain_cuda(w, lengths, factor, out, over, limit, stream=0) -> None:
    """Gain on device arrays (or numpy arrays under the simulator), one thread per sample.

    Shapes: ``w`` / ``out`` ``(B, C, T)`` (``out`` written entirely), ``lengths`` int64 ``(B,)``,
    ``factor`` ``(B,)`` in ``w``'s dtype, ``over`` uint8 ``(B,)`` zeros on entry (set to 1 where a
    product's magnitude is not below ``limit``).
    """
    launch_per_sample(_gain_cuda, w.shape, CUDA_THREADS, stream, w, lengths, factor, out, over, limit)


def launch_fade_cuda(w, lengths, rate, direc, out, sample_rate, shape, stream=0) -> None:
    """Fade on device / numpy arrays, one thread per sample; ``out`` ``(B, C, T)`` written entirely.

    ``rate`` float64 ``(B,)``, ``direc`` int64 ``(B,)``, ``sample_rate`` float, ``shape`` a
    :data:`FADE_SHAPE_CODES` value.
    """
    launch_per_sample(_fade_cuda, w.shape, CUDA_THREADS, stream, w, lengths, rate, direc, out, sample_rate, shape)


# ------------------------------------------------------------------------------- torch entry points


def overflow_limit(dtype: torch.dtype) -> float:
    """Smallest magnitude that rounds to Inf in ``dtype`` (``inf`` for float32 / float64).

    float16 / bfloat16 products are computed exactly in float32 (their mantissas are short),
    so a float32 product ``v`` overflows the dtype iff ``|v| >= overflow_limit(dtype)``.
    """
    if dtype in (torch.float32, torch.float64):
        return math.inf
    fi = torch.finfo(dtype)
    top = fi.max / (2.0 - fi.eps)  # 2 ** max_exponent
    return fi.max + fi.eps * top / 2.0  # half an ulp above the largest finite value


@register_kernel(GAIN, "numba", "cpu")
@register_kernel(GAIN, "numba", "cuda")
def gain_kernel(w: torch.Tensor, lengths: torch.Tensor, factor: torch.Tensor):
    """``(out, overflow)``: ``w * factor`` per clip with zero padding, and a ``(B,)`` bool flag.

    Args (``@njit`` on CPU tensors, ``@cuda.jit`` on CUDA tensors):
        w: ``(B, C, T)`` float wave; lengths: ``(B,)`` int64 valid samples.
        factor: ``(B,)`` linear gains already cast to ``w``'s dtype.

    ``overflow[b]`` is True where some product of clip ``b`` (padding included) is not
    finite in ``w``'s dtype; ``out`` has ``w``'s shape, dtype and device.
    """
    x = kernel_float(w)
    f = factor.to(w.dtype).to(x.dtype).contiguous()  # the torch path's rounding of the factor
    out = torch.empty_like(x)
    over = torch.zeros(x.shape[0], dtype=torch.uint8, device=x.device)
    if x.numel():
        tensors = [x, lengths.to(torch.int64).contiguous(), f, out, over]
        run_numba(_gain_cpu, launch_gain_cuda, tensors, overflow_limit(w.dtype))
    return out.to(w.dtype), over.bool()


@register_kernel(FADE, "numba", "cpu")
@register_kernel(FADE, "numba", "cuda")
def fade_kernel(w: torch.Tensor, lengths: torch.Tensor, rate: torch.Tensor, direction: torch.Tensor, *,
                sample_rate: float, shape: str) -> torch.Tensor:
    """The faded ``(B, C, T)`` wave (zero padding) on ``w``'s device and dtype.

    Args (``@njit`` on CPU tensors, ``@cuda.jit`` on CUDA tensors):
        w: ``(B, C, T)`` float wave; lengths: ``(B,)`` int64 valid samples.
        rate: ``(B,)`` fraction of full amplitude per second (float64).
        direction: ``(B,)`` int64: +1 fade in, -1 fade out, 0 unchanged.
        sample_rate: Hz; shape: ``linear`` | ``exponential``.
    """
    check_fade_samples(w.shape[-1], "fade")
    x = kernel_float(w)
    out = torch.empty_like(x)
    if x.numel():
        ints = [v.to(torch.int64).contiguous() for v in (lengths, direction)]
        tensors = [x, ints[0], rate.to(torch.float64).contiguous(), ints[1], out]
        run_numba(_fade_cpu, launch_fade_cuda, tensors, float(sample_rate), FADE_SHAPE_CODES[shape])
    return out.to(w.dtype)
