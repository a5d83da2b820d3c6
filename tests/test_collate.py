"""The collate: workers, epochs, batch-size independence, ratio modes, replay, labels, errors."""
import math

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, Dataset

from gpuaug import LabelPolicy, Pipeline
from gpuaug.data.collate import AugmentCollate
from gpuaug.data.device_stage import DeviceLoader
from gpuaug.data.synthetic import synthetic_noise_bank, synthetic_speech
from gpuaug.transforms import AddNoise, DropSegments, Fade, Speed, SpeedSegment

N = 24


class Toy(Dataset):
    """Synthetic items in the item-dict contract (half of them at 22.05 kHz, one stereo)."""

    def __init__(self, n=N):
        self.items = synthetic_speech(n, min_s=0.3, max_s=0.6)

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        it = self.items[i]
        wave, sr = it.wave, 16000
        if i % 2:
            import julius

            wave, sr = julius.resample_frac(wave, 16000, 22050), 22050
        if i == 3:
            wave = torch.stack([wave, 0.5 * wave])
        return {"wave": wave, "sample_rate": sr, "index": i, "label": it.label, "speaker": str(it.speaker),
                "words": torch.tensor([[0.05, 0.1], [0.15, 0.2]])}


@pytest.fixture(scope="module")
def pipe():
    bank = synthetic_noise_bank(seconds=1)
    return Pipeline([AddNoise(bank), Fade(p=0.5), SpeedSegment(p=0.5)])


def _epoch(loader):
    return {int(i): (b.wave[k, : b.lengths[k]].clone(), b.record[k], b.augmented[k].item())
            for b in loader for k, i in enumerate(b.index)}


def _same(a, b):
    assert a.keys() == b.keys()
    for i in a:
        torch.testing.assert_close(a[i][0], b[i][0], atol=1e-5, rtol=1e-5)
        assert a[i][2] == b[i][2]
        assert [e["transform"] for e in a[i][1]] == [e["transform"] for e in b[i][1]]


def test_workers_batch_size_and_persistent_workers_agree(pipe):
    ds = Toy()
    ref = {}
    for epoch in (0, 1):
        c = AugmentCollate(pipe, ratio=0.5, seed=3)
        c.set_epoch(epoch)
        ref[epoch] = _epoch(DataLoader(ds, batch_size=4, collate_fn=c))
    assert any(not torch.equal(ref[0][i][0], ref[1][i][0]) for i in ref[0])  # epochs differ
    c = AugmentCollate(pipe, ratio=0.5, seed=3)
    loader = DataLoader(ds, batch_size=7, collate_fn=c, num_workers=2, persistent_workers=True, shuffle=True)
    for epoch in (0, 1):
        c.set_epoch(epoch)  # must reach the persistent workers
        _same(_epoch(loader), ref[epoch])


def test_pending_then_apply_equals_direct(pipe):
    ds = Toy(8)
    c = AugmentCollate(pipe, ratio=1.0, seed=0)
    items = [ds[i] for i in range(8)]
    direct = c(items)
    pending = c.collate(items)
    assert pending.pending and pending.record == []
    done = c.apply(pending)
    assert torch.equal(done.wave, direct.wave) and not done.pending
    dl = DeviceLoader(DataLoader(ds, batch_size=4, collate_fn=c), c, "cpu")
    first = next(iter(dl))
    assert torch.equal(first.wave, direct.wave[:4, : first.wave.shape[-1]])


def test_replay_from_record(pipe):
    ds = Toy(8)
    c = AugmentCollate(pipe, ratio=0.7, seed=1)
    items = [ds[i] for i in range(8)]
    batch = c(items)
    sel = batch.augmented.nonzero().flatten().tolist()
    again = c.apply(c.collate(items), records=[batch.record[i] for i in sel])
    assert torch.equal(again.wave, batch.wave)
    assert [r for r in again.record] == [r for r in batch.record]


def test_fixed_subset_is_exact_and_stable(pipe):
    c = AugmentCollate(pipe, ratio=0.25, mode="fixed_subset", dataset_size=N, seed=0)
    chosen = []
    for epoch in (0, 1, 2):
        chosen.append(c.selector.select(torch.arange(N), epoch))
    assert int(chosen[0].sum()) == round(0.25 * N)
    assert torch.equal(chosen[0], chosen[1]) and torch.equal(chosen[1], chosen[2])
    other = AugmentCollate(pipe, ratio=0.25, mode="fixed_subset", dataset_size=N, seed=1).selector.select(torch.arange(N), 0)
    assert not torch.equal(other, chosen[0])


def test_bernoulli_within_binomial_bound(pipe):
    n, ratio = 20000, 0.1
    c = AugmentCollate(pipe, ratio=ratio, seed=0)
    frac = float(c.selector.select(torch.arange(n), 0).double().mean())
    assert abs(frac - ratio) < 4 * math.sqrt(ratio * (1 - ratio) / n)
    e1 = c.selector.select(torch.arange(n), 1)
    assert not torch.equal(e1, c.selector.select(torch.arange(n), 0))


