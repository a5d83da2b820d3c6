"""Row copies: rows of a ragged store copied into a zero-padded batch, the CPU kernel of
:func:`gpuaug.banks.gather_ragged` (op ``ragged_gather``); rows of a batch written at given rows
of another, the CPU kernel of :func:`gpuaug.transforms.base.merge_rows` (op ``row_scatter``).

The torch path builds a ``(n, width)`` int64 index, gathers and masks (three batch-sized passes
plus the index); on the CPU a ``prange`` over the rows copies each row's contiguous run and
zero-fills the rest (the same values bit for bit: a copy). Used when a bank's RIRs or insert
clips are picked every batch (11x less CPU time on 7 RIRs of up to 52k samples:
``benchmarks/results/kernel-timings.md``).

``row_scatter``: torch's ``index_copy_`` is an element-wise indexed loop; the kernel copies each
row as one contiguous run (8 rows of 32,000 float32 samples: 0.029 against 0.158 ms, one thread).

Registered (:func:`gpuaug.backend.register_kernel`): :func:`ragged_gather_kernel` as op
``ragged_gather`` and :func:`row_scatter_kernel` as op ``row_scatter``, ``("numba", "cpu", 0)``
only (on CUDA the torch index gather / ``index_copy_`` is one launch).
"""
from __future__ import annotations

import torch
from numba import prange

from gpuaug.backend import RAGGED_GATHER, ROW_SCATTER, register_kernel
from gpuaug.kernels._launch import run_numba
from gpuaug.kernels._numba_glue import jit_cpu

__all__ = ["ragged_gather_kernel", "row_scatter_kernel"]


@jit_cpu(parallel=True, twin=True)
def _rows_cpu(flat, starts, lengths, out):
    for i in prange(out.shape[0]):
        s = starts[i]
        L = lengths[i]
        out[i, :L] = flat[s:s + L]  # slices: a vectorised copy (an indexed loop was not)
        out[i, L:] = 0.0


@register_kernel(RAGGED_GATHER, "numba", "cpu")
def ragged_gather_kernel(flat: torch.Tensor, starts: torch.Tensor, lengths: torch.Tensor, *, width: int) -> torch.Tensor:
    """``(n, width)`` rows ``flat[starts[i] : starts[i] + lengths[i]]``, zero-padded.

    Args:
        flat: ``(S,)`` float32 / float64 CPU store; starts, lengths: ``(n,)`` int64 (checked by
            the caller: ``0 <= lengths <= width``, ``starts + lengths <= S``).
        width: the padded row length.
    """
    out = flat.new_empty(starts.shape[0], width)
    run_numba(_rows_cpu, None, [flat.contiguous(), starts.to(torch.int64).contiguous(),
                                lengths.to(torch.int64).contiguous(), out])
    return out


@jit_cpu(parallel=True, twin=True)
def _scatter_cpu(src, rows, out):
    n, C, ts = src.shape
    to = out.shape[2]
    t = min(ts, to)
    for k in prange(n):
        for c in range(C):
            d = out[rows[k], c]
            s = src[k, c]
            for i in range(t):  # one contiguous run per row (an indexed loop would not be one)
                d[i] = s[i]
            for i in range(t, to):
                d[i] = 0.0


@register_kernel(ROW_SCATTER, "numba", "cpu")
def row_scatter_kernel(out: torch.Tensor, rows: torch.Tensor, src: torch.Tensor) -> torch.Tensor:
    """``out[rows[k], :, :t] = src[k, :, :t]`` and ``out[rows[k], :, t:] = 0`` in place, with
    ``t = min(T_src, T_out)`` (``index_copy_`` of the first ``t`` samples and ``index_fill_`` of
    the rest: the same values); returns ``out``.

    Args:
        out: ``(B, C, T_out)`` C-contiguous float32 / float64 CPU tensor, written in place.
        rows: ``(n,)`` int64 distinct rows of ``out`` (checked by the caller).
        src: ``(n, C, T_src)`` tensor of ``out``'s dtype.
    """
    run_numba(_scatter_cpu, None, [src.contiguous(), rows.to(torch.int64).contiguous(), out])
    return out
