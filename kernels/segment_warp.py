"""Fused segment speed-up: the splice and the resampling of :func:`gpuaug.functional.speed.speed_segment` in one pass.

The general :func:`~gpuaug.kernels.warp_sinc.warp_kernel` needs the ``(B, T_out)`` float64
positions and cutoffs of every output sample, which the torch side builds and which cost
more than the kernel on long clips (the segment is 10-25 % of a clip). This kernel takes
the per-clip segment ``(s, n, m)`` instead and evaluates the piecewise-linear time map of
:func:`~gpuaug.functional.speed.speed_segment` on the fly, with the same float64 arithmetic:

* ``j < s`` and ``j >= s + m``: a copy of input sample ``j`` / ``j - m + n`` (bit for bit,
  as the warp's unit impulse at cutoff 1 and integer positions), on every path below;
* ``s <= j < s + m``: the windowed sinc of :mod:`gpuaug.functional.resample` at
  ``p = s + (j - s) * slope``, ``slope = n / max(m, 1)``, with the clip's cutoff
  ``f = rolloff * min(1, 1 / slope)``, evaluated in one of two ways:

  - **exact** (:func:`~gpuaug.kernels.warp_sinc._warp_point`, float64, sin/cos recurrences
    per tap): reproduces the torch path's ``warp`` of those positions as the general kernel
    does (bit for bit on the CPU). The CUDA kernel always runs this one.
  - **tabulated** (CPU only, the default for float32 / float16 / bfloat16 input): the same
    filter tabulated once per distinct cutoff at ``K = TABLE_PHASES`` phases of the unit
    interval. Row ``q`` holds the weights of the ``2 h`` taps ``i = floor(p) - h + 1 + t``
    (``h = ceil(zeros / f)``; the tap ``floor(p) - h`` of the exact kernel always has
    ``|u| >= zeros``, i.e. weight 0) for the fractional position ``q / K``, normalised by
    their sum (the exact kernel's denominator over all taps, inside the clip or not). An
    output sample with fractional position ``phi`` reads rows ``q = floor(phi K)`` and
    ``q + 1`` and interpolates them linearly (``a = phi K - q``), then takes the dot
    product with the taps inside ``[0, L)`` (zero padding, as the exact kernel). Table and
    accumulation are in the compute dtype (float32 for float32 input, float64 for float64
    input with ``exact=False``); a cutoff of 1 at an integer position still copies the sample
    (the exact kernel's unit impulse). Segments of fewer than :data:`TABLE_MIN_SAMPLES` output
    samples x channels run exact (a table would cost more than it saves).

Error bound of the tabulated path (``K = 512``, any cutoff ``f <= 1``, i.e. any factor in
``[0.5, 2]`` and any rolloff): ``|y_tab - y_exact| <= E * max|x|`` over the taps, where ``E``,
the largest L1 norm over all phases of the difference between the interpolated and the exact
normalised weights, is -102.1 dB at ``f = 1`` (rolloff 1, factor <= 1), -104.3 dB at the
default ``f = 0.945`` (factor <= 1), -108.4 dB at factor 1.25 and -116.6 dB at factor 2
(computed in float64 over all mid-phases, where linear interpolation errs most; ``E`` falls as
``1 / K**2`` and with ``f``). The float32 table entries (-141 dB) and float32 accumulation add
rounding of the order ``2**-24 * sqrt(taps)``. **Stated bound** (:data:`TABLE_ERROR_DB`): every
output sample is within -100 dB of the clip's peak absolute value (``1e-5 * peak``) of the
exact kernel. Measured (``tests/test_kernels_segment_warp.py``): white noise over random
clips, segments and factors in ``[0.5, 2]``: worst -109.1 dB (rolloff 0.945), -107.7 dB
(rolloff 1); the sign-aligned worst-case signal at ``f = 0.945``: -104.8 / -105.3 dB; with
a coarse ``K = 4`` table: -25 dB (the tests check that it fails the bound).

The CUDA kernel keeps the exact sinc (one output sample per thread, all float64): a table there
needs a second kernel building it on the device, and neither its speed nor its error could be
measured on a machine without a GPU.

CPU: ``prange`` over clips x chunks of :data:`~gpuaug.kernels.warp_sinc.CPU_CHUNK` output
samples (the untouched parts as slice copies), tables: one per distinct cutoff, built once
(``prange`` over the new cutoffs) and kept across launches
(:func:`~gpuaug.kernels._sinc_table.launch_tables`); batches whose tables exceed
:data:`_TABLE_BYTES` run in groups of clips; CUDA: one output sample per thread. Both launch through
:func:`gpuaug.kernels._launch.run_numba`.

Registered (:func:`gpuaug.backend.register_kernel`): :func:`segment_warp_kernel` as its own op
``segment_warp``, ``("numba", "cpu", 0)`` and ``("numba", "cuda", 0)``;
:func:`~gpuaug.functional.speed.speed_segment` resolves that op directly (``torch``: the splice
path around op ``warp``). Timings of the tabulated and exact paths:
``benchmarks/results/kernel-timings.md``.
"""
from __future__ import annotations

