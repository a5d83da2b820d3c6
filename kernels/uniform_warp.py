"""Constant-speed resampling (positions ``j * step[b]``, one cutoff per clip): the CPU kernel of
:func:`gpuaug.functional.resample.uniform_warp` (whole-utterance ``speed``, ``resample`` and the
resampling half of ``pitch_shift``).

The general :func:`~gpuaug.kernels.warp_sinc.warp_kernel` takes ``(B, T_out)`` float64 tables of
positions and cutoffs, which the torch side builds (and masks, and checks) before the launch;
here each clip's position ``p = j * step[b]`` (the same float64 product as
``arange(T_out, float64) * step``) and its cutoff ``cutoff[b]`` are formed in the kernel. Each
output sample is evaluated in one of two ways:

* **exact**: :func:`~gpuaug.kernels.warp_sinc._warp_point` (float64, the filter of
  :mod:`gpuaug.functional.resample` with sin / cos recurrences per tap), bit for bit the
  general kernel at the same positions and cutoffs;
* **tabulated** (the default for float32 / float16 / bfloat16 input): the clip's cutoff
  tabulated once per distinct cutoff of the batch at ``K = TABLE_PHASES`` phases with linear
  interpolation between phases (:mod:`gpuaug.kernels._sinc_table`, shared with
  ``segment_warp``). **Stated bound** (:data:`~gpuaug.kernels._sinc_table.TABLE_ERROR_DB`):
  every output sample within -100 dB of the clip's peak absolute value of the exact kernel
  (the bound of the table's weights holds for every cutoff ``<= 1``; measured in
  ``tests/test_kernels_warp.py``). Clips of fewer than ``TABLE_MIN_SAMPLES`` output samples x
  channels run exact (a table would cost more than it saves).

CPU only (``prange`` over clips x chunks of :data:`~gpuaug.kernels.warp_sinc.CPU_CHUNK` output
samples; tables from :func:`~gpuaug.kernels._sinc_table.launch_tables`, built once per cutoff
with a ``prange`` over the new ones and kept across launches, in groups of clips
whose tables fit :data:`~gpuaug.kernels._sinc_table.TABLE_BYTES`); on CUDA the op has no
kernel, so ``uniform_warp`` runs the general warp (exact) there. Launched through
:func:`gpuaug.kernels._launch.run_numba`.

Registered (:func:`gpuaug.backend.register_kernel`): :func:`uniform_warp_kernel` as op
``uniform_warp``, ``("numba", "cpu", 0)``. Timings: ``benchmarks/results/kernel-timings.md``.
"""
from __future__ import annotations

import numpy as np
import torch
from numba import prange

from gpuaug._sync import host_of
from gpuaug.backend import UNIFORM_WARP, register_kernel
from gpuaug.kernels._launch import kernel_float, run_numba
from gpuaug.kernels._numba_glue import jit_cpu
from gpuaug.kernels._sinc_table import (
    TABLE_BYTES,
    TABLE_MIN_SAMPLES,
    TABLE_PHASES,
    launch_tables,
    plan_tables,
    table_groups,
    table_run,
)
from gpuaug.kernels.warp_sinc import CPU_CHUNK, _point_cpu, _steps_cpu

__all__ = ["uniform_warp_kernel"]


@jit_cpu(parallel=True)
def _uniform_cpu(x, lengths, step, fc, new_lengths, out, zeros, table_of, half, tables):
    """``table_of[b]``: the table of clip ``b`` (``-1``: the exact kernel); ``half[v]``: ``h`` of
    table ``v``. ``out`` is zero beyond ``new_lengths`` (allocated so)."""
    B, C, t_out = out.shape
    n_chunks = (t_out + CPU_CHUNK - 1) // CPU_CHUNK
    for q in prange(B * n_chunks):
        b = q // n_chunks
        L = lengths[b]
        a = step[b]
        f = fc[b]
        v = table_of[b]
        j0 = (q % n_chunks) * CPU_CHUNK
        j1 = min(j0 + CPU_CHUNK, new_lengths[b])
        if v >= 0:
            for c in range(C):  # p = 0 + (j - 0) a = j a
                table_run(x[b, c], out[b, c], j0, j1, 0.0, a, L, f, half[v], tables[v], tables.shape[2])
            continue
        ds, dc, wds, wdc = _steps_cpu(f, zeros)
        for j in range(j0, j1):
            for c in range(C):
                out[b, c, j] = _point_cpu(x, b, c, L, j * a, f, zeros, ds, dc, wds, wdc)


