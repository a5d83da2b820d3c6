"""Segment insert and drop as gather kernels: :func:`gpuaug.functional.insert.insert_clip` and
:func:`gpuaug.functional.drop.drop_segments`.

Every output sample finds its source directly from small per-clip tables that the functional
op prepares in torch, instead of ``(B, T_out)`` index and weight maps:

* insert, ``(B,)`` tables: clamped position ``p``, silences, clip length, edge-fade length and
  new length. Output ``j`` reads ``wave[j]`` (``j < p``), ``clip[j - c0] * edge_gain``
  (``c0 <= j < c0 + cl``), ``wave[j - (a1 - p)]`` (``a1 <= j < new length``) or is zero
  (``c0 = p + silence_before``, ``a1 = c0 + cl + silence_after``). The raised-cosine edge gain
  :func:`_edge_gain` is the torch path's, in float64, cast to the wave's dtype.
* drop, ``(B, P)`` tables (``P = K + 1`` slots, the kept pieces first, in time order, then
  empty slots): source start, length, overlap ``x`` with the next piece and output start of
  every piece. Output ``j`` belongs to the last piece ``i`` starting at or before it; at
  offset ``k < x_{i-1}`` it is the crossfade
  ``cast(1 - w_k) * tail_of_piece_{i-1} + cast(w_k) * piece_i[k]`` with
  ``w_k = (k + 1) / (x + 1)`` (:func:`_blend`, the torch path's operation order), otherwise
  the copy ``piece_i[k]``.

Copies are exact; with ``crossfade = 0`` / ``edge_fade = 0`` the output is bit-identical to
the torch path (on a GPU the compiler may fuse the crossfade's multiply-add: within an ulp). CUDA: one thread per output sample (drop: binary search over the pieces);
CPU: a ``prange`` over clips x channels writing each segment with a sequential loop.
float16 / bfloat16 waves are computed in float32 and cast back.

CPU launches run under :data:`gpuaug.kernels._numba_glue.CPU_LOCK` (fork safety), through
:func:`gpuaug.kernels._launch.run_numba`.

Registered (:func:`gpuaug.backend.register_kernel`): :func:`insert_kernel` as op
``insert_clip`` and :func:`drop_kernel` as op ``drop_segments``, each ``("numba", "cpu", 0)``
and ``("numba", "cuda", 0)``; the CPU kernels
measured faster than torch (``benchmarks/results/kernel-timings.md``).
"""
from __future__ import annotations

import math

import torch
from numba import cuda, prange
from numba.extending import register_jitable

from gpuaug.backend import DROP_SEGMENTS, INSERT_CLIP, register_kernel
from gpuaug.kernels._launch import kernel_float, run_numba
from gpuaug.kernels._numba_glue import cuda_entry, jit_cpu, jit_cuda, launch_per_sample

__all__ = ["insert_kernel", "drop_kernel", "launch_insert_cuda", "launch_drop_cuda", "CUDA_THREADS"]

#: Threads per block (one output sample per thread).
CUDA_THREADS = 256

@register_jitable
def _ramp(i, edge):
    """Raised-cosine ramp ``sin^2(pi / 2 * (i + 0.5) / edge)`` for ``i < edge``, else 1 (float64)."""
    if i < edge:
        s = math.sin(0.5 * math.pi * (i + 0.5) / edge)
        return s * s
    return 1.0


@register_jitable
def _edge_gain(k, n, edge):
    """Edge gain of sample ``k`` of an inserted clip of ``n`` samples (fade in times fade out)."""
    return _ramp(k, edge) * _ramp(n - 1 - k, edge)


@register_jitable
def _blend(w, out, b, c, j, tail, head, k, x):
    """``out[b, c, j] = cast(1 - w_k) * w[b, c, tail] + cast(w_k) * w[b, c, head]`` in ``out``'s dtype.

    ``w_k = (k + 1) / (x + 1)`` (float64) is the fade-in weight of the head sample.
    """
    wk = (k + 1) / (x + 1)
    out[b, c, j] = wk  # cast to the dtype
    fade_in = out[b, c, j] * w[b, c, head]
    out[b, c, j] = 1.0 - wk
    out[b, c, j] = out[b, c, j] * w[b, c, tail] + fade_in


@register_jitable
def _piece_of(ostart, b, j):
    """Index of the last piece of clip ``b`` whose output start is ``<= j`` (binary search)."""
    lo = 0
    hi = ostart.shape[1] - 1
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if ostart[b, mid] <= j:
            lo = mid
        else:
            hi = mid - 1
    return lo


