"""Tests of gpuaug.functional.fade."""
import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st

from gpuaug.functional.fade import fade
from strategies import edge_signal
from harness import check_op, mixed_batch
from reference.fade_ref import fade_gain_ref, fade_ref

SR = 16000


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("C", [None, 2])
@pytest.mark.parametrize("shape", ["linear", "exponential"])
def test_check_op(dtype, C, shape):
    wave, lengths = mixed_batch(B=4, T=1600, C=C, dtype=dtype)
    check_op(
        fade, wave, lengths, sample_rate=SR, shape=shape,
        rate_per_s=torch.tensor([0.02, 0.5, 1.0, 0.9]), direction=torch.tensor([1, -1, 0, 1]),
    )


@pytest.mark.parametrize("shape", ["linear", "exponential"])
def test_vs_reference(shape):
    wave, lengths = mixed_batch(B=4, T=3000, C=2, dtype=torch.float64, seed=5)
    sr = 1000  # 3 s clips: strong, clearly visible fades
    rate = torch.tensor([0.02, 0.3, 0.8, 0.5])
    direc = torch.tensor([-1, 1, -1, 0])
    out, out_len = fade(wave, lengths, sample_rate=sr, rate_per_s=rate, direction=direc, shape=shape)
    assert torch.equal(out_len, lengths)
    for b in range(4):
        L = int(lengths[b])
        ref = fade_ref(wave[b, :, :L].numpy(), sr, float(rate[b]), int(direc[b]), shape)
        np.testing.assert_allclose(out[b, :, :L].numpy(), ref, rtol=1e-12, atol=1e-15)


def test_linear_two_percent_over_five_seconds():
    L = 5 * SR
    ones = torch.ones(2, L, dtype=torch.float64)
    out, _ = fade(ones, torch.full((2,), L), sample_rate=SR, rate_per_s=0.02, direction=torch.tensor([-1, 1]))
    last_t = (L - 1) / SR  # the last sample is at 5 s - 1 / SR
    # fade out: 1 at the start, 0.9 at the end; fade in: 0.9 at the start, exactly 1 at the end
    assert out[0, 0] == 1.0 and out[1, -1] == 1.0
    assert abs(float(out[0, -1]) - 0.9) < 2e-6 and abs(float(out[1, 0]) - 0.9) < 2e-6
    assert float(out[0, -1]) == pytest.approx(1 - 0.02 * last_t, abs=1e-15)
    assert float(out[0, 2 * SR]) == pytest.approx(0.96, abs=1e-15)  # 2 s in: -4 %
    assert float(out[1, L - 1 - 3 * SR]) == pytest.approx(0.94, abs=1e-15)  # 3 s before the end
    torch.testing.assert_close(out[1], out[0].flip(0), rtol=0, atol=0)
    assert (out[0].diff() < 0).all()  # strictly monotone


