"""Kernels of insert_clip and drop_segments (gpuaug.kernels.splice) vs the torch reference.

The ops with ``backend="numba"`` (CPU ``@njit``) against ``backend="torch"``: copies are
bit-identical, computed weights (edge fades, crossfades) within float tolerance; the op
contract on the kernel path; the drop piece tables; the ``@cuda.jit`` kernels on the CUDA
simulator (tiny inputs, launched directly with numpy arrays); the transforms' records.
"""
import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st

import gpuaug.kernels.splice as sp
from gpuaug import backend as gb
from gpuaug.data.synthetic import synthetic_insert_bank
from gpuaug.functional.drop import drop_segments, piece_tables
from gpuaug.functional.insert import insert_clip
from gpuaug.transforms import DropSegments, InsertClip, Pipeline
from harness import check_op, mixed_batch
from reference.drop_ref import drop_ref

TOL = {torch.float32: dict(atol=1e-6, rtol=1e-6), torch.float64: dict(atol=1e-14, rtol=1e-14)}
# per clip: unsorted, overlapping, touching, out-of-range and padding rows (as tests/test_drop.py)
INTERVALS = torch.tensor([
    [[300, 500], [100, 200], [450, 520], [0, 0]],
    [[-50, 40], [900, 5000], [600, 600], [700, 650]],
    [[10, 11], [11, 30], [2000, 2100], [0, 0]],
    [[0, 0], [0, 0], [0, 0], [0, 0]],
])
INSERT_KW = dict(position=torch.tensor([5, 0, 900, 99999]), silence_before=torch.tensor([0, 3, 1, 10]),
                 silence_after=torch.tensor([4, 0, 0, 7]))


def same(out, ref, dtype, exact):
    assert out.shape == ref.shape and out.dtype == ref.dtype
    if exact:
        assert torch.equal(out, ref)
    else:
        torch.testing.assert_close(out, ref, **TOL[dtype])


def clips_for(B, C, Cc, dtype, seed=0):
    g = torch.Generator().manual_seed(seed)
    clip = torch.randn((B, 300) if C is None else (B, Cc, 300), generator=g).to(dtype)
    return clip, torch.tensor([300, 0, 7, 120])[:B]


