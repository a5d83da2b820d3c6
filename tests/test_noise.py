"""Tests of gpuaug.functional.noise: mix_noise, white_noise, valid_power."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import load_real
from gpuaug.functional.noise import mix_noise, valid_power, white_noise
from harness import check_op, mixed_batch
from reference.noise_ref import mix_noise_ref, snr_db, white_noise_ref

ATOL = {torch.float32: 1e-5, torch.float64: 1e-12}


def _noise(B, Tn, C=None, seed=1, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    shape = (B, Tn) if C is None else (B, C, Tn)
    return (torch.randn(shape, generator=g, dtype=torch.float64) * 0.2).to(dtype)


# ----------------------------------------------------------------------------- contract


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("C, Cn", [(None, None), (2, 2), (2, 1), (2, None)])
def test_mix_noise_contract(dtype, C, Cn):
    wave, lengths = mixed_batch(B=3, T=2000, C=C, dtype=dtype)
    noise = _noise(3, 1500, C=Cn, dtype=dtype)
    check_op(
        mix_noise, wave, lengths, atol=ATOL[dtype],
        noise=noise, noise_lengths=torch.tensor([1500, 300, 1100]),
        snr_db=torch.tensor([-10.0, 0.0, 20.0]), noise_offset=torch.tensor([0, 17, 900]),
        span_start=torch.tensor([0, 100, -50]), span_length=torch.tensor([2000, 700, 400]),
        fade_out=torch.tensor([0, 50, 400]),
    )


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("C", [None, 2])
@pytest.mark.parametrize("mode", ["sigma", "snr"])
def test_white_noise_contract(dtype, C, mode):
    wave, lengths = mixed_batch(B=3, T=2000, C=C, dtype=dtype)
    level = {"sigma": torch.tensor([0.0, 0.05, 0.3])} if mode == "sigma" else {"snr_db": torch.tensor([-10.0, 5.0, 30.0])}
    check_op(white_noise, wave, lengths, atol=ATOL[dtype], seed=torch.tensor([3, 4, 5]), **level)


# ----------------------------------------------------------------------------- reference


CASES = [
    dict(snr_db=5.0),  # continuous, noise longer than clip
    dict(snr_db=0.0, noise_offset=333),  # cropped at an offset
    dict(snr_db=10.0, span_start=0, span_length=800, fade_out=200),  # "start" placement
    dict(snr_db=-3.0, span_start=250, span_length=600, fade_out=1, noise_offset=7),
    dict(snr_db=2.0, span_start=-100, span_length=500, noise_offset=-5),
    dict(snr_db=1.0, span_start=900, span_length=5000, fade_out=3000),  # fade longer than span
]


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("Tn", [1700, 130])  # cropped / looped noise
@pytest.mark.parametrize("C, Cn", [(None, None), (2, 1), (2, 2)])
def test_mix_noise_vs_reference(case, Tn, C, Cn):
    wave, lengths = mixed_batch(B=3, T=1500, C=C, dtype=torch.float64, seed=2)
    noise = _noise(3, Tn + 20, C=Cn, dtype=torch.float64)
    noise_lengths = torch.tensor([Tn, Tn - 3, Tn + 20])
    out, _ = mix_noise(wave, lengths, noise, noise_lengths, **case)
    for b in range(3):
        L, Ln = int(lengths[b]), int(noise_lengths[b])
        x = wave[b].reshape(-1, wave.shape[-1])[:, :L].numpy()
        n = noise[b].reshape(-1, noise.shape[-1])[:, :Ln].numpy()
        ref = mix_noise_ref(x, n, **case)
        np.testing.assert_allclose(out[b].reshape(-1, out.shape[-1])[:, :L].numpy(), ref, atol=1e-12, rtol=0)


def test_mix_noise_loops_and_crops_exactly():
    """Noise with unit SNR gain makes the gathered noise directly visible."""
    T = 50
    wave = torch.zeros(2, T, dtype=torch.float64)
    wave[:, 0] = 1.0  # P_signal = 1 / T
    noise = torch.zeros(2, 20, dtype=torch.float64)
    noise[0, :7] = torch.arange(1, 8)
    noise[1] = torch.arange(1, 21)
    out, _ = mix_noise(wave, torch.tensor([T, 30]), noise, torch.tensor([7, 20]), snr_db=0.0,
                       noise_offset=torch.tensor([0, 15]))
    added = out - wave
    looped = added[0] / added[0, 0]
    assert torch.allclose(looped, (torch.arange(T) % 7 + 1).double())
    cropped = added[1, :30] / added[1, 0]
    assert torch.allclose(cropped * 16, ((torch.arange(30) + 15) % 20 + 1).double())


# ----------------------------------------------------------------------------- signal properties


PLACEMENTS = {
    "continuous": dict(),
    "start": dict(span_start=0, span_length=1200, fade_out=300),
    "span": dict(span_start=700, span_length=900),
}


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("placement", sorted(PLACEMENTS))
@pytest.mark.parametrize("target", [-10.0, 0.0, 7.5, 20.0])
def test_mix_noise_snr_is_met(dtype, placement, target):
    wave, lengths = mixed_batch(B=4, T=3000, dtype=dtype, seed=5)
    noise = _noise(4, 900, dtype=dtype, seed=6) * torch.tensor([[1.0], [0.01], [30.0], [1.0]], dtype=dtype)
    kw = PLACEMENTS[placement]
    out, _ = mix_noise(wave, lengths, noise, torch.full((4,), 900), snr_db=target, noise_offset=123, **kw)
    for b in range(4):
        L = int(lengths[b])
        begin = kw.get("span_start", 0)
        end = min(begin + kw.get("span_length", L), L)
        measured = snr_db(wave[b, :L].numpy(), out[b, :L].numpy(), begin, end)
        assert abs(measured - target) < 0.05, (b, measured)
        # outside the span the clip is untouched
        assert torch.equal(out[b, end:L], wave[b, end:L]) and torch.equal(out[b, :begin], wave[b, :begin])


def test_mix_noise_fade_envelope():
    T, F = 400, 100
    wave = torch.ones(1, T, dtype=torch.float64)
    noise = torch.ones(1, 10, dtype=torch.float64)
    out, _ = mix_noise(wave, torch.tensor([T]), noise, torch.tensor([10]), snr_db=0.0,
                       span_start=0, span_length=300, fade_out=F)
    env = (out - wave)[0]
    env = env / env[0]
    expected = torch.zeros(T, dtype=torch.float64)
    expected[:200] = 1.0
    expected[200:300] = torch.arange(F - 1, -1, -1, dtype=torch.float64) / F
    torch.testing.assert_close(env, expected)


def test_mix_noise_undefined_snr_passes_through_bit_identical():
    wave, lengths = mixed_batch(B=4, T=1000, seed=7)
    wave[0] = 0.0  # silent clip
    noise = _noise(4, 500)
    noise[2] = 0.0  # silent noise
    noise[3, 200:] = 0.0  # silent where the span reads it
    out, _ = mix_noise(wave, lengths, noise, torch.full((4,), 500), snr_db=0.0,
                       span_start=torch.tensor([0, 2000, 0, 0]), span_length=100, noise_offset=torch.tensor([0, 0, 0, 250]))
    for b in range(4):
        assert torch.equal(out[b], wave[b]), b
    out, _ = mix_noise(wave, lengths, noise, torch.full((4,), 500), snr_db=0.0, span_length=0)
    assert torch.equal(out, wave)


def test_valid_power_ignores_padding():
    wave = torch.zeros(3, 2, 10)
    wave[0, :, :4] = 2.0
    wave[1, 0, :5] = 1.0
    wave[:, :, 8:] = 100.0  # garbage in the padding
    p = valid_power(wave, torch.tensor([4, 5, 0]))
    assert p.dtype == torch.float64
    torch.testing.assert_close(p, torch.tensor([4.0, 0.5, 0.0], dtype=torch.float64))
    assert valid_power(torch.ones(0, 7), torch.zeros(0, dtype=torch.int64)).shape == (0,)


def test_white_noise_sigma_is_measured():
    T = 8000
    wave = torch.zeros(3, 2, T)
    wave[2] = 0.5 * torch.sin(torch.arange(T) * 0.05)
    lengths = torch.tensor([T, 5000, 6000])
    sigma = torch.tensor([0.1, 0.02, 0.3])
    out, _ = white_noise(wave, lengths, seed=torch.tensor([10, 11, 12]), sigma=sigma)
    added = (out - wave).double()
    for b in range(3):
        n = added[b, :, : int(lengths[b])]
        assert abs(float(n.std()) / float(sigma[b]) - 1) < 0.03
        assert abs(float(n.mean())) < 4 * float(sigma[b]) / np.sqrt(n.numel())
        lag1 = float((n[:, 1:] * n[:, :-1]).mean() / n.square().mean())
        assert abs(lag1) < 0.05  # white
        assert abs(float(np.corrcoef(n[0], n[1])[0, 1])) < 0.05  # channels independent


@pytest.mark.parametrize("target", [-10.0, 0.0, 20.0])
def test_white_noise_snr_is_met_and_matches_reference(target):
    wave, lengths = mixed_batch(B=3, T=3000, C=2, dtype=torch.float64, seed=9)
    seed = torch.tensor([1, 2, 3])
    out, _ = white_noise(wave, lengths, seed=seed, snr_db=target)
    unit, _ = white_noise(torch.zeros_like(wave), lengths, seed=seed, sigma=1.0)
    for b in range(3):
        L = int(lengths[b])
        x, y = wave[b, :, :L].numpy(), out[b, :, :L].numpy()
        assert abs(snr_db(x, y) - target) < 0.05
        np.testing.assert_allclose(y, white_noise_ref(x, unit[b, :, :L].numpy(), snr_db=target), atol=1e-12)


def test_white_noise_depends_only_on_seed_and_sample_index():
    wave, lengths = mixed_batch(B=3, T=2000, seed=12)
    seed = torch.tensor([7, 8, 9])
    out, _ = white_noise(wave, lengths, seed=seed, sigma=0.1)
    for b in range(3):
        L = int(lengths[b])
        alone, _ = white_noise(wave[b : b + 1, :L], lengths[b : b + 1], seed=seed[b : b + 1], sigma=0.1)
        padded, _ = white_noise(torch.nn.functional.pad(wave[b : b + 1, :L], (0, 999)), lengths[b : b + 1],
                                seed=seed[b : b + 1], sigma=0.1)
        assert torch.equal(alone[0], out[b, :L]) and torch.equal(padded[0, :L], out[b, :L])
    # other batch composition: the same seed in another slot gives the same noise
    swapped, _ = white_noise(wave.flip(0), lengths.flip(0), seed=seed.flip(0), sigma=0.1)
    assert torch.equal(swapped.flip(0), out)
    # mono == channel 0 of multichannel; channels differ
    multi, _ = white_noise(torch.zeros(1, 2, 500), torch.tensor([500]), seed=7, sigma=1.0)
    mono, _ = white_noise(torch.zeros(1, 500), torch.tensor([500]), seed=7, sigma=1.0)
    assert torch.equal(multi[0, 0], mono[0]) and not torch.equal(multi[0, 0], multi[0, 1])
    other, _ = white_noise(torch.zeros(1, 500), torch.tensor([500]), seed=8, sigma=1.0)
    assert not torch.equal(other, mono)


def test_white_noise_silent_clip():
    wave = torch.zeros(2, 1000)
    lengths = torch.tensor([1000, 600])
    out, _ = white_noise(wave, lengths, seed=torch.tensor([1, 2]), snr_db=0.0)
    assert torch.equal(out, wave)
    out, _ = white_noise(wave, lengths, seed=torch.tensor([1, 2]), sigma=0.2)
    assert abs(float(out[0].std()) - 0.2) < 0.02 and bool((out[1, 600:] == 0).all())


# ----------------------------------------------------------------------------- errors / edges


def test_errors():
    wave, lengths = mixed_batch(B=2, T=500, C=2)
    noise3 = _noise(2, 100, C=3)
    with pytest.raises(ValueError, match="mismatched channel counts"):
        mix_noise(wave, lengths, noise3, torch.tensor([100, 100]), snr_db=0.0)
    with pytest.raises(ValueError, match="mismatched channel counts"):
        mix_noise(wave[:, 0], lengths, _noise(2, 100, C=2), torch.tensor([100, 100]), snr_db=0.0)
    with pytest.raises(ValueError, match="noise_lengths"):
        mix_noise(wave, lengths, _noise(2, 100), torch.tensor([100, 0]), snr_db=0.0)
    with pytest.raises(ValueError, match="batch size"):
        mix_noise(wave, lengths, _noise(3, 100), torch.tensor([100, 100, 100]), snr_db=0.0)
    with pytest.raises(ValueError, match="span_length"):
        mix_noise(wave, lengths, _noise(2, 100), torch.tensor([100, 100]), snr_db=0.0, span_length=-1)
    with pytest.raises(ValueError, match="fade_out"):
        mix_noise(wave, lengths, _noise(2, 100), torch.tensor([100, 100]), snr_db=0.0, fade_out=-1)
    bad = _noise(2, 100)
    bad[1, 3] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        mix_noise(wave, lengths, bad, torch.tensor([100, 100]), snr_db=0.0)
    with pytest.raises(ValueError, match="snr_db"):
        mix_noise(wave, lengths, _noise(2, 100), torch.tensor([100, 100]), snr_db=float("inf"))
    with pytest.raises(ValueError, match="exactly one"):
        white_noise(wave, lengths, seed=1)
    with pytest.raises(ValueError, match="exactly one"):
        white_noise(wave, lengths, seed=1, sigma=0.1, snr_db=3.0)
    with pytest.raises(ValueError, match="sigma"):
        white_noise(wave, lengths, seed=1, sigma=-0.1)


@settings(max_examples=25, deadline=None)
@given(
    lengths=st.lists(st.integers(0, 40), min_size=1, max_size=3),
    noise_len=st.integers(1, 50),
    kind=st.sampled_from(["silence", "full_scale", "random"]),
    snr=st.floats(-20, 40),
    span_start=st.integers(-10, 40),
    span_length=st.none() | st.integers(0, 50),
    fade=st.integers(0, 60),
)
def test_mix_noise_edge_cases(lengths, noise_len, kind, snr, span_start, span_length, fade):
    B, T = len(lengths), max(lengths) + 2
    g = torch.Generator().manual_seed(len(lengths) * 100 + noise_len)
    wave = {"silence": torch.zeros(B, T), "full_scale": torch.sign(torch.randn(B, T, generator=g)),
            "random": torch.randn(B, T, generator=g)}[kind]
    lengths_t = torch.tensor(lengths)
    wave = wave * (torch.arange(T) < lengths_t[:, None])
    noise = torch.randn(B, noise_len, generator=g)
    out, out_len = mix_noise(wave, lengths_t, noise, torch.full((B,), noise_len), snr_db=snr,
                             span_start=span_start, span_length=span_length, fade_out=fade)
    assert torch.equal(out_len, lengths_t) and bool(torch.isfinite(out).all())
    for b in range(B):
        L = lengths[b]
        ref = mix_noise_ref(wave[b : b + 1, :L].numpy(), noise[b : b + 1].numpy(), snr, 0, span_start, span_length, fade)
        np.testing.assert_allclose(out[b, :L].numpy(), ref[0], rtol=1e-5, atol=1e-5 * max(1.0, float(np.abs(ref).max(initial=0))))
    if kind == "silence":
        assert torch.equal(out, wave)


@settings(max_examples=20, deadline=None)
@given(lengths=st.lists(st.integers(0, 30), min_size=1, max_size=3), kind=st.sampled_from(["silence", "full_scale"]),
       snr=st.floats(-20, 40))
def test_white_noise_edge_cases(lengths, kind, snr):
    B, T = len(lengths), max(lengths) + 1
    wave = torch.zeros(B, T) if kind == "silence" else torch.ones(B, T)
    lengths_t = torch.tensor(lengths)
    wave = wave * (torch.arange(T) < lengths_t[:, None])
    out, _ = white_noise(wave, lengths_t, seed=torch.arange(B), snr_db=snr)
    assert bool(torch.isfinite(out).all())
    if kind == "silence":
        assert torch.equal(out, wave)
    for b in range(B):
        if lengths[b] > 1 and kind == "full_scale":
            assert abs(snr_db(wave[b, : lengths[b]].numpy(), out[b, : lengths[b]].numpy()) - snr) < 0.05


def test_nan_input_raises():
    wave = torch.zeros(1, 10)
    wave[0, 3] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        mix_noise(wave, torch.tensor([10]), torch.ones(1, 5), torch.tensor([5]), snr_db=0.0)
    with pytest.raises(ValueError, match="NaN"):
        white_noise(wave, torch.tensor([10]), seed=0, sigma=0.1)


# ----------------------------------------------------------------------------- real data


@pytest.mark.real_data
def test_real_rain_into_emodb_at_0db(emodb_speech):
    rain = load_real("noise/natural_rain_light.wav")
    clips = [x[:24000] for x in emodb_speech]
    lengths = torch.tensor([len(x) for x in clips])
    wave = torch.zeros(len(clips), int(lengths.max()))
    for b, x in enumerate(clips):
        wave[b, : len(x)] = x
    noise = rain[None].expand(len(clips), -1)
    offsets = torch.tensor([0, 40000, 100000, 200000])
    out, _ = mix_noise(wave, lengths, noise, torch.full((len(clips),), len(rain)), snr_db=0.0, noise_offset=offsets)
    for b, x in enumerate(clips):
        L = len(x)
        y = out[b, :L].numpy()
        assert abs(snr_db(x.numpy(), y) - 0.0) < 0.05
        ref = mix_noise_ref(x[None].numpy(), rain[None].numpy(), 0.0, int(offsets[b]))
        np.testing.assert_allclose(y, ref[0], atol=1e-5)
        # the added noise is the rain recording at the clip's offset, up to the gain
        added = (out[b, :L] - wave[b, :L]).double()
        seg = rain[int(offsets[b]) : int(offsets[b]) + L].double()
        assert float(torch.corrcoef(torch.stack([added, seg]))[0, 1]) > 0.9999
