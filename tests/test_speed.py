"""Tests of gpuaug.functional.speed: whole-utterance and segment speed changes."""
import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st

from gpuaug.functional.speed import speed, speed_segment
from harness import check_op, mixed_batch
from reference.resample_ref import peak_freq, speed_ref, speed_segment_ref

SR = 16000


def tone(freq, n, amp=0.5, dtype=torch.float64):
    return amp * torch.sin(2 * np.pi * freq * torch.arange(n, dtype=torch.float64) / SR).to(dtype)


# ---------------------------------------------------------------- contract (check_op)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("C", [None, 2])
def test_check_op_speed(dtype, C):
    wave, lengths = mixed_batch(B=4, T=1200, C=C, dtype=dtype)
    check_op(speed, wave, lengths, factor=torch.tensor([0.75, 1.25, 1.0, 1.05]))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("C", [None, 2])
def test_check_op_speed_segment(dtype, C):
    wave, lengths = mixed_batch(B=4, T=1200, C=C, dtype=dtype, seed=1)
    check_op(
        speed_segment, wave, lengths, start=torch.tensor([100, 0, 5000, 900]),
        length=torch.tensor([500, 2000, 10, 400]), factor=torch.tensor([1.25, 0.75, 1.25, 2.0]),
    )


# ---------------------------------------------------------------- vs references


def test_speed_vs_reference():
    wave, lengths = mixed_batch(B=4, T=700, C=2, dtype=torch.float64, seed=3)
    factor = torch.tensor([0.5, 0.95, 1.25, 2.0])
    out, out_len = speed(wave, lengths, factor=factor)
    for b in range(4):
        L, n = int(lengths[b]), int(out_len[b])
        ref = speed_ref(wave[b, :, :L].numpy(), float(factor[b]))
        assert ref.shape[-1] == n
        np.testing.assert_allclose(out[b, :, :n].numpy(), ref, rtol=0, atol=1e-12)


def test_speed_segment_vs_reference():
    wave, lengths = mixed_batch(B=4, T=900, dtype=torch.float64, seed=4)
    start, length = torch.tensor([50, 300, 0, 800]), torch.tensor([300, 5000, 900, 300])
    factor = torch.tensor([1.25, 0.75, 0.5, 1.9])
    out, out_len = speed_segment(wave, lengths, start=start, length=length, factor=factor)
    for b in range(4):
        L, n = int(lengths[b]), int(out_len[b])
        ref = speed_segment_ref(wave[b, :L].numpy(), int(start[b]), int(length[b]), float(factor[b]))
        assert ref.shape[-1] == n
        np.testing.assert_allclose(out[b, :n].numpy(), ref[0], rtol=0, atol=1e-12)


def test_speed_segment_tabulated_vs_reference():
    """float32 input: the numba backend's default tabulated sinc (segment_warp.TABLE_ERROR_DB,
    -100 dB of the peak) against the float64 reference; exact=True is float32 rounding away."""
    from gpuaug.kernels.segment_warp import TABLE_ERROR_DB

    wave, lengths = mixed_batch(B=4, T=3000, dtype=torch.float64, seed=12)
    start, length = torch.tensor([50, 700, 0, 1200]), torch.tensor([1500, 5000, 3000, 1000])
    factor = torch.tensor([1.25, 0.75, 0.53, 1.9])
    x32 = wave.float()
    tab, out_len = speed_segment(x32, lengths, start=start, length=length, factor=factor, backend="numba")
    exact, _ = speed_segment(x32, lengths, start=start, length=length, factor=factor, backend="numba", exact=True)
    assert not torch.equal(tab, exact)
    for b in range(4):
        L, n = int(lengths[b]), int(out_len[b])
        ref = speed_segment_ref(x32[b, :L].double().numpy(), int(start[b]), int(length[b]), float(factor[b]))
        peak = float(x32[b, :L].abs().max())
        np.testing.assert_allclose(tab[b, :n].double().numpy(), ref[0], rtol=0, atol=10 ** (TABLE_ERROR_DB / 20) * peak)
        np.testing.assert_allclose(exact[b, :n].double().numpy(), ref[0], rtol=0, atol=1e-6 * peak)


# ---------------------------------------------------------------- signal properties


