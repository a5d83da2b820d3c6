"""Fused SNR mix: kernels of :func:`gpuaug.functional.noise.mix_noise` / ``mix_noise_from_bank``.

One CPU pass per clip (powers, gain, mix), the noise read straight from a flat noise store
(no gathered ``(B, Tn)`` copy).

Noise layout: ``noise`` is ``(Cn, S)`` (``Cn`` 1 or the wave's ``C``), every channel a flat
store of samples; clip ``b``'s noise is ``noise[:, base[b] : base[b] + nlen[b]]``. A ragged
bank (:class:`gpuaug.banks.Bank`) is ``audio[None]`` with ``base = offsets[index]``; a
``(B, Cn, Tn)`` noise batch is ``(Cn, B * Tn)`` with ``base[b] = b * Tn``; a padded
``(N, Tb)`` bank is ``(1, N * Tb)`` with ``base = index * Tb``.

:func:`mix_fused` computes, per clip, the signal's mean power over its valid samples and all
channels and the enveloped noise's mean power over the active span (noise looped / cropped
from clip ``b``'s noise starting at ``offset``, linear fade at the span end), both in float64;
the gain ``sqrt(p_signal / (p_noise * 10 ** (snr_db / 10)))`` (:func:`_gain`, the formula of
``gpuaug.functional.noise._snr_gain`` operation for operation); and ``out = wave +
cast(gain * envelope * noise)`` on the span of the clips whose SNR is defined. Every other
valid sample is copied (silent / undefined-SNR clips pass through bit-identical), padding is
zero. It returns the powers too, so callers need no separate power pass (``AddNoise`` records
``silent_passthrough`` from ``p_signal``).

* CPU: one ``@njit`` pass per clip (``prange`` over clips, :func:`_fused_clip`): sweep 1 the
  two powers, the gain, sweep 2 the mix. The noise is read in contiguous runs between its
  wrap-arounds (no modulo per sample), the envelope split into a flat part and the fade ramp,
  the sums of squares are reassociated and vectorised
  (:func:`gpuaug.kernels.row_reduce.sumsq`) and the finiteness of the mixed samples is one
  integer max of their bit patterns (:func:`~gpuaug.kernels.row_reduce.abs_bits_max`). Difference to the previous
  two-kernel CPU path (one accumulator, powers and mix as two launches with the gain computed
  by torch between them): only the order of the float64 additions of the powers (relative
  differences ~1e-14 on 24 000-sample clips, bounded by ``n * 2**-53``), so the float64
  gain moves by about as much and the cast noise term
  ``cast(gain * env * noise)`` by at most one ulp of the output dtype:
  ``|new - previous| <= 2**-23 * (|noise term| + |out|)`` per float32 sample (float64:
  ``1e-13`` of the same), asserted in ``tests/test_kernels_snr_mix.py`` (measured on 8 s
  clips: <= 6e-8 of the clip's peak in float32). The envelope, the noise indexing and the
  mixing formula are unchanged operation for operation.
* CUDA: two launches on torch's stream, kept from before: :func:`launch_powers_cuda` (one
  block per clip, shared-memory tree reduction) then :func:`launch_mix_cuda` (one thread
  per sample), which now derives the gain from the powers itself (:func:`_gain`) instead of
  receiving it from torch: no torch ops between the launches. The per-sample noise term is
  the same device function (:func:`_shaped`) as before.

Registered (:func:`gpuaug.backend.register_kernel`): :func:`mix_fused` as op ``mix_noise``,
``("numba", "cpu", 0)`` and ``("numba", "cuda", 0)``; the CPU kernel
measured faster than torch (``benchmarks/results/kernel-timings.md``). Launches go through
:func:`gpuaug.kernels._launch.run_numba`.
"""
from __future__ import annotations

import math

import numba
import torch
from numba import cuda, prange

from gpuaug.backend import MIX_NOISE, register_kernel
from gpuaug.kernels._launch import kernel_float
from gpuaug.kernels._launch import run_numba as _run  # (a module global: test_compile_gate swaps it)
from gpuaug.kernels._numba_glue import cuda_entry, jit_cpu, jit_cuda, launch_per_sample
from gpuaug.kernels.row_reduce import abs_bits_max, finite_bits, sumsq

__all__ = ["mix_fused", "launch_cuda", "launch_powers_cuda", "launch_mix_cuda", "CUDA_THREADS"]