@register_kernel(UNIFORM_WARP, "numba", "cpu")
def uniform_warp_kernel(x: torch.Tensor, lengths: torch.Tensor, step: torch.Tensor, cutoff: torch.Tensor,
                        new_lengths: torch.Tensor, *, zeros: int, t_out: int | None = None,
                        exact: bool | None = None, phases: int = TABLE_PHASES) -> torch.Tensor:
    """Windowed-sinc resampling of checked CPU inputs at positions ``j * step[b]``; returns the
    ``(B, C, max(new_lengths))`` output (zero padding).

    Args:
        x: ``(B, C, T)`` float input (not modified; no autograd; float16/bfloat16 computed in
            float32 and cast back).
        lengths, new_lengths: ``(B,)`` int64 valid input / output samples.
        step: ``(B,)`` float64 input samples per output sample (finite).
        cutoff: ``(B,)`` float64 cutoff of each clip (fraction of the input Nyquist frequency,
            in ``[MIN_CUTOFF, 1]`` for the clips with output).
        zeros: sinc zero crossings per side.
        t_out: ``max(new_lengths)`` when the caller knows it (else computed).
        exact: ``True`` the exact float64 sinc, ``False`` the tabulated one (module docstring;
            error <= ``TABLE_ERROR_DB`` of the clip's peak), ``None``: exact for float64 input,
            tabulated otherwise.
        phases: ``K`` of the tables (a power of 2; tests use coarse ones).
    """
    if x.device.type != "cpu":
        raise ValueError(f"the uniform_warp kernel runs on CPU tensors, got {x.device}")
    if phases < 1 or phases & (phases - 1):
        raise ValueError(f"phases must be a power of 2, got {phases}")
    xf = kernel_float(x)
    if t_out is None:
        t_out = int(new_lengths.max()) if new_lengths.numel() else 0
    out = xf.new_zeros(xf.shape[0], xf.shape[1], t_out)
    if not out.numel():
        return out.to(x.dtype)
    if exact is None:
        exact = xf.dtype == torch.float64
    step = step.detach().to(torch.float64).contiguous()
    fc = cutoff.detach().to(torch.float64).contiguous()
    lengths, new_lengths = lengths.contiguous(), new_lengths.contiguous()
    tensors = [xf, lengths, step, fc, new_lengths, out]
    B, C = xf.shape[0], xf.shape[1]
    # the tables are planned on the host mirrors of the per-clip values (no device read)
    fc_host, new_host = host_of(cutoff).to(torch.float64), host_of(new_lengths)
    use = (new_host * C >= TABLE_MIN_SAMPLES) & (not exact)
    dtype = np.float64 if xf.dtype == torch.float64 else np.float32
    used_fc = fc_host[use]
    groups = ([slice(0, B)] if not bool(use.any()) else
              table_groups(float(used_fc.min()), B, int(zeros), (phases + 1) * np.dtype(dtype).itemsize, TABLE_BYTES))
    for rows in groups:  # consecutive clips (views of contiguous rows), tables within TABLE_BYTES
        table_of, half, cutoffs = plan_tables(fc_host[rows], use[rows], int(zeros))

        def run_cpu(*args, half=half, cutoffs=cutoffs, table_of=table_of):  # under CPU_LOCK
            _uniform_cpu(*args, table_of, half, launch_tables(cutoffs, half, int(zeros), phases, dtype))

        run_numba(run_cpu, None, [t[rows] for t in tensors], int(zeros))
    return out.to(x.dtype)
