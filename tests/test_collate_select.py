"""One pass through the pipeline (issue 10 C) and the realised shares of ``ratio`` (D3).

``Pipeline(..., select=mask)`` draws parameters for every clip and applies them to the
selected ones only; ``AugmentCollate.apply`` calls it once per batch (``append``: once, on the
batch with the selected rows duplicated) and takes everything from that one result.
"""
from __future__ import annotations

import collections
import json

import pytest
import torch

import gpuaug.data.collate as collate_module
from gpuaug import Pipeline
from gpuaug.cli import main
from gpuaug.data import AugmentCollate, pad_batch
from gpuaug.data.datasets import SyntheticSERDataset
from gpuaug.data.synthetic import synthetic_noise_bank, synthetic_rir_bank, synthetic_speech
from gpuaug.sync_count import STAND_IN, DeviceResident, count_syncs, mark_device
from gpuaug.transforms import AddNoise, DropSegments, Fade, Gain, OneOf, Reverb, SomeOf, Speed, SpeedSegment

SR = 16000


@pytest.fixture(scope="module")
def banks():
    return synthetic_noise_bank(seconds=1), synthetic_rir_bank()


def _pipe(banks):
    """Length-changing, containers, bank transforms, each with p < 1."""
    noise, rir = banks
    return Pipeline([SpeedSegment(p=0.5), OneOf([AddNoise(noise), Reverb(rir)], p=0.8),
                     SomeOf([Gain(), Fade(), DropSegments()], min_count=0, max_count=2),
                     Speed(factor_choices=(0.9, 1.0, 1.1), p=0.5)], sample_rate=SR)


@pytest.fixture(scope="module")
def device_banks():
    """Banks whose audio lives on the CPU stand-in of a device (gpuaug.sync_count)."""
    noise, rir = synthetic_noise_bank(seconds=1), synthetic_rir_bank()
    for b in (noise, rir):
        b.audio = mark_device(b.audio)
    return noise, rir


@pytest.fixture(scope="module")
def ds():
    return SyntheticSERDataset(12, sample_rate=SR, seed=2, min_s=0.5, max_s=1.2)


@pytest.fixture(scope="module")
def clips():
    waves = [w if isinstance(w, torch.Tensor) else w.wave for w in synthetic_speech(6, seed=4, min_s=0.4, max_s=0.9)]
    wave, lengths = pad_batch(waves)
    words = torch.tensor([[[800, 2400], [3200, 4800]]] * len(waves))  # (B, K, 2) samples
    return wave, lengths, words


def _strip_measured(record):
    return [{k: v for k, v in e.items() if not (e["transform"] == "output_level" and k in ("gain", "peak"))}
            for e in record]


# ---- Pipeline(select=) -------------------------------------------------------------------------
def test_select_augments_exactly_the_selected_clips(banks, clips):
    wave, lengths, words = clips
    pipe = _pipe(banks)
    index = torch.arange(10, 16)
    select = torch.tensor([True, False, True, True, False, True])
    out = pipe(wave, lengths, seed=3, epoch=1, index=index, select=select, alignments=words)
    sub = pipe(wave[select], lengths[select], seed=3, epoch=1, index=index[select], alignments=words[select])  # the old two-pass way
    rows = select.nonzero().flatten().tolist()
    for j, b in enumerate(rows):  # a selected clip: as if augmented alone with its own parameters
        assert int(out.lengths[b]) == int(sub.lengths[j])
        assert _strip_measured(out.record[b]) == _strip_measured(sub.record[j])
        assert out.tags[b] == sub.tags[j]
        n = int(sub.lengths[j])
        torch.testing.assert_close(out.wave[b, :n], sub.wave[j, :n], atol=1e-5 * float(sub.wave[j].abs().max()), rtol=0)
    for b in (~select).nonzero().flatten().tolist():  # the others: bit for bit, clean, nothing applied
        n = int(lengths[b])
        assert int(out.lengths[b]) == n and torch.equal(out.wave[b, :n], wave[b, :n])
        assert out.tags[b] == "clean" and out.record[b] == [] and out.labels.action[b] == "keep"
        assert not any(bool(p["apply"][b]) for p in out.params.values())
    assert torch.equal(out.selected, select)
    assert torch.equal(out.applied, torch.tensor([bool(r) for r in out.record]))
    # replay of the whole result reproduces it, with or without the mask
    assert torch.equal(pipe(wave, lengths, params=out.params, alignments=words).wave, out.wave)
    assert torch.equal(pipe(wave, lengths, params=out.params, select=select, alignments=words).wave, out.wave)