import math

import numba
import numpy as np
import torch
from numba import cuda, prange

from gpuaug._sync import host_of
from gpuaug.backend import SEGMENT_WARP, register_kernel
from gpuaug.kernels._launch import kernel_float, run_numba
from gpuaug.kernels._numba_glue import cuda_entry, jit_cpu, jit_cuda, launch_per_sample
from gpuaug.kernels._sinc_table import (  # noqa: F401 (re-exported: the tabulated sinc lived here)
    TABLE_BYTES,
    TABLE_ERROR_DB,
    TABLE_MIN_SAMPLES,
    TABLE_PHASES,
    _build_tables,
    launch_tables,
    plan_tables,
    sinc_table,
    table_groups,
    table_run,
)
from gpuaug.kernels.warp_sinc import CPU_CHUNK, CUDA_THREADS, _point_cpu, _point_cuda, _steps_cpu

__all__ = ["segment_warp_kernel", "TABLE_PHASES", "TABLE_ERROR_DB", "TABLE_MIN_SAMPLES", "sinc_table"]

#: Memory for the tables of one launch: larger batches of distinct cutoffs run in groups of clips.
_TABLE_BYTES = TABLE_BYTES


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


# ------------------------------------------------------------------------------- CPU kernel


@jit_cpu(parallel=True)
def _segment_cpu(x, lengths, seg, new_lengths, out, zeros, rolloff, table_of, half, tables):
    """``table_of[b]``: the table of clip ``b`` (``-1``: the exact kernel); ``half[v]``: ``h``
    of table ``v``."""
    B, C, t_out = out.shape
    n_chunks = (t_out + CPU_CHUNK - 1) // CPU_CHUNK
    for q in prange(B * n_chunks):
        b = q // n_chunks
        L = lengths[b]
        s, n, m = seg[b, 0], seg[b, 1], seg[b, 2]
        s64, n64, m64 = numba.float64(s), numba.float64(n), numba.float64(m)
        slope = n64 / max(m64, 1.0)
        f = rolloff * min(1.0 / slope, 1.0)
        v = table_of[b]
        j0 = (q % n_chunks) * CPU_CHUNK
        j1 = min(j0 + CPU_CHUNK, new_lengths[b])
        # the untouched parts: copies of [j0, s) and of [s + m, j1) from j - m + n (all < L)
        head, tail = min(j1, s), max(j0, s + m)
        for c in range(C):
            if j0 < head:
                out[b, c, j0:head] = x[b, c, j0:head]
            if tail < j1:
                out[b, c, tail:j1] = x[b, c, tail - m + n:j1 - m + n]
        k0, k1 = max(j0, s), min(j1, s + m)
        if v >= 0:
            for c in range(C):  # p = s + (j - s) slope
                table_run(x[b, c], out[b, c], k0, k1, s64, slope, L, f, half[v], tables[v], tables.shape[2])
            continue
        ds, dc, wds, wdc = _steps_cpu(f, zeros)
        for j in range(k0, k1):
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
CUDA_KERNELS = {
    "_segment_cuda": cuda_entry(SEGMENT_WARP, CUDA_THREADS, "{f}[:,:,::1], int64[::1], int64[:,::1], int64[::1], "
                                                      "{f}[:,:,::1], int64, float64"),
}


def _launch_cuda(x, lengths, seg, new_lengths, out, zeros, rolloff, stream=0) -> None:
    launch_per_sample(_segment_cuda, out.shape, CUDA_THREADS, stream, x, lengths, seg, new_lengths, out, zeros, rolloff)


def _plan_tables(n: torch.Tensor, m: torch.Tensor, channels: int, zeros: int, rolloff: float, exact: bool):
    """``(table_of, half, cutoffs)`` of a CPU launch from the host ``n``, ``m`` (``(B,)`` int64):
    one table per distinct cutoff among the clips whose segment has at least
    :data:`TABLE_MIN_SAMPLES` output samples x channels (the others, and all clips when
    ``exact``, get ``-1``: the exact kernel); ``half[v]``: ``h = ceil(zeros / f)`` of table ``v``."""
    slope = n.to(torch.float64) / m.to(torch.float64).clamp(min=1.0)
    cutoff = rolloff * torch.clamp(1.0 / slope, max=1.0)  # as the kernel computes it
    use = (m * channels >= TABLE_MIN_SAMPLES) & (not exact)
    return plan_tables(cutoff, use, zeros)