#: Threads per block (the powers kernel reduces over one block per clip).
CUDA_THREADS = 128

#: Smallest normal float64 (``torch.finfo(torch.float64).tiny``, the clamp of ``_snr_gain``).
_TINY = 2.2250738585072014e-308

def _shaped(noise, base, cn, i, t, end, fade):
    """Enveloped noise ``env(t) * noise[cn, base + i]`` (float64) at clip sample ``t`` of the span
    (``base``: the clip's first noise sample in the flat store, ``i``: its noise index)."""
    env = 1.0
    if fade > 0 and end - 1 - t < fade:
        env = (end - 1 - t) / fade
    return env * numba.float64(noise[cn, base + i])


def _noise_index(offset, t, start, nlen):
    """``(offset + t - start) mod nlen`` in ``[0, nlen)``."""
    i = (offset + t - start) % nlen
    if i < 0:
        i += nlen
    return i


def _gain(p_signal, p_noise, scale):
    """The noise gain ``sqrt(p_signal / (p_noise * scale))`` (``scale = 10 ** (snr_db / 10)``),
    or ``-1.0`` where the SNR is undefined (``p_signal`` or ``p_noise`` not > 0, NaN included):
    the formula of ``gpuaug.functional.noise._snr_gain``, operation for operation (bit-identical)."""
    if p_signal > 0 and p_noise > 0:
        return math.sqrt(p_signal / (max(p_noise, _TINY) * scale))
    return -1.0


_index_cpu = jit_cpu(_noise_index)
_shaped_cuda = cuda.jit(device=True)(_shaped)
_index_cuda = cuda.jit(device=True)(_noise_index)
_gain_cpu = jit_cpu(_gain)
_gain_cuda = cuda.jit(device=True)(_gain)


# ------------------------------------------------------------------------------- CPU (njit)


@jit_cpu(fastmath={"reassoc"})
def _faded_sumsq(x, lo, hi, t0, end, fade):
    """``sum((env(t) * x[j]) ** 2)`` over ``j`` in ``[lo, hi)``, clip sample ``t = t0 + j - lo``
    in the fade (``env(t) = (end - 1 - t) / fade``); reassociated as :func:`~gpuaug.kernels.row_reduce.sumsq`."""
    acc = 0.0
    for j in range(lo, hi):
        v = (end - 1 - (t0 + j - lo)) / fade * numba.float64(x[j])
        acc += v * v
    return acc


@jit_cpu
def _mix_flat(w, noise, out, g):
    """``out[k] = cast(g * noise[k]); out[k] += w[k]`` over equal-length slices (vectorised:
    written over whole slices, the loop has no index arithmetic that hides its stride)."""
    for k in range(out.shape[0]):
        out[k] = g * numba.float64(noise[k])  # cast, then add (as the torch path)
        out[k] += w[k]


@jit_cpu
def _mix_faded(w, noise, out, g, t0, end, fade):
    """:func:`_mix_flat` times the fade ramp ``(end - 1 - t) / fade`` at clip sample ``t = t0 + k``."""
    for k in range(out.shape[0]):
        out[k] = g * ((end - 1 - (t0 + k)) / fade * numba.float64(noise[k]))
        out[k] += w[k]


@jit_cpu
def _mix_run(w, noise, out, lo, hi, j0, g, end, fade, f0):
    """``out[t] = cast(g * env(t) * noise[j0 + t - lo]); out[t] += w[t]`` for ``t`` in
    ``[lo, hi)``, one contiguous run of the noise (no wrap inside); ``env`` is 1 before ``f0``
    and the fade ramp from ``f0`` on (``f0 >= hi``: no fade in the run). Returns 0 when every
    written sample is finite, NaN otherwise."""
    mid = min(max(f0, lo), hi)
    d = j0 - lo
    _mix_flat(w[lo:mid], noise[lo + d:mid + d], out[lo:mid], g)
    _mix_faded(w[mid:hi], noise[mid + d:hi + d], out[mid:hi], g, mid, end, fade)
    # the check in its own sweep: the largest bit pattern of |out| (one vectorised integer max,
    # :mod:`gpuaug.kernels.row_reduce`); inside the mix loop it slowed the whole run 1.6x
    return 0.0 if finite_bits(out, abs_bits_max(out, lo, hi)) else math.nan


