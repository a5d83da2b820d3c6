"""Tests of gpuaug.functional.drop_segments."""
import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st

from gpuaug.functional.drop import drop_segments
from strategies import edge_signal
from harness import check_op, mixed_batch
from reference.drop_ref import drop_ref, kept_pieces

# per clip: unsorted, overlapping, touching, out-of-range and padding rows
INTERVALS = torch.tensor([
    [[300, 500], [100, 200], [450, 520], [0, 0]],
    [[-50, 40], [900, 5000], [600, 600], [700, 650]],
    [[10, 11], [11, 30], [2000, 2100], [0, 0]],
    [[0, 0], [0, 0], [0, 0], [0, 0]],
])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("C", [None, 2])
@pytest.mark.parametrize("crossfade", [0, 64, torch.tensor([0, 16, 200, 5])])
def test_check_op(dtype, C, crossfade):
    wave, lengths = mixed_batch(B=4, T=1500, C=C, dtype=dtype)
    check_op(drop_segments, wave, lengths, intervals=INTERVALS, crossfade=crossfade)


@pytest.mark.parametrize("crossfade", [0, 1, 2, 40, 10_000])
def test_vs_reference(crossfade):
    wave, lengths = mixed_batch(B=4, T=1500, C=2, dtype=torch.float64, seed=4)
    out, out_len = drop_segments(wave, lengths, intervals=INTERVALS, crossfade=crossfade)
    for b in range(4):
        L = int(lengths[b])
        ref = drop_ref(wave[b, :, :L].numpy(), INTERVALS[b].tolist(), crossfade)
        assert int(out_len[b]) == ref.shape[1]
        if crossfade == 0:
            assert np.array_equal(out[b, :, : ref.shape[1]].numpy(), ref)  # exact copies
        else:
            np.testing.assert_allclose(out[b, :, : ref.shape[1]].numpy(), ref, rtol=1e-12, atol=1e-15)
    assert out.shape[-1] == int(out_len.max())


def test_lengths_and_merging():
    x = torch.arange(1, 21, dtype=torch.float64)[None].repeat(3, 1)
    iv = torch.tensor([
        [[12, 15], [3, 6], [4, 8], [30, 10]],  # overlapping + unsorted; [30, 10) is padding
        [[0, 5], [5, 9], [15, 99], [-4, -1]],  # touching; past the end; before the start
        [[0, 0], [7, 7], [9, 3], [0, 0]],  # nothing valid: identity
    ])
    out, out_len = drop_segments(x, torch.tensor([20, 20, 20]), intervals=iv)
    assert out_len.tolist() == [12, 6, 20]
    assert out[0, :12].tolist() == [1, 2, 3, 9, 10, 11, 12, 16, 17, 18, 19, 20]
    assert out[1, :6].tolist() == [10, 11, 12, 13, 14, 15] and (out[1, 6:] == 0).all()
    assert torch.equal(out[2], x[2])
    # crossfade 2 on clip 0: pieces [1 2 3], [9 10 11 12], [16 .. 20]; the 3-sample piece lends
    # only 1 sample (weights 1/2), the second join overlaps 2 samples (weights 1/3, 2/3)
    xf, xf_len = drop_segments(x, torch.tensor([20, 20, 20]), intervals=iv, crossfade=2)
    assert xf_len.tolist() == [9, 6, 20]
    expect = [1, 2, (3 + 9) / 2, 10, 11 * 2 / 3 + 16 / 3, 12 / 3 + 17 * 2 / 3, 18, 19, 20]
    torch.testing.assert_close(xf[0, :9], torch.tensor(expect, dtype=torch.float64))
    assert (xf[0, 9:] == 0).all()


def test_drop_everything_and_identity():
    wave = torch.randn(2, 2, 300)
    lengths = torch.tensor([300, 120])
    out, out_len = drop_segments(wave, lengths, intervals=torch.tensor([[[0, 300]], [[-5, 500]]]), crossfade=10)
    assert out_len.tolist() == [0, 0] and out.shape == (2, 2, 0)
    out, out_len = drop_segments(wave, lengths, intervals=torch.tensor([[[0, 300]], [[50, 60]]]))
    assert out_len.tolist() == [0, 110] and (out[0] == 0).all()
    for iv in (torch.zeros(2, 0, 2, dtype=torch.int64), torch.tensor([[[5, 5]], [[200, 250]]])):
        out, out_len = drop_segments(wave, lengths, intervals=iv, crossfade=32)
        assert torch.equal(out_len, lengths) and out.shape[-1] == 300
        assert torch.equal(out[0], wave[0]) and torch.equal(out[1, :, :120], wave[1, :, :120])