@pytest.mark.parametrize("factor", [0.5, 0.75, 0.95, 1.05, 1.25, 2.0])
def test_speed_scales_length_and_tone_frequency(factor):
    n = 4000
    out, out_len = speed(tone(440.0, n)[None], torch.tensor([n]), factor=factor)
    m = int(out_len[0])
    assert m == round(n / factor)
    assert peak_freq(out[0, m // 8 : -m // 8], SR) == pytest.approx(440.0 * factor, rel=1e-4)
    assert float(out[0, m // 8 : -m // 8].std()) == pytest.approx(0.5 / np.sqrt(2), rel=1e-2)


def test_speed_factor_one_is_identity():
    wave, lengths = mixed_batch(B=2, T=500, dtype=torch.float32)
    out, out_len = speed(wave, lengths, factor=1.0)
    assert torch.equal(out, wave) and torch.equal(out_len, lengths)


@pytest.mark.parametrize("factor", [1.25, 0.75])
def test_speed_segment_outside_untouched_inside_moved_no_click(factor):
    n, s, seg = 6000, 2000, 2000
    x = tone(300.0, n, dtype=torch.float32)[None]
    out, out_len = speed_segment(x, torch.tensor([n]), start=s, length=seg, factor=factor)
    m = round(seg / factor)
    assert int(out_len[0]) == n - seg + m
    y = out[0]
    # outside: the original samples, bit for bit in float32 (integer positions, cutoff 1)
    assert torch.equal(y[:s], x[0, :s])
    assert torch.equal(y[s + m :], x[0, s + seg :])
    # inside: the tone plays `factor` times faster
    assert peak_freq(y[s + 100 : s + m - 100], SR) == pytest.approx(300.0 * factor, rel=2e-3)
    # joins: sample-to-sample steps stay at the level of the faster of the two tones
    max_step = 0.5 * 2 * np.pi * 300.0 * max(1.0, factor) / SR
    for join in (s, s + m):
        steps = (y[join - 50 : join + 50].diff()).abs()
        assert float(steps.max()) <= 1.03 * max_step


def test_speed_segment_clipped_to_the_clip_and_empty_segment():
    wave, lengths = mixed_batch(B=3, T=800, dtype=torch.float64, seed=9)
    L = lengths.clone()
    out, out_len = speed_segment(wave, lengths, start=torch.tensor([0, 10_000, 700]),
                                 length=torch.tensor([0, 50, 10_000]), factor=1.25)
    # empty segment and a start beyond the clip: untouched
    assert torch.equal(out_len[:2], L[:2])
    assert torch.equal(out[:2], wave[:2, : out.shape[-1]])
    # a segment running past the end is cut at the end of the clip
    n = int(L[2]) - 700
    assert int(out_len[2]) == int(L[2]) - n + round(n / 1.25)


# ---------------------------------------------------------------- edge cases


@settings(max_examples=20, deadline=None)
@given(
    L=st.integers(0, 30),
    factor=st.floats(0.5, 2.0),
    start=st.integers(0, 35),
    length=st.integers(0, 35),
    kind=st.sampled_from(["silence", "full_scale", "noise"]),
)
def test_edge_cases(L, factor, start, length, kind):
    g = torch.Generator().manual_seed(L)
    x = {
        "silence": torch.zeros(1, 30),
        "full_scale": -torch.ones(1, 30),
        "noise": torch.rand(1, 30, generator=g) * 2 - 1,
    }[kind]
    lengths = torch.tensor([L])
    n = min(start + length, L) - min(start, L)
    for out, out_len, expect in (
        (*speed(x, lengths, factor=factor), round(L / factor)),
        (*speed_segment(x, lengths, start=start, length=length, factor=factor), L - n + round(n / factor)),
    ):
        assert int(out_len[0]) == expect and out.shape[-1] == expect
        assert torch.isfinite(out).all() and (out.abs() <= 1.5).all()
        if kind == "silence":
            assert (out == 0).all()


def test_bad_inputs_raise():
    x, lengths = torch.zeros(2, 100), torch.tensor([100, 50])
    with pytest.raises(ValueError, match="NaN"):
        speed(torch.full((1, 10), float("nan")), torch.tensor([10]), factor=1.1)
    with pytest.raises(ValueError, match="NaN"):
        speed_segment(torch.full((1, 10), float("nan")), torch.tensor([10]), start=0, length=5)
    for bad in (0.0, -1.0, 0.49, 2.01, float("inf")):
        with pytest.raises(ValueError, match="factor"):
            speed(x, lengths, factor=bad)
        with pytest.raises(ValueError, match="factor"):
            speed_segment(x, lengths, start=0, length=10, factor=bad)
    with pytest.raises(ValueError, match="start"):
        speed_segment(x, lengths, start=-1, length=10)
    with pytest.raises(ValueError, match="length"):
        speed_segment(x, lengths, start=0, length=torch.tensor([10, -3]))
    with pytest.raises(ValueError, match="factor"):
        speed(x, lengths, factor=torch.tensor([1.0, 1.1, 1.2]))


# ---------------------------------------------------------------- real data


@pytest.mark.real_data
def test_real_speech(emodb_speech):
    """EmoDB speech: lengths scale, output finite, energy per sample roughly kept."""
    clips = [c[:6000].double() for c in emodb_speech[:3]]
    lengths = torch.tensor([6000, 4500, 5200])
    batch = torch.zeros(3, 6000, dtype=torch.float64)
    for b, c in enumerate(clips):
        batch[b, : lengths[b]] = c[: lengths[b]]
    for factor in (0.75, 1.25):
        out, out_len = speed(batch, lengths, factor=factor)
        assert torch.equal(out_len, torch.round(lengths / factor).long())
        assert torch.isfinite(out).all()
        for b in range(3):
            e_in = batch[b, : lengths[b]].pow(2).mean()
            e_out = out[b, : out_len[b]].pow(2).mean()
            assert 0.8 < float(e_out / e_in) < 1.2
    out, out_len = speed_segment(batch, lengths, start=1000, length=2000, factor=1.25)
    assert torch.equal(out_len, lengths - 400)
    assert torch.equal(out[:, :1000], batch[:, :1000])
