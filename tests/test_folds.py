"""Cross-validation folds: speaker / session protocols, fold files, and independence computed, not assumed."""
from __future__ import annotations

import collections
import json
import re
from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gpuaug.train.folds import (Fold, carve_validation, leave_one_session_out, leave_one_speaker_out, make_folds,
                                read_fold_file, speaker_kfold, speaker_overlap)

# speaker lists with >= 3 distinct speakers, in any order, unbalanced
speaker_lists = st.lists(st.sampled_from([f"s{i:02d}" for i in range(12)]), min_size=3, max_size=80).filter(
    lambda s: len(set(s)) >= 3)


def _check_partition(folds, speakers, *, independent=True):
    n = len(speakers)
    tests = np.concatenate([f.test for f in folds])
    assert sorted(tests.tolist()) == list(range(n))  # every item in exactly one test fold
    for f in folds:
        for part in (f.train, f.valid, f.test):
            assert part.dtype == np.int64 and np.all(np.diff(part) > 0)
        assert len(f.train) + len(f.valid) + len(f.test) == n  # the splits cover the corpus
        assert len(f.train) and len(f.valid) and len(f.test)
        spk = [{speakers[i] for i in part} for part in (f.train, f.valid, f.test)]
        brute = (spk[0] & spk[1]) | (spk[0] & spk[2]) | (spk[1] & spk[2])
        assert speaker_overlap(f, speakers) == brute
        assert f.speaker_independent == (not brute)
        if independent:
            assert not brute and f.speaker_independent
        assert f.test_speakers == tuple(sorted(spk[2]))


@settings(max_examples=40)
@given(speaker_lists)
def test_loso_property(speakers):
    folds = leave_one_speaker_out(speakers)
    distinct = sorted(set(speakers))
    assert [f.name for f in folds] == [f"speaker-{s}" for s in distinct]
    _check_partition(folds, speakers)
    for i, f in enumerate(folds):  # validation = the next speaker, cyclic
        assert f.test_speakers == (distinct[i],)
        assert {speakers[j] for j in f.valid} == {distinct[(i + 1) % len(distinct)]}


@settings(max_examples=40)
@given(speaker_lists, st.integers(3, 12), st.integers(0, 2**31 - 1))
def test_speaker_kfold_property(speakers, k, seed):
    n_spk = len(set(speakers))
    if k > n_spk:
        with pytest.raises(ValueError, match=f"k={k}"):
            speaker_kfold(speakers, k, seed)
        return
    folds = speaker_kfold(speakers, k, seed)
    assert len(folds) == k
    _check_partition(folds, speakers)
    sizes = [len(f.test_speakers) for f in folds]
    assert sum(sizes) == n_spk and max(sizes) - min(sizes) <= 1
    again = speaker_kfold(list(speakers), k, seed)
    assert all(np.array_equal(a.test, b.test) and np.array_equal(a.valid, b.valid) for a, b in zip(folds, again))


@settings(max_examples=40)
@given(st.lists(st.tuples(st.integers(1, 6), st.sampled_from("FM")), min_size=3, max_size=60).filter(
    lambda rows: len({s for s, _ in rows}) >= 3))
def test_session_folds_property(rows):
    # IEMOCAP structure: speakers live inside one session (Ses01F, Ses01M, ...)
    sessions = [f"Ses{s:02d}" for s, _ in rows]
    speakers = [f"Ses{s:02d}{g}" for s, g in rows]
    folds = leave_one_session_out(sessions, speakers=speakers)
    assert [f.name for f in folds] == [f"session-{s}" for s in sorted(set(sessions))]
    _check_partition(folds, speakers)
    # a speaker recorded in two sessions breaks independence, and the flag says so
    crossed = [g for _, g in rows]  # speakers "F" / "M" across all sessions
    folds = leave_one_session_out(sessions, speakers=crossed)
    _check_partition(folds, crossed, independent=False)
    # without speakers, independence cannot be checked
    assert all(not f.speaker_independent and f.test_speakers == () for f in leave_one_session_out(sessions))


def test_emodb_like_loso_sizes_and_iemocap_like_sessions():
    speakers = [f"{s:02d}" for s in (3, 8, 9, 10, 11, 12, 13, 14, 15, 16) for _ in range(5)]
    folds = leave_one_speaker_out(speakers)
    assert len(folds) == 10 and all(f.sizes() == (40, 5, 5) for f in folds)  # 8 / 1 / 1 speakers
    assert folds[-1].test_speakers == ("16",) and {speakers[i] for i in folds[-1].valid} == {"03"}
    sessions = [f"Ses0{s}" for s in range(1, 6) for _ in range(4)]
    folds = leave_one_session_out(sessions, speakers=[s + "F" for s in sessions])
    assert len(folds) == 5 and all(f.sizes() == (12, 4, 4) for f in folds)  # 3 / 1 / 1 sessions