def test_select_draws_parameters_for_every_clip(banks, clips):
    """A clip's parameters do not depend on which other clips are selected."""
    wave, lengths, words = clips
    pipe = _pipe(banks)
    index = torch.arange(6)
    full = pipe(wave, lengths, seed=1, index=index, alignments=words)
    some = pipe(wave, lengths, seed=1, index=index, alignments=words,
                select=torch.tensor([False, True, False, True, True, False]))
    for b in (1, 3, 4):
        assert _strip_measured(some.record[b]) == _strip_measured(full.record[b])


def test_select_nothing_selected_reads_nothing(device_banks, clips):
    wave, lengths, words = clips
    pipe = _pipe(device_banks)
    dev = mark_device(wave)
    pipe(dev, lengths, seed=0, select=torch.ones(6, dtype=torch.bool), alignments=words)  # warm up
    with count_syncs() as c:
        out = pipe(dev, lengths, seed=0, select=torch.zeros(6, dtype=torch.bool), alignments=words)
        out.record, out.tags
    assert c.count == 0, c.sites
    assert torch.equal(out.wave.as_subclass(torch.Tensor), wave) and out.tags == ["clean"] * 6
    assert all(r == [] for r in out.record) and not bool(out.applied.any())


def test_select_errors_name_the_argument(banks, clips):
    wave, lengths, words = clips
    pipe = _pipe(banks)
    with pytest.raises(TypeError, match="select must be a \\(B,\\) bool mask"):
        pipe(wave, lengths, select=torch.ones(6))
    with pytest.raises(ValueError, match=r"select must have shape \(B,\) = \(6,\)"):
        pipe(wave, lengths, select=torch.ones(5, dtype=torch.bool))


# ---- the collate: one pipeline call, everything from its result --------------------------------
def _spy(monkeypatch):
    """Record (rows, select) of every Pipeline call."""
    calls, orig = [], Pipeline.__call__

    def call(self, wave, lengths=None, **kw):
        calls.append((wave.shape[0], kw.get("select")))
        return orig(self, wave, lengths, **kw)

    monkeypatch.setattr(Pipeline, "__call__", call)
    return calls


def test_collate_calls_the_pipeline_once_on_the_whole_batch(banks, ds, monkeypatch):
    assert not hasattr(collate_module, "merge_rows") and not hasattr(collate_module, "_TAG_OF_CODE")
    items = [ds[i] for i in range(8)]
    pipe = _pipe(banks)
    calls = _spy(monkeypatch)
    b = AugmentCollate(pipe, ratio=0.5, seed=5)(items)
    assert len(calls) == 1
    rows, select = calls.pop()
    assert rows == 8 and torch.equal(select, b.augmented) and 0 < int(select.sum()) < 8
    a = AugmentCollate(pipe, ratio=0.5, seed=5, mode="append")(items)
    n = int(b.augmented.sum())
    assert len(calls) == 1 and calls[0][0] == 8 + n
    assert torch.equal(calls[0][1], torch.tensor([False] * 8 + [True] * n))
    assert torch.equal(a.is_copy, calls[0][1]) and torch.equal(a.augmented, a.is_copy)


