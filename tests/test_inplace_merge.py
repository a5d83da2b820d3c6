"""Issue 11: a transform applied to some clips merges them into the pipeline's own intermediate in
place (no batch copy), never into the caller's audio; results equal the copying merge bit for bit."""
from __future__ import annotations

import torch

from gpuaug.transforms import Fade, Gain, Pipeline, Reverb, SpeedSegment
from gpuaug.transforms.base import Context
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