def test_protocol_errors():
    with pytest.raises(ValueError, match=">= 3 speakers"):
        leave_one_speaker_out(["a", "b", "a"])
    with pytest.raises(ValueError, match="no speaker"):
        leave_one_speaker_out(["a", "b", None, "c"])
    with pytest.raises(ValueError, match="k >= 3"):
        speaker_kfold(["a", "b", "c"], 2)
    with pytest.raises(ValueError, match=">= 3 sessions"):
        leave_one_session_out(["x", "y"])


def test_fold_build_checks():
    f = Fold.build("f", [2, 0], [1], [3], ["a", "b", "c", None])
    assert f.train.tolist() == [0, 2] and not f.speaker_independent  # item 3 has no speaker: unknown
    assert f.test_speakers == ()
    f = Fold.build("f", [0, 1], [], [2], ["a", "a", "b"])
    assert f.speaker_independent and f.valid.dtype == np.int64 and f.valid.size == 0
    assert not Fold.build("f", [0], [1], [2]).speaker_independent  # no speakers given
    for args, msg in ((([0, 1], [1], [2]), "in both train and valid"), (([0], [], []), "empty test"),
                      (([0], [], [5]), "out of range"), (([-1], [], [1]), "negative"),
                      (([0.5], [], [1]), "integers"), (([0, 0], [], [1]), "duplicate")):
        with pytest.raises(ValueError, match=msg):
            Fold.build("f", *args, ["a", "b", "c"])


def test_carve_validation_is_stratified_and_deterministic():
    labels = [0] * 50 + [1] * 30 + [2] * 4 + [3] * 1
    train = list(range(len(labels)))
    tr, va = carve_validation(train, labels=labels, fraction=0.1, seed=3)
    counts = collections.Counter(labels[i] for i in va)
    assert counts == {0: 5, 1: 3}  # floor(0.1 * n + 0.5): 5, 3, 0, 0
    assert sorted(np.concatenate([tr, va]).tolist()) == train and not set(tr) & set(va)
    tr2, va2 = carve_validation(train, labels=labels, fraction=0.1, seed=3)
    assert np.array_equal(va, va2) and not np.array_equal(va, carve_validation(train, labels=labels, seed=4)[1])
    _, va = carve_validation([7, 9, 11], fraction=0.1)  # rounds to 0: one item is taken
    assert va.size == 1
    assert carve_validation([7, 9], fraction=0.0)[1].size == 0
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        carve_validation([1, 2], fraction=1.0)


# ---------------------------------------------------------------------------- fold files

UTTS = [f"u{i:02d}" for i in range(12)]
SPEAKERS = ["a"] * 4 + ["b"] * 4 + ["c"] * 4
LABELS = [i % 2 for i in range(12)]


def _csv(path, rows, header="utterance,fold,split"):
    path.write_text(header + "\n" + "\n".join(",".join(r) for r in rows) + "\n")
    return path


def test_csv_fold_file(tmp_path):
    rows = []
    for k, test_spk in enumerate("abc", 1):
        for u, s in zip(UTTS, SPEAKERS):
            split = "test" if s == test_spk else ("valid" if s == "abc"[k % 3] else "train")
            rows.append((u, str(k), split))
    folds = read_fold_file(_csv(tmp_path / "f.csv", rows), UTTS, speakers=SPEAKERS, labels=LABELS)
    assert [f.name for f in folds] == ["fold_1", "fold_2", "fold_3"]
    assert all(f.sizes() == (4, 4, 4) and f.speaker_independent for f in folds)
    assert folds[0].test.tolist() == [0, 1, 2, 3] and folds[0].test_speakers == ("a",)
    # a fold without valid rows gets one carved from its train rows (speaker dependent then)
    rows = [(u, "1", "test" if s == "a" else "train") for u, s in zip(UTTS, SPEAKERS)]
    (f,) = read_fold_file(_csv(tmp_path / "g.csv", rows), UTTS, speakers=SPEAKERS, labels=LABELS, valid_fraction=0.25)
    assert f.sizes() == (6, 2, 4) and not f.speaker_independent and speaker_overlap(f, SPEAKERS) <= {"b", "c"}
    assert sorted(LABELS[i] for i in f.valid) == [0, 1]  # stratified: one per class
    # tabs in a .tsv; a fold whose test speakers are also in train is flagged
    p = tmp_path / "h.tsv"
    p.write_text("utterance\tfold\tsplit\n" + "\n".join(f"{u}\tx\t{'test' if i % 2 else 'train'}"
                                                         for i, u in enumerate(UTTS)) + "\n")
    (f,) = read_fold_file(p, UTTS, speakers=SPEAKERS)
    assert f.name == "fold_x" and not f.speaker_independent and speaker_overlap(f, SPEAKERS) == {"a", "b", "c"}