# ------------------------------------------------------------------------------- CPU (njit)


@jit_cpu(parallel=True)
def _insert_cpu(w, lengths, clip, pos, before, clip_len, after, edge, new_len, out):
    B, C, T_out = out.shape
    Cc = clip.shape[1]
    for q in prange(B * C):
        b = q // C
        c = q % C
        cc = c if Cc > 1 else 0
        p = pos[b]
        c0 = p + before[b]
        n = clip_len[b]
        a1 = c0 + n + after[b]
        e = edge[b]
        for j in range(p):
            out[b, c, j] = w[b, c, j]
        for j in range(p, c0):
            out[b, c, j] = 0.0
        if e > 0:
            for k in range(n):
                out[b, c, c0 + k] = _edge_gain(k, n, e)  # cast, then multiply
                out[b, c, c0 + k] *= clip[b, cc, k]
        else:
            for k in range(n):
                out[b, c, c0 + k] = clip[b, cc, k]
        for j in range(c0 + n, a1):
            out[b, c, j] = 0.0
        shift = a1 - p
        for t in range(p, lengths[b]):
            out[b, c, t + shift] = w[b, c, t]
        for j in range(new_len[b], T_out):
            out[b, c, j] = 0.0


@jit_cpu(parallel=True)
def _drop_cpu(w, src, size, overlap, ostart, new_len, out):
    B, C, T_out = out.shape
    P = src.shape[1]
    for q in prange(B * C):
        b = q // C
        c = q % C
        for i in range(P):
            n = size[b, i]
            if n == 0:  # pieces come first
                break
            s = src[b, i]
            o = ostart[b, i]
            x = overlap[b, i - 1] if i > 0 else 0
            tail = src[b, i - 1] + size[b, i - 1] - x if i > 0 else 0
            for k in range(x):
                _blend(w, out, b, c, o + k, tail + k, s + k, k, x)
            for k in range(x, n - overlap[b, i]):
                out[b, c, o + k] = w[b, c, s + k]
        for j in range(new_len[b], T_out):
            out[b, c, j] = 0.0


# ------------------------------------------------------------------------------- CUDA


