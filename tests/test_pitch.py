"""Tests of gpuaug.functional.pitch: phase-vocoder pitch shift keeping the duration."""
import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st

from gpuaug.functional.pitch import factor_to_semitones, pitch_shift
from harness import check_op, mixed_batch
from reference.pitch_ref import pitch_shift_ref, spectral_scale
from reference.resample_ref import peak_freq

SR = 16000


def tone(freq, n, amp=0.5, dtype=torch.float64):
    return amp * torch.sin(2 * np.pi * freq * torch.arange(n, dtype=torch.float64) / SR).to(dtype)


# ---------------------------------------------------------------- contract (check_op)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("C", [None, 2])
def test_check_op(dtype, C):
    wave, lengths = mixed_batch(B=4, T=1500, C=C, dtype=dtype)
    check_op(pitch_shift, wave, lengths, semitones=torch.tensor([3.86, -12.0, 0.0, 1.0]))


# ---------------------------------------------------------------- vs reference


@pytest.mark.parametrize("backend", ["torch", "numba"])
def test_vs_reference(backend):
    """Same as a frame-by-frame numpy phase vocoder (explicit locking recursion) + sinc sum,
    with the torch ops and with the kernels (phase locking and resampling)."""
    wave, lengths = mixed_batch(B=3, T=1800, C=2, dtype=torch.float64, seed=3)
    semitones = torch.tensor([3.86, -12.0, 1.0])
    out, out_len = pitch_shift(wave, lengths, semitones=semitones, n_fft=256, hop=64, backend=backend)
    assert torch.equal(out_len, lengths)
    for b in range(3):
        L = int(lengths[b])
        ref = pitch_shift_ref(wave[b, :, :L].numpy(), float(semitones[b]), n_fft=256, hop=64)
        np.testing.assert_allclose(out[b, :, :L].numpy(), ref, rtol=0, atol=1e-10)


# ---------------------------------------------------------------- signal properties


