"""Tests of gpuaug.functional.lpc.burg_lpc against a float64 transcription of librosa.lpc."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.signal
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from gpuaug.functional.lpc import burg_lpc
from reference.lpc_ref import burg_lpc_ref


def _frames(n: int, length: int, seed: int) -> np.ndarray:
    """Mixed test frames: white noise, AR(2)/AR(4)-coloured noise, windowed, with a DC offset."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        x = rng.standard_normal(length)
        if i % 3 == 1:
            x = scipy.signal.lfilter([1.0], [1.0, -1.6, 0.95], x)
        if i % 3 == 2:
            x = scipy.signal.lfilter([1.0], np.poly([0.97 * np.exp(0.4j), 0.97 * np.exp(-0.4j),
                                                    0.9 * np.exp(2j), 0.9 * np.exp(-2j)]).real, x)
        if i % 4 == 0:
            x = x * np.hanning(length)
        if i % 5 == 0:
            x = x + 0.3
        out.append(x)
    return np.stack(out)


@pytest.mark.parametrize("order", [1, 2, 8, 20])
def test_matches_reference(order):
    frames = _frames(12, 320, seed=order)
    got = burg_lpc(torch.from_numpy(frames), order).numpy()
    want = np.stack([burg_lpc_ref(f, order) for f in frames])
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-10)
    assert np.all(got[:, 0] == 1.0)


def test_leading_dims_dtype_and_no_input_change():
    frames = torch.from_numpy(_frames(6, 160, seed=3)).reshape(2, 3, 160)
    before = frames.clone()
    a64 = burg_lpc(frames, 10)
    assert a64.shape == (2, 3, 11) and a64.dtype == torch.float64
    assert torch.equal(frames, before)
    a32 = burg_lpc(frames.float(), 10)
    assert a32.dtype == torch.float32
    # float32 input is promoted to float64 internally: same result up to the input rounding
    ref = burg_lpc(frames.float().double(), 10)
    torch.testing.assert_close(a32, ref.float(), rtol=1e-5, atol=1e-6)
    assert burg_lpc(frames[:0], 10).shape == (0, 3, 11)


def test_recovers_ar2_coefficients():
    # AR(2) resonance at 500 Hz, r = 0.95: Burg on a long realisation recovers a within 1 %
    rng = np.random.default_rng(0)
    r, theta = 0.95, 2 * np.pi * 500 / 16000
    a_true = np.array([1.0, -2 * r * np.cos(theta), r * r])
    x = scipy.signal.lfilter([1.0], a_true, rng.standard_normal(20000))
    a = burg_lpc(torch.from_numpy(x), 2).numpy()
    np.testing.assert_allclose(a, a_true, atol=0.01)


def test_silent_and_constant_frames():
    frames = torch.stack([torch.zeros(320), torch.full((320,), 0.7), torch.full((320,), -1e-30)]).double()
    a = burg_lpc(frames, 20)
    assert bool(torch.isfinite(a).all())
    expected_silent = torch.zeros(21, dtype=torch.float64)
    expected_silent[0] = 1.0
    assert torch.equal(a[0], expected_silent)
    # a constant is predicted exactly by x[n] = x[n-1]: a = [1, -1, 0, ...] (librosa too)
    torch.testing.assert_close(a[1], torch.from_numpy(burg_lpc_ref(np.full(320, 0.7), 20)))
    assert abs(float(a[1, 1]) + 1.0) < 1e-12


def test_bad_input():
    with pytest.raises(ValueError, match="NaN"):
        burg_lpc(torch.tensor([[0.0, 1.0, float("nan"), 2.0, 3.0]]), 2)
    with pytest.raises(ValueError, match="order"):
        burg_lpc(torch.zeros(1, 3), 3)
    with pytest.raises(ValueError, match="order"):
        burg_lpc(torch.zeros(1, 30), 0)
    with pytest.raises(TypeError):
        burg_lpc(torch.zeros(1, 30, dtype=torch.int64), 2)
    with pytest.raises(TypeError):
        burg_lpc(torch.zeros(1, 30), 2.0)


@settings(max_examples=30, deadline=None)
@given(
    length=st.integers(min_value=21, max_value=400),
    kind=st.sampled_from(["noise", "clipped", "tiny", "impulse", "sine"]),
    seed=st.integers(min_value=0, max_value=2**16),
)
def test_hypothesis_minimum_phase_and_finite(length, kind, seed):
    rng = np.random.default_rng(seed)
    if kind == "noise":
        x = rng.standard_normal(length)
    elif kind == "clipped":
        x = np.clip(5 * rng.standard_normal(length), -1.0, 1.0)
    elif kind == "tiny":
        x = 1e-200 * rng.standard_normal(length)
    elif kind == "impulse":
        x = np.zeros(length)
        x[rng.integers(length)] = 1.0
    else:
        x = np.sin(2 * np.pi * rng.uniform(0.01, 0.49) * np.arange(length))
    a = burg_lpc(torch.from_numpy(x), 20)
    assert bool(torch.isfinite(a).all()) and float(a[0]) == 1.0
    # Burg's reflection coefficients satisfy |k| <= 1, so all roots lie in the closed unit disc
    assert float(np.abs(np.roots(a.numpy())).max()) <= 1.0 + 1e-6
    if kind in ("noise", "clipped"):
        np.testing.assert_allclose(a.numpy(), burg_lpc_ref(x, 20), rtol=1e-8, atol=1e-8)


@pytest.mark.real_data
def test_real_speech_frames_match_reference(emodb_speech):
    x = emodb_speech[0].double()
    frames = x[4000:4000 + 40 * 160].unfold(0, 320, 160) * torch.hann_window(320, periodic=False, dtype=torch.float64)
    got = burg_lpc(frames, 20).numpy()
    want = np.stack([burg_lpc_ref(f, 20) for f in frames.numpy()])
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-9)