@jit_cuda
def _insert_cuda(w, lengths, clip, pos, before, clip_len, after, edge, new_len, out):
    B, C, T_out = out.shape
    q = cuda.grid(1)
    if q >= B * C * T_out:
        return
    j = q % T_out
    c = (q // T_out) % C
    b = q // (C * T_out)
    p = pos[b]
    c0 = p + before[b]
    n = clip_len[b]
    a1 = c0 + n + after[b]
    if j < p:
        out[b, c, j] = w[b, c, j]
    elif j >= c0 and j < c0 + n:
        cc = c if clip.shape[1] > 1 else 0
        if edge[b] > 0:
            out[b, c, j] = _edge_gain(j - c0, n, edge[b])  # cast, then multiply
            out[b, c, j] *= clip[b, cc, j - c0]
        else:
            out[b, c, j] = clip[b, cc, j - c0]
    elif j >= a1 and j < new_len[b]:
        out[b, c, j] = w[b, c, j - (a1 - p)]
    else:
        out[b, c, j] = 0.0


@jit_cuda
def _drop_cuda(w, src, size, overlap, ostart, new_len, out):
    B, C, T_out = out.shape
    q = cuda.grid(1)
    if q >= B * C * T_out:
        return
    j = q % T_out
    c = (q // T_out) % C
    b = q // (C * T_out)
    if j >= new_len[b]:
        out[b, c, j] = 0.0
        return
    i = _piece_of(ostart, b, j)
    k = j - ostart[b, i]
    x = overlap[b, i - 1] if i > 0 else 0
    if k < x:
        _blend(w, out, b, c, j, src[b, i - 1] + size[b, i - 1] - x + k, src[b, i] + k, k, x)
    else:
        out[b, c, j] = w[b, c, src[b, i] + k]


#: The ``@cuda.jit`` kernels and the signatures the wrappers below launch them with (views of
#: C-contiguous tensors, Python ints as int64, floats as float64): compiled by the compile
#: gate (:mod:`gpuaug.kernels._compile_gate`) and by ``auto``'s probe on a GPU.
CUDA_KERNELS = {
    "_insert_cuda": cuda_entry(INSERT_CLIP, CUDA_THREADS,
                               "{f}[:,:,::1], int64[::1], {f}[:,:,::1], " + ", ".join(["int64[::1]"] * 6)
                               + ", {f}[:,:,::1]"),
    "_drop_cuda": cuda_entry(DROP_SEGMENTS, CUDA_THREADS,
                             "{f}[:,:,::1], " + ", ".join(["int64[:,::1]"] * 4) + ", int64[::1], {f}[:,:,::1]"),
}


def launch_insert_cuda(w, lengths, clip, pos, before, clip_len, after, edge, new_len, out, stream=0) -> None:
    """Insert on device arrays (or numpy arrays under the simulator), one thread per output sample.

    Shapes: ``w`` ``(B, C, T)``, ``clip`` ``(B, Cc, Tc)`` (``Cc`` 1 or ``C``, ``w``'s dtype),
    ``out`` ``(B, C, T_out)`` (written entirely); the int64 ``(B,)`` tables are the valid
    length, the clamped position, silence before, clip length, silence after, edge-fade
    length and new length, in samples.
    """
    launch_per_sample(_insert_cuda, out.shape, CUDA_THREADS, stream, w, lengths, clip, pos, before, clip_len, after,
                      edge, new_len, out)


def launch_drop_cuda(w, src, size, overlap, ostart, new_len, out, stream=0) -> None:
    """Drop on device / numpy arrays, one thread per output sample; ``out`` ``(B, C, T_out)``.

    ``src``, ``size``, ``overlap``, ``ostart``: int64 ``(B, P)`` piece tables of
    :func:`drop_kernel` (``P >= 1``); ``new_len`` int64 ``(B,)``.
    """
    launch_per_sample(_drop_cuda, out.shape, CUDA_THREADS, stream, w, src, size, overlap, ostart, new_len, out)


# ------------------------------------------------------------------------------- torch entry points


def _ints(*tables: torch.Tensor) -> list[torch.Tensor]:
    return [t.to(torch.int64).contiguous() for t in tables]


@register_kernel(INSERT_CLIP, "numba", "cpu")
@register_kernel(INSERT_CLIP, "numba", "cuda")
def insert_kernel(w: torch.Tensor, lengths: torch.Tensor, clip: torch.Tensor, pos: torch.Tensor,
                  before: torch.Tensor, clip_len: torch.Tensor, after: torch.Tensor, edge: torch.Tensor,
                  new_len: torch.Tensor, *, t_out: int) -> torch.Tensor:
    """The ``(B, C, t_out)`` wave with the clips inserted (see the module docstring).

    Args (``@njit`` on CPU tensors, ``@cuda.jit`` on CUDA tensors):
        w: ``(B, C, T)`` float wave; clip: ``(B, Cc, Tc)`` float clips (cast to ``w``'s dtype).
        lengths, pos, before, clip_len, after, edge, new_len: ``(B,)`` integer tables in
            samples (``0 <= pos <= lengths``, the rest ``>= 0``, ``new_len`` their sum).
        t_out: output samples (``max(new_len)``).
    """
    x = kernel_float(w)
    c = kernel_float(clip.to(w.dtype)).to(x.dtype)
    out = x.new_empty(x.shape[0], x.shape[1], t_out)
    if out.numel():
        tensors = [x, *_ints(lengths), c, *_ints(pos, before, clip_len, after, edge, new_len), out]
        run_numba(_insert_cpu, launch_insert_cuda, tensors)
    return out.to(w.dtype)


@register_kernel(DROP_SEGMENTS, "numba", "cpu")
@register_kernel(DROP_SEGMENTS, "numba", "cuda")
def drop_kernel(w: torch.Tensor, src: torch.Tensor, size: torch.Tensor, overlap: torch.Tensor,
                ostart: torch.Tensor, new_len: torch.Tensor, *, t_out: int) -> torch.Tensor:
    """The ``(B, C, t_out)`` wave of the kept pieces, crossfaded at the joins (module docstring).

    Args (``@njit`` on CPU tensors, ``@cuda.jit`` on CUDA tensors):
        w: ``(B, C, T)`` float wave.
        src, size, overlap, ostart: ``(B, P)`` integer piece tables: source start, length
            (pieces first in time order, then zero-length slots), overlap with the next piece
            (``<= size // 2`` of both), output start.
        new_len: ``(B,)`` output lengths; t_out: output samples (``max(new_len)``).
    """
    x = kernel_float(w)
    out = x.new_empty(x.shape[0], x.shape[1], t_out)
    if out.numel():
        run_numba(_drop_cpu, launch_drop_cuda, [x, *_ints(src, size, overlap, ostart, new_len), out])
    return out.to(w.dtype)