def test_crossfade_keeps_cuts_continuous():
    t = torch.arange(4000, dtype=torch.float64) / 16000
    x = torch.sin(2 * torch.pi * 200 * t)[None]  # period 80 samples, max natural step ~0.079
    iv = torch.tensor([[[1020, 1060], [2500, 2730]]])  # cuts trough -> peak and peak -> 0.7, far from zero crossings
    hard, _ = drop_segments(x, torch.tensor([4000]), intervals=iv)
    soft, soft_len = drop_segments(x, torch.tensor([4000]), intervals=iv, crossfade=80)
    natural = float(x.diff().abs().max())
    assert float(hard.diff().abs().max()) > 1.5  # a jump of almost the full peak-to-peak
    assert float(soft.diff().abs().max()) < natural + 2 / 81 + 1e-9  # linear weights: <= 2 / (X + 1) extra
    assert int(soft_len[0]) == 4000 - 40 - 230 - 2 * 80


def test_bad_arguments():
    wave, lengths = mixed_batch(B=2, T=100)
    with pytest.raises(TypeError, match="integer"):
        drop_segments(wave, lengths, intervals=torch.zeros(2, 1, 2))
    with pytest.raises(ValueError, match="shape"):
        drop_segments(wave, lengths, intervals=torch.zeros(2, 1, 3, dtype=torch.int64))
    with pytest.raises(ValueError, match="shape"):
        drop_segments(wave, lengths, intervals=torch.zeros(3, 1, 2, dtype=torch.int64))
    with pytest.raises(ValueError, match="crossfade"):
        drop_segments(wave, lengths, intervals=torch.zeros(2, 1, 2, dtype=torch.int64), crossfade=-1)


@st.composite
def edge_clip(draw):
    x = draw(edge_signal())
    L = len(x)
    iv = draw(st.lists(st.tuples(st.integers(-3, L + 3), st.integers(-3, L + 3)), max_size=4))
    return x, iv


@settings(max_examples=40, deadline=None)
@given(edge_clip(), st.integers(0, 9))
def test_edge_cases(clip, crossfade):
    x, iv = clip
    L = len(x)
    wave = torch.from_numpy(np.pad(x, (0, 2)))[None]
    intervals = torch.tensor(iv, dtype=torch.int64).reshape(1, -1, 2)
    out, out_len = drop_segments(wave, torch.tensor([L]), intervals=intervals, crossfade=crossfade)
    ref = drop_ref(x[None], iv, crossfade)
    assert int(out_len[0]) == ref.shape[1] == out.shape[-1]
    np.testing.assert_allclose(out[0].numpy(), ref[0], rtol=1e-12, atol=1e-15)
    assert (out.abs().numpy() <= np.abs(x).max(initial=0) + 1e-15).all()  # convex weights never exceed the peak


@settings(max_examples=10, deadline=None)
@given(st.integers(1, 40), st.data())
def test_nan_input_raises(L, data):
    wave = torch.zeros(1, 2, L)
    wave[0, 1, data.draw(st.integers(0, L - 1))] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        drop_segments(wave, torch.tensor([L]), intervals=torch.tensor([[[0, L]]]))


@pytest.mark.real_data
def test_real_speech_drop_two_segments(emodb_batch):
    wave, lengths = emodb_batch
    B = wave.shape[0]
    clips = [wave[b, : int(lengths[b])] for b in range(B)]
    # two ~100 ms "words" per clip, at 1/4 and 3/5 of the clip
    starts = torch.stack([lengths // 4, lengths * 3 // 5], 1)
    intervals = torch.stack([starts, starts + 1600], 2)
    for crossfade in (0, 80):  # 5 ms crossfade
        out, out_len = check_op(drop_segments, wave, lengths, intervals=intervals, crossfade=crossfade)
        assert torch.equal(out_len, lengths - 3200 - 2 * crossfade)
        for b, c in enumerate(clips):
            ref = drop_ref(c.double().numpy()[None], intervals[b].tolist(), crossfade)[0]
            np.testing.assert_allclose(out[b, : int(out_len[b])].numpy(), ref, rtol=1e-6, atol=1e-7)
            pieces = kept_pieces(len(c), intervals[b].tolist())
            assert len(pieces) == 3 and torch.equal(out[b, : pieces[0][1] - crossfade], c[: pieces[0][1] - crossfade])
