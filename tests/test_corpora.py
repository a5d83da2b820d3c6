"""open_corpus: the spec schemes, per-item metadata without audio, and folds over each corpus."""
from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
from test_emodb import make_emodb_tree

from gpuaug.data.datasets import ManifestDataset, SyntheticSERDataset
from gpuaug.data.emodb import EmoDBDataset
from gpuaug.data.iemocap import IEMOCAPDataset
from gpuaug.train import Corpus, make_folds, open_corpus


def _iemocap_tree(root):
    """Five sessions, one improvised dialog each, utterances of both speakers."""
    rows = [("F000", "neu", (2.5, 2.5, 2.5)), ("M000", "ang", (1.5, 4.0, 4.5)), ("F001", "sad", (1.0, 1.5, 2.0)),
            ("M001", "exc", (4.5, 3.5, 3.5)), ("F002", "xxx", (3.0, 3.0, 3.0))]
    for s in range(1, 6):
        dialog = f"Ses0{s}F_impro01"
        base = root / f"Session{s}"
        ev = base / "dialog" / "EmoEvaluation"
        ev.mkdir(parents=True)
        lines = []
        for k, (suffix, label, (v, a, d)) in enumerate(rows):
            utt = f"{dialog}_{suffix}"
            lines.append(f"[{1.0 + k:.4f} - {2.0 + k:.4f}]\t{utt}\t{label}\t[{v:.4f}, {a:.4f}, {d:.4f}]")
            wav = base / "sentences" / "wav" / dialog / f"{utt}.wav"
            wav.parent.mkdir(parents=True, exist_ok=True)
            sf.write(wav, np.zeros(800, dtype=np.float32), 16000)
        (ev / f"{dialog}.txt").write_text("\n".join(lines) + "\n")
    return root


def test_synthetic_corpus_matches_its_dataset():
    c = open_corpus("synthetic:40", seed=3)
    ds = SyntheticSERDataset(40, seed=3)
    assert isinstance(c, Corpus) and isinstance(c.dataset, SyntheticSERDataset) and len(c) == 40
    assert c.name == "synthetic" and c.spec == "synthetic:40" and c.sample_rate == 16000 and c.aux
    assert c.classes == tuple(ds.label_names) and c.labels == ds.labels
    assert c.speakers == ds.speakers and c.sessions == ds.sessions  # computed once, same names
    assert c.utterances[:2] == ["synthetic-00000", "synthetic-00001"] and len(set(c.utterances)) == 40
    it = c.dataset[5]
    assert (it["speaker"], it["session"]) == (c.speakers[5], c.sessions[5])
    assert len(c.bins) == 40 and all(a in (0, 1, 2) and v in (0, 1, 2) for a, v in c.bins)
    angry = [b for b, lab in zip(c.bins, c.labels) if c.classes[lab] == "angry"]
    assert set(angry) == {(2, 0)}  # activation about 4.1 (high), valence about 1.9 (low)
    default = open_corpus("synthetic")
    assert len(default) == 256 and len(set(default.speakers)) == 8 and len(set(default.sessions)) == 4


def test_synthetic_corpus_folds_are_speaker_independent():
    c = open_corpus("synthetic:96")
    for proto, n in (("speaker", len(set(c.speakers))), ("session", 4), ("speaker-kfold:3", 3)):
        folds = make_folds(c, proto)
        assert len(folds) == n and all(f.speaker_independent for f in folds)
        assert sorted(np.concatenate([f.test for f in folds]).tolist()) == list(range(96))


def test_emodb_corpus(tmp_path):
    root = make_emodb_tree(tmp_path / "emodb")
    c = open_corpus(f"emodb:{root}")
    assert isinstance(c.dataset, EmoDBDataset) and c.name == "emodb" and len(c) == 3
    assert c.sample_rate == 22050 and c.sessions is None and c.aux
    assert c.utterances == ["03a01Wa", "08b02Fb", "13a01Wb"] and c.speakers == ["03", "08", "13"]
    assert c.classes[c.labels[1]] == "happiness" and c.bins == [(2, 0), (2, 2), (2, 0)]
    folds = make_folds(c, "speaker")
    assert [f.test_speakers for f in folds] == [("03",), ("08",), ("13",)] and all(f.speaker_independent for f in folds)
    with pytest.raises(ValueError, match="has no sessions"):
        make_folds(c, "session")
    sub = open_corpus(f"emodb:{root}", utterances=["13a01Wb"])
    assert sub.utterances == ["13a01Wb"]