@pytest.mark.parametrize("semitones", [12.0, -12.0, 1.0, -1.0, 3.86, -3.86])
def test_tone_moves_by_semitones_and_length_kept(semitones):
    """Tones move by ``2 ** (s / 12)`` (measured to < 0.1 %), amplitude kept within 5 %."""
    n = 6000
    x = torch.stack([tone(220.0, n), tone(440.0, n), tone(1000.0, n)])
    out, out_len = pitch_shift(x, torch.full((3,), n), semitones=semitones)
    assert torch.equal(out_len, torch.full((3,), n)) and out.shape == x.shape
    inner = slice(n // 6, -n // 6)
    for b, f0 in enumerate((220.0, 440.0, 1000.0)):
        assert peak_freq(out[b, inner], SR) == pytest.approx(f0 * 2 ** (semitones / 12), rel=1e-3)
        assert float(out[b, inner].std() / x[b, inner].std()) == pytest.approx(1.0, abs=0.05)


def test_zero_semitones_is_exact_identity():
    wave, lengths = mixed_batch(B=3, T=900, dtype=torch.float32, seed=2)
    out, out_len = pitch_shift(wave, lengths, semitones=torch.tensor([0.0, 2.0, 0.0]))
    assert torch.equal(out[[0, 2]], wave[[0, 2]]) and torch.equal(out_len, lengths)
    assert not torch.equal(out[1], wave[1])
    out, out_len = pitch_shift(wave, lengths, semitones=0.0)
    assert torch.equal(out, wave) and torch.equal(out_len, lengths)


def test_factor_to_semitones():
    assert factor_to_semitones(2.0) == pytest.approx(12.0)
    assert factor_to_semitones(1.25) == pytest.approx(3.8631, abs=1e-4)
    assert factor_to_semitones(0.75) == pytest.approx(-4.9804, abs=1e-4)
    t = factor_to_semitones(torch.tensor([0.5, 1.0]))
    torch.testing.assert_close(t, torch.tensor([-12.0, 0.0]))
    with pytest.raises(ValueError):
        factor_to_semitones(0.0)
    with pytest.raises(ValueError):
        factor_to_semitones(torch.tensor([1.0, -2.0]))


# ---------------------------------------------------------------- edge cases


@settings(max_examples=15, deadline=None)
@given(
    L=st.integers(0, 300),
    semitones=st.floats(-24, 24),
    kind=st.sampled_from(["silence", "full_scale", "noise"]),
)
def test_edge_cases(L, semitones, kind):
    """1 sample, shorter than a frame (512), silence, full scale: finite, length kept."""
    g = torch.Generator().manual_seed(L)
    x = {
        "silence": torch.zeros(1, 300),
        "full_scale": torch.ones(1, 300),
        "noise": torch.rand(1, 300, generator=g) * 2 - 1,
    }[kind]
    out, out_len = pitch_shift(x, torch.tensor([L]), semitones=semitones)
    assert int(out_len[0]) == L and out.shape[-1] == L
    assert torch.isfinite(out).all() and (out.abs() <= 4).all()
    if kind == "silence":
        assert (out == 0).all()


def test_bad_inputs_raise():
    x, lengths = torch.zeros(2, 600), torch.tensor([600, 300])
    with pytest.raises(ValueError, match="NaN"):
        pitch_shift(torch.full((1, 10), float("nan")), torch.tensor([10]), semitones=1.0)
    with pytest.raises(ValueError, match="semitones"):
        pitch_shift(x, lengths, semitones=25.0)
    with pytest.raises(ValueError, match="semitones"):
        pitch_shift(x, lengths, semitones=float("nan"))
    with pytest.raises(ValueError, match="hop"):
        pitch_shift(x, lengths, semitones=1.0, n_fft=256, hop=200)
    with pytest.raises(ValueError, match="n_fft"):
        pitch_shift(x, lengths, semitones=1.0, n_fft=8)
    with pytest.raises(ValueError, match="sample_rate"):
        pitch_shift(x, lengths, semitones=1.0, sample_rate=0)
    with pytest.raises(TypeError):
        pitch_shift(x.long(), lengths, semitones=1.0)


# ---------------------------------------------------------------- real data


@pytest.mark.real_data
def test_real_speech(emodb_speech):
    """EmoDB speech: lengths kept, finite, energy roughly kept (the phase vocoder loses
    0.5-1.5 dB), and the long-term spectrum is scaled by the pitch factor (to 1.5 %)."""
    n = 12000
    lengths = torch.tensor([12000, 9000, 10500, 8000])
    batch = torch.zeros(4, n)
    for b, c in enumerate(emodb_speech[:4]):
        batch[b, : lengths[b]] = c[: lengths[b]]
    for s in (1.0, -3.86, 12.0):
        out, out_len = pitch_shift(batch, lengths, semitones=s)
        assert torch.equal(out_len, lengths) and torch.isfinite(out).all()
        for b in range(4):
            L = int(lengths[b])
            ratio = float(out[b, :L].pow(2).sum() / batch[b, :L].pow(2).sum())
            assert 0.6 < ratio < 1.15, (s, b, ratio)
            scale = spectral_scale(batch[b, :L].numpy(), out[b, :L].numpy(), SR)
            assert scale == pytest.approx(2 ** (s / 12), rel=0.015), (s, b, scale)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("n_fft,hop", [(512, 128), (256, 100), (64, 32)])
def test_istft_equals_torch_istft(dtype, n_fft, hop):
    """The sync-free ISTFT of the vocoder is torch.istft (same overlap-add and envelope)."""
    from gpuaug.functional.pitch import _istft

    g = torch.Generator().manual_seed(n_fft + hop)
    window = torch.hann_window(n_fft, periodic=True, dtype=dtype)
    x = torch.randn(3, 4000, generator=g, dtype=dtype)
    spec = torch.stft(torch.nn.functional.pad(x, (0, n_fft)), n_fft, hop, window=window, center=True,
                      pad_mode="constant", return_complex=True)
    ref = torch.istft(spec, n_fft, hop, window=window, center=True, length=4000)
    out = _istft(spec, window, hop, 4000)
    assert out.dtype == ref.dtype and out.shape == ref.shape
    torch.testing.assert_close(out, ref, rtol=0, atol=0)
