"""Tests of gpuaug.functional.mcadams (VoicePrivacy B2 McAdams transformation)."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.signal
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from gpuaug.functional.mcadams import mcadams
from harness import check_op, mixed_batch
from reference.lpc_ref import burg_lpc_ref
from reference.mcadams_ref import mcadams_ref
from reference.signals import speech_like as _speech_like

FS = 16000
HOP = 160
WINLEN = 320




def _ar2(f_hz: float, n: int, seed: int, r: float = 0.98) -> np.ndarray:
    rng = np.random.default_rng(seed)
    th = 2 * np.pi * f_hz / FS
    return scipy.signal.lfilter([1.0], [1.0, -2 * r * np.cos(th), r * r], rng.standard_normal(n))


def _rel_err_vs_ref(x: np.ndarray, alpha: float) -> float:
    """Relative L2 error of mcadams(level='none') vs the reference on the samples it covers."""
    want, covered = mcadams_ref(x, alpha)
    got, _ = mcadams(torch.from_numpy(x)[None], torch.tensor([len(x)]), alpha=alpha, level="none")
    got = got[0].numpy()
    return float(np.linalg.norm(got[:covered] - want[:covered]) / np.linalg.norm(want[:covered]))


# ---------------------------------------------------------------- contract


@pytest.mark.parametrize("level", ["preserve", "peak", "none"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("channels", [None, 2])
def test_check_op(level, dtype, channels):
    wave, lengths = mixed_batch(B=4, T=2400, C=channels, seed=1, dtype=dtype)
    lengths[0] = 200  # shorter than one frame: passes through
    wave[0, ..., 200:] = 0
    wave[1] = 0  # all-silent clip
    alpha = torch.tensor([0.8, 0.9, 1.1, 0.7])
    out, out_len = check_op(mcadams, wave, lengths, alpha=alpha, level=level)
    assert torch.equal(out_len, lengths)
    assert torch.equal(out[0], wave[0]) and torch.equal(out[1], wave[1])
    assert not torch.allclose(out[3], wave[3], atol=1e-2)


# ---------------------------------------------------------------- vs reference


@pytest.mark.parametrize("alpha", [0.8, 0.9, 1.1])
def test_matches_reference_synthetic(alpha):
    for seed in range(2):
        x = _speech_like(3200, seed) + np.random.default_rng(seed).standard_normal(3200) * 1e-3
        assert _rel_err_vs_ref(x, alpha) < 1e-7


def test_matches_reference_per_clip_in_a_batch():
    xs = [_speech_like(n, seed=n) for n in (2500, 3200, 1900)]
    alphas = [0.8, 1.1, 0.9]
    T = max(len(x) for x in xs)
    wave = torch.zeros(3, T, dtype=torch.float64)
    for b, x in enumerate(xs):
        wave[b, : len(x)] = torch.from_numpy(x)
    alpha = torch.tensor(alphas, dtype=torch.float64)  # float32 0.8 != 0.8
    out, _ = mcadams(wave, torch.tensor([len(x) for x in xs]), alpha=alpha, level="none")
    for b, (x, al) in enumerate(zip(xs, alphas)):
        want, covered = mcadams_ref(x, al)
        np.testing.assert_allclose(out[b, :covered].numpy(), want[:covered], rtol=0, atol=1e-9 * np.abs(want).max())


def test_peak_level_matches_reference_peak_normalisation():
    x = _speech_like(3200, seed=5)
    want, covered = mcadams_ref(x, 0.8, peak=True)
    got, _ = mcadams(torch.from_numpy(x)[None], torch.tensor([3200]), alpha=0.8, level="peak")
    got = got[0].numpy()
    assert abs(np.abs(got).max() - 1.0) < 1e-12
    # our output also covers the tail after the last complete frame, so the peaks can differ;
    # compare the shapes on the covered part
    scale = np.dot(got[:covered], want[:covered]) / np.dot(want[:covered], want[:covered])
    np.testing.assert_allclose(got[:covered], scale * want[:covered], atol=1e-7)


# ---------------------------------------------------------------- signal properties


def test_alpha_one_is_near_identity():
    x = _speech_like(4000, seed=2)
    y, _ = mcadams(torch.from_numpy(x)[None], torch.tensor([4000]), alpha=1.0, level="none")
    y = y[0].numpy()
    # after the first hop every sample is covered by two frames, w**2 overlap-adds to ~1
    rel = np.linalg.norm(y[HOP:] - x[HOP:]) / np.linalg.norm(x[HOP:])
    assert rel < 5e-3
    assert np.corrcoef(x[HOP:], y[HOP:])[0, 1] > 0.9999
    # the first hop keeps the window's fade-in (reference behaviour): y = w**2 x there
    hann = np.hanning(WINLEN)
    w2 = hann / (hann.sum() / HOP)
    np.testing.assert_allclose(y[:HOP], w2[:HOP] * (x[:HOP] + np.finfo(np.float32).eps), atol=1e-9)


def test_tail_after_last_complete_frame_is_processed():
    x = _speech_like(3250, seed=3)  # 50 samples past the last complete frame start
    y, _ = mcadams(torch.from_numpy(x)[None], torch.tensor([3250]), alpha=1.0, level="none")
    tail = slice(3250 - 120, 3250)
    rel = np.linalg.norm(y[0, tail].numpy() - x[tail]) / np.linalg.norm(x[tail])
    assert rel < 1e-2


@pytest.mark.parametrize("f_hz, alpha", [(500, 0.8), (500, 1.1), (3000, 0.8), (1000, 0.7)])
def test_formant_angle_warp(f_hz, alpha):
    """An AR(2) resonance moves to (2 pi f / fs) ** alpha: 500 Hz -> ~692 Hz at alpha 0.8."""
    x = _ar2(f_hz, 16000, seed=f_hz)
    y, _ = mcadams(torch.from_numpy(x)[None], torch.tensor([16000]), alpha=alpha)
    y = y[0].numpy()[WINLEN:-WINLEN]

    def envelope_peak(sig):
        w, h = scipy.signal.freqz([1.0], burg_lpc_ref(sig, 20), worN=8192, fs=FS)
        return w[np.argmax(np.abs(h))]

    f_in = envelope_peak(x)
    assert abs(f_in - f_hz) < 15
    expected = (2 * np.pi * f_hz / FS) ** alpha * FS / (2 * np.pi)
    assert abs(envelope_peak(y) - expected) < 20, (envelope_peak(y), expected)


def test_level_modes():
    wave, lengths = mixed_batch(B=3, T=3000, seed=4, dtype=torch.float64)
    pre, _ = mcadams(wave, lengths, alpha=0.8, level="preserve")
    peak, _ = mcadams(wave, lengths, alpha=0.8, level="peak")
    raw, _ = mcadams(wave, lengths, alpha=0.8, level="none")
    for b in range(3):
        L = int(lengths[b])
        rms_in = wave[b, :L].pow(2).mean().sqrt()
        torch.testing.assert_close(pre[b, :L].pow(2).mean().sqrt(), rms_in, rtol=1e-10, atol=0)
        assert abs(float(peak[b].abs().max()) - 1.0) < 1e-12
        # all three are the same signal up to a positive gain
        g = float(pre[b, :L].norm() / raw[b, :L].norm())
        torch.testing.assert_close(pre[b], g * raw[b], rtol=1e-9, atol=1e-12)


def test_channels_are_independent_and_peak_is_clip_wide():
    wave, lengths = mixed_batch(B=2, T=2000, C=2, seed=6, dtype=torch.float64)
    wave[:, 1] *= 0.25
    alpha = torch.tensor([0.8, 1.1])
    for level in ("preserve", "none"):
        both, _ = mcadams(wave, lengths, alpha=alpha, level=level)
        for c in range(2):
            one, _ = mcadams(wave[:, c], lengths, alpha=alpha, level=level)
            torch.testing.assert_close(both[:, c], one, rtol=1e-10, atol=1e-12)
    peak, _ = mcadams(wave, lengths, alpha=alpha, level="peak")
    raw, _ = mcadams(wave, lengths, alpha=alpha, level="none")
    for b in range(2):
        torch.testing.assert_close(peak[b], raw[b] / raw[b].abs().max())


def test_digital_silence_inside_speech_stays_quiet():
    x = np.concatenate([_speech_like(2000, seed=7), np.zeros(2000)])
    for alpha in (0.5, 0.8, 1.25):
        y, _ = mcadams(torch.from_numpy(x)[None], torch.tensor([4000]), alpha=alpha, level="none")
        assert bool(torch.isfinite(y).all())
        assert float(y[0, 2400:].abs().max()) < 1e-5


def test_bad_parameters():
    wave, lengths = mixed_batch(B=2, T=1000)
    with pytest.raises(ValueError, match="alpha"):
        mcadams(wave, lengths, alpha=0.0)
    with pytest.raises(ValueError, match="alpha"):
        mcadams(wave, lengths, alpha=torch.tensor([0.8, float("nan")]))
    with pytest.raises(ValueError, match="alpha"):
        mcadams(wave, lengths, alpha=torch.tensor([0.8, 0.9, 1.0]))
    with pytest.raises(ValueError, match="level"):
        mcadams(wave, lengths, alpha=0.8, level="rms")
    with pytest.raises(ValueError, match="order"):
        mcadams(wave, lengths, alpha=0.8, sample_rate=1000)  # winlen 20 <= order 20
    with pytest.raises(TypeError):
        mcadams(wave, lengths, alpha=0.8, sample_rate=16000.0)
    bad = wave.clone()
    bad[1, 5] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        mcadams(bad, lengths, alpha=0.8)


# ---------------------------------------------------------------- edge cases


@settings(max_examples=25, deadline=None)
@given(
    length=st.integers(min_value=0, max_value=700),
    pad=st.integers(min_value=0, max_value=50),
    kind=st.sampled_from(["silence", "noise", "clipped", "dc", "impulse"]),
    alpha=st.floats(min_value=0.5, max_value=1.3),
    level=st.sampled_from(["preserve", "peak", "none"]),
    seed=st.integers(min_value=0, max_value=2**16),
)
def test_hypothesis_edge_cases(length, pad, kind, alpha, level, seed):
    rng = np.random.default_rng(seed)
    if kind == "silence":
        x = np.zeros(length)
    elif kind == "noise":
        x = 0.3 * rng.standard_normal(length)
    elif kind == "clipped":
        x = np.clip(3 * np.sin(2 * np.pi * 200 / FS * np.arange(length)), -1.0, 1.0)
    elif kind == "dc":
        x = np.full(length, 0.5)
    else:
        x = np.zeros(length)
        if length:
            x[rng.integers(length)] = 1.0
    wave = torch.from_numpy(np.concatenate([x, np.zeros(pad)])).float()[None]
    out, out_len = mcadams(wave, torch.tensor([length]), alpha=alpha, level=level)
    assert out.shape == wave.shape and out.dtype == torch.float32 and int(out_len[0]) == length
    assert bool(torch.isfinite(out).all())
    assert bool((out[0, length:] == 0).all())
    if kind == "silence" or length < WINLEN:
        assert torch.equal(out, wave)  # silent / shorter than a frame: pass-through
    elif level == "preserve":
        torch.testing.assert_close(out[0, :length].pow(2).mean(), wave[0, :length].pow(2).mean(), rtol=1e-4, atol=0)
    elif level == "peak":
        assert abs(float(out.abs().max()) - 1.0) < 1e-6


# ---------------------------------------------------------------- real data


@pytest.mark.real_data
@pytest.mark.parametrize("alpha", [0.8, 0.9, 1.1])
def test_real_speech_matches_reference(emodb_speech, alpha):
    errs = [_rel_err_vs_ref(clip[8000:20000].double().numpy(), alpha) for clip in emodb_speech[:2]]
    assert max(errs) < 1e-6, errs


@pytest.mark.real_data
def test_real_speech_batch_level_and_change(emodb_speech):
    clips = [c[:12000 - 2000 * i] for i, c in enumerate(emodb_speech)]
    T = max(len(c) for c in clips)
    wave = torch.zeros(len(clips), T)
    for b, c in enumerate(clips):
        wave[b, : len(c)] = c
    lengths = torch.tensor([len(c) for c in clips])
    alpha = torch.tensor([0.6, 0.8, 0.9, 1.2])
    out, _ = check_op(mcadams, wave, lengths, alpha=alpha)
    for b, c in enumerate(clips):
        L = len(c)
        torch.testing.assert_close(out[b, :L].pow(2).mean(), c.pow(2).mean(), rtol=1e-4, atol=0)
        corr = float(torch.corrcoef(torch.stack([out[b, :L], c]))[0, 1])
        assert corr < 0.99  # the voice was actually transformed
