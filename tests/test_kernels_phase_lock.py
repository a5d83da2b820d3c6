"""The CPU phase-locking kernel (gpuaug.kernels.phase_lock) vs the torch scan of the pitch shift.

Peaks, tie-breaking and terms must be those of ``gpuaug.functional.pitch._phase_lock``; only
the summation order differs (left to right vs scan), so phases agree to rounding.
"""
import math
import os

import pytest
import torch
from hypothesis import given, settings, strategies as st

import gpuaug.kernels.phase_lock as pl
from gpuaug import backend as gb
from gpuaug.functional.pitch import _phase_lock, pitch_shift
from harness import mixed_batch


def inputs(N, F, M, seed, levels=None):
    """Random ``(mag, dp, ang)``; ``levels`` quantises magnitudes so plateaus and ties abound."""
    g = torch.Generator().manual_seed(seed)
    mag = torch.rand(N, F, M, generator=g)
    if levels:
        mag = torch.floor(mag * levels) / levels
    dp = (torch.rand(N, F, M, generator=g, dtype=torch.float64) - 0.5) * 4 * math.pi
    ang = (torch.rand(N, F, M, generator=g, dtype=torch.float64) - 0.5) * 2 * math.pi
    return mag, dp, ang


@pytest.mark.parametrize("levels", [None, 3, 1])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_matches_torch_scan(levels, dtype):
    """Plateaus (``levels=3``) and all-equal frames (``levels=1``: every frame one plateau)."""
    mag, dp, ang = inputs(5, 33, 70, seed=1, levels=levels)
    mag = mag.to(dtype)
    copies = [t.clone() for t in (mag, dp, ang)]
    out = pl.phase_lock_kernel(mag, dp, ang)
    assert out.dtype == torch.float64 and out.shape == mag.shape
    torch.testing.assert_close(out, _phase_lock(mag, dp, ang), atol=1e-11, rtol=0)
    for t, c in zip((mag, dp, ang), copies):
        assert torch.equal(t, c)  # inputs untouched


@settings(max_examples=40, deadline=None)
@given(N=st.integers(1, 3), F=st.integers(1, 9), M=st.integers(1, 12), levels=st.sampled_from([None, 1, 2]),
       seed=st.integers(0, 2**16))
def test_edge_shapes(N, F, M, levels, seed):
    """One bin, one frame, silent frames: same phases as the scan."""
    mag, dp, ang = inputs(N, F, M, seed, levels)
    mag[..., ::3] = 0.0
    torch.testing.assert_close(pl.phase_lock_kernel(mag, dp, ang), _phase_lock(mag, dp, ang), atol=1e-12, rtol=0)


def test_empty_and_bad_inputs():
    mag, dp, ang = inputs(2, 4, 5, seed=0)
    assert pl.phase_lock_kernel(mag[:0], dp[:0], ang[:0]).shape == (0, 4, 5)
    with pytest.raises(ValueError, match="one shape"):
        pl.phase_lock_kernel(mag, dp[..., :4], ang)
    with pytest.raises(ValueError, match="one shape"):
        pl.phase_lock_kernel(mag[0], dp[0], ang[0])


def counting_kernel(monkeypatch) -> list:
    """Replace the registered phase_lock kernel by a counting wrapper; returns the call list. The
    lock runs inside the torch phase vocoder only (the CPU default is the fused kernel of op
    ``phase_vocoder``), so that op is set to torch here."""
    calls = []
    kernel = pl.phase_lock_kernel
    registry = dict(gb._KERNELS)
    registry[("phase_lock", "numba", "cpu")] = gb.Kernel(lambda *a, **k: calls.append(1) or kernel(*a, **k), 0)
    monkeypatch.setattr(gb, "_KERNELS", registry)
    for key in [k for k in os.environ if k.startswith("GPUAUG_BACKEND")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("GPUAUG_BACKEND_PHASE_VOCODER", "torch")
    return calls


def test_pitch_shift_uses_kernel_unless_torch(monkeypatch):
    """auto on CPU runs the kernel; backend="torch" and GPUAUG_BACKEND_PHASE_LOCK=torch do not;
    both give the same audio within fp32 tolerance."""
    calls = counting_kernel(monkeypatch)
    wave, lengths = mixed_batch(B=3, T=3000, seed=4)
    semitones = torch.tensor([1.0, -3.86, 12.0])
    auto, _ = pitch_shift(wave, lengths, semitones=semitones)
    assert len(calls) == 1
    ref, _ = pitch_shift(wave, lengths, semitones=semitones, backend="torch")
    assert len(calls) == 1
    monkeypatch.setenv("GPUAUG_BACKEND_PHASE_LOCK", "torch")
    env, _ = pitch_shift(wave, lengths, semitones=semitones)
    assert len(calls) == 1
    torch.testing.assert_close(auto, ref, atol=2e-5, rtol=1e-5)
    torch.testing.assert_close(env, ref, atol=2e-5, rtol=1e-5)


def test_phase_lock_resolves_on_its_own(monkeypatch):
    """The lock no longer follows op warp: warp in torch still runs the kernel under auto, and
    the PitchShift / tempo-mode SpeedSegment transforms leave it to its own variable."""
    from gpuaug.functional.tempo import tempo_segment
    from gpuaug.transforms import Pipeline, PitchShift, SpeedSegment

    calls = counting_kernel(monkeypatch)
    wave, lengths = mixed_batch(B=2, T=3000, seed=5)
    monkeypatch.setenv("GPUAUG_BACKEND_WARP", "torch")
    pitch_shift(wave, lengths, semitones=2.0)
    assert len(calls) == 1
    monkeypatch.delenv("GPUAUG_BACKEND_WARP")
    tempo_segment(wave, lengths, start=500, length=1500, factor=1.25)  # backend="numba" would pick the fused vocoder
    assert len(calls) == 2
    tempo_segment(wave, lengths, start=500, length=1500, factor=1.25, backend="cupy")  # shared: no such kernel
    assert len(calls) == 2
    Pipeline([PitchShift(semitone_choices=(2.0,))])(wave, lengths, seed=1)
    Pipeline([SpeedSegment(mode="tempo")])(wave, lengths, seed=1)
    assert len(calls) == 4
    monkeypatch.setenv("GPUAUG_BACKEND_PHASE_LOCK", "torch")
    Pipeline([PitchShift(semitone_choices=(2.0,))])(wave, lengths, seed=1)
    Pipeline([SpeedSegment(mode="tempo")])(wave, lengths, seed=1)
    assert len(calls) == 4
