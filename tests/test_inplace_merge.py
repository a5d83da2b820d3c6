"""Issue 11: a transform applied to some clips merges them into the pipeline's own intermediate in
place (no batch copy), never into the caller's audio; results equal the copying merge bit for bit."""
from __future__ import annotations

import pytest
import torch

from gpuaug.transforms import Fade, Gain, Pipeline, Reverb, SpeedSegment
from gpuaug.transforms.base import Context, merge_rows
from harness import mixed_batch


def _pipe():
    return Pipeline([Gain(p=0.5), Reverb(p=0.5), Fade(p=0.5), SpeedSegment(p=0.5), Gain(p=0.5)], sample_rate=16000)


def test_inplace_merge_equals_copy_and_keeps_the_input(monkeypatch):
    wave, lengths = mixed_batch(B=8, T=6000, seed=11)
    before = wave.clone()
    merged = []
    import gpuaug.transforms.base as base

    orig = base.merge_rows

    def spy(*a, **k):
        merged.append(k.get("inplace", False))
        return orig(*a, **k)

    monkeypatch.setattr(base, "merge_rows", spy)
    got = _pipe()(wave, lengths, seed=2, epoch=3)
    assert torch.equal(wave, before)  # the caller's audio is never written
    assert merged[0] is False and any(merged[1:])  # the first merge copies the caller's batch, later ones do not
    monkeypatch.setattr(Context, "owns", lambda self, w: False)
    want = _pipe()(wave, lengths, seed=2, epoch=3)
    assert torch.equal(got.wave, want.wave) and torch.equal(got.lengths, want.lengths)
    assert got.record == want.record
    assert torch.equal(wave, before)


def test_context_owns_only_other_storage():
    w = torch.zeros(2, 1, 10)
    ctx = Context(16000, caller_storage=w.untyped_storage().data_ptr())
    assert not ctx.owns(w) and not ctx.owns(w[:, :, 2:]) and ctx.owns(w.clone())
    assert not Context(16000).owns(w.clone())  # outside a pipeline: nothing is owned
    assert ctx.subset(torch.tensor([1])).caller_storage == ctx.caller_storage


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16])
def test_merge_rows_kernel_matches_index_copy(dtype, monkeypatch):
    """merge_rows writes the rows with op ``row_scatter`` (the Numba row copy on the CPU): the same
    values as index_copy_ / index_fill_ for rows of the batch's length, shorter rows (zero tail),
    a batch that grows (a slowed-down longest clip), stereo, in place or into a copy."""
    g = torch.Generator().manual_seed(3)
    for C, T, T_sub, grow in ((1, 500, 500, False), (2, 500, 500, False), (1, 500, 430, False),
                              (2, 500, 620, True), (1, 500, 430, True)):
        wave = torch.randn(6, C, T, generator=g).to(dtype)
        lengths = torch.full((6,), T)
        index = torch.tensor([4, 1, 5])
        sub = torch.randn(3, C, T_sub, generator=g).to(dtype)
        sub_len = torch.tensor([T_sub, T_sub - 7, 3]) if grow else torch.tensor([min(T_sub, T) - 1, 2, 0])
        results = []
        for backend in ("numba", "torch"):
            monkeypatch.setenv("GPUAUG_BACKEND_ROW_SCATTER", backend)
            own = wave.clone()
            copy, copy_len = merge_rows(wave, lengths, index, sub, sub_len)
            inplace, _ = merge_rows(own, lengths, index, sub, sub_len, inplace=True)
            results.append((copy, inplace, copy_len))
        (a, ai, al), (b, bi, bl) = results
        assert torch.equal(a, b) and torch.equal(ai, bi) and torch.equal(al, bl)
        assert torch.equal(a[[0, 2, 3], :, :min(T, a.shape[-1])], wave[[0, 2, 3], :, :min(T, a.shape[-1])])
        t = min(T_sub, a.shape[-1])
        assert torch.equal(a[index, :, :t], sub[..., :t]) and not a[index, :, t:].any()