def _table_groups(n: torch.Tensor, m: torch.Tensor, zeros: int, rolloff: float, row_bytes: int) -> list[slice]:
    """Consecutive groups of clips whose tables (at most one per clip) fit in
    :data:`_TABLE_BYTES` (``row_bytes``: bytes of one table row per tap)."""
    slope = n.to(torch.float64) / m.to(torch.float64).clamp(min=1.0)
    min_cutoff = rolloff * float(torch.clamp(1.0 / slope, max=1.0).min()) if n.shape[0] else 1.0
    return table_groups(min_cutoff, n.shape[0], zeros, row_bytes, _TABLE_BYTES)


@register_kernel(SEGMENT_WARP, "numba", "cpu")
@register_kernel(SEGMENT_WARP, "numba", "cuda")
def segment_warp_kernel(x: torch.Tensor, lengths: torch.Tensor, start: torch.Tensor, n: torch.Tensor,
                        m: torch.Tensor, new_lengths: torch.Tensor, *, zeros: int, rolloff: float,
                        t_out: int | None = None, exact: bool | None = None,
                        phases: int = TABLE_PHASES) -> torch.Tensor:
    """Numba segment speed-up of checked inputs; returns the ``(B, C, max(new_lengths))`` output.

    Args:
        x: ``(B, C, T)`` float input (not modified; no autograd; float16/bfloat16 computed in
            float32 and cast back).
        lengths, new_lengths: ``(B,)`` int64 valid input / output samples.
        start, n, m: ``(B,)`` int64 segment start (``<= L``), input length and output length
            (``n`` and ``m`` need host mirrors on a device: they are read on the host).
        zeros: sinc zero crossings per side; rolloff: anti-aliasing margin in ``(0, 1]``.
        t_out: ``max(new_lengths)`` when the caller knows it on the host (else read back).
        exact: ``True``: the exact float64 windowed sinc inside the segments; ``False``: the
            tabulated one (module docstring; error <= :data:`TABLE_ERROR_DB` of the clip's
            peak); ``None``: exact for float64 input, tabulated otherwise. CUDA always runs the
            exact kernel.
        phases: ``K`` of the tables (a power of 2; tests use coarse ones).

    Output padding is zero; everything stays on ``x``'s device.
    """
    xf = kernel_float(x)
    if t_out is None:  # the caller knows it from the host lengths (no device read)
        t_out = int(new_lengths.max()) if new_lengths.numel() else 0
    out = xf.new_zeros(xf.shape[0], xf.shape[1], t_out)
    if not out.numel():
        return out.to(x.dtype)
    seg = torch.stack([start, n, m], dim=1).to(torch.int64).contiguous()
    tensors = [xf, lengths.contiguous(), seg, new_lengths.contiguous(), out]
    if xf.is_cuda:  # always the exact kernel
        run_numba(None, _launch_cuda, tensors, int(zeros), float(rolloff))
        return out.to(x.dtype)
    if phases < 1 or phases & (phases - 1):
        raise ValueError(f"phases must be a power of 2, got {phases}")
    if exact is None:
        exact = xf.dtype == torch.float64
    dtype = np.float64 if xf.dtype == torch.float64 else np.float32
    n_host, m_host = host_of(n), host_of(m)  # the tables are planned on the host (mirrors: no device read)
    groups = [slice(0, xf.shape[0])] if exact else _table_groups(n_host, m_host, int(zeros), float(rolloff),
                                                                   (phases + 1) * np.dtype(dtype).itemsize)
    for rows in groups:  # consecutive clips (views of contiguous rows), tables within _TABLE_BYTES
        table_of, half, cutoffs = _plan_tables(n_host[rows], m_host[rows], xf.shape[1], int(zeros), float(rolloff),
                                               bool(exact))

        def run_cpu(*args, table_of=table_of, half=half, cutoffs=cutoffs):  # under CPU_LOCK
            _segment_cpu(*args, table_of, half, launch_tables(cutoffs, half, int(zeros), phases, dtype))

        run_numba(run_cpu, _launch_cuda, [t[rows] for t in tensors], int(zeros), float(rolloff))
    return out.to(x.dtype)
