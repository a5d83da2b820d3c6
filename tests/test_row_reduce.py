"""The vectorised row reductions of the CPU kernels (``kernels/row_reduce.py``) against float64 numpy.

The sum of squares is reassociated (only its float64 rounding may change); the peak is the
maximum of the bit patterns of ``|v|`` read as integers, which must equal ``max |v|`` bit for bit
and flag every row holding an Inf or a NaN.
"""
from __future__ import annotations

import numba
import numpy as np
import pytest
import torch

from gpuaug.kernels.row_reduce import abs_bits_max, bits_value, copy_stats, finite_bits, row_stats, sumsq


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


@numba.njit
def _copied(x, dst, lo, hi):
    return copy_stats(x, dst, lo, hi)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_copy_stats_copies_the_range_and_reads_what_row_stats_reads(dtype):
    """The reverb load's one read: ``dst[lo:hi]`` becomes ``x[lo:hi]`` bit for bit (nothing else
    of ``dst`` is written), the sum of squares is float64 numpy's up to reassociation and the
    peak pattern is :func:`row_stats`' exactly (so the peak and the finiteness are unchanged)."""
    for x in _rows(dtype):
        for lo, hi in ((0, x.size), (x.size // 3, x.size - x.size // 4)):
            dst = np.full(x.size + 2, 7.0, dtype=dtype)
            with np.errstate(over="ignore"):
                ref_sq = float(np.sum(x[lo:hi].astype(np.float64) ** 2))
            sq, bits = _copied(x, dst, lo, hi)
            assert sq == pytest.approx(ref_sq, rel=1e-12, abs=0.0)
            assert bits == _stats(x, lo, hi)[5]
            assert np.array_equal(dst[lo:hi].view(np.uint8), x[lo:hi].view(np.uint8))  # -0.0 and bits kept
            assert (dst[:lo] == 7.0).all() and (dst[hi:] == 7.0).all()
    x = np.ones(10, dtype=dtype)
    x[3] = np.nan
    assert not finite_bits(x, _copied(x, np.empty(10, dtype=dtype), 0, 10)[1])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("bad", [np.inf, -np.inf, np.nan, -np.nan])
def test_any_inf_or_nan_flags_the_row(dtype, bad):
    x = np.random.default_rng(1).standard_normal(1000).astype(dtype)
    x[517] = bad
    assert not _stats(x, 0, x.size)[2]
    assert _stats(x, 0, 517)[2] and _stats(x, 518, x.size)[2]  # the sample outside the range is not read
    big = np.full(5, np.finfo(dtype).max, dtype=dtype)  # the largest finite value is finite
    assert _stats(big, 0, 5)[2] and _stats(big, 0, 5)[1] == float(np.finfo(dtype).max)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_row_peaks_match_torch_and_the_output_level_is_unchanged(dtype):
    """op ``row_peak``: the peaks and finite flags of a batch equal torch's amax / amin ones, and
    the pipeline's in-place output level (which then scales only the clips above the ceiling)
    gives what the torch reductions gave, bit for bit."""
    from gpuaug.functional._batch import finite_rows
    from gpuaug.functional.level import output_level
    from gpuaug.kernels.row_reduce import row_peaks

    g = torch.Generator().manual_seed(4)
    wave = (torch.randn(6, 2, 3001, generator=g) * torch.tensor([0.1, 2.0, 0.5, 3.0, 0.0, 1.0])[:, None, None]).to(dtype)
    peak, finite = row_peaks(wave)
    ref = torch.maximum(wave.reshape(6, -1).amax(1), -wave.reshape(6, -1).amin(1))
    assert peak.dtype == dtype and torch.equal(peak, ref) and bool(finite.all())
    bad = wave.clone()
    bad[1, 1, 7], bad[3, 0, 3000] = float("nan"), float("-inf")
    assert row_peaks(bad)[1].tolist() == [True, False, True, False, True, True]
    assert finite_rows(bad).tolist() == [True, False, True, False, True, True]
    r32 = ref.float()  # the output level's gain is float32 (module gpuaug.functional.level)
    expected = wave * torch.where(r32 > 1.0, torch.nextafter(1.0 / r32, torch.zeros_like(r32)),
                                  torch.ones_like(r32)).to(dtype)[:, None, None]
    mine = wave.clone()
    out, gain, got_peak = output_level(mine, "peak_limit", 1.0, inplace=True)
    assert out is mine and torch.equal(out, expected) and torch.equal(got_peak, ref.float())
    within = (ref <= 1.0).nonzero().flatten()
    assert within.numel() >= 2 and torch.equal(out[within], wave[within])  # clips within full scale: untouched