def test_pending_params_cover_every_clip_and_replay(banks, ds):
    items = [ds[i] for i in range(8)]
    pipe = _pipe(banks)
    c = AugmentCollate(pipe, ratio=0.5, seed=5)
    c.set_epoch(3)
    pending = c.collate(items)
    drawn = pipe.sample(8, seed=5, epoch=3, index=pending.index)
    assert pending.params.keys() == drawn.keys()
    for slot in drawn:  # (B,) for every clip, the pure function of (seed, epoch, index)
        for k, v in drawn[slot].items():
            assert torch.equal(pending.params[slot][k], v)
    done = c.apply(pending)
    sel = done.augmented
    for slot, own in done.params.items():
        assert own["apply"].shape == (8,) and not bool(own["apply"][~sel].any())
    # replay: the batch's params, its per-clip records, or (as before) the selected clips' records
    again = pipe(pending.wave, pending.lengths, params=done.params)
    assert torch.equal(again.wave[:, : done.wave.shape[-1]], done.wave)
    per_clip = c.apply(c.collate(items), records=done.record)
    per_selected = c.apply(c.collate(items), records=[done.record[k] for k in sel.nonzero().flatten().tolist()])
    for r in (per_clip, per_selected):
        assert torch.equal(r.wave, done.wave) and r.record == done.record and r.tags == done.tags
    with pytest.raises(ValueError, match="records must have one record per clip"):
        c.apply(c.collate(items), records=[[]] * 9)


def test_append_duplicates_rows_then_augments_the_copies(banks, ds):
    items = [ds[i] for i in range(8)]
    pipe = _pipe(banks)
    c = AugmentCollate(pipe, ratio=0.6, seed=1, mode="append", dataset_size=len(ds), max_seconds=0.8)
    b = c(items)
    chosen = c.selector.select(b.index[:8], 0)
    n = int(chosen.sum())
    src = chosen.nonzero().flatten()
    assert len(b) == 8 + n and n > 0
    for name in ("index", "labels", "dims", "words"):
        assert torch.equal(getattr(b, name)[8:], getattr(b, name)[:8][src]), name
    assert b.speaker[8:] == [b.speaker[i] for i in src.tolist()]
    assert b.tags[:8] == ["clean"] * 8 and all(r == [e for e in r if e["transform"] == "crop"] for r in b.record[:8])
    for j, i in enumerate(src.tolist()):  # the copy's record: its original's crop, then its augmentation
        crop = [e for e in b.record[i] if e["transform"] == "crop"]
        assert b.record[8 + j][: len(crop)] == crop
    # the copies have the parameters of a plain (non-append) collate's selected clips
    plain = AugmentCollate(pipe, ratio=0.6, seed=1, mode="fixed_subset", dataset_size=len(ds), max_seconds=0.8)(items)
    assert torch.equal(plain.augmented, chosen)
    for j, i in enumerate(src.tolist()):
        assert _strip_measured(b.record[8 + j]) == _strip_measured(plain.record[i])
        assert b.tags[8 + j] == plain.tags[i] and int(b.lengths[8 + j]) == int(plain.lengths[i])
    # replay of an append batch from its records
    again = c.apply(c.collate(items), records=b.record)
    assert torch.equal(again.wave, b.wave) and again.record == b.record


def test_append_adds_no_sync(device_banks, ds):
    """Duplicating the rows on the device keeps the host mirrors: still <= 2 syncs."""
    noise, rir = device_banks
    pipe = Pipeline([AddNoise(noise, p=0.7), SpeedSegment(p=0.5), DropSegments()], sample_rate=SR)
    c = AugmentCollate(pipe, ratio=0.5, seed=0, mode="append", dataset_size=len(ds))
    pending = c.collate([ds[i] for i in range(8)])
    c.apply(pending.to(STAND_IN))  # warm up
    with count_syncs() as cnt:
        out = c.apply(pending.to(STAND_IN))
        out.record, out.tags, out.selected_share, out.augmented_share
    assert cnt.count <= 2, collections.Counter(cnt.sites)
    assert isinstance(out.wave, DeviceResident) and len(out) > 8


