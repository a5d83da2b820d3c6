"""SplitMix64 on uint64 in compiled CPU loops: the host path of :mod:`gpuaug.random`.

:mod:`gpuaug.random` hashes plain CPU tensors here (the same bits as its torch int64 path:
``tests/test_random.py``). The functions live in the kernel folder so that an edit of any of
them recompiles every caller (the on-disk cache stamp covers this folder's sources, see
:mod:`gpuaug.kernels._numba_glue`).
"""
from __future__ import annotations

import numpy as np

from gpuaug.kernels._numba_glue import jit_cpu

__all__ = ["GOLDEN", "C1", "C2", "mix_rows", "uniform_draws"]

#: SplitMix64's increment and multipliers, as uint64.
GOLDEN, C1, C2 = np.uint64(0x9E3779B97F4A7C15), np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)
_S30, _S27, _S31, _S11 = np.uint64(30), np.uint64(27), np.uint64(31), np.uint64(11)


@jit_cpu
def _mix_u64(z):
    """The finaliser of ``z + GOLDEN`` for one uint64 (numba wraps uint64 modulo 2**64)."""
    z = z + GOLDEN
    z = (z ^ (z >> _S30)) * C1
    z = (z ^ (z >> _S27)) * C2
    return z ^ (z >> _S31)


@jit_cpu
def mix_rows(a, out):
    """``out[i] = mix(a[i])`` over 1-d uint64 arrays."""
    for i in range(a.shape[0]):
        out[i] = _mix_u64(a[i])


@jit_cpu
def uniform_draws(keys, stream, counter, out):
    """``out[i] = uniform(keys[i], stream, counter)`` (uint64 keys, float64 out): the chain
    ``_unit(combine(combine(key, stream), counter))`` of :func:`gpuaug.random.uniform` per item."""
    for i in range(keys.shape[0]):
        h = _mix_u64(_mix_u64(_mix_u64(_mix_u64(keys[i]) ^ stream)) ^ counter)
        out[i] = float(h >> _S11) * 2.0**-53