def test_csv_fold_file_errors(tmp_path):
    with pytest.raises(ValueError, match=r"match no item.*\['zz1', 'zz2'\]") as e:
        read_fold_file(_csv(tmp_path / "a.csv", [("u00", "1", "train"), ("zz1", "1", "test"),
                                                  ("zz2", "1", "test")]), UTTS)
    assert str(tmp_path / "a.csv") in str(e.value) and "2 utterance(s)" in str(e.value)
    with pytest.raises(ValueError, match=re.escape(f"{tmp_path / 'b.csv'}:3: split must be")):
        read_fold_file(_csv(tmp_path / "b.csv", [("u00", "1", "train"), ("u01", "1", "dev")]), UTTS)
    with pytest.raises(ValueError, match="listed twice in fold '1'"):
        read_fold_file(_csv(tmp_path / "c.csv", [("u00", "1", "train"), ("u00", "1", "test")]), UTTS)
    with pytest.raises(ValueError, match="expected columns utterance,fold,split"):
        read_fold_file(_csv(tmp_path / "d.csv", [("u00", "1")], header="utterance,fold"), UTTS)
    with pytest.raises(ValueError, match="empty test"):
        read_fold_file(_csv(tmp_path / "e.csv", [("u00", "1", "train"), ("u01", "1", "train")]), UTTS)
    with pytest.raises(FileNotFoundError):
        read_fold_file(tmp_path / "nope.csv", UTTS)
    (tmp_path / "f.json").write_text("{}")
    with pytest.raises(ValueError, match="EmoBox fold folder or a .csv"):
        read_fold_file(tmp_path / "f.json", UTTS)
    with pytest.raises(ValueError, match="3 speakers for 12"):
        read_fold_file(tmp_path / "a.csv", UTTS, speakers=["a", "b", "c"])


def _emobox(root, folds: dict[int, tuple[list[int], list[int]]], corpus="toy", sub=False):
    for k, (train, test) in folds.items():
        d = root / f"fold_{k}" if sub else root
        d.mkdir(parents=True, exist_ok=True)
        for split, idx in (("train", train), ("test", test)):
            lines = [json.dumps({"key": f"{corpus}-{UTTS[i]}", "dataset": corpus, "wav": f"downloads/{UTTS[i]}.wav",
                                 "emo": "x"}) for i in idx]
            (d / f"{corpus}_{split}_fold_{k}.jsonl").write_text("\n".join(lines) + "\n")
    return root


def test_emobox_fold_folder(tmp_path):
    folds = {1: (list(range(4, 12)), list(range(4))), 2: (list(range(0, 4)) + list(range(8, 12)), list(range(4, 8)))}
    root = _emobox(tmp_path / "box", folds, sub=True)  # EmoBox's own fold_K/ sub-folders
    out = read_fold_file(root, UTTS, speakers=SPEAKERS, labels=LABELS)
    assert [f.name for f in out] == ["fold_1", "fold_2"]
    f = out[0]
    assert f.test.tolist() == [0, 1, 2, 3] and f.sizes() == (7, 1, 4)  # 10 % of 8 train, 1 per class rounds
    assert not f.speaker_independent  # the carved validation shares speakers with train
    assert speaker_overlap(f, SPEAKERS) <= {"b", "c"} and f.test_speakers == ("a",)
    again = read_fold_file(root, UTTS, speakers=SPEAKERS, labels=LABELS)
    assert all(np.array_equal(a.valid, b.valid) for a, b in zip(out, again))
    # keys matched without their prefix, or by their wav stem
    flat = _emobox(tmp_path / "flat", {1: folds[1]}, corpus="other")
    assert read_fold_file(flat, UTTS)[0].test.tolist() == [0, 1, 2, 3]
    wav = tmp_path / "wav"
    wav.mkdir()
    for split, idx in (("train", range(4, 12)), ("test", range(4))):
        (wav / f"x_{split}_fold_1.jsonl").write_text("".join(
            json.dumps({"key": f"id{i}", "wav": f"a/b/{UTTS[i]}.wav"}) + "\n" for i in idx))
    assert read_fold_file(wav, UTTS)[0].test.tolist() == [0, 1, 2, 3]  # via the wav stem


