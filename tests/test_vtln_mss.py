"""Tests of the STFT-domain voice ops: VTLN (gpuaug.functional.vtln) and modulation spectrum
smoothing (gpuaug.functional.mss), with their shared STFT helpers."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.signal as ss
import torch
from harness import check_op, mixed_batch
from hypothesis import given, settings
from hypothesis import strategies as st
from reference.stft_ops_ref import istft_ref, mss_ref, stft_ref, vtln_ref

from gpuaug.functional.mss import PADLEN, butter2_lowpass, lfilter_zi2, modulation_smoothing
from gpuaug.functional.stft_util import frame_counts, istft, stft
from gpuaug.functional.vtln import vtln

FS = 16000


def _batch(lengths, T, *, C=None, dtype=torch.float64, seed=0):
    """Speech-like batch (noise + 220 Hz tone) with the given lengths, padding zero."""
    wave, _ = mixed_batch(B=len(lengths), T=T, C=C, seed=seed, dtype=torch.float64)
    lengths = torch.tensor(lengths)
    mask = torch.arange(T) < lengths[:, None]
    wave = wave * (mask if C is None else mask[:, None, :])
    return wave.to(dtype), lengths


def _resonance(excitation, f0, bw):
    """``excitation`` through a two-pole resonator at ``f0`` Hz with bandwidth ``bw`` Hz."""
    r, th = np.exp(-np.pi * bw / FS), 2 * np.pi * f0 / FS
    y = ss.lfilter([1.0], [1.0, -2 * r * np.cos(th), r * r], excitation)
    return 0.5 * y / np.abs(y).max()


def _welch(y):
    f, p = ss.welch(y, FS, nperseg=1024)
    return f, p


def _centroid(y):
    f, p = _welch(y)
    return float((f * p).sum() / p.sum())


def _one(op, x, **kw):
    """Run ``op`` on a single float64 numpy clip."""
    out, _ = op(torch.tensor(x, dtype=torch.float64)[None], torch.tensor([len(x)]), **kw)
    return out[0].numpy()


# ----------------------------------------------------------------------------- STFT helpers


def test_stft_matches_reference_and_roundtrips():
    wave, lengths = _batch([1, 700, 2600, 5000], 5000)
    spec = stft(wave)
    n = frame_counts(lengths)
    y = istft(spec, n, 5000)
    for b, L in enumerate(lengths.tolist()):
        ref = stft_ref(wave[b, :L].numpy())
        assert ref.shape[0] == int(n[b])
        np.testing.assert_allclose(spec[b, :, : int(n[b])].numpy().T, ref, atol=1e-10)
        np.testing.assert_allclose(y[b, :L].numpy(), wave[b, :L].numpy(), atol=1e-12)
        np.testing.assert_allclose(istft_ref(ref, L), wave[b, :L].numpy(), atol=1e-12)


@pytest.mark.parametrize("cutoff", [0.05, 0.1, 0.17, 0.3])
def test_butterworth_and_zi_match_scipy(cutoff):
    b, a = butter2_lowpass(torch.tensor([cutoff], dtype=torch.float64))
    b_ref, a_ref = ss.butter(2, cutoff)
    np.testing.assert_allclose(b[0].numpy(), b_ref, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(a[0].numpy(), a_ref, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(lfilter_zi2(b, a)[0].numpy(), ss.lfilter_zi(b_ref, a_ref), atol=1e-12)


# ----------------------------------------------------------------------------- contract


@pytest.mark.parametrize("C", [None, 2])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_vtln_contract(C, dtype):
    wave, lengths = _batch([3000, 1, 700, 4000], 4000, C=C, dtype=dtype)
    check_op(vtln, wave, lengths, alpha=torch.tensor([0.15, -0.2, 0.05, -0.1]))


@pytest.mark.parametrize("C", [None, 2])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_mss_contract(C, dtype):
    # three clips long enough to be filtered (>= 12 frames), one that passes through
    wave, lengths = _batch([6200, 3000, 7300, 8000], 8000, C=C, dtype=dtype, seed=1)
    assert (frame_counts(lengths) > PADLEN).tolist() == [True, False, True, True]
    check_op(modulation_smoothing, wave, lengths, alpha=torch.tensor([0.1, 0.2, 0.05, 0.3]))


def test_bad_parameters_raise():
    wave, lengths = _batch([5000, 4000], 5000)
    with pytest.raises(ValueError, match="alpha"):
        vtln(wave, lengths, alpha=0.25)
    with pytest.raises(ValueError, match="alpha"):
        vtln(wave, lengths, alpha=torch.tensor([0.1, -0.21]))
    with pytest.raises(ValueError, match="alpha"):
        modulation_smoothing(wave, lengths, alpha=0.04)
    with pytest.raises(ValueError, match="alpha"):
        modulation_smoothing(wave, lengths, alpha=torch.tensor([0.1, 0.31]))
    with pytest.raises(ValueError, match="alpha"):
        vtln(wave, lengths, alpha=float("nan"))
    # float32 parameters at the range ends are accepted
    vtln(wave, lengths, alpha=torch.tensor([0.2, -0.2], dtype=torch.float32))
    modulation_smoothing(wave, lengths, alpha=torch.tensor([0.3, 0.05], dtype=torch.float32))


# ----------------------------------------------------------------------------- vs reference


@pytest.mark.parametrize("dtype,atol", [(torch.float64, 1e-10), (torch.float32, 2e-5)])
def test_vtln_matches_reference(dtype, atol):
    wave, lengths = _batch([2500, 6000, 513, 4100], 6000, dtype=dtype, seed=2)
    alpha = torch.tensor([0.2, -0.15, 0.1, 0.0], dtype=torch.float64)
    out, _ = vtln(wave, lengths, alpha=alpha)
    for b, L in enumerate(lengths.tolist()):
        ref = vtln_ref(wave[b, :L].double().numpy(), float(alpha[b]))
        np.testing.assert_allclose(out[b, :L].double().numpy(), ref, atol=atol)


@pytest.mark.parametrize("dtype,atol", [(torch.float64, 1e-10), (torch.float32, 2e-5)])
def test_mss_matches_reference(dtype, atol):
    wave, lengths = _batch([5200, 9000, 2000, 7000], 9000, dtype=dtype, seed=3)
    alpha = torch.tensor([0.05, 0.1, 0.2, 0.3], dtype=torch.float64)
    out, _ = modulation_smoothing(wave, lengths, alpha=alpha)
    for b, L in enumerate(lengths.tolist()):
        ref = mss_ref(wave[b, :L].double().numpy(), float(alpha[b]))
        np.testing.assert_allclose(out[b, :L].double().numpy(), ref, atol=atol)


# ----------------------------------------------------------------------------- signal properties


def test_vtln_zero_alpha_is_identity():
    for dtype, tol in [(torch.float64, 1e-12), (torch.float32, 1e-5)]:
        wave, lengths = _batch([1, 900, 4000, 3333], 4000, C=2, dtype=dtype)
        out, out_len = vtln(wave, lengths, alpha=0.0)
        torch.testing.assert_close(out, wave, atol=tol, rtol=0)
        assert torch.equal(out_len, lengths)


@pytest.mark.parametrize("alpha", [-0.15, 0.1, 0.15, 0.2])
def test_vtln_moves_resonance_as_predicted(alpha):
    """Noise through a 1 kHz resonator: the output's spectral peak sits at the warped frequency."""
    x = _resonance(np.random.default_rng(1).standard_normal(8000), 1000.0, 150.0)
    w = 2 * np.pi * 1000.0 / FS
    expected = (w + 2 * np.arctan(alpha * np.sin(w) / (1 - alpha * np.cos(w)))) * FS / (2 * np.pi)
    f, p = _welch(_one(vtln, x, alpha=alpha))
    assert abs(f[p.argmax()] - expected) <= 2 * FS / 1024
    assert abs(f[_welch(x)[1].argmax()] - 1000.0) <= FS / 1024


