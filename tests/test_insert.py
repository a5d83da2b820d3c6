"""Tests of gpuaug.functional.insert_clip."""
import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st

from gpuaug.functional.insert import insert_clip
from harness import check_op, mixed_batch
from reference.insert_ref import insert_ref


def _clips(B, Tc, C=None, dtype=torch.float32, seed=1):
    g = torch.Generator().manual_seed(seed)
    shape = (B, Tc) if C is None else (B, C, Tc)
    clip = torch.rand(shape, generator=g, dtype=torch.float64).to(dtype) + 2.0  # tell clip from wave
    clip_lengths = torch.tensor([Tc, 0, Tc // 2, 7][:B])
    return clip, clip_lengths


PARAMS = dict(
    position=torch.tensor([100, 5000, 0, 2000]),  # 5000 is past every L: clamped to the end
    silence_before=torch.tensor([0, 30, 5, 1]),
    silence_after=torch.tensor([12, 0, 0, 3]),
)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("C, Cc", [(None, None), (None, 1), (2, None), (2, 1), (2, 2)])
@pytest.mark.parametrize("edge_fade", [0, torch.tensor([16, 3, 0, 40])])
def test_check_op(dtype, C, Cc, edge_fade):
    wave, lengths = mixed_batch(B=4, T=1200, C=C, dtype=dtype)
    clip, clip_lengths = _clips(4, 300, C=Cc, dtype=dtype)
    out, out_len = check_op(insert_clip, wave, lengths, clip=clip, clip_lengths=clip_lengths,
                            edge_fade=edge_fade, **PARAMS)
    assert torch.equal(out_len, lengths + PARAMS["silence_before"] + clip_lengths + PARAMS["silence_after"])


@pytest.mark.parametrize("edge_fade", [0, 24])
def test_vs_reference(edge_fade):
    wave, lengths = mixed_batch(B=4, T=900, C=2, dtype=torch.float64, seed=2)
    clip, clip_lengths = _clips(4, 200, C=1, dtype=torch.float64)
    out, out_len = insert_clip(wave, lengths, clip, clip_lengths, edge_fade=edge_fade, **PARAMS)
    for b in range(4):
        L, cl = int(lengths[b]), int(clip_lengths[b])
        ref = insert_ref(wave[b, :, :L].numpy(), clip[b, :, :cl].numpy(), int(PARAMS["position"][b]),
                         int(PARAMS["silence_before"][b]), int(PARAMS["silence_after"][b]), edge_fade)
        assert int(out_len[b]) == ref.shape[1]
        if edge_fade == 0:
            assert np.array_equal(out[b, :, : ref.shape[1]].numpy(), ref)  # exact copies
        else:
            np.testing.assert_allclose(out[b, :, : ref.shape[1]].numpy(), ref, rtol=1e-12, atol=1e-15)


def test_composition_and_clamping():
    wave = torch.arange(1, 11, dtype=torch.float64)[None].repeat(3, 1)
    lengths = torch.tensor([10, 6, 10])
    clip = -torch.arange(1, 5, dtype=torch.float64)[None].repeat(3, 1)
    out, out_len = insert_clip(wave, lengths, clip, torch.tensor([3, 4, 0]),
                               position=torch.tensor([4, 99, -5]), silence_before=1, silence_after=2)
    assert out_len.tolist() == [16, 13, 13]
    assert out[0].tolist() == [1, 2, 3, 4, 0, -1, -2, -3, 0, 0, 5, 6, 7, 8, 9, 10]
    assert out[1, :13].tolist() == [1, 2, 3, 4, 5, 6, 0, -1, -2, -3, -4, 0, 0]  # position > L -> end
    assert (out[1, 13:] == 0).all()
    assert out[2, :13].tolist() == [0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10]  # empty clip, position < 0 -> 0


def test_channels():
    wave = torch.randn(2, 3, 50)
    lengths = torch.tensor([50, 40])
    mono = torch.randn(2, 20)
    out, _ = insert_clip(wave, lengths, mono, torch.tensor([20, 20]), position=10)
    for c in range(3):
        assert torch.equal(out[:, c, 10:30], mono)  # broadcast to every channel
    stereo_clip = torch.randn(2, 3, 20)
    out, _ = insert_clip(wave, lengths, stereo_clip, torch.tensor([20, 20]), position=10)
    assert torch.equal(out[:, :, 10:30], stereo_clip)
    with pytest.raises(ValueError, match="channels"):
        insert_clip(wave, lengths, torch.randn(2, 2, 20), torch.tensor([20, 20]), position=10)
    with pytest.raises(ValueError, match="channels"):
        insert_clip(wave[:, 0], lengths, torch.randn(2, 2, 20), torch.tensor([20, 20]), position=10)
    with pytest.raises(ValueError, match="batch"):
        insert_clip(wave, lengths, torch.randn(3, 20), torch.tensor([20, 20, 20]), position=10)


def test_bad_parameters():
    wave, lengths = mixed_batch(B=2, T=100)
    clip, cl = torch.ones(2, 10), torch.tensor([10, 10])
    for kw in ("silence_before", "silence_after", "edge_fade"):
        with pytest.raises(ValueError, match=kw):
            insert_clip(wave, lengths, clip, cl, position=0, **{kw: -1})
    with pytest.raises(ValueError, match="lengths"):
        insert_clip(wave, lengths, clip, torch.tensor([11, 0]), position=0)
    with pytest.raises(ValueError, match="clip contains NaN"):
        insert_clip(wave, lengths, torch.full((2, 10), float("nan")), cl, position=0)


def test_edge_fade_removes_clicks():
    wave = torch.zeros(1, 400, dtype=torch.float64)
    clip = torch.ones(1, 160, dtype=torch.float64)  # a DC step: the worst click
    hard, _ = insert_clip(wave, torch.tensor([400]), clip, torch.tensor([160]), position=200)
    soft, _ = insert_clip(wave, torch.tensor([400]), clip, torch.tensor([160]), position=200, edge_fade=48)
    assert float(hard.diff().abs().max()) == 1.0
    assert float(soft.diff().abs().max()) < np.pi / 2 / 48  # the steepest step of sin^2 over 48 samples
    assert torch.equal(soft[0, 248:312], hard[0, 248:312])  # the middle is untouched
    assert 0 < float(soft[0, 200]) < 1e-3 and 0 < float(soft[0, 359]) < 1e-3


@st.composite
def edge_clip(draw, max_len=64):
    kind = draw(st.sampled_from(["silence", "one_sample", "full_scale", "noise"]))
    L = 1 if kind == "one_sample" else draw(st.integers(1, max_len))
    if kind == "silence":
        return np.zeros(L)
    if kind == "full_scale":
        return np.where(np.arange(L) % 3 == 0, 1.0, -1.0)
    return np.asarray(draw(st.lists(st.floats(-1, 1), min_size=L, max_size=L)))


@settings(max_examples=30, deadline=None)
@given(edge_clip(), edge_clip(16), st.integers(-3, 70), st.integers(0, 4), st.integers(0, 4), st.integers(0, 8),
       st.booleans())
def test_edge_cases(x, c, position, sb, sa, edge, empty_clip):
    L, cl = len(x), 0 if empty_clip else len(c)
    wave = torch.from_numpy(np.pad(x, (0, 3)))[None]
    clip = torch.from_numpy(c)[None]
    out, out_len = insert_clip(wave, torch.tensor([L]), clip, torch.tensor([cl]), position=position,
                               silence_before=sb, silence_after=sa, edge_fade=edge)
    ref = insert_ref(x[None], c[None, :cl], position, sb, sa, edge)
    assert int(out_len[0]) == ref.shape[1] == L + sb + cl + sa and out.shape[-1] == ref.shape[1]
    np.testing.assert_allclose(out[0].numpy(), ref[0], rtol=1e-12, atol=1e-15)


@settings(max_examples=10, deadline=None)
@given(st.integers(1, 40), st.data())
def test_nan_input_raises(L, data):
    wave = torch.zeros(1, L)
    wave[0, data.draw(st.integers(0, L - 1))] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        insert_clip(wave, torch.tensor([L]), torch.ones(1, 3), torch.tensor([3]), position=0)


@pytest.mark.real_data
def test_real_laugh_into_speech(emodb_batch, load_real_laugh):
    wave, lengths = emodb_batch
    B = wave.shape[0]
    clips = [wave[b, : int(lengths[b])] for b in range(B)]
    laugh = load_real_laugh[: 16000]  # first second of the laugh
    clip = laugh[None].repeat(B, 1)
    clip_lengths = torch.tensor([16000, 8000, 16000, 0][:B])
    position = lengths // 2
    sb = torch.full((B,), 1600)  # 100 ms pauses around the laugh
    out, out_len = check_op(insert_clip, wave, lengths, clip=clip, clip_lengths=clip_lengths,
                            position=position, silence_before=sb, silence_after=sb, edge_fade=48)
    for b, c in enumerate(clips):
        p, cl = int(position[b]), int(clip_lengths[b])
        assert int(out_len[b]) == len(c) + 3200 + cl
        assert torch.equal(out[b, :p], c[:p]) and torch.equal(out[b, p + 3200 + cl : len(c) + 3200 + cl], c[p:])
        assert (out[b, p : p + 1600] == 0).all()
        assert (out[b, p + 1600 + cl : p + 3200 + cl] == 0).all()
        if cl:  # the laugh is there, exact between its 48-sample edge ramps, and not silent
            assert torch.equal(out[b, p + 1648 : p + 1600 + cl - 48], laugh[48 : cl - 48])
            assert float(out[b, p + 1600 : p + 1600 + cl].pow(2).mean()) > 1e-5


@pytest.fixture(scope="module")
def load_real_laugh(shared_data):
    from conftest import load_real

    return load_real("noise/human_laugh_evil_01.wav")