def test_emobox_fold_folder_errors(tmp_path):
    root = _emobox(tmp_path / "box", {1: (list(range(4, 12)), list(range(4)))})
    with pytest.raises(ValueError, match=r"match no item.*\['toy-u00'") as e:
        read_fold_file(root, UTTS[4:] + ["v00", "v01", "v02", "v03"])
    assert "toy_test_fold_1.jsonl" in str(e.value)
    (root / "toy_test_fold_1.jsonl").unlink()
    with pytest.raises(ValueError, match="fold 1 of 'toy' has no toy_test_fold_1.jsonl"):
        read_fold_file(root, UTTS)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no EmoBox fold files"):
        read_fold_file(tmp_path / "empty", UTTS)
    two = _emobox(tmp_path / "two", {1: (list(range(4, 12)), list(range(4)))})
    _emobox(two, {1: (list(range(4, 12)), list(range(4)))}, corpus="zzz")
    with pytest.raises(ValueError, match=r"several corpora \['toy', 'zzz'\]"):
        read_fold_file(two, UTTS)
    assert len(read_fold_file(two, UTTS, corpus="zzz")) == 1
    bad = _emobox(tmp_path / "bad", {1: (list(range(4, 12)), list(range(4)))})
    (bad / "toy_test_fold_1.jsonl").write_text('{"key": "toy-u00"}\nnot json\n')
    with pytest.raises(ValueError, match=re.escape("toy_test_fold_1.jsonl:2: invalid JSON")):
        read_fold_file(bad, UTTS)


# ---------------------------------------------------------------------------- dispatch


def _corpus(speakers, sessions=None, utterances=None, labels=None):
    return SimpleNamespace(spec="toy", speakers=speakers, sessions=sessions, labels=labels,
                           utterances=utterances or [f"u{i:02d}" for i in range(len(speakers))])


def test_make_folds_dispatch(tmp_path):
    c = _corpus(SPEAKERS, sessions=[s.upper() for s in SPEAKERS], labels=LABELS)
    assert [f.name for f in make_folds(c, "speaker")] == ["speaker-a", "speaker-b", "speaker-c"]
    assert len(make_folds(c, "speaker-kfold:3", seed=1)) == 3
    assert [f.name for f in make_folds(c, "session")] == ["session-A", "session-B", "session-C"]
    root = _emobox(tmp_path / "box", {1: (list(range(4, 12)), list(range(4)))})
    (f,) = make_folds(c, f"file:{root}", valid_fraction=0.25)
    assert f.sizes() == (6, 2, 4)
    with pytest.raises(ValueError, match="unknown fold protocol 'speakers'"):
        make_folds(c, "speakers")
    with pytest.raises(ValueError, match="K must be an integer"):
        make_folds(c, "speaker-kfold:x")
    with pytest.raises(ValueError, match="has no sessions"):
        make_folds(_corpus(SPEAKERS), "session")
    with pytest.raises(TypeError, match="seed"):
        make_folds(c, "speaker", seed=3)


# ---------------------------------------------------------------------------- EmoBox's EmoDB folds


@pytest.mark.real_data
def test_real_emobox_emodb_folds_are_speaker_dependent(shared_data):
    root = shared_data / "emodb"
    if not (root / "emobox_folds").is_dir():
        pytest.skip("EmoDB EmoBox folds not present")
    from gpuaug.data.emodb import parse_emodb_name

    utts = sorted(p.stem for p in (root / "wav").glob("*.wav"))
    speakers = [parse_emodb_name(u)["speaker"] for u in utts]
    labels = [parse_emodb_name(u)["emotion"] for u in utts]
    folds = read_fold_file(root / "emobox_folds", utts, speakers=speakers, labels=labels)
    assert [f.name for f in folds] == [f"fold_{k}" for k in range(1, 6)]
    assert sorted(np.concatenate([f.test for f in folds]).tolist()) == list(range(535))
    for f in folds:
        assert len(f.test) == 107 and len(f.train) + len(f.valid) == 428 and 40 <= len(f.valid) <= 46
        assert not f.speaker_independent and 9 <= len(f.test_speakers) <= 10
        assert set(f.test_speakers) <= speaker_overlap(f, speakers)  # every test speaker is also in train
        train_labels = collections.Counter(labels[i] for i in np.concatenate([f.train, f.valid]))
        valid_labels = collections.Counter(labels[i] for i in f.valid)
        assert all(abs(valid_labels[c] - 0.1 * n) <= 0.5 for c, n in train_labels.items())  # stratified
