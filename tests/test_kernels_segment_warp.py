"""The fused segment speed-up kernel (gpuaug.kernels.segment_warp) vs the general warp and torch.

It evaluates speed_segment's time map on the fly; the general warp kernel reads the same
positions from a table, so on the CPU the two must agree bit for bit. The ``@cuda.jit`` twin
runs on the CUDA simulator without a GPU.
"""
import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st

import gpuaug.kernels.segment_warp as sw
from gpuaug.functional.resample import DEFAULT_ROLLOFF, warp
from gpuaug.functional.speed import speed_segment
from harness import check_op, mixed_batch

TOL = {torch.float32: dict(atol=2e-5, rtol=1e-5), torch.float64: dict(atol=1e-11, rtol=1e-11)}


def segment_table(lengths, start, length, factor):
    """speed_segment's piecewise time map as a (B, T_out) position / cutoff table (torch side)."""
    s = torch.minimum(start, lengths)
    n = torch.minimum(start + length, lengths) - s
    m = torch.round(n.double() / factor).long()
    new_lengths = lengths - n + m
    j = torch.arange(int(new_lengths.max()), dtype=torch.float64)[None, :]
    s64, n64, m64 = (v.double()[:, None] for v in (s, n, m))
    slope = n64 / m64.clamp(min=1.0)
    inside = (j >= s64) & (j < s64 + m64)
    pos = torch.where(j < s64, j, torch.where(inside, s64 + (j - s64) * slope, j - m64 + n64))
    fc = torch.where(inside, DEFAULT_ROLLOFF * torch.clamp(1.0 / slope, max=1.0), 1.0)
    return pos, fc, new_lengths, (s, n, m)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("C", [None, 2])
def test_fused_equals_general_kernel_and_matches_torch(dtype, C):
    wave, lengths = mixed_batch(B=4, T=2500, C=C, dtype=dtype, seed=21)
    start, length = torch.tensor([0, 300, 2000, 10]), torch.tensor([900, 0, 800, 2500])
    factor = torch.tensor([1.25, 1.3, 0.6, 2.0], dtype=torch.float64)
    out, out_len = speed_segment(wave, lengths, start=start, length=length, factor=factor, backend="numba")
    pos, fc, new_lengths, _ = segment_table(lengths, start, length, factor)
    general, _ = warp(wave, lengths, pos, new_lengths, fc, backend="numba")
    keep = (out_len == lengths).view(-1, *([1] * (wave.dim() - 1)))  # pass-through clips
    assert torch.equal(out_len, new_lengths)
    assert torch.equal(torch.where(keep, out, general), out)
    assert torch.equal(out[~keep.flatten()], general[~keep.flatten()])
    ref, ref_len = speed_segment(wave, lengths, start=start, length=length, factor=factor, backend="torch")
    assert torch.equal(out_len, ref_len) and out.dtype == dtype
    torch.testing.assert_close(out, ref, **TOL[dtype])


def test_fused_contract():
    wave, lengths = mixed_batch(B=3, T=1200, C=2, dtype=torch.float32, seed=4)
    check_op(speed_segment, wave, lengths, start=torch.tensor([100, 0, 50]), length=torch.tensor([400, 300, 0]),
             factor=torch.tensor([1.25, 0.8, 1.5], dtype=torch.float64), backend="numba")


@settings(max_examples=40, deadline=None)
@given(L=st.integers(0, 200), start=st.integers(0, 220), length=st.integers(0, 220),
       factor=st.floats(0.5, 2.0), pad=st.integers(0, 30))
def test_fused_edge_cases_match_torch(L, start, length, factor, pad):
    """Empty clips, 1-sample clips, segments past the end, segments that shrink to 0 samples."""
    g = torch.Generator().manual_seed(L * 7 + start)
    wave = torch.randn(2, L + pad, generator=g, dtype=torch.float64)
    lengths = torch.tensor([L, min(L, 3)])
    kw = dict(start=torch.tensor([start, 0]), length=torch.tensor([length, 2]),
              factor=torch.tensor([factor, factor], dtype=torch.float64))
    ref, ref_len = speed_segment(wave, lengths, backend="torch", **kw)
    out, out_len = speed_segment(wave, lengths, backend="numba", **kw)
    assert torch.equal(out_len, ref_len) and out.shape == ref.shape
    torch.testing.assert_close(out, ref, **TOL[torch.float64])


@pytest.mark.parametrize("dtype,C", [(np.float32, 1), (np.float64, 2)])
def test_cuda_kernel_matches_torch(dtype, C):
    """``@cuda.jit`` twin launched with host arrays (CUDA simulator without a GPU)."""
    wave, lengths = mixed_batch(B=2, T=40, C=C, dtype=torch.float64, seed=13)
    x3 = wave.reshape(2, C, 40).to(torch.float32 if dtype == np.float32 else torch.float64)
    start, length = torch.tensor([5, 0]), torch.tensor([20, 12])
    factor = torch.tensor([1.25, 0.7], dtype=torch.float64)
    ref, ref_len = speed_segment(x3, lengths, start=start, length=length, factor=factor, backend="torch")
    _, _, new_lengths, (s, n, m) = segment_table(lengths, start, length, factor)
    seg = torch.stack([s, n, m], dim=1).numpy()
    out = np.full((2, C, int(new_lengths.max())), 7.0, dtype=dtype)  # every sample is written
    sw._launch_cuda(x3.numpy(), lengths.numpy(), seg, new_lengths.numpy(), out, 24, DEFAULT_ROLLOFF)
    tol = TOL[torch.float32] if dtype == np.float32 else TOL[torch.float64]
    torch.testing.assert_close(torch.from_numpy(out), ref, **tol)
    assert np.array_equal(out[0, :, :5], x3.numpy()[0, :, :5])  # untouched head copied bit for bit