def test_append_mode_and_cap(pipe):
    ds = Toy(8)
    items = [ds[i] for i in range(8)]
    c = AugmentCollate(pipe, ratio=0.5, mode="append", dataset_size=8, seed=0)
    b = c(items)
    assert len(b) == 8 + 4 and b.is_copy.tolist() == [False] * 8 + [True] * 4
    assert b.tags[:8] == ["clean"] * 8 and all(t != "clean" for t in b.tags[8:])
    assert torch.equal(b.index[8:], b.index[:8][c.selector.select(b.index[:8], 0)])
    assert torch.equal(b.labels[8:], b.labels[:8][c.selector.select(b.index[:8], 0)])
    capped = AugmentCollate(pipe, ratio=1.0, max_per_batch=3, seed=0)(items)
    assert int(capped.augmented.sum()) == 3


def test_label_handling_for_altering(pipe):
    ds = Toy(8)
    items = [ds[i] for i in range(8)]
    altering = Pipeline([Speed(factor_choices=(0.75, 1.0))], label_policy=LabelPolicy(on_altering="drop"))
    b = AugmentCollate(altering, ratio=1.0, seed=0)(items)
    fast = [r[0]["factor"] != 1.0 for r in b.record]
    assert b.label_action.keep.tolist() == [not f for f in fast]
    kept = b.kept()
    assert len(kept) == 8 - sum(fast) and all(t != "altering" for t in kept.tags)
    masked = AugmentCollate(Pipeline([Speed(factor_choices=(0.75, 1.0))]), ratio=0.5, seed=0)(items)
    for k in range(8):
        want = 0.0 if masked.tags[k] == "altering" else 1.0
        assert masked.label_action.loss_weight[k] == want


def test_word_alignments_reach_word_dropping():
    ds = Toy(4)
    pipe = Pipeline([DropSegments(mode="word", words="any", crossfade_ms=0)])  # any word: no transcript needed
    b = AugmentCollate(pipe, ratio=1.0)([ds[i] for i in range(4)])
    assert (b.words[:, 0] == torch.tensor([800, 1600])).all()
    assert [int(b.record[k][0]["dropped_samples"]) for k in range(4)] == [800] * 4


def test_clear_errors(pipe):
    c = AugmentCollate(pipe)
    good = {"wave": torch.zeros(100) + 0.1, "sample_rate": 16000, "index": 0}
    with pytest.raises(ValueError, match="no 'index'"):
        c([{"wave": torch.zeros(10), "sample_rate": 16000}])
    with pytest.raises(ValueError, match="NaN"):
        c([good, {**good, "index": 1, "wave": torch.tensor([0.0, float("inf")])}])
    with pytest.raises(ValueError, match="T > 0"):
        c([{**good, "wave": torch.zeros(0)}])
    with pytest.raises(ValueError, match="sample_rate"):
        c([{"wave": torch.zeros(10), "index": 0}])
    with pytest.raises(ValueError, match="mismatched channel"):
        AugmentCollate(pipe, mono=False)([{**good, "wave": torch.zeros(2, 10)}, {**good, "index": 1, "wave": torch.zeros(1, 10)}])
    with pytest.raises(ValueError, match="dataset_size"):
        AugmentCollate(pipe, mode="fixed_subset")
    with pytest.raises(ValueError, match="ratio"):
        AugmentCollate(pipe, ratio=1.5)
    ok = c([{**good, "wave": np.full(100, 0.1, dtype=np.float32)}])
    assert ok.wave.shape[0] == 1 and ok.labels is None


def test_workers_never_touch_a_non_cpu_device(pipe):
    """With a non-CPU target, workers return pending batches; the device stage finishes them."""
    ds = Toy(8)
    ref = AugmentCollate(pipe, ratio=1.0, seed=2)
    want = _epoch(DataLoader(ds, batch_size=4, collate_fn=ref))
    c = AugmentCollate(pipe, ratio=1.0, seed=2, device="meta")  # any non-CPU device type
    loader = DataLoader(ds, batch_size=4, collate_fn=c, num_workers=2)
    assert all(b.pending for b in loader)
    _same(_epoch(DeviceLoader(loader, c, "cpu")), want)
    four = DataLoader(ds, batch_size=3, collate_fn=ref, num_workers=4)
    _same(_epoch(four), want)


def test_collated_batch_is_scanned_once(pipe, monkeypatch):
    """The collate scans each item and marks the padded batch finite: the pipeline call does not
    scan it again, and a pending batch written in place afterwards is scanned (and refused)."""
    import gpuaug.functional._batch as fb

    c = AugmentCollate(pipe, ratio=1.0)
    good = {"wave": torch.full((100,), 0.1), "sample_rate": 16000, "index": 0}
    items = [good, {**good, "index": 1, "wave": torch.full((80,), -0.2)}]
    pending = c.collate(items)
    assert fb.marked_finite(pending.wave)
    scans = []
    real = fb.finite_rows
    monkeypatch.setattr(fb, "finite_rows", lambda w: scans.append(w) or real(w))
    out = c.apply(pending)
    assert out.wave.shape[0] == 2 and scans and not any(w is pending.wave for w in scans)  # not the input
    pending = c.collate(items)
    pending.wave[1, 5] = float("nan")  # an in-place write moves the version counter: the mark lapses
    assert not fb.marked_finite(pending.wave)
    scans.clear()
    with pytest.raises(ValueError, match=r"NaN or Inf samples in clip\(s\) \[1\]"):
        c.apply(pending)
    assert any(w is pending.wave for w in scans)
    # the item scan runs after the down-mix and resampling, on what enters the batch
    with pytest.raises(ValueError, match="item 1 .*NaN or Inf"):
        c.collate([good, {**good, "index": 1, "wave": torch.tensor([[0.1, 0.2], [3e38, 3e38]]).repeat(2, 1)}])