@jit_cpu
def _fused_clip(w, L, noise, base, nlen, offset, start, begin, end, fade, scale, out):
    """One clip ``w`` ``(C, T)`` into ``out``: sweep 1 the powers, then the gain, sweep 2 the
    mix (or the copy); returns ``(p_signal, p_noise, chk)`` (``chk``: 0 when the mixed samples
    are finite, NaN otherwise; the copied ones are the checked input). The noise is read in contiguous runs
    ``noise[cn, base + i : base + nlen]`` between its wrap-arounds (no modulo per sample)."""
    C = w.shape[0]
    Cn = noise.shape[0]
    acc = 0.0
    for c in range(C):
        acc += sumsq(w[c], 0, L)
    p_signal = acc / max(L * C, 1)
    f0 = end - fade if fade > 0 else end  # first faded sample (the fade may start before begin)
    i0 = _index_cpu(offset, begin, start, nlen)
    acc = 0.0
    for cn in range(Cn):
        t, i = begin, i0
        while t < end:
            r = min(end, t + nlen - i)  # the run up to the next wrap (or the span end)
            m = min(max(f0, t), r)
            acc += sumsq(noise[cn], base + i, base + i + m - t)
            if m < r:
                acc += _faded_sumsq(noise[cn], base + i + m - t, base + i + r - t, m, end, fade)
            i += r - t
            if i == nlen:
                i = 0
            t = r
    p_noise = acc / max((end - begin) * Cn, 1)
    g = _gain_cpu(p_signal, p_noise, scale)
    lo = begin if g >= 0.0 else L  # g < 0: SNR undefined, the clip is copied
    hi = end if g >= 0.0 else L
    chk = 0.0
    for c in range(C):
        wc, oc = w[c], out[c]
        oc[:lo] = wc[:lo]
        nc = noise[c if Cn > 1 else 0]
        t, i = lo, i0
        while t < hi:
            r = min(hi, t + nlen - i)
            chk += _mix_run(wc, nc, oc, t, r, base + i, g, hi, fade, f0)
            i += r - t
            if i == nlen:
                i = 0
            t = r
        oc[hi:L] = wc[hi:L]
        oc[L:] = 0.0
    return p_signal, p_noise, chk


@jit_cpu(parallel=True, twin=True)
def _fused_cpu(w, lengths, noise, base, nlen, offset, start, begin, end, fade, scale, p_signal, p_noise, out,
               finite):
    for b in prange(w.shape[0]):
        p_signal[b], p_noise[b], finite[b] = _fused_clip(w[b], lengths[b], noise, base[b], nlen[b], offset[b], start[b],
                                              begin[b], end[b], fade[b], scale[b], out[b])


@jit_cpu(parallel=True, twin=True)
def _fused_rows_cpu(w, clips, others, lengths, noise, base, nlen, offset, start, begin, end, fade, scale, p_signal,
                    p_noise, out, finite):
    """:func:`_fused_cpu` of rows ``clips`` of the batch ``w`` into the same rows of ``out``
    (per-clip values indexed by position in ``clips``), and rows ``others`` copied unchanged."""
    G = clips.shape[0]
    for q in prange(G + others.shape[0]):
        if q < G:
            b = clips[q]
            p_signal[q], p_noise[q], finite[q] = _fused_clip(w[b], lengths[q], noise, base[q], nlen[q], offset[q],
                                                             start[q], begin[q], end[q], fade[q], scale[q], out[b])
        else:
            b = others[q - G]
            for c in range(w.shape[1]):
                out[b, c, :] = w[b, c, :]


# ------------------------------------------------------------------------------- CUDA


