"""The vectorised row reductions of the CPU kernels (``kernels/row_reduce.py``) against float64 numpy.

The sum of squares is reassociated (only its float64 rounding may change); the peak is the
maximum of the bit patterns of ``|v|`` read as integers, which must equal ``max |v|`` bit for bit
and flag every row holding an Inf or a NaN.
"""
from __future__ import annotations

import numba
import numpy as np
import pytest

from gpuaug.kernels.row_reduce import abs_bits_max, bits_value, finite_bits, row_stats, sumsq


@numba.njit
def _stats(x, lo, hi):
    """Everything the kernels read of a row, as plain values for the tests."""
    bits = abs_bits_max(x, lo, hi)
    s, b2 = row_stats(x, lo, hi)
    return sumsq(x, lo, hi), bits_value(x, bits), finite_bits(x, bits), s, b2, bits


def _rows(dtype):
    rng = np.random.default_rng(7)
    rows = [rng.standard_normal(n).astype(dtype) for n in (0, 1, 3, 7, 64, 1000, 128_003)]
    tiny = np.full(9, np.finfo(dtype).smallest_subnormal, dtype=dtype)
    tiny[4] *= 3  # denormals: the patterns stay monotonic
    huge = (np.finfo(dtype).max / 8 * rng.standard_normal(100)).astype(dtype)
    neg = -np.abs(rng.standard_normal(50)).astype(dtype)  # the peak of a row of negative samples
    zeros = np.array([0.0, -0.0, 0.0], dtype=dtype)
    return rows + [tiny, huge, neg, zeros]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sum_peak_and_finiteness_match_float64_numpy(dtype):
    for x in _rows(dtype):
        for lo, hi in ((0, x.size), (x.size // 3, x.size - x.size // 4)):
            with np.errstate(over="ignore"):  # the huge float64 row's squares overflow: inf on both sides
                ref_sq = float(np.sum(x[lo:hi].astype(np.float64) ** 2))
            ref_peak = float(np.max(np.abs(x[lo:hi]))) if hi > lo else 0.0
            sq, peak, finite, sq2, bits2, bits = _stats(x, lo, hi)
            assert sq == pytest.approx(ref_sq, rel=1e-12, abs=0.0)
            assert sq2 == sq and bits2 == bits  # the fused loop gives the same values
            assert peak == ref_peak  # bit for bit (a float32 peak is exact in float64)
            assert finite


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("bad", [np.inf, -np.inf, np.nan, -np.nan])
def test_any_inf_or_nan_flags_the_row(dtype, bad):
    x = np.random.default_rng(1).standard_normal(1000).astype(dtype)
    x[517] = bad
    assert not _stats(x, 0, x.size)[2]
    assert _stats(x, 0, 517)[2] and _stats(x, 518, x.size)[2]  # the sample outside the range is not read
    big = np.full(5, np.finfo(dtype).max, dtype=dtype)  # the largest finite value is finite
    assert _stats(big, 0, 5)[2] and _stats(big, 0, 5)[1] == float(np.finfo(dtype).max)
