"""Tests of gpuaug.functional.reverb: reverb (FFT convolution) and synthetic_rir."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import load_real
from gpuaug.functional.reverb import reverb, synthetic_rir
from harness import check_op, mixed_batch
from reference.reverb_ref import drr_db, reverb_ref, rt60_schroeder

SR = 16000
TOL = {torch.float32: dict(atol=1e-5, single_atol=1e-5), torch.float64: dict(atol=1e-12, single_atol=1e-12)}


def _rirs(B, Tr, C=None, seed=3, dtype=torch.float32, lengths=None):
    """Random decaying RIRs with the direct path a few samples in."""
    g = torch.Generator().manual_seed(seed)
    shape = (B, Tr) if C is None else (B, C, Tr)
    h = torch.randn(shape, generator=g, dtype=torch.float64) * torch.exp(-torch.arange(Tr) / (Tr / 5)) * 0.3
    h[..., 3] = 1.0
    if lengths is not None:
        h = h * (torch.arange(Tr) < lengths[:, None] if C is None else (torch.arange(Tr) < lengths[:, None])[:, None])
    return h.to(dtype)


# ----------------------------------------------------------------------------- contract


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("C, Cr", [(None, None), (2, 1), (2, 2), (2, None)])
@pytest.mark.parametrize("normalize", ["energy", "peak", "none"])
def test_reverb_contract(dtype, C, Cr, normalize):
    wave, lengths = mixed_batch(B=3, T=2000, C=C, dtype=dtype)
    rir_lengths = torch.tensor([300, 41, 500])
    rir = _rirs(3, 500, C=Cr, dtype=dtype, lengths=rir_lengths)
    check_op(reverb, wave, lengths, rir=rir, rir_lengths=rir_lengths, normalize=normalize, **TOL[dtype])


# ----------------------------------------------------------------------------- reference


@pytest.mark.parametrize("normalize", ["energy", "peak", "none"])
@pytest.mark.parametrize("C, Cr", [(None, None), (2, 1), (2, 2)])
def test_reverb_vs_fftconvolve(normalize, C, Cr):
    wave, lengths = mixed_batch(B=3, T=1800, C=C, dtype=torch.float64, seed=4)
    rir_lengths = torch.tensor([700, 1, 260])
    rir = _rirs(3, 700, C=Cr, dtype=torch.float64, seed=5, lengths=rir_lengths)
    rir[0, ..., 100] = -2.5  # direct path (largest |h|) later in the RIR, negative
    rir[1, ..., 0] = 0.7
    out, out_len = reverb(wave, lengths, rir, rir_lengths, normalize=normalize)
    assert torch.equal(out_len, lengths)
    for b in range(3):
        L = int(lengths[b])
        x = wave[b].reshape(-1, wave.shape[-1])[:, :L].numpy()
        h = rir[b].reshape(-1, rir.shape[-1])[:, : int(rir_lengths[b])].numpy()
        ref = reverb_ref(x, h, normalize)
        np.testing.assert_allclose(out[b].reshape(-1, out.shape[-1])[:, :L].numpy(), ref, atol=1e-12, rtol=0)


# ----------------------------------------------------------------------------- signal properties


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("normalize", ["none", "energy"])
@pytest.mark.parametrize("delay", [0, 37])
def test_delta_rir_is_identity(dtype, normalize, delay):
    wave, lengths = mixed_batch(B=3, T=1500, C=2, dtype=dtype, seed=6)
    rir = torch.zeros(3, 1, 200, dtype=dtype)
    rir[:, :, delay] = 1.0
    out, _ = reverb(wave, lengths, rir, torch.tensor([200, delay + 1, 150]), normalize=normalize)
    tol = 1e-6 if dtype == torch.float32 else 1e-13
    torch.testing.assert_close(out, wave, atol=tol, rtol=0)


def test_scaled_delta_with_peak_normalisation_is_identity():
    wave, lengths = mixed_batch(B=2, T=900, seed=7)
    rir = torch.zeros(2, 50)
    rir[0, 0], rir[1, 20] = 0.25, -3.0  # negative direct path: polarity flips
    out, _ = reverb(wave, lengths, rir, torch.tensor([50, 50]), normalize="peak")
    torch.testing.assert_close(out[0], wave[0], atol=1e-6, rtol=0)
    torch.testing.assert_close(out[1], -wave[1], atol=1e-6, rtol=0)


def test_echo_and_pre_echo_alignment():
    """h = 0.1 d[n] + d[n-5] + 0.5 d[n-105]: y[t] = x[t] + 0.1 x[t+5] + 0.5 x[t-100]."""
    T = 600
    x = torch.randn(1, T, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    h = torch.zeros(1, 120, dtype=torch.float64)
    h[0, 0], h[0, 5], h[0, 105] = 0.1, 1.0, 0.5
    y, _ = reverb(x, torch.tensor([T]), h, torch.tensor([120]), normalize="none")
    xp = torch.nn.functional.pad(x[0], (100, 5))
    expected = xp[100 : 100 + T] + 0.1 * xp[105 : 105 + T] + 0.5 * xp[:T]
    torch.testing.assert_close(y[0], expected, atol=1e-12, rtol=0)


def test_energy_and_peak_normalisation_hold():
    wave, lengths = mixed_batch(B=4, T=2000, C=2, dtype=torch.float32, seed=8)
    wave[1] *= 20.0
    rir = synthetic_rir(torch.arange(4), rt60_s=torch.tensor([0.05, 0.2, 0.4, 0.1]), drr_db=torch.tensor([-5.0, 0.0, 5.0, 10.0]),
                        predelay_s=0.002, sample_rate=SR)
    for mode in ["energy", "peak"]:
        out, _ = reverb(wave, lengths, *rir, normalize=mode)
        raw, _ = reverb(wave, lengths, *rir, normalize="none")
        for b in range(4):
            L = int(lengths[b])
            x, y = wave[b, :, :L].double(), out[b, :, :L].double()
            if mode == "energy":
                assert abs(float(y.square().sum() / x.square().sum()) - 1) < 1e-5
            else:
                assert abs(float(y.abs().max() / x.abs().max()) - 1) < 1e-5
            # normalisation is one per-clip gain (channel balance kept)
            r = raw[b, :, :L].double()
            gain = float(y.square().sum().sqrt() / r.square().sum().sqrt())
            torch.testing.assert_close(y, r * gain, atol=1e-5, rtol=1e-4)


def test_reverb_smears_a_click():
    """A click through a synthetic RIR reproduces the RIR after the click, nothing before."""
    x = torch.zeros(1, 8000)
    x[0, 1000] = 1.0
    rir, rir_len = synthetic_rir(torch.tensor([1]), rt60_s=0.25, drr_db=0.0, predelay_s=0.0, sample_rate=SR)
    y, _ = reverb(x, torch.tensor([8000]), rir, rir_len, normalize="none")
    assert float(y[0, :1000].abs().max()) < 1e-6  # FFT rounding only
    assert abs(float(y[0, 1000]) - 1.0) < 1e-6
    torch.testing.assert_close(y[0, 1000 : 1000 + int(rir_len[0])], rir[0, : int(rir_len[0])], atol=1e-6, rtol=0)


def test_silent_input_stays_silent():
    wave = torch.zeros(2, 3, 700)
    rir = _rirs(2, 90)
    for mode in ["energy", "peak", "none"]:
        out, _ = reverb(wave, torch.tensor([700, 5]), rir, torch.tensor([90, 90]), normalize=mode)
        assert torch.equal(out, wave)


# ----------------------------------------------------------------------------- synthetic RIR


@pytest.mark.parametrize("rt60, drr, predelay", [(0.2, 0.0, 0.0), (0.5, 5.0, 0.01), (0.8, -6.0, 0.02), (0.1, 12.0, 0.005)])
def test_synthetic_rir_drr_and_rt60(rt60, drr, predelay):
    seeds = torch.tensor([11, 12])
    rir, rir_len = synthetic_rir(seeds, rt60_s=rt60, drr_db=drr, predelay_s=predelay, sample_rate=SR, dtype=torch.float64)
    onset = max(1, round(predelay * SR))
    assert rir_len.tolist() == [math.ceil((predelay + rt60) * SR - 1e-6)] * 2
    for b in range(2):
        h = rir[b, : int(rir_len[b])].numpy()
        assert h[0] == 1.0 and np.all(h[1:onset] == 0) and h[onset] != 0
        assert abs(drr_db(h) - drr) < 0.5
        measured = rt60_schroeder(h[onset:], SR)
        assert abs(measured / rt60 - 1) < 0.15, measured


def test_synthetic_rir_determinism_and_batching():
    seeds = torch.tensor([5, 6, 7])
    params = dict(rt60_s=torch.tensor([0.1, 0.3, 0.2]), drr_db=torch.tensor([3.0, -2.0, 8.0]),
                  predelay_s=torch.tensor([0.0, 0.01, 0.004]), sample_rate=SR)
    rir, rir_len = synthetic_rir(seeds, **params)
    again, _ = synthetic_rir(seeds, **params)
    assert torch.equal(rir, again)
    assert rir.shape == (3, int(rir_len.max())) and bool((rir[0, int(rir_len[0]) :] == 0).all())
    for b in range(3):
        alone, alone_len = synthetic_rir(seeds[b : b + 1], **{k: (v[b : b + 1] if isinstance(v, torch.Tensor) else v) for k, v in params.items()})
        assert int(alone_len[0]) == int(rir_len[b]) and alone.shape[1] == int(rir_len[b])
        torch.testing.assert_close(alone[0], rir[b, : int(rir_len[b])], atol=1e-7, rtol=1e-6)
    other, _ = synthetic_rir(seeds + 100, **params)
    assert not torch.equal(other, rir)
    fixed, fixed_len = synthetic_rir(seeds, length=torch.tensor([900, 1000, 1100]), **params)
    assert fixed_len.tolist() == [900, 1000, 1100] and fixed.shape == (3, 1100)
    assert synthetic_rir(torch.zeros(0, dtype=torch.int64), rt60_s=0.3, drr_db=0.0, predelay_s=0.0, sample_rate=SR)[0].shape == (0, 0)


def test_synthetic_rir_validation():
    s = torch.tensor([1, 2])
    ok = dict(rt60_s=0.3, drr_db=0.0, predelay_s=0.01, sample_rate=SR)
    with pytest.raises(ValueError, match="rt60_s"):
        synthetic_rir(s, **{**ok, "rt60_s": torch.tensor([0.3, 0.0])})
    with pytest.raises(ValueError, match="predelay_s"):
        synthetic_rir(s, **{**ok, "predelay_s": -0.1})
    with pytest.raises(ValueError, match="sample_rate"):
        synthetic_rir(s, **{**ok, "sample_rate": 0})
    with pytest.raises(ValueError, match="length"):
        synthetic_rir(s, **ok, length=100)  # shorter than the 160-sample pre-delay
    with pytest.raises(ValueError, match="seed"):
        synthetic_rir(torch.tensor([1.5]), **ok)
    with pytest.raises(ValueError, match="drr_db"):
        synthetic_rir(s, **{**ok, "drr_db": float("nan")})


# ----------------------------------------------------------------------------- errors / edges


def test_errors():
    wave, lengths = mixed_batch(B=2, T=300, C=2)
    rir = _rirs(2, 50)
    with pytest.raises(ValueError, match="normalize"):
        reverb(wave, lengths, rir, torch.tensor([50, 50]), normalize="rms")
    with pytest.raises(ValueError, match="mismatched channel counts"):
        reverb(wave, lengths, _rirs(2, 50, C=3), torch.tensor([50, 50]))
    with pytest.raises(ValueError, match="batch size"):
        reverb(wave, lengths, _rirs(3, 50), torch.tensor([50, 50, 50]))
    with pytest.raises(ValueError, match="rir_lengths"):
        reverb(wave, lengths, rir, torch.tensor([50, 0]))
    with pytest.raises(ValueError, match="all zero"):
        reverb(wave, lengths, torch.zeros(2, 50), torch.tensor([50, 50]))
    bad = wave.clone()
    bad[0, 1, 5] = float("inf")
    with pytest.raises(ValueError, match="NaN or Inf"):
        reverb(bad, lengths, rir, torch.tensor([50, 50]))
    bad = rir.clone()
    bad[1, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        reverb(wave, lengths, bad, torch.tensor([50, 50]))


@settings(max_examples=25, deadline=None)
@given(
    lengths=st.lists(st.integers(0, 40), min_size=1, max_size=3),
    rir_len=st.integers(1, 30),
    kind=st.sampled_from(["silence", "full_scale", "random"]),
    normalize=st.sampled_from(["energy", "peak", "none"]),
)
def test_reverb_edge_cases(lengths, rir_len, kind, normalize):
    B, T = len(lengths), max(lengths) + 3
    g = torch.Generator().manual_seed(rir_len * 10 + B)
    wave = {"silence": torch.zeros(B, T, dtype=torch.float64),
            "full_scale": torch.sign(torch.randn(B, T, generator=g, dtype=torch.float64)),
            "random": torch.randn(B, T, generator=g, dtype=torch.float64)}[kind]
    lengths_t = torch.tensor(lengths)
    wave = wave * (torch.arange(T) < lengths_t[:, None])
    rir = torch.randn(B, rir_len, generator=g, dtype=torch.float64)
    out, out_len = reverb(wave, lengths_t, rir, torch.full((B,), rir_len), normalize=normalize)
    assert torch.equal(out_len, lengths_t) and bool(torch.isfinite(out).all())
    for b in range(B):
        L = lengths[b]
        ref = reverb_ref(wave[b : b + 1, :L].numpy(), rir[b : b + 1].numpy(), normalize)
        np.testing.assert_allclose(out[b, :L].numpy(), ref[0], atol=1e-10, rtol=1e-10)
    if kind == "silence":
        assert torch.equal(out, wave)


# ----------------------------------------------------------------------------- real data


@pytest.mark.real_data
@pytest.mark.parametrize("name", ["clap_seminar_room_rir.wav", "openair_pommelte_timber_circle_open_air.wav"])
def test_real_rir_on_emodb(emodb_speech, name):
    h = load_real(f"rir/{name}")[:8000]  # first 0.5 s of the measured RIR
    # speech followed by 0.2 s of digital silence inside the valid region
    clips = [torch.nn.functional.pad(x[: 14000 - 2000 * b], (0, 3200)) for b, x in enumerate(emodb_speech)]
    lengths = torch.tensor([len(x) for x in clips])
    wave = torch.zeros(len(clips), int(lengths.max()))
    for b, x in enumerate(clips):
        wave[b, : len(x)] = x
    rir = h[None].expand(len(clips), -1)
    out, _ = reverb(wave, lengths, rir, torch.full((len(clips),), len(h)), normalize="energy")
    for b, x in enumerate(clips):
        ref = reverb_ref(x[None].numpy(), h[None].numpy(), "energy")[0]
        y = out[b, : len(x)].numpy().astype(np.float64)
        np.testing.assert_allclose(y, ref, atol=2e-5 * np.abs(ref).max())
        assert abs(np.sum(y**2) / np.sum(x.double().numpy() ** 2) - 1) < 1e-4
        # the room rings on into the trailing silence (the dry clip is exactly 0 there)
        tail = np.sum(y[-3200:-1600] ** 2) / np.sum(y**2)
        assert tail > 1e-4, tail


@pytest.mark.parametrize("normalize", ["energy", "none"])
def test_rir_longer_than_clips_matches_reference(normalize):
    """Only RIR samples up to L + d reach the kept output: a 3000-sample RIR on 60..400-sample
    clips (direct path late in one RIR) must still equal the full convolution reference."""
    wave, lengths = mixed_batch(B=3, T=400, dtype=torch.float64, seed=8)
    lengths = torch.tensor([60, 250, 400])
    wave = wave * (torch.arange(400) < lengths[:, None])
    rir_lengths = torch.tensor([3000, 2000, 90])
    rir = _rirs(3, 3000, dtype=torch.float64, seed=9, lengths=rir_lengths)
    rir[1, 700] = 4.0  # direct path far past the clip length
    out, _ = reverb(wave, lengths, rir, rir_lengths, normalize=normalize)
    for b in range(3):
        L = int(lengths[b])
        ref = reverb_ref(wave[b : b + 1, :L].numpy(), rir[b : b + 1, : int(rir_lengths[b])].numpy(), normalize)
        np.testing.assert_allclose(out[b, :L].numpy(), ref[0], atol=1e-12, rtol=0)