def test_exponential_and_clamp():
    sr = 100
    L = 4 * sr + 1
    ones = torch.ones(3, L, dtype=torch.float64)
    rate = torch.tensor([0.5, 0.02, 1.0], dtype=torch.float64)
    out, _ = fade(ones, torch.full((3,), L), sample_rate=sr, rate_per_s=rate, direction=-1, shape="exponential")
    for s in range(5):
        assert float(out[0, s * sr]) == pytest.approx(0.5**s, rel=1e-12)  # halves every second
    assert float(out[1, 4 * sr]) == pytest.approx(0.98**4, rel=1e-12)
    assert out[2, 0] == 1.0 and (out[2, 1:] == 0).all()  # rate 1: silent after the start
    # linear with rate > 1 reaches 0 before the end and stays clamped at 0
    lin, _ = fade(ones[:1], torch.tensor([L]), sample_rate=sr, rate_per_s=2.0, direction=-1)
    assert (lin[0, sr // 2:] == 0).all() and float(lin[0, sr // 4]) == pytest.approx(0.5)
    assert (lin >= 0).all()


def test_fade_in_is_relative_to_each_clip_length():
    wave = torch.ones(2, 1000, dtype=torch.float64)
    lengths = torch.tensor([1000, 400])
    out, _ = fade(wave, lengths, sample_rate=100, rate_per_s=0.1, direction=1)
    assert out[0, 999] == 1.0 and out[1, 399] == 1.0 and (out[1, 400:] == 0).all()
    torch.testing.assert_close(out[1, :400], out[0, 600:])


def test_bad_arguments():
    wave, lengths = mixed_batch(B=2, T=100)
    kw = dict(sample_rate=SR, rate_per_s=0.02, direction=1)
    with pytest.raises(ValueError, match="shape"):
        fade(wave, lengths, **{**kw, "shape": "cosine"})
    with pytest.raises(ValueError, match="direction"):
        fade(wave, lengths, **{**kw, "direction": torch.tensor([1, 2])})
    with pytest.raises(ValueError, match="rate_per_s"):
        fade(wave, lengths, **{**kw, "rate_per_s": -0.1})
    with pytest.raises(ValueError, match="rate_per_s"):
        fade(wave, lengths, **{**kw, "rate_per_s": 1.5, "shape": "exponential"})
    with pytest.raises(ValueError, match="sample_rate"):
        fade(wave, lengths, **{**kw, "sample_rate": 0})
    with pytest.raises(TypeError, match="sample_rate"):
        fade(wave, lengths, **{**kw, "sample_rate": "16k"})


@st.composite
def edge_clip(draw):
    x = draw(edge_signal())
    return x, len(x) + draw(st.integers(0, 5))


@settings(max_examples=30, deadline=None)
@given(edge_clip(), st.floats(0, 1), st.sampled_from([-1, 0, 1]), st.sampled_from(["linear", "exponential"]))
def test_edge_cases(clip, rate, direction, shape):
    x, T = clip
    L = len(x)
    wave = torch.zeros(1, T, dtype=torch.float64)
    wave[0, :L] = torch.from_numpy(x)
    out, out_len = fade(wave, torch.tensor([L]), sample_rate=8, rate_per_s=rate, direction=direction, shape=shape)
    assert int(out_len[0]) == L and torch.isfinite(out).all() and (out[0, L:] == 0).all()
    np.testing.assert_allclose(out[0, :L].numpy(), fade_ref(x, 8, rate, direction, shape), rtol=1e-12, atol=1e-15)
    assert (out[0, :L].abs().numpy() <= np.abs(x) + 1e-15).all()  # a fade never amplifies
    if L == 1:
        assert out[0, 0] == x[0]


@settings(max_examples=10, deadline=None)
@given(st.integers(1, 40), st.data())
def test_nan_input_raises(L, data):
    wave = torch.zeros(2, 1, L)
    wave[0, 0, data.draw(st.integers(0, L - 1))] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        fade(wave, torch.tensor([L, L]), sample_rate=SR, rate_per_s=0.02, direction=-1)


@pytest.mark.real_data
def test_real_speech(emodb_batch):
    wave, lengths = emodb_batch
    clips = [wave[b, : int(lengths[b])] for b in range(wave.shape[0])]
    direc = torch.tensor([1, -1, 1, -1])[: len(clips)]
    out, _ = check_op(fade, wave, lengths, sample_rate=SR, rate_per_s=0.2, direction=direc)
    for b, c in enumerate(clips):
        L = len(c)
        g = fade_gain_ref(L, SR, 0.2, int(direc[b]), "linear")
        np.testing.assert_allclose(out[b, :L].numpy(), c.numpy() * g, rtol=1e-6, atol=1e-7)
        # the faded-down half of the clip lost energy, the other half kept most of it
        h = L // 2
        quiet, loud = (slice(0, h), slice(h, L)) if direc[b] > 0 else (slice(h, L), slice(0, h))
        lost = lambda s: float(out[b, s].pow(2).sum() / c[s].pow(2).sum().clamp(min=1e-12))
        assert lost(quiet) < lost(loud)
