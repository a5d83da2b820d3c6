"""IEMOCAP reader on a small synthetic tree in the real release layout."""
from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from gpuaug.data.iemocap import IEMOCAPDataset, bin_dimension, read_emo_evaluation, read_wdseg

SR = 16000

# dialog -> [(utterance, label, [V, A, D])]
DIALOGS = {
    1: {
        "Ses01F_impro01": [("Ses01F_impro01_F000", "neu", [2.5, 2.5, 2.5]),
                           ("Ses01F_impro01_M000", "exc", [3.25, 3.2501, 2.75]),
                           ("Ses01F_impro01_F001", "xxx", [2.0, 3.0, 3.0]),
                           ("Ses01F_impro01_M001", "ang", [1.5, 4.0, 4.5])],
        "Ses01M_script01_1": [("Ses01M_script01_1_F000", "hap", [4.0, 3.5, 3.0]),
                              ("Ses01M_script01_1_M000", "fru", [2.0, 3.5, 3.5]),
                              ("Ses01M_script01_1_M001", "sad", [1.0, 1.5, 2.0])],
    },
    2: {
        "Ses02F_impro02": [("Ses02F_impro02_F000", "sad", [2.0, 2.0, 1.5]),
                           ("Ses02F_impro02_M000", "exc", [4.5, 4.0, 3.5]),
                           ("Ses02F_impro02_M001", "neu", [3.0, 2.5, 3.0])],
    },
}
TEXTS = {"Ses01F_impro01_F000": "Excuse me.", "Ses01F_impro01_M000": "Do you have your forms?",
         "Ses02F_impro02_F000": "I'm going to miss you."}
WDSEG = """ SFrm  EFrm    SegAScr Word
    0    25    -123456 <s>
   26    60    -234567 EXCUSE
   61    62     -12345 <sil>
   63    90    -345678 ME(2)
   91   120    -100000 </s>
 Total score:    -815046
"""