@jit_cuda
def _powers_cuda(w, lengths, noise, base, nlen, offset, start, begin, end, fade, p_signal, p_noise):
    b = cuda.blockIdx.x
    tid = cuda.threadIdx.x
    C = w.shape[1]
    Cn = noise.shape[0]
    L = lengths[b]
    n = end[b] - begin[b]
    sig = cuda.shared.array(CUDA_THREADS, numba.float64)
    noi = cuda.shared.array(CUDA_THREADS, numba.float64)
    acc = 0.0
    for k in range(tid, C * L, CUDA_THREADS):
        v = numba.float64(w[b, k // L, k % L])
        acc += v * v
    acc_n = 0.0
    for k in range(tid, Cn * n, CUDA_THREADS):
        t = begin[b] + k % n
        i = _index_cuda(offset[b], t, start[b], nlen[b])
        v = _shaped_cuda(noise, base[b], k // n, i, t, end[b], fade[b])
        acc_n += v * v
    sig[tid] = acc
    noi[tid] = acc_n
    cuda.syncthreads()
    s = CUDA_THREADS // 2
    while s > 0:
        if tid < s:
            sig[tid] += sig[tid + s]
            noi[tid] += noi[tid + s]
        cuda.syncthreads()
        s //= 2
    if tid == 0:
        p_signal[b] = sig[0] / (C * L) if L > 0 else 0.0
        p_noise[b] = noi[0] / (Cn * n) if n > 0 else 0.0


@jit_cuda
def _mix_cuda(w, lengths, noise, base, nlen, offset, start, begin, end, fade, p_signal, p_noise, scale, out):
    B, C, T = w.shape
    q = cuda.grid(1)
    if q >= B * C * T:
        return
    t = q % T
    c = (q // T) % C
    b = q // (C * T)
    if t >= lengths[b]:
        out[b, c, t] = 0.0
        return
    g = _gain_cuda(p_signal[b], p_noise[b], scale[b])  # per thread: two float64 ops, no extra launch
    if g >= 0.0 and t >= begin[b] and t < end[b]:
        cn = c if noise.shape[0] > 1 else 0
        i = _index_cuda(offset[b], t, start[b], nlen[b])
        out[b, c, t] = g * _shaped_cuda(noise, base[b], cn, i, t, end[b], fade[b])  # cast, then add
        out[b, c, t] += w[b, c, t]
    else:
        out[b, c, t] = w[b, c, t]


#: The ``@cuda.jit`` kernels and the signatures the wrappers below launch them with (views of
#: C-contiguous tensors, Python ints as int64, floats as float64): compiled by the compile
#: gate (:mod:`gpuaug.kernels._compile_gate`) and by ``auto``'s probe on a GPU.
#: The noise store's dtype ``{g}`` is independent of the wave's ``{f}`` (both read as float64);
#: the noise is the flat ``(Cn, S)`` store of the module docstring, ``base`` .. ``fade`` per clip.
_CLIPS = "{f}[:,:,::1], int64[::1], {g}[:,::1], " + ", ".join(["int64[::1]"] * 7)  # w, lengths, noise, base .. fade
CUDA_KERNELS = {
    "_powers_cuda": cuda_entry(MIX_NOISE, CUDA_THREADS, _CLIPS + ", float64[::1], float64[::1]"),
    "_mix_cuda": cuda_entry(MIX_NOISE, CUDA_THREADS, _CLIPS + ", float64[::1], float64[::1], float64[::1], {f}[:,:,::1]"),
}


def launch_powers_cuda(w, lengths, noise, base, nlen, offset, start, begin, end, fade, p_signal, p_noise,
                       stream=0) -> None:
    """Pass 1 on device arrays (or numpy arrays under the simulator): one block per clip.

    Shapes: ``w`` ``(B, C, T)``, ``noise`` ``(Cn, S)`` (the flat store of the module docstring);
    the per-clip int64 arrays (``base`` first noise sample of each clip) and the float64
    outputs ``p_signal`` / ``p_noise`` are ``(B,)``.
    """
    if w.shape[0]:
        _powers_cuda[w.shape[0], CUDA_THREADS, stream](w, lengths, noise, base, nlen, offset, start, begin, end,
                                                       fade, p_signal, p_noise)


def launch_mix_cuda(w, lengths, noise, base, nlen, offset, start, begin, end, fade, p_signal, p_noise, scale, out,
                    stream=0) -> None:
    """Pass 2 on device / numpy arrays: one thread per sample; ``out`` ``(B, C, T)`` written entirely.

    ``p_signal`` / ``p_noise``: float64 ``(B,)`` from pass 1; ``scale`` float64 ``(B,)``
    ``10 ** (snr_db / 10)``. Each thread derives its clip's gain (:func:`_gain`; undefined SNR:
    the clip is copied unchanged).
    """
    launch_per_sample(_mix_cuda, w.shape, CUDA_THREADS, stream, w, lengths, noise, base, nlen, offset, start, begin,
                      end, fade, p_signal, p_noise, scale, out)


def launch_cuda(w, lengths, noise, base, nlen, offset, start, begin, end, fade, scale, p_signal, p_noise, out,
                finite=None, stream=0) -> None:
    """Both passes on ``stream`` (the CUDA side of :func:`mix_fused`, same arguments; ``finite``
    is not written: the caller checks ``out`` itself)."""
    launch_powers_cuda(w, lengths, noise, base, nlen, offset, start, begin, end, fade, p_signal, p_noise, stream=stream)
    launch_mix_cuda(w, lengths, noise, base, nlen, offset, start, begin, end, fade, p_signal, p_noise, scale, out,
                    stream=stream)


def _prepare(w, lengths, noise, base, nlen, offset, start, begin, end, fade) -> list[torch.Tensor]:
    if noise.dim() != 2:
        raise ValueError(f"noise must be the flat (Cn, S) store, got shape {tuple(noise.shape)}")
    ints = [v.to(torch.int64).contiguous() for v in (lengths, base, nlen, offset, start, begin, end, fade)]
    return [kernel_float(w), ints[0], kernel_float(noise), *ints[1:]]


@register_kernel(MIX_NOISE, "numba", "cpu")
@register_kernel(MIX_NOISE, "numba", "cuda")
def mix_fused(w, lengths, noise, base, nlen, offset, start, begin, end, fade, scale, *, rows=None):
    """Powers, gain and mix: ``(out, p_signal, p_noise, finite)``.

    ``rows`` (CPU only): a host int64 ``(G,)`` tensor of distinct rows of ``w`` to mix, the
    per-clip arguments and results then having ``G`` entries (entry ``i`` for row
    ``rows[i]``): ``out`` is the whole ``(B, C, T)`` batch, those rows mixed and the others
    copied unchanged, read and written in place of a gather and a merge.

    ``out`` the mixed ``(B, C, T)`` wave in ``w``'s dtype (padding zero; clips whose SNR is
    undefined copied bit-identical); ``p_signal`` / ``p_noise`` float64 ``(B,)`` mean powers
    (module docstring). ``finite``: CPU with a float32 / float64 ``w`` only (else None), a
    ``(B,)`` tensor in ``w``'s dtype, 0 where clip ``b``'s mixed samples are all finite and NaN
    otherwise (computed in the mix sweep: the caller need not scan ``out``; the copied samples
    are the caller's checked input). No host sync.

    Args (``@njit`` on CPU tensors, ``@cuda.jit`` on CUDA tensors):
        w: ``(B, C, T)`` float wave; lengths: ``(B,)`` valid samples.
        noise: ``(Cn, S)`` flat noise store (``Cn`` 1 or ``C``) on ``w``'s device (module docstring).
        base: ``(B,)`` int64 first sample of each clip's noise in ``noise``; nlen: ``(B,)`` its
            valid length (>= 1, ``base + nlen <= S``).
        offset, start: noise offset and span start (the noise phase anchor) per clip.
        begin, end: the clipped span ``[begin, end)`` (``0 <= begin <= end <= L``).
        fade: fade-out length at the span end (0: none).
        scale: ``(B,)`` float64 ``10 ** (snr_db / 10)``.
    """
    args = _prepare(w, lengths, noise, base, nlen, offset, start, begin, end, fade)
    p_signal = torch.empty(lengths.shape[0], dtype=torch.float64, device=w.device)
    p_noise = torch.empty_like(p_signal)
    out = torch.empty_like(args[0])
    finite = torch.zeros_like(p_signal, dtype=out.dtype)
    scale = scale.to(torch.float64).contiguous()
    if rows is None:
        _run(_fused_cpu, launch_cuda, args + [scale, p_signal, p_noise, out, finite])
    else:
        if w.device.type == "cuda":
            raise ValueError("mix_fused: rows= is for CPU tensors (on CUDA, mix a gathered batch)")
        keep = torch.ones(w.shape[0], dtype=torch.bool)
        keep[rows] = False
        _run(_fused_rows_cpu, None, [args[0], rows.to(torch.int64).contiguous(), keep.nonzero().flatten(), *args[1:],
                                     scale, p_signal, p_noise, out, finite])
    exact = w.device.type != "cuda" and out.dtype == w.dtype  # float16: the cast below may still overflow
    return out.to(w.dtype), p_signal, p_noise, finite if exact else None