def test_vtln_raises_centroid_of_harmonic_signal():
    pulses = np.zeros(8000)
    pulses[:: FS // 110] = 1.0  # 110 Hz glottal-like pulse train
    x = _resonance(pulses, 1000.0, 150.0)
    c0 = _centroid(x)
    assert _centroid(_one(vtln, x, alpha=0.1)) > c0 * 1.15
    assert _centroid(_one(vtln, x, alpha=0.15)) > c0 * 1.25
    assert _centroid(_one(vtln, x, alpha=-0.1)) < c0 * 0.9


def _modulation_depth(y):
    env = np.abs(ss.hilbert(y))
    env = ss.filtfilt(*ss.butter(4, 50 / (FS / 2)), env)[FS // 4 : -FS // 4]
    return (env.max() - env.min()) / (env.max() + env.min())


@pytest.mark.parametrize("f_mod,alpha,max_depth", [(2.0, 0.05, 0.2), (4.0, 0.1, 0.45)])
def test_mss_reduces_amplitude_modulation_and_keeps_energy(f_mod, alpha, max_depth):
    t = np.arange(FS) / FS
    x = 0.3 * (1 + 0.8 * np.sin(2 * np.pi * f_mod * t)) * np.sin(2 * np.pi * 1000 * t)
    assert _modulation_depth(x) == pytest.approx(0.8, abs=0.02)
    y = _one(modulation_smoothing, x, alpha=alpha)
    assert _modulation_depth(y) < max_depth
    assert np.sum(y * y) == pytest.approx(np.sum(x * x), rel=1e-9)


def test_mss_cutoff_controls_smoothing():
    """A 2 Hz modulation lies above cutoff 0.05 (0.39 Hz) but below cutoff 0.3 (2.3 Hz)."""
    t = np.arange(FS) / FS
    x = 0.3 * (1 + 0.8 * np.sin(2 * np.pi * 2.0 * t)) * np.sin(2 * np.pi * 1000 * t)
    assert _modulation_depth(_one(modulation_smoothing, x, alpha=0.3)) > 0.6
    assert _modulation_depth(_one(modulation_smoothing, x, alpha=0.05)) < 0.2


def test_mss_short_clips_pass_through_and_energy_per_channel():
    wave, lengths = _batch([4607, 4608, 6000], 6000, C=2, dtype=torch.float32, seed=4)
    wave[:, 1] *= 0.25  # a quieter second channel keeps its own level
    out, _ = modulation_smoothing(wave, lengths, alpha=0.1)
    assert torch.equal(out[0], wave[0])  # 9 frames: unchanged
    assert not torch.allclose(out[1], wave[1], atol=1e-3)  # 10 frames: filtered
    e_in, e_out = wave.double().square().sum(-1), out.double().square().sum(-1)
    torch.testing.assert_close(e_out, e_in, rtol=1e-5, atol=0)


def test_silence_never_nan():
    wave, lengths = _batch([6000, 6000, 5000], 6000, C=None, seed=5)
    wave[0] = 0.0  # digital silence
    wave[1, 2000:3600] = 0.0  # 100 ms of digital silence inside the clip
    wave[2, 1000:5000] = 0.0  # a gap holding whole frames (m = 4..7)
    for op, alpha in [(vtln, 0.15), (modulation_smoothing, 0.1)]:
        out, _ = op(wave, lengths, alpha=alpha)
        assert torch.isfinite(out).all()
        assert torch.equal(out[0], torch.zeros_like(out[0]))
        for b in (1, 2):
            L = int(lengths[b])
            ref = (vtln_ref if op is vtln else mss_ref)(wave[b, :L].numpy(), alpha)
            np.testing.assert_allclose(out[b, :L].numpy(), ref, atol=1e-10)
        # samples covered only by all-zero frames (4..7) stay exactly zero
        assert (out[2, 2560:3072] == 0).all()


# ----------------------------------------------------------------------------- edge cases


@settings(max_examples=12, deadline=None)
@given(
    length=st.integers(1, 6000),
    kind=st.sampled_from(["silence", "noise", "clipped", "impulse"]),
    v_alpha=st.floats(-0.2, 0.2),
    m_alpha=st.floats(0.05, 0.3),
    dtype=st.sampled_from([torch.float32, torch.float64]),
)
def test_edge_cases(length, kind, v_alpha, m_alpha, dtype):
    g = torch.Generator().manual_seed(length)
    T = length + 7
    x = torch.zeros(1, T, dtype=torch.float64)
    if kind == "noise":
        x[0, :length] = 0.3 * torch.randn(length, generator=g, dtype=torch.float64)
    elif kind == "clipped":
        x[0, :length] = torch.sign(torch.randn(length, generator=g, dtype=torch.float64))  # full scale
    elif kind == "impulse":
        x[0, length // 2] = 1.0
    x = x.to(dtype)
    lengths = torch.tensor([length])
    for op, alpha in [(vtln, v_alpha), (modulation_smoothing, m_alpha)]:
        out, out_len = op(x, lengths, alpha=alpha)
        assert out.shape == x.shape and out.dtype == dtype and torch.equal(out_len, lengths)
        assert torch.isfinite(out).all()
        assert (out[0, length:] == 0).all()
        if kind == "silence":
            assert (out == 0).all()
    out, _ = modulation_smoothing(x, lengths, alpha=m_alpha)
    e_in, e_out = x.double().square().sum(), out.double().square().sum()
    if 1 + length // 512 <= PADLEN:
        assert torch.equal(out, x)
    else:
        torch.testing.assert_close(e_out, e_in, rtol=1e-5, atol=0)
    bad = x.clone()
    bad[0, 0] = float("nan")
    for op, alpha in [(vtln, v_alpha), (modulation_smoothing, m_alpha)]:
        with pytest.raises(ValueError, match="NaN"):
            op(bad, lengths, alpha=alpha)


# ----------------------------------------------------------------------------- real speech


@pytest.mark.real_data
def test_real_speech_matches_reference(emodb_speech):
    clips = [c.double() for c in emodb_speech[:3]]
    lens = [min(len(clips[0]), 16000), min(len(clips[1]), 11000), min(len(clips[2]), 7000)]
    T = max(lens)
    wave = torch.zeros(3, T, dtype=torch.float64)
    for b, (c, L) in enumerate(zip(clips, lens)):
        wave[b, :L] = c[:L]
    wave[0, 6000:7600] = 0.0  # 100 ms of digital silence inside speech
    lengths = torch.tensor(lens)
    v_alpha = torch.tensor([0.12, -0.1, 0.2], dtype=torch.float64)
    m_alpha = torch.tensor([0.1, 0.25, 0.05], dtype=torch.float64)
    v_out, _ = vtln(wave, lengths, alpha=v_alpha)
    m_out, _ = modulation_smoothing(wave, lengths, alpha=m_alpha)
    assert torch.isfinite(v_out).all() and torch.isfinite(m_out).all()
    for b, L in enumerate(lens):
        x = wave[b, :L].numpy()
        np.testing.assert_allclose(v_out[b, :L].numpy(), vtln_ref(x, float(v_alpha[b])), atol=1e-9)
        np.testing.assert_allclose(m_out[b, :L].numpy(), mss_ref(x, float(m_alpha[b])), atol=1e-9)
    # the warp direction shows on real speech: alpha > 0 raises the centroid, alpha < 0 lowers it
    assert _centroid(v_out[0, : lens[0]].numpy()) > _centroid(wave[0, : lens[0]].numpy())
    assert _centroid(v_out[1, : lens[1]].numpy()) < _centroid(wave[1, : lens[1]].numpy())
    # float32 batch agrees with the float64 one
    v32, _ = vtln(wave.float(), lengths, alpha=v_alpha)
    m32, _ = modulation_smoothing(wave.float(), lengths, alpha=m_alpha)
    torch.testing.assert_close(v32.double(), v_out, atol=2e-5, rtol=0)
    torch.testing.assert_close(m32.double(), m_out, atol=2e-5, rtol=0)