def _wave(utt: str) -> np.ndarray:
    rng = np.random.default_rng(sum(map(ord, utt)))
    return (0.1 * rng.standard_normal(SR // 4 + len(utt))).astype(np.float32)


@pytest.fixture
def tree(tmp_path):
    root = tmp_path / "IEMOCAP_full_release"
    for s, dialogs in DIALOGS.items():
        base = root / f"Session{s}"
        ev_dir, tr_dir = base / "dialog" / "EmoEvaluation", base / "dialog" / "transcriptions"
        (ev_dir / "Categorical").mkdir(parents=True)
        tr_dir.mkdir(parents=True)
        for dialog, rows in dialogs.items():
            lines = ["% [START_TIME - END_TIME] TURN_NAME EMOTION [V, A, D]", ""]
            tr_lines = []
            for k, (utt, label, (v, a, d)) in enumerate(rows):
                start, end = 6.2901 + 3 * k, 8.2357 + 3 * k
                lines += [f"[{start:.4f} - {end:.4f}]\t{utt}\t{label}\t[{v:.4f}, {a:.4f}, {d:.4f}]",
                          "C-E2:\tNeutral;\t()", "A-E3:\tval 3; act 2; dom  2;\t()", ""]
                if utt in TEXTS:
                    tr_lines.append(f"{utt} [{start:08.4f}-{end:08.4f}]: {TEXTS[utt]}")
                wav = base / "sentences" / "wav" / dialog / f"{utt}.wav"
                wav.parent.mkdir(parents=True, exist_ok=True)
                sf.write(wav, _wave(utt), SR, subtype="FLOAT")
            tr_lines.append(f"{dialog}_MXX0 [010.0000-011.0000]: Hmm.")  # an unrated turn
            (ev_dir / f"{dialog}.txt").write_text("\n".join(lines) + "\n")
            (tr_dir / f"{dialog}.txt").write_text("\n".join(tr_lines) + "\n")
        (ev_dir / "Categorical" / "ignored.txt").write_text("[1.0 - 2.0]\tSes0XF_bad_F000\tneu\t[1, 1, 1]\n")
    wd = root / "Session1" / "sentences" / "ForcedAlignment" / "Ses01F_impro01"
    wd.mkdir(parents=True)
    (wd / "Ses01F_impro01_F000.wdseg").write_text(WDSEG)
    return root


def test_parses_labels_merges_excited_and_skips_others(tree):
    ds = IEMOCAPDataset(tree, sessions=(1, 2))
    assert ds.label_names == ["neu", "hap", "sad", "ang"]
    got = dict(zip(ds.utterances, [ds.label_names[i] for i in ds.labels]))
    assert got == {"Ses01F_impro01_F000": "neu", "Ses01F_impro01_M000": "hap", "Ses01F_impro01_M001": "ang",
                   "Ses01M_script01_1_F000": "hap", "Ses01M_script01_1_M001": "sad",
                   "Ses02F_impro02_F000": "sad", "Ses02F_impro02_M000": "hap", "Ses02F_impro02_M001": "neu"}
    assert ds.speakers[:3] == ["Ses01F", "Ses01M", "Ses01M"] and set(ds.sessions) == {"Ses01", "Ses02"}
    i = ds.utterances.index("Ses01F_impro01_M000")
    assert torch.allclose(ds.dims[i], torch.tensor([3.25, 3.2501, 2.75]))


def test_item_contents(tree):
    ds = IEMOCAPDataset(tree, sessions=(1, 2))
    i = ds.utterances.index("Ses01F_impro01_F000")
    item = ds[i]
    assert item["index"] == i and item["sample_rate"] == SR and item["label"] == 0 and item["label_name"] == "neu"
    assert item["wave"].dtype == torch.float32
    assert torch.equal(item["wave"], torch.from_numpy(_wave("Ses01F_impro01_F000")))
    assert item["speaker"] == "Ses01F" and item["session"] == "Ses01" and item["text"] == "Excuse me."
    assert item["dims"].dtype == torch.float32 and item["dims"].tolist() == [2.5, 2.5, 2.5]
    assert item["word_list"] == ["EXCUSE", "ME"]
    assert item["words"].dtype == torch.float64
    assert torch.allclose(item["words"], torch.tensor([[0.26, 0.61], [0.63, 0.91]], dtype=torch.float64))
    other = ds[ds.utterances.index("Ses02F_impro02_M001")]
    assert "words" not in other and "text" not in other and other["speaker"] == "Ses02M"
    assert ds[-1]["index"] == len(ds) - 1
    with pytest.raises(IndexError):
        ds[len(ds)]


def test_options(tree):
    assert len(IEMOCAPDataset(tree, sessions=(1,))) == 5
    impro = IEMOCAPDataset(tree, sessions=(1, 2), improvised_only=True)
    assert all("_impro" in u for u in impro.utterances) and len(impro) == 6
    no_merge = IEMOCAPDataset(tree, sessions=(1, 2), merge_excited=False)
    assert "Ses02F_impro02_M000" not in no_merge.utterances and len(no_merge) == 6
    five = IEMOCAPDataset(tree, sessions=(1, 2), classes=("neu", "hap", "exc", "fru"), merge_excited=False)
    assert [five.label_names[i] for i in five.labels].count("exc") == 2
    assert [five.label_names[i] for i in five.labels].count("fru") == 1
    with pytest.raises(ValueError, match="merge_excited"):
        IEMOCAPDataset(tree, sessions=(1, 2), classes=("neu", "exc"))
    with pytest.raises(ValueError, match="distinct IEMOCAP labels"):
        IEMOCAPDataset(tree, sessions=(1, 2), classes=("neutral", "happy"))


def test_errors(tree, tmp_path):
    with pytest.raises(ValueError, match=r"has no \['Session3'\].*found \['Session1', 'Session2'\]"):
        IEMOCAPDataset(tree, sessions=(1, 3))
    with pytest.raises(ValueError, match="not an IEMOCAP tree.*IEMOCAP_full_release"):
        IEMOCAPDataset(tmp_path, sessions=(1,))
    (tree / "Session2" / "sentences" / "wav" / "Ses02F_impro02" / "Ses02F_impro02_F000.wav").unlink()
    with pytest.raises(FileNotFoundError, match="no wav file.*Ses02F_impro02_F000.wav"):
        IEMOCAPDataset(tree, sessions=(1, 2))
    assert len(IEMOCAPDataset(tree, sessions=(1,))) == 5
    with pytest.raises(ValueError, match="no IEMOCAP utterance"):
        IEMOCAPDataset(tree, sessions=(2,), classes=("fea",))


def test_bin_dimension_boundaries():
    assert [bin_dimension(v) for v in (1.0, 2.5, 2.75, 2.7501, 3.0, 3.25, 3.2501, 5.0)] == [0, 0, 0, 1, 1, 1, 2, 2]
    out = bin_dimension(torch.tensor([[2.75, 3.25], [3.2501, 1.0]], dtype=torch.float32))
    assert out.dtype == torch.int64 and out.tolist() == [[0, 1], [2, 0]]
    assert bin_dimension([4.5, 2.0]).tolist() == [2, 0]
    for bad in (0.5, 5.5, float("nan")):
        with pytest.raises(ValueError, match=r"\[1, 5\]"):
            bin_dimension(bad)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(1.0, 5.0), min_size=1, max_size=8))
def test_bin_dimension_matches_definition(values):
    expect = [0 if v <= 2.75 else 1 if v <= 3.25 else 2 for v in values]
    assert bin_dimension(values).tolist() == expect
    assert [bin_dimension(v) for v in values] == expect


def test_parsers(tree, tmp_path):
    rows = read_emo_evaluation(tree / "Session1" / "dialog" / "EmoEvaluation" / "Ses01F_impro01.txt")
    assert [r["label"] for r in rows] == ["neu", "exc", "xxx", "ang"]
    assert rows[0]["start_s"] == 6.2901 and rows[0]["end_s"] == 8.2357 and rows[1]["dims"] == (3.25, 3.2501, 2.75)
    bad = tmp_path / "bad.wdseg"
    bad.write_text(" SFrm  EFrm    SegAScr Word\n   10   5   -1 HI\n")
    with pytest.raises(ValueError, match="bad.wdseg:2: end frame 5 before start frame 10"):
        read_wdseg(bad)
    bad.write_text(" SFrm  EFrm    SegAScr Word\n   10   x   -1 HI\n")
    with pytest.raises(ValueError, match="bad.wdseg:2: frame indices"):
        read_wdseg(bad)
    noisy = tmp_path / "n.wdseg"
    noisy.write_text(" SFrm  EFrm    SegAScr Word\n 0 9 -1 <s>\n 10 19 -1 ++BREATHING++\n 20 29 -1 YEAH(3)\n")
    words, names = read_wdseg(noisy)
    assert names == ["YEAH"] and words.tolist() == [[0.2, 0.3]]