def test_iemocap_corpus(tmp_path):
    root = _iemocap_tree(tmp_path / "IEMOCAP_full_release")
    c = open_corpus(f"iemocap:{root}")
    assert isinstance(c.dataset, IEMOCAPDataset) and c.name == "iemocap" and c.sample_rate == 16000
    assert len(c) == 20 and c.classes == ("neu", "hap", "sad", "ang")  # exc merged into hap, xxx skipped
    assert c.sessions[:4] == ["Ses01"] * 4 and c.speakers[:2] == ["Ses01F", "Ses01M"]
    assert c.utterances[0] == "Ses01F_impro01_F000" and c.aux
    assert c.bins[:4] == [(0, 0), (2, 0), (0, 0), (2, 2)]  # (activation, valence) bins of the ratings
    folds = make_folds(c, "session")
    assert len(folds) == 5 and all(f.sizes() == (12, 4, 4) and f.speaker_independent for f in folds)
    c2 = open_corpus(f"iemocap:{root}", sessions=(1, 2, 3), classes=("neu", "ang"))
    assert len(c2) == 6 and c2.classes == ("neu", "ang")


def test_manifest_corpus(tmp_path):
    for sub in ("a", "b"):
        (tmp_path / sub).mkdir()
        for name in ("x", "y"):
            sf.write(tmp_path / sub / f"{name}.wav", np.zeros(480, dtype=np.float32), 24000)
    man = tmp_path / "m.csv"
    man.write_text("path,label,speaker,valence,activation,dominance\n"
                   "a/x.wav,happy,s1,4,4,3\na/y.wav,sad,s2,1.5,1.5,2\nb/x.wav,happy,s3,3,3,3\n")
    c = open_corpus(f"manifest:{man}")
    assert isinstance(c.dataset, ManifestDataset) and c.name == "manifest" and c.sample_rate == 24000
    assert c.utterances == ["a/x.wav", "a/y.wav", "b/x.wav"]  # stems collide: relative paths
    assert c.classes == ("happy", "sad") and c.labels == [0, 1, 0] and c.sessions is None
    assert c.aux and c.bins == [(2, 2), (0, 0), (1, 1)]
    man.write_text("path,speaker,valence,activation,dominance\na/x.wav,s1,40,40,30\na/y.wav,s2,10,10,10\n")
    c = open_corpus(f"manifest:{man}")
    assert c.utterances == ["x", "y"] and c.labels is None and not c.aux and c.bins is None  # 0..100 scale
    man.write_text("path,session\na/x.wav,1\na/y.wav,2\nb/y.wav,3\n")
    c = open_corpus(f"manifest:{man}")
    assert c.sessions == ["1", "2", "3"] and c.speakers == [None] * 3
    with pytest.raises(ValueError, match="no speaker"):
        make_folds(c, "speaker")
    assert not any(f.speaker_independent for f in make_folds(c, "session"))  # unknown speakers


def test_spec_errors(tmp_path):
    for spec, msg in (("mystery:/x", "unknown corpus spec 'mystery:/x'"), ("emodb", "unknown corpus spec 'emodb'"),
                      (f"emodb:{tmp_path / 'none'}", "does not exist"), ("iemocap:", "no path"),
                      ("synthetic:many", "synthetic:N"), ("synthetic:0", ">= 1"), ("", "non-empty"),
                      (f"manifest:{tmp_path}", "is a folder")):
        with pytest.raises(ValueError, match=msg) as e:
            open_corpus(spec)
        if spec:
            assert repr(spec) in str(e.value)
    with pytest.raises(FileNotFoundError, match="wav folder"):
        open_corpus(f"emodb:{tmp_path}")  # exists, but holds no wav/