# ---- D3: ratio is the share selected; each transform keeps its own p ---------------------------
def test_ratio_one_selects_every_clip_and_reports_the_realised_share(banks, ds):
    noise, _ = banks
    pipe = Pipeline([AddNoise(noise, p=0.5)], sample_rate=SR, output_level="keep")
    c = AugmentCollate(pipe, ratio=1.0, seed=0)
    b = c([ds[i] for i in range(12)])
    noisy = [any(e["transform"] == "add_noise" for e in r) for r in b.record]
    assert b.selected_share == 1.0
    assert b.augmented_share == sum(noisy) / 12 and 0 < b.augmented_share < 1
    assert b.applied.tolist() == noisy
    s = b.summary()
    assert s["items"] == 12 and s["selected"] == 12 and s["augmented"] == sum(noisy)
    assert s["augmented_share"] == b.augmented_share and s["tags"] == dict(collections.Counter(b.tags))
    pending = c.collate([ds[i] for i in range(12)])
    assert pending.selected_share == 1.0 and pending.augmented_share is None
    a = AugmentCollate(pipe, ratio=0.5, seed=0, mode="append")([ds[i] for i in range(12)])
    copies = int(a.is_copy.sum())
    assert a.selected_share == copies / 12  # shares count items, not the appended rows
    assert a.augmented_share == sum(bool(r) for r in a.record[12:]) / 12
    assert not bool(a.applied[:12].any())


def test_demo_prints_the_realised_share(tmp_path, capsys):
    out = tmp_path / "summary.json"
    assert main(["demo", "--clips", "8", "--batch-size", "4", "--epochs", "1", "--workers", "0", "--ratio", "1.0",
                 "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "selected for augmentation: 100.0% of 8 items" in text and "got at least one transform" in text
    summary = json.loads(out.read_text())
    assert summary["selected_share"] == 1.0 and 0 <= summary["augmented_share"] <= 1.0


# ---- the items' words and speakers reach the transforms ---------------------------------------
def test_word_list_and_speaker_reach_the_pipeline(ds, monkeypatch):
    """``word_list`` (cropped with its intervals) and ``speaker`` are passed as ``word_text=`` /
    ``speakers=``, duplicated with the rows in ``append``."""
    seen = []
    orig = Pipeline.__call__

    def call(self, wave, lengths=None, **kw):
        seen.append((kw.get("word_text"), kw.get("speakers"), kw.get("alignments")))
        return orig(self, wave, lengths, **kw)

    monkeypatch.setattr(Pipeline, "__call__", call)
    base = {"sample_rate": SR, "wave": torch.full((SR,), 0.1)}
    items = [{**base, "index": 0, "speaker": "a", "words": [[0.1, 0.2], [0.5, 0.6], [0.9, 0.95]],
              "word_list": ["the", "cat", "sat"]},
             {**base, "index": 1, "speaker": "b", "words": [[0.2, 0.3]], "word_list": ["a"]},
             {**base, "index": 2, "speaker": None, "words": [[0.3, 0.4]]}]  # no word_list: []
    c = AugmentCollate(Pipeline([Gain()], sample_rate=SR), ratio=1.0, mode="append", seed=0, max_seconds=0.45)
    b = c(items)
    word_text, speakers, al = seen[-1]
    starts = [e[0]["offset"] for e in b.record[:3]]
    for k in range(3):  # the words kept by the crop keep their text, in order
        kept = [w for (s0, s1), w in zip(items[k]["words"], items[k].get("word_list", []))
                if min(s1 * SR - starts[k], 7200) > max(s0 * SR - starts[k], 0)]
        assert b.word_text[k] == kept and word_text[k] == kept
    assert len(word_text) == len(b) == 6 and word_text[3:] == b.word_text[:3]  # copies
    assert speakers == ["a", "b", None] * 2 and torch.equal(al, b.words)
    with pytest.raises(ValueError, match="word_list has 2 words for 1 'words' intervals"):
        c([{**items[1], "word_list": ["a", "b"]}])
