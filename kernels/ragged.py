"""Rows of a ragged store copied into a zero-padded batch: the CPU kernel of
:func:`gpuaug.banks.gather_ragged` (op ``ragged_gather``).

The torch path builds a ``(n, width)`` int64 index, gathers and masks (three batch-sized passes
plus the index); on the CPU a ``prange`` over the rows copies each row's contiguous run and
zero-fills the rest (the same values bit for bit: a copy). Used when a bank's RIRs or insert
clips are picked every batch (11x less CPU time on 7 RIRs of up to 52k samples:
``benchmarks/results/kernel-timings.md``).

Registered (:func:`gpuaug.backend.register_kernel`): :func:`ragged_gather_kernel` as op
``ragged_gather``, ``("numba", "cpu", 0)`` only (on CUDA the torch index gather is one launch).
"""
from __future__ import annotations

import torch
from numba import prange

from gpuaug.backend import RAGGED_GATHER, register_kernel
from gpuaug.kernels._launch import run_numba
from gpuaug.kernels._numba_glue import jit_cpu

__all__ = ["ragged_gather_kernel"]


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
