"""Manifest and synthetic datasets: the item contract, label mapping, alignments, errors."""
from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import soundfile as sf
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.utils.data import DataLoader

from gpuaug.data.datasets import ManifestDataset, SyntheticSERDataset, read_alignment
from gpuaug.data.iemocap import bin_dimension
from gpuaug.data.synthetic import EMOTIONS, synthetic_annotation, synthetic_speech

SR = 16000


def _wav(path, n=4000, sr=SR, channels=1, seed=0):
    """Noise written losslessly (float WAV; FLAC: 16-bit values); returns the (C, n) samples."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = np.round(0.1 * np.random.default_rng(seed).standard_normal((n, channels)) * 32768) / 32768
    sf.write(path, data if channels > 1 else data[:, 0], sr, subtype="PCM_16" if path.suffix == ".flac" else "FLOAT")
    return data.T.astype(np.float32)


def _csv(path, rows, delimiter=","):
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]), delimiter=delimiter)
        w.writeheader()
        w.writerows(rows)


@pytest.fixture
def corpus(tmp_path):
    a = _wav(tmp_path / "audio" / "a.wav", seed=1)
    b = _wav(tmp_path / "audio" / "b.wav", n=3000, sr=22050, channels=2, seed=2)
    c = _wav(tmp_path / "audio" / "c.flac", n=2000, seed=3)
    (tmp_path / "align").mkdir()
    (tmp_path / "align" / "a.tsv").write_text("start\tend\tword\n0.00\t0.10\thello\n0.12\t0.25\tthere\n")
    (tmp_path / "align" / "b.wdseg").write_text(" SFrm  EFrm    SegAScr Word\n 0 4 -1 <s>\n 5 14 -1 HI(2)\n"
                                              " Total score: -2\n")
    return tmp_path, {"a": a, "b": b, "c": c}


def test_csv_manifest_items(corpus):
    root, data = corpus
    rows = [
        {"path": "audio/a.wav", "label": "sad", "valence": "2.0", "activation": "1.5", "dominance": "2.5",
         "speaker": "s1", "session": "A", "text": "hello there", "alignment": "align/a.tsv"},
        {"path": "audio/b.wav", "label": "ang", "valence": "1.5", "activation": "4.5", "dominance": "4.0",
         "speaker": "s2", "session": "B", "text": "hi", "alignment": "align/b.wdseg"},
        {"path": str(root / "audio" / "c.flac"), "label": "sad", "valence": "", "activation": "", "dominance": "",
         "speaker": "", "session": "", "text": "", "alignment": ""},
    ]
    _csv(root / "train.csv", rows)
    ds = ManifestDataset(root / "train.csv")
    assert len(ds) == 3 and ds.label_names == ["ang", "sad"] and ds.labels == [1, 0, 1]
    assert ds.speakers == ["s1", "s2", None] and ds.sessions == ["A", "B", None]
    a = ds[0]
    assert set(a) == {"wave", "sample_rate", "index", "label", "label_name", "dims", "speaker", "session", "text",
                      "words", "word_list"}
    assert a["index"] == 0 and a["sample_rate"] == SR and a["label"] == 1 and a["label_name"] == "sad"
    assert a["wave"].shape == (4000,) and torch.allclose(a["wave"], torch.from_numpy(data["a"][0]))
    assert a["dims"].dtype == torch.float32 and a["dims"].tolist() == [2.0, 1.5, 2.5]
    assert a["words"].dtype == torch.float64 and a["words"].tolist() == [[0.0, 0.1], [0.12, 0.25]]
    assert a["word_list"] == ["hello", "there"] and a["text"] == "hello there"
    b = ds[1]
    assert b["sample_rate"] == 22050 and b["wave"].shape == (3000,)  # stereo down-mixed
    assert torch.allclose(b["wave"], torch.from_numpy(data["b"].mean(axis=0)), atol=1e-6)
    assert b["word_list"] == ["HI"] and torch.allclose(b["words"], torch.tensor([[0.05, 0.15]], dtype=torch.float64))
    c = ds[2]
    assert set(c) == {"wave", "sample_rate", "index", "label", "label_name"} and c["index"] == 2
    stereo = ManifestDataset(root / "train.csv", mono=False, label_names=["sad", "ang", "neu"])
    assert stereo[1]["wave"].shape == (2, 3000) and stereo[0]["wave"].shape == (1, 4000)
    assert stereo.labels == [0, 1, 0]


def test_jsonl_manifest_numeric_labels_and_root(corpus, tmp_path):
    root, _ = corpus
    lines = [{"path": "audio/a.wav", "label": 10}, {"path": "audio/c.flac", "label": 2},
             {"path": "audio/b.wav", "label": "2", "speaker": 7}]
    other = tmp_path / "lists"
    other.mkdir()
    (other / "m.jsonl").write_text("\n".join(json.dumps(x) for x in lines) + "\n\n")
    ds = ManifestDataset(other / "m.jsonl", root=root)
    assert ds.label_names == ["2", "10"] and ds.labels == [1, 0, 0]  # numeric order, not "10" < "2"
    assert ds[2]["speaker"] == "7" and "dims" not in ds[0]
    unlabeled = other / "u.jsonl"
    unlabeled.write_text(json.dumps({"path": "audio/a.wav"}) + "\n")
    u = ManifestDataset(unlabeled, root=root)
    assert "label" not in u[0] and u.label_names == []
    with pytest.raises(ValueError, match="no labels"):
        u.labels


def test_manifest_errors(corpus):
    root, _ = corpus

    def make(rows, name="m.csv"):
        _csv(root / name, rows)
        return root / name

    with pytest.raises(ValueError, match="no 'path' column"):
        ManifestDataset(make([{"file": "audio/a.wav", "label": "x"}]))
    with pytest.raises(ValueError, match="row 3: empty path"):
        ManifestDataset(make([{"path": "audio/a.wav"}, {"path": ""}]))
    with pytest.raises(ValueError, match="item 1 has no label but others do"):
        ManifestDataset(make([{"path": "audio/a.wav", "label": "x"}, {"path": "audio/c.flac", "label": ""}]))
    with pytest.raises(ValueError, match=r"labels \['hap'\] not in label_names \['ang', 'sad'\]"):
        ManifestDataset(make([{"path": "audio/a.wav", "label": "hap"}]), label_names=["ang", "sad"])
    with pytest.raises(ValueError, match="dimensions need all of"):
        ManifestDataset(make([{"path": "audio/a.wav", "valence": "2", "activation": "3"}]))
    with pytest.raises(ValueError, match="non-numeric dimension"):
        ManifestDataset(make([{"path": "audio/a.wav", "valence": "high", "activation": "3", "dominance": "3"}]))
    with pytest.raises(ValueError, match="unknown format"):
        ManifestDataset(make([{"path": "audio/a.wav"}], name="m.txt"))
    with pytest.raises(FileNotFoundError, match="manifest not found"):
        ManifestDataset(root / "nope.csv")
    (root / "empty.csv").write_text("path,label\n")
    with pytest.raises(ValueError, match="no rows"):
        ManifestDataset(root / "empty.csv")
    sf.write(root / "audio" / "nan.wav", np.array([0.0, np.inf, 0.0]), SR, subtype="FLOAT")
    ds = ManifestDataset(make([{"path": "audio/missing.wav"}, {"path": "audio/nan.wav"}]))
    with pytest.raises(FileNotFoundError, match="missing.wav"):
        ds[0]
    with pytest.raises(ValueError, match="nan.wav contains NaN/Inf"):
        ds[1]
    with pytest.raises(IndexError):
        ds[2]


def test_read_alignment_formats(tmp_path):
    p = tmp_path / "w.csv"
    p.write_text('start_s,end_s,word\n0.5,0.9,"new, york"\n# comment\n\n1.0,1.25,city\n')
    words, names = read_alignment(p)
    assert names == ["new, york", "city"] and words.tolist() == [[0.5, 0.9], [1.0, 1.25]]
    p = tmp_path / "w.txt"
    p.write_text("0.0 0.4 good morning\n0.4 0.8 all\n")
    assert read_alignment(p)[1] == ["good morning", "all"]
    p.write_text("0.0 0.4 good\n0.5 0.45 bad\n")
    with pytest.raises(ValueError, match=r"w.txt:2: need 0 <= start < end"):
        read_alignment(p)
    p.write_text("0.0 0.4 good\nzero one two\n")
    with pytest.raises(ValueError, match=r"w.txt:2: expected 'start_s end_s word'"):
        read_alignment(p)
    p.write_text("0.0 0.4\n")
    with pytest.raises(ValueError, match="missing word"):
        read_alignment(p)
    p.write_text("")
    words, names = read_alignment(p)
    assert words.shape == (0, 2) and words.dtype == torch.float64 and names == []
    with pytest.raises(FileNotFoundError):
        read_alignment(tmp_path / "none.tsv")


def test_synthetic_dataset_matches_corpus_and_is_per_index():
    ds = SyntheticSERDataset(8, min_s=0.5, max_s=1.0, seed=3)
    ref = synthetic_speech(8, min_s=0.5, max_s=1.0, seed=3)
    assert len(ds) == 8 and ds.label_names == list(EMOTIONS) and ds.labels == [0, 1, 2, 3] * 2
    for i in (5, 0, 7):  # any order, each generated on its own
        item = ds[i]
        assert torch.equal(item["wave"], ref[i].wave) and item["index"] == i and item["label"] == ref[i].label
        assert item["label_name"] == ref[i].emotion and item["speaker"] == f"spk{ref[i].speaker}"
        assert item["session"] == f"session{ref[i].speaker // 2 + 1}" and item["sample_rate"] == SR
    assert ds.speakers == [f"spk{x.speaker}" for x in ref]
    again = SyntheticSERDataset(8, min_s=0.5, max_s=1.0, seed=3)[5]
    assert torch.equal(again["wave"], ds[5]["wave"]) and torch.equal(again["words"], ds[5]["words"])
    assert not torch.equal(SyntheticSERDataset(8, min_s=0.5, max_s=1.0, seed=4)[5]["wave"], ds[5]["wave"])


def test_synthetic_dims_follow_emotion():
    ds = SyntheticSERDataset(16, min_s=0.3, max_s=0.4)
    expect = {"neutral": (1, 1), "happy": (2, 2), "sad": (0, 0), "angry": (0, 2)}  # (valence, activation) bins
    for i in range(len(ds)):
        item = ds[i]
        assert item["dims"].dtype == torch.float32 and item["dims"].shape == (3,)
        assert tuple(bin_dimension(item["dims"][:2]).tolist()) == expect[item["label_name"]]


def test_synthetic_words_lie_on_syllable_boundaries():
    ds = SyntheticSERDataset(8, min_s=1.5, max_s=2.5)
    for i in range(len(ds)):
        item = ds[i]
        w, wave = item["words"], item["wave"].double()
        dur = wave.numel() / SR
        assert w.dtype == torch.float64 and w.shape == (len(item["word_list"]), 2) and w.shape[0] >= 2
        assert item["text"].lower().rstrip(".").split() == item["word_list"]
        assert bool((w[:, 1] > w[:, 0]).all()) and bool((w[1:, 0] >= w[:-1, 1] - 1e-12).all())
        assert float(w[0, 0]) >= 0 and float(w[-1, 1]) <= dur + 1e-9
        # the syllable gate is zero at syllable (so word) boundaries: quiet there, loud inside words
        env = torch.nn.functional.avg_pool1d(wave.abs()[None, None], 81, 1, 40)[0, 0]
        inner = [b for b in (w[1:, 0] * SR).round().long().tolist() if 200 < b < wave.numel() - 200]
        inside = [float(env[int(a * SR): int(b * SR)].mean()) for a, b in w.tolist()]
        assert inner and float(env[inner].max()) < 0.1 * min(inside)


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 10_000), st.integers(0, 2**31), st.floats(0.01, 3.0), st.sampled_from([8000, 16000, 44100]))
def test_synthetic_annotation_invariants(index, seed, seconds, sr):
    ann = synthetic_annotation(index, seed=seed, sample_rate=sr, min_s=seconds, max_s=seconds)
    w, dur = ann["words"], int(seconds * sr) / sr
    assert w.dtype == torch.float64 and w.shape == (len(ann["word_list"]), 2)
    assert bool((w[:, 0] >= 0).all()) and bool((w[:, 1] <= dur + 1e-12).all()) and bool((w[:, 1] > w[:, 0]).all())
    assert bool((w[1:, 0] >= w[:-1, 1] - 1e-12).all())
    assert ann["text"].lower().rstrip(".").split() == ann["word_list"]
    assert bool(((ann["dims"] >= 1) & (ann["dims"] <= 5)).all())


def test_synthetic_dataset_in_dataloader_workers():
    ds = SyntheticSERDataset(6, min_s=0.2, max_s=0.3)

    def run(workers):
        dl = DataLoader(ds, batch_size=4, num_workers=workers, collate_fn=list)
        return [it for batch in dl for it in batch]

    a, b = run(0), run(2)
    assert [x["index"] for x in a] == [x["index"] for x in b] == list(range(6))
    assert all(torch.equal(x["wave"], y["wave"]) and x["word_list"] == y["word_list"] for x, y in zip(a, b))
    with pytest.raises(ValueError, match="min_s"):
        SyntheticSERDataset(4, min_s=0.0)


@pytest.mark.real_data
def test_real_emodb_manifest(shared_data, tmp_path):
    rows = []
    with open(shared_data / "MANIFEST.tsv", newline="") as f:
        for r in csv.DictReader(f, delimiter="\t"):
            if r["local_file"].startswith("emotion/"):
                rows.append({"path": r["local_file"], "label": r["label"].split(";")[0].split("(")[0],
                             "speaker": r["label"].split("speaker ")[1].split(" ")[0]})
    _csv(tmp_path / "emodb.tsv", rows, delimiter="\t")
    ds = ManifestDataset(tmp_path / "emodb.tsv", root=shared_data)
    assert ds.label_names == ["anger", "boredom", "disgust", "fear", "happiness", "neutral", "sadness"]
    assert len(ds) == len(rows) >= 7 and len(set(ds.speakers)) >= 2
    for i in (0, len(ds) - 1):
        item = ds[i]
        assert item["sample_rate"] == 22050 and item["wave"].dim() == 1 and item["wave"].numel() > 22050
        assert float(item["wave"].abs().max()) > 0.01 and ds.label_names[item["label"]] == item["label_name"]
