"""Tests of gpuaug.functional.resample: the windowed-sinc warp core and sample-rate change."""
import importlib

import julius
import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st

from gpuaug.functional.resample import MIN_CUTOFF, resample, warp
from harness import check_op, mixed_batch
from reference.resample_ref import peak_freq, resample_ref, warp_ref

SR = 16000


def tone(freq, n, sr=SR, amp=0.5, dtype=torch.float64):
    return amp * torch.sin(2 * np.pi * freq * torch.arange(n, dtype=torch.float64) / sr).to(dtype)


def random_positions(lengths, t_out, seed):
    """Non-monotonic positions, some outside the clip, as a (B, t_out) float64 tensor."""
    g = torch.Generator().manual_seed(seed)
    u = torch.rand(len(lengths), t_out, generator=g, dtype=torch.float64)
    return u * (lengths[:, None].double() + 60) - 30


# ---------------------------------------------------------------- contract (check_op)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("C", [None, 2])
def test_check_op_resample(dtype, C):
    wave, lengths = mixed_batch(B=4, T=1200, C=C, dtype=dtype)
    check_op(resample, wave, lengths, ratio=torch.tensor([0.8, 1.25, 1.0, 16000 / 22050]))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("C", [None, 2])
def test_check_op_warp(dtype, C):
    wave, lengths = mixed_batch(B=3, T=900, C=C, dtype=dtype, seed=2)
    new_lengths = torch.tensor([700, 0, 1000])
    positions = random_positions(lengths, 1000, seed=3)
    cutoff = torch.rand(3, 1000, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    check_op(warp, wave, lengths, positions=positions, new_lengths=new_lengths, cutoff=0.3 + 0.7 * cutoff)


# ---------------------------------------------------------------- vs references


@pytest.mark.parametrize("old_sr,new_sr", [(5, 4), (4, 5), (22050, 16000), (16000, 22050)])
def test_resample_vs_julius(old_sr, new_sr):
    """Interior error vs ``julius.resample_frac`` (same Hann/24-zero kernel; julius pads by
    replication, gpuaug by zeros, so the first/last ``zeros / cutoff`` samples are skipped).

    Measured max error, as % of the signal std: 1.2e-4 % (4/5, 5/4) and 8e-3 % (22050 <->
    16000; julius computes its kernels in float32).
    """
    g = torch.Generator().manual_seed(0)
    for clip in range(2):  # one clip at a time, different lengths
        L = 3000 + 777 * clip
        x = torch.randn(L, generator=g, dtype=torch.float64)
        out, out_len = resample(x[None], torch.tensor([L]), ratio=new_sr / old_sr)
        ref = julius.resample_frac(x, old_sr, new_sr)
        assert abs(int(out_len[0]) - ref.shape[-1]) <= 1  # round vs floor
        edge = int(np.ceil(24 / (0.945 * min(1, new_sr / old_sr)) * max(1, new_sr / old_sr))) + 2
        n = min(int(out_len[0]), ref.shape[-1])
        err = (out[0, edge : n - edge] - ref[edge : n - edge]).abs().max() / ref.std()
        print(f"{old_sr}->{new_sr}: max interior error {100 * float(err):.2e} % of std")
        assert err < 2e-4


def test_warp_vs_reference():
    wave, lengths = mixed_batch(B=3, T=700, C=2, dtype=torch.float64, seed=7)
    new_lengths = torch.tensor([500, 900, 1])
    positions = random_positions(lengths, 900, seed=8)
    cutoff = 0.25 + 0.75 * torch.rand(3, 900, generator=torch.Generator().manual_seed(9), dtype=torch.float64)
    out, out_len = warp(wave, lengths, positions, new_lengths, cutoff, zeros=16)
    assert torch.equal(out_len, new_lengths)
    for b in range(3):
        n, L = int(new_lengths[b]), int(lengths[b])
        ref = warp_ref(wave[b, :, :L].numpy(), positions[b, :n].numpy(), cutoff[b, :n].numpy(), zeros=16)
        np.testing.assert_allclose(out[b, :, :n].numpy(), ref, rtol=0, atol=1e-12)


def test_resample_vs_reference():
    wave, lengths = mixed_batch(B=4, T=800, dtype=torch.float64, seed=11)
    ratio = torch.tensor([0.5, 1.5, 16000 / 22050, 1.0])
    out, out_len = resample(wave, lengths, ratio=ratio)
    for b in range(4):
        L, n = int(lengths[b]), int(out_len[b])
        ref = resample_ref(wave[b, :L].numpy(), float(ratio[b]))
        assert ref.shape[-1] == n
        np.testing.assert_allclose(out[b, :n].numpy(), ref[0], rtol=0, atol=1e-12)


# ---------------------------------------------------------------- signal properties


@pytest.mark.parametrize("ratio", [0.5, 0.8, 1.25, 2.0])
def test_resample_keeps_tone_in_hz(ratio):
    """A 440 Hz tone stays at 440 Hz at the new rate; the length scales by the ratio."""
    x = tone(440.0, 4000)[None]
    out, out_len = resample(x, torch.tensor([4000]), ratio=ratio)
    assert int(out_len[0]) == round(4000 * ratio)
    n = int(out_len[0])
    assert peak_freq(out[0, n // 8 : -n // 8], sr=SR * ratio) == pytest.approx(440.0, rel=1e-4)


def test_downsampling_removes_tones_above_new_nyquist():
    """7 kHz at 16 kHz -> 8 kHz (Nyquist 4 kHz) is removed, 1 kHz is kept."""
    n = 4000
    keep, kill = tone(1000.0, n), tone(7000.0, n)
    out, _ = resample(torch.stack([keep, kill]), torch.tensor([n, n]), ratio=0.5)
    inner = slice(100, 1900)
    assert float(out[0, inner].std()) == pytest.approx(float(keep.std()), rel=1e-3)
    assert out[1, inner].std() < 1e-3 * kill.std()  # > 60 dB down


def test_constant_kept_in_interior_and_padding_never_read():
    """DC gain is 1 in the interior; garbage beyond ``lengths`` does not leak in."""
    x = torch.ones(2, 1000, dtype=torch.float64)
    x[1, 600:] = 123.0  # garbage padding of clip 1 (length 600)
    lengths = torch.tensor([1000, 600])
    out, out_len = resample(x, lengths, ratio=0.75)
    assert torch.equal(out_len, torch.tensor([750, 450]))
    torch.testing.assert_close(out[0, 50:700], torch.ones(650, dtype=torch.float64), atol=1e-12, rtol=0)
    clean, _ = resample(torch.ones(1, 600, dtype=torch.float64), lengths[1:], ratio=0.75)
    torch.testing.assert_close(out[1, :450], clean[0], atol=0, rtol=0)


def test_integer_positions_with_full_band_copy_exactly():
    wave, lengths = mixed_batch(B=2, T=500, dtype=torch.float32, seed=5)
    pos = torch.arange(500, dtype=torch.float64).expand(2, 500)
    out, _ = warp(wave, lengths, pos, lengths, 1.0)
    assert torch.equal(out, wave)


def test_chunking_does_not_change_the_result(monkeypatch):
    mod = importlib.import_module("gpuaug.functional.resample")
    wave, lengths = mixed_batch(B=2, T=600, dtype=torch.float64, seed=6)
    ref, _ = resample(wave, lengths, ratio=0.9)
    monkeypatch.setattr(mod, "_CHUNK_ELEMENTS", 1000)  # many small chunks
    out, _ = resample(wave, lengths, ratio=0.9)
    torch.testing.assert_close(out, ref, atol=1e-14, rtol=0)


# ---------------------------------------------------------------- edge cases


@settings(max_examples=20, deadline=None)
@given(
    L=st.integers(0, 40),
    ratio=st.floats(1 / 16, 16),
    kind=st.sampled_from(["silence", "full_scale", "noise"]),
)
def test_resample_edge_cases(L, ratio, kind):
    g = torch.Generator().manual_seed(L)
    x = {
        "silence": torch.zeros(1, 40),
        "full_scale": torch.ones(1, 40),
        "noise": torch.rand(1, 40, generator=g) * 2 - 1,
    }[kind]
    out, out_len = resample(x, torch.tensor([L]), ratio=ratio)
    assert int(out_len[0]) == round(L * ratio)
    assert torch.isfinite(out).all() and out.shape[-1] == int(out_len[0])
    if kind == "full_scale":  # windowed-sinc overshoot on a full-scale step stays small
        assert (out.abs() <= 1.5).all()  # (noise may peak higher between samples: 1.56 at L=34, x2, as julius)
    if kind == "silence":
        assert (out == 0).all()


def test_bad_inputs_raise():
    x, lengths = torch.zeros(2, 100), torch.tensor([100, 50])
    with pytest.raises(ValueError, match="NaN"):
        resample(torch.full((1, 10), float("nan")), torch.tensor([10]), ratio=0.5)
    with pytest.raises(ValueError, match="ratio"):
        resample(x, lengths, ratio=0.0)
    with pytest.raises(ValueError, match="ratio"):
        resample(x, lengths, ratio=torch.tensor([1.0, 20.0]))
    with pytest.raises(ValueError, match="rolloff"):
        resample(x, lengths, ratio=0.5, rolloff=1.5)
    pos = torch.zeros(2, 100, dtype=torch.float64)
    with pytest.raises(ValueError, match="cutoff"):
        warp(x, lengths, pos, lengths, MIN_CUTOFF / 2)
    with pytest.raises(ValueError, match="cutoff"):
        warp(x, lengths, pos, lengths, 1.01)
    with pytest.raises(ValueError, match="finite"):
        warp(x, lengths, torch.full((2, 100), float("nan")), lengths, 1.0)
    with pytest.raises(ValueError, match="positions"):
        warp(x, lengths, pos[:, :50], lengths, 1.0)
    with pytest.raises(TypeError, match="positions"):
        warp(x, lengths, pos.long(), lengths, 1.0)
    with pytest.raises(ValueError, match="new_lengths"):
        warp(x, lengths, pos, torch.tensor([-1, 3]), 1.0)


# ---------------------------------------------------------------- real data


@pytest.mark.real_data
def test_real_speech_vs_julius(emodb_speech):
    """EmoDB speech 16 kHz -> 8 kHz: same as julius in the interior, lengths and energy."""
    clips = [c[:8000].double() for c in emodb_speech[:3]]
    lengths = torch.tensor([8000, 6000, 7001])
    batch = torch.zeros(3, 8000, dtype=torch.float64)
    for b, c in enumerate(clips):
        batch[b, : lengths[b]] = c[: lengths[b]]
    out, out_len = resample(batch, lengths, ratio=0.5)
    assert torch.equal(out_len, torch.round(lengths * 0.5).long())
    assert torch.isfinite(out).all()
    for b in range(3):
        L, n = int(lengths[b]), int(out_len[b])
        ref = julius.resample_frac(batch[b, :L], 2, 1)
        m = min(n, ref.shape[-1])
        err = (out[b, 60 : m - 60] - ref[60 : m - 60]).abs().max() / ref.std()
        assert err < 1e-4