# ---------------------------------------------------------------- insert: CPU (njit) vs torch


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("C,Cc", [(None, None), (2, 1), (2, 2)])
@pytest.mark.parametrize("edge", [0, 3, torch.tensor([0, 5, 100, 2])])
def test_insert_numba_matches_torch(dtype, C, Cc, edge):
    wave, lengths = mixed_batch(B=4, T=1200, C=C, dtype=dtype, seed=1)
    lengths[1] = 1
    clip, clip_lengths = clips_for(4, C, Cc, dtype)
    ref, ref_len = insert_clip(wave, lengths, clip, clip_lengths, **INSERT_KW, edge_fade=edge, backend="torch")
    out, out_len = insert_clip(wave, lengths, clip, clip_lengths, **INSERT_KW, edge_fade=edge, backend="numba")
    assert torch.equal(out_len, ref_len)
    same(out, ref, dtype, exact=isinstance(edge, int) and edge == 0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("C", [None, 2])
def test_insert_numba_contract(dtype, C):
    wave, lengths = mixed_batch(B=4, T=1000, C=C, dtype=dtype, seed=2)
    clip, clip_lengths = clips_for(4, C, 1, dtype, seed=3)
    for edge in (0, torch.tensor([4, 0, 2, 50])):
        check_op(insert_clip, wave, lengths, clip=clip, clip_lengths=clip_lengths, **INSERT_KW, edge_fade=edge,
                 backend="numba", atol=0, rtol=0)


def test_insert_casts_the_clip_and_handles_half_waves():
    wave, lengths = mixed_batch(B=4, T=800, dtype=torch.float32, seed=4)
    clip, clip_lengths = clips_for(4, None, None, torch.float64, seed=5)  # float64 clip into float32 wave
    args = (wave, lengths, clip, clip_lengths)
    assert torch.equal(insert_clip(*args, **INSERT_KW, backend="numba")[0], insert_clip(*args, **INSERT_KW, backend="torch")[0])
    half = (wave.half(), lengths, clip.half(), clip_lengths)
    out = insert_clip(*half, **INSERT_KW, edge_fade=3, backend="numba")[0]
    ref = insert_clip(*half, **INSERT_KW, edge_fade=3, backend="torch")[0]
    assert out.dtype == torch.float16
    torch.testing.assert_close(out.float(), ref.float(), atol=0, rtol=torch.finfo(torch.float16).eps)


@settings(max_examples=25, deadline=None)
@given(L=st.integers(0, 30), pad=st.integers(0, 4), n_clip=st.integers(0, 10), position=st.integers(-5, 35),
       before=st.integers(0, 5), after=st.integers(0, 5), edge=st.integers(0, 6),
       dtype=st.sampled_from([torch.float32, torch.float64]))
def test_insert_numba_edge_cases(L, pad, n_clip, position, before, after, edge, dtype):
    """Empty and 1-sample clips and inserts, positions outside the clip, long edge fades."""
    g = torch.Generator().manual_seed(L * 31 + n_clip)
    wave = torch.zeros(2, L + pad, dtype=dtype)
    wave[0, :L] = torch.rand(L, generator=g, dtype=dtype) * 2 - 1
    clip = torch.rand(2, 10, generator=g, dtype=dtype)
    args = (wave, torch.tensor([L, 0]), clip, torch.tensor([n_clip, 1]))
    kw = dict(position=position, silence_before=before, silence_after=after, edge_fade=edge)
    ref, ref_len = insert_clip(*args, **kw, backend="torch")
    out, out_len = insert_clip(*args, **kw, backend="numba")
    assert torch.equal(out_len, ref_len)
    same(out, ref, dtype, exact=edge == 0)


# ---------------------------------------------------------------- drop: CPU (njit) vs torch


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("C", [None, 2])
@pytest.mark.parametrize("crossfade", [0, 1, 2, 64, 10_000, torch.tensor([0, 16, 200, 5])])
def test_drop_numba_matches_torch(dtype, C, crossfade):
    wave, lengths = mixed_batch(B=4, T=1500, C=C, dtype=dtype, seed=6)
    ref, ref_len = drop_segments(wave, lengths, intervals=INTERVALS, crossfade=crossfade, backend="torch")
    out, out_len = drop_segments(wave, lengths, intervals=INTERVALS, crossfade=crossfade, backend="numba")
    assert torch.equal(out_len, ref_len)
    same(out, ref, dtype, exact=isinstance(crossfade, int) and crossfade == 0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("C", [None, 2])
def test_drop_numba_contract(dtype, C):
    wave, lengths = mixed_batch(B=4, T=1500, C=C, dtype=dtype, seed=7)
    for crossfade in (0, torch.tensor([0, 16, 200, 5])):
        check_op(drop_segments, wave, lengths, intervals=INTERVALS, crossfade=crossfade, backend="numba", atol=0, rtol=0)


def test_drop_numba_vs_float64_reference():
    wave, lengths = mixed_batch(B=4, T=1500, C=2, dtype=torch.float64, seed=8)
    out, out_len = drop_segments(wave, lengths, intervals=INTERVALS, crossfade=40, backend="numba")
    for b in range(4):
        ref = drop_ref(wave[b, :, : int(lengths[b])].numpy(), INTERVALS[b].tolist(), 40)
        assert int(out_len[b]) == ref.shape[1]
        np.testing.assert_allclose(out[b, :, : ref.shape[1]].numpy(), ref, rtol=1e-12, atol=1e-15)


def test_piece_tables():
    """Clip 0: pieces [0, 3), [8, 12), [15, 20); clip 1: everything dropped; clip 2: identity."""
    iv = torch.tensor([[[12, 15], [3, 6], [4, 8], [20, 20]],
                       [[0, 5], [5, 20], [3, 9], [0, 0]],
                       [[0, 0], [7, 7], [9, 3], [0, 0]]])
    src, size, overlap, ostart, new_len = piece_tables(iv, torch.tensor([20, 20, 20]), torch.tensor([2, 2, 2]))
    assert src[0, :3].tolist() == [0, 8, 15] and size[0].tolist() == [3, 4, 5, 0, 0]
    assert overlap[0].tolist() == [1, 2, 0, 0, 0] and ostart[0].tolist() == [0, 2, 4, 9, 9]
    assert size[1].tolist() == [0] * 5 and ostart[1].tolist() == [0] * 5
    assert src[2, 0] == 0 and size[2].tolist() == [20, 0, 0, 0, 0] and overlap[2].tolist() == [0] * 5
    assert new_len.tolist() == [9, 0, 20]
    src, size, overlap, ostart, new_len = piece_tables(torch.zeros(2, 0, 2, dtype=torch.int64), torch.tensor([5, 0]),
                                                       torch.tensor([3, 3]))
    assert size.tolist() == [[5], [0]] and new_len.tolist() == [5, 0]


@settings(max_examples=30, deadline=None)
@given(L=st.integers(0, 40), pad=st.integers(0, 4),
       intervals=st.lists(st.tuples(st.integers(-5, 45), st.integers(-5, 45)), max_size=5),
       crossfade=st.integers(0, 10), dtype=st.sampled_from([torch.float32, torch.float64]))
def test_drop_numba_edge_cases(L, pad, intervals, crossfade, dtype):
    """Empty and 1-sample clips, overlapping / touching / reversed / out-of-range intervals, K = 0."""
    g = torch.Generator().manual_seed(L * 7 + len(intervals))
    wave = torch.zeros(2, L + pad, dtype=dtype)
    wave[0, :L] = torch.rand(L, generator=g, dtype=dtype) * 2 - 1
    iv = torch.tensor(intervals, dtype=torch.int64).reshape(1, -1, 2).repeat(2, 1, 1)
    lengths = torch.tensor([L, min(1, L + pad)])
    ref, ref_len = drop_segments(wave, lengths, intervals=iv, crossfade=crossfade, backend="torch")
    out, out_len = drop_segments(wave, lengths, intervals=iv, crossfade=crossfade, backend="numba")
    assert torch.equal(out_len, ref_len)
    same(out, ref, dtype, exact=crossfade == 0)


def test_bad_input_raises_on_the_kernel_path():
    wave, lengths = mixed_batch(B=2, T=100)
    bad = wave.clone()
    bad[0, 1] = float("inf")
    with pytest.raises(ValueError, match="NaN or Inf"):
        drop_segments(bad, lengths, intervals=torch.zeros(2, 1, 2, dtype=torch.int64), backend="numba")
    with pytest.raises(TypeError):
        drop_segments(wave, lengths, intervals=torch.zeros(2, 1, 2), backend="numba")
    with pytest.raises(ValueError, match="silence_before"):
        insert_clip(wave, lengths, wave, lengths, position=0, silence_before=-1, backend="numba")
    with pytest.raises(ValueError, match="NaN or Inf"):
        insert_clip(wave, lengths, bad, lengths, position=0, backend="numba")


@pytest.mark.real_data
def test_real_speech_numba_matches_torch(emodb_batch):
    wave, lengths = emodb_batch
    B = wave.shape[0]
    iv = torch.stack([lengths // 4, lengths // 4 + 1600], 1)[:, None, :].repeat(1, 2, 1)
    iv[:, 1] += 4000
    ref = drop_segments(wave, lengths, intervals=iv, crossfade=80, backend="torch")
    out = drop_segments(wave, lengths, intervals=iv, crossfade=80, backend="numba")
    assert torch.equal(out[1], ref[1])
    torch.testing.assert_close(out[0], ref[0], **TOL[torch.float32])
    clip, clip_lengths = wave.flip(0)[:, :4000], lengths.flip(0).clamp(max=4000)
    kw = dict(position=lengths // 2, silence_before=800, edge_fade=48)
    ref = insert_clip(wave, lengths, clip, clip_lengths, **kw, backend="torch")
    out = insert_clip(wave, lengths, clip, clip_lengths, **kw, backend="numba")
    assert torch.equal(out[1], ref[1]) and out[0].shape == (B, int(ref[1].max()))
    torch.testing.assert_close(out[0], ref[0], **TOL[torch.float32])


# ---------------------------------------------------------------- CUDA kernels (simulator)


@pytest.mark.parametrize("dtype,C", [(torch.float32, 1), (torch.float64, 2)])
def test_cuda_insert_matches_torch(dtype, C):
    """The ``@cuda.jit`` insert launched with host arrays (CUDA simulator without a GPU)."""
    B, T = 2, 30 // C
    wave, lengths = mixed_batch(B=B, T=T, C=C, dtype=dtype, seed=9)
    wave = wave.reshape(B, C, T)
    clip = torch.randn(B, 1, 8, dtype=torch.float64).to(dtype)
    clip_lengths, pos = torch.tensor([8, 5]), torch.tensor([3, 0])
    before, after, edge = torch.tensor([2, 0]), torch.tensor([1, 3]), torch.tensor([3, 0])
    new_len = lengths + before + clip_lengths + after
    ref = insert_clip(wave, lengths, clip, clip_lengths, position=pos, silence_before=before, silence_after=after,
                      edge_fade=edge, backend="torch")[0]
    out = np.full((B, C, int(new_len.max())), 5.0, dtype=wave.numpy().dtype)  # every sample is written
    sp.launch_insert_cuda(wave.numpy(), lengths.numpy(), clip.numpy(), pos.numpy(), before.numpy(),
                          clip_lengths.numpy(), after.numpy(), edge.numpy(), new_len.numpy(), out)
    torch.testing.assert_close(torch.from_numpy(out), ref, **TOL[dtype])


@pytest.mark.parametrize("dtype,C", [(torch.float32, 1), (torch.float64, 2)])
def test_cuda_drop_matches_torch(dtype, C):
    """The ``@cuda.jit`` drop (binary search over pieces, crossfades) on the CUDA simulator."""
    B, T = 2, 40 // C
    wave, lengths = mixed_batch(B=B, T=T, C=C, dtype=dtype, seed=10)
    wave = wave.reshape(B, C, T)
    iv = torch.tensor([[[3, 5], [9, 10], [4, 6]], [[0, 2], [15, 40], [0, 0]]])
    crossfade = torch.tensor([2, 3])
    ref, ref_len = drop_segments(wave, lengths, intervals=iv, crossfade=crossfade, backend="torch")
    clipped = torch.minimum(iv.clamp(min=0), lengths[:, None, None])
    *tables, new_len = piece_tables(clipped, lengths, crossfade)
    assert torch.equal(new_len, ref_len)
    out = np.full((B, C, int(new_len.max())), 5.0, dtype=wave.numpy().dtype)
    sp.launch_drop_cuda(wave.numpy(), *[t.numpy() for t in tables], new_len.numpy(), out)
    torch.testing.assert_close(torch.from_numpy(out), ref, **TOL[dtype])


# ---------------------------------------------------------------- dispatch and records


def test_registration_and_auto(monkeypatch):
    monkeypatch.delenv("GPUAUG_BACKEND", raising=False)
    for op in ("insert_clip", "drop_segments"):
        monkeypatch.delenv(f"GPUAUG_BACKEND_{op.upper()}", raising=False)
        assert gb.kernels_for(op) == {("numba", "cpu"): 0, ("numba", "cuda"): 0}
        assert gb.resolve(op, "cpu") == "numba"


@pytest.mark.parametrize("make", [
    lambda be: InsertClip(synthetic_insert_bank(), positions=("start", "middle", "random"), silence_before_s=(0.0, 0.05),
                          backend=be),
    lambda be: DropSegments(min_segments=2, max_segments=3, backend=be),
])
def test_transforms_record_backend(monkeypatch, make):
    monkeypatch.delenv("GPUAUG_BACKEND", raising=False)
    for op in ("insert_clip", "drop_segments"):
        monkeypatch.delenv(f"GPUAUG_BACKEND_{op.upper()}", raising=False)
    wave, lengths = mixed_batch(B=3, T=4000, seed=11)
    results = {}
    for requested, expected in ((None, "numba"), ("torch", "torch")):
        res = Pipeline([make(requested)])(wave, lengths, seed=5)
        entries = [e for clip in res.record for e in clip if e["transform"] != "output_level"]  # A4: not a kernel op
        assert len(entries) == 3 and all(e["backend_name"] == expected for e in entries)
        results[expected] = res
    a, b = results["numba"], results["torch"]
    assert torch.equal(a.lengths, b.lengths)
    torch.testing.assert_close(a.wave, b.wave, **TOL[torch.float32])
    with pytest.raises(ValueError, match="backend"):
        make("opencl")
