"""Tests of gpuaug.functional.gain."""
import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st

from gpuaug.functional.gain import gain
from strategies import edge_signal
from harness import check_op, mixed_batch
from reference.gain_ref import gain_ref


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("C", [None, 2])
def test_check_op(dtype, C):
    wave, lengths = mixed_batch(B=3, T=1500, C=C, dtype=dtype)
    check_op(gain, wave, lengths, gain_db=torch.tensor([-12.0, 0.0, 7.5]))
    check_op(gain, wave, lengths, gain_db=-3.0)


def test_vs_reference():
    wave, lengths = mixed_batch(B=4, T=1200, C=2, dtype=torch.float64, seed=3)
    g = torch.tensor([-40.0, -6.0, 0.0, 18.0])
    out, out_len = gain(wave, lengths, gain_db=g)
    assert torch.equal(out_len, lengths)
    for b in range(4):
        L = int(lengths[b])
        ref = gain_ref(wave[b, :, :L].numpy(), float(g[b]))
        np.testing.assert_allclose(out[b, :, :L].numpy(), ref, rtol=1e-12, atol=1e-15)


def test_db_is_amplitude_db():
    t = torch.arange(2000, dtype=torch.float64) / 16000
    x = torch.sin(2 * torch.pi * 440 * t)[None].repeat(3, 1)
    out, _ = gain(x, torch.full((3,), 2000), gain_db=torch.tensor([20 * np.log10(2), 0.0, -20.0]))
    torch.testing.assert_close(out[0], 2 * x[0])
    assert torch.equal(out[1], x[1])  # 0 dB is exactly the identity
    energy_ratio = out[2].pow(2).sum() / x[2].pow(2).sum()
    assert abs(float(energy_ratio) - 0.01) < 1e-12  # -20 dB: 1 % of the energy


def test_bad_gain():
    wave, lengths = mixed_batch(B=2, T=100)
    with pytest.raises(ValueError, match="finite"):
        gain(wave, lengths, gain_db=torch.tensor([0.0, float("nan")]))
    with pytest.raises(ValueError, match="shape"):
        gain(wave, lengths, gain_db=torch.zeros(3))
    with pytest.raises(ValueError, match="overflows"):
        gain(wave, lengths, gain_db=900.0)


@st.composite
def edge_clip(draw):
    x = draw(edge_signal())
    return x, len(x) + draw(st.integers(0, 5))


@settings(max_examples=30, deadline=None)
@given(edge_clip(), st.floats(-60, 24))
def test_edge_cases(clip, g):
    x, T = clip
    L = len(x)
    wave = torch.zeros(1, T)
    wave[0, :L] = torch.from_numpy(x).float()
    out, out_len = gain(wave, torch.tensor([L]), gain_db=g)
    assert int(out_len[0]) == L and torch.isfinite(out).all() and (out[0, L:] == 0).all()
    np.testing.assert_allclose(out[0, :L].numpy(), gain_ref(x.astype(np.float32), g), rtol=1e-6, atol=1e-7)


@settings(max_examples=10, deadline=None)
@given(st.integers(1, 40), st.data())
def test_nan_input_raises(L, data):
    wave = torch.zeros(2, L)
    wave[1, data.draw(st.integers(0, L - 1))] = data.draw(st.sampled_from([float("nan"), float("inf")]))
    with pytest.raises(ValueError, match="NaN"):
        gain(wave, torch.tensor([L, L]), gain_db=0.0)


@pytest.mark.real_data
def test_real_speech(emodb_batch):
    wave, lengths = emodb_batch
    clips = [wave[b, : int(lengths[b])] for b in range(wave.shape[0])]
    g = torch.tensor([-6.0, 3.0, -20.0, 0.0])[: len(clips)]
    out, out_len = check_op(gain, wave, lengths, gain_db=g)
    for b, c in enumerate(clips):
        L = len(c)
        ratio_db = 10 * torch.log10(out[b, :L].double().pow(2).sum() / c.double().pow(2).sum())
        assert abs(float(ratio_db) - float(g[b])) < 1e-4
