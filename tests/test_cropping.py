"""Seeded cropping to a maximum duration in the collate (issue 10, A14): one long file no
longer pads the whole batch; the window is a pure function of (seed, epoch, index)."""
from __future__ import annotations

import pytest
import torch

from gpuaug.data.collate import AugmentCollate
from gpuaug.data.synthetic import synthetic_noise_bank
from gpuaug.transforms import AddNoise, DropSegments, Pipeline

SR = 16000


def _items(seconds=(0.5, 1.0, 600.0, 3.0), sr=SR):
    out = []
    for i, s in enumerate(seconds):
        n = int(s * sr)
        wave = torch.arange(n, dtype=torch.float32) / n  # a ramp: the crop's offset is visible in it
        words = torch.tensor([[0.1, 0.3], [1.2, 1.4], [2.05, 2.3], [2.9, 3.5]], dtype=torch.float64)
        out.append({"wave": wave, "sample_rate": sr, "index": 10 + i, "words": words[words[:, 0] < s]})
    return out


@pytest.fixture(scope="module")
def pipe():
    return Pipeline([AddNoise(synthetic_noise_bank(seconds=1), p=0.5)], sample_rate=SR)


def test_long_item_no_longer_pads_the_batch(pipe):
    items = _items()
    batch = AugmentCollate(pipe, ratio=0.0, seed=1, max_seconds=2.0).collate(items)
    M = 2 * SR
    assert batch.wave.shape[-1] == M                                    # not 600 s
    assert batch.lengths.tolist() == [SR // 2, SR, M, M]
    for k, it in enumerate(items):
        crop = [e for e in batch.record[k] if e["transform"] == "crop"] if batch.record else []
        if it["wave"].numel() <= M:
            assert crop == [] and torch.equal(batch.wave[k, : batch.lengths[k]], it["wave"])
            continue
        (c,) = crop
        o = c["offset"]
        assert c["length"] == M and c["source_length"] == it["wave"].numel() and 0 <= o <= it["wave"].numel() - M
        assert c["offset_s"] == o / SR
        assert torch.equal(batch.wave[k], it["wave"][o : o + M])       # exactly the window


def test_offsets_are_a_pure_function_of_seed_epoch_index(pipe):
    items = _items()
    c = AugmentCollate(pipe, seed=1, max_seconds=2.0)
    offs = lambda b: [next((e["offset"] for e in r if e["transform"] == "crop"), None) for r in b.record]  # noqa: E731
    a = offs(c.collate(items))
    assert a[:2] == [None, None] and a[2] is not None and a[3] is not None
    assert offs(c.collate(items[::-1]))[::-1] == a                     # batch order / composition
    assert offs(c.collate(items[2:3])) == [a[2]]
    assert offs(AugmentCollate(pipe, seed=1, max_seconds=2.0).collate(items)) == a
    assert c.crop_starts([12, 13], [600 * SR, 3 * SR]).tolist() == [a[2], a[3]]
    c.set_epoch(1)
    assert offs(c.collate(items))[2] != a[2]                           # epochs differ
    assert offs(AugmentCollate(pipe, seed=2, max_seconds=2.0).collate(items))[2] != a[2]
    starts = c.crop_starts(torch.arange(2000), torch.full((2000,), 3 * SR))
    assert int(starts.min()) >= 0 and int(starts.max()) <= SR and starts.unique().numel() > 1000  # spread over [0, T - M]


def test_words_are_shifted_and_those_outside_dropped(pipe):
    items = _items()
    c = AugmentCollate(pipe, seed=1, max_seconds=2.0)
    batch = c.collate(items)
    o = batch.record[3][0]["offset"]
    src = (items[3]["words"] * SR).round().long()
    want = (src - o).clamp(0, 2 * SR)
    want = want[want[:, 1] > want[:, 0]]
    got = batch.words[3][batch.words[3, :, 1] > batch.words[3, :, 0]]
    assert torch.equal(got, want) and int(got.max()) <= 2 * SR
    assert len(got) < len(src) or o == 0
    short = batch.words[0][batch.words[0, :, 1] > batch.words[0, :, 0]]
    assert torch.equal(short, (items[0]["words"] * SR).round().long())   # uncropped: unchanged


def test_resampled_items_are_cropped_at_the_batch_rate_and_augmentation_keeps_the_crop(pipe):
    items = _items(seconds=(4.0, 1.0), sr=22050)
    c = AugmentCollate(Pipeline([AddNoise(synthetic_noise_bank(seconds=1)), DropSegments()], sample_rate=SR),
                       seed=0, max_seconds=1.5)
    batch = c(items)
    assert batch.wave.shape[-1] <= int(1.5 * SR) and batch.lengths[0] <= int(1.5 * SR)
    assert batch.record[0][0]["transform"] == "crop" and batch.record[0][0]["source_length"] == 4 * SR
    assert batch.record[0][1]["transform"] != "crop" and batch.record[1][0]["transform"] != "crop"
    again = c.apply(c.collate(items), records=[batch.record[k] for k in range(2)])   # replay skips the crop entry
    assert torch.equal(again.wave, batch.wave)


def test_append_mode_keeps_the_crop_records(pipe):
    c = AugmentCollate(pipe, ratio=1.0, mode="append", seed=0, dataset_size=20, max_seconds=2.0)
    batch = c(_items())
    assert len(batch) == 8
    assert batch.record[2][0]["transform"] == "crop" and batch.record[6][0] == batch.record[2][0]


@pytest.mark.parametrize("bad", [0, -1.0, float("nan"), float("inf"), "2", True])
def test_bad_max_seconds(pipe, bad):
    with pytest.raises(ValueError, match="max_seconds"):
        AugmentCollate(pipe, max_seconds=bad)
