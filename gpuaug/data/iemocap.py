"""IEMOCAP in its release layout: categorical and dimensional labels, transcripts, word alignments.

Expected tree (the ``IEMOCAP_full_release`` folder)::

    Session{n}/sentences/wav/{dialog}/{utt}.wav
    Session{n}/dialog/EmoEvaluation/{dialog}.txt
    Session{n}/dialog/transcriptions/{dialog}.txt            (optional)
    Session{n}/sentences/ForcedAlignment/{dialog}/{utt}.wdseg (optional)

An EmoEvaluation line reads ``[6.2901 - 8.2357]<TAB>Ses01F_impro01_F000<TAB>neu<TAB>[2.5000,
2.5000, 2.5000]`` (start - end in seconds, utterance, label, ``[valence, activation,
dominance]`` on a 1..5 scale); a transcription line ``Ses01F_impro01_F000 [006.2901-008.2357]:
Excuse me.``; a ``.wdseg`` file is a Sphinx word segmentation (``SFrm EFrm SegAScr Word`` with
10 ms frames, end frame inclusive).
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Sequence

import torch
from torch import Tensor

from .records import RecordDataset

__all__ = ["IEMOCAP_LABELS", "DIM_BIN_EDGES", "DIM_BIN_NAMES", "bin_dimension", "read_emo_evaluation",
           "read_transcriptions", "read_wdseg", "IEMOCAPDataset"]

#: Categorical labels used in the EmoEvaluation files (``xxx``: no majority agreement).
IEMOCAP_LABELS = ("neu", "hap", "exc", "sad", "ang", "fru", "fea", "sur", "dis", "oth", "xxx")
#: Upper edges (inclusive) of the ``low`` and ``mid`` bins of a 1..5 dimensional rating.
DIM_BIN_EDGES = (2.75, 3.25)
DIM_BIN_NAMES = ("low", "mid", "high")
#: Frame rate of the ``.wdseg`` forced alignments (frames per second).
WDSEG_FRAME_RATE = 100

_EVAL_LINE = re.compile(r"^\[\s*([\d.]+)\s*-\s*([\d.]+)\s*\]\s+(\S+)\s+(\S+)\s+"
                        r"\[\s*([\d.]+)\s*,\s*([\d.]+)\s*,\s*([\d.]+)\s*\]")
_TRANSCRIPT_LINE = re.compile(r"^(\S+)\s+\[[\d.]+\s*-\s*[\d.]+\]:\s?(.*)$")
_UTTERANCE = re.compile(r"^(Ses\d+)[FM]_.*_([FM])[0-9A-Z]*$")
_VARIANT = re.compile(r"\(\d+\)$")


def bin_dimension(values):
    """Bin 1..5 dimensional ratings: low ``[1, 2.75]`` -> 0, mid ``(2.75, 3.25]`` -> 1,
    high ``(3.25, 5]`` -> 2 (exactly these boundaries: 2.75 is low, 3.25 is mid).

    Args:
        values: a number, a sequence or a tensor of ratings.

    Returns:
        an ``int`` for a number, else an int64 tensor of the input's shape.

    Raises:
        ValueError: a value outside ``[1, 5]`` or NaN.
    """
    scalar = isinstance(values, (int, float))
    x = torch.as_tensor(values, dtype=torch.float64)
    bad = ~((x >= 1.0) & (x <= 5.0))
    if bool(bad.any()):
        raise ValueError(f"dimensional ratings must lie in [1, 5]; got {x[bad].tolist()[:5]}")
    out = torch.bucketize(x, torch.tensor(DIM_BIN_EDGES, dtype=torch.float64), right=False)
    return int(out) if scalar else out


def read_emo_evaluation(path: str | Path) -> list[dict]:
    """Parse one ``EmoEvaluation/{dialog}.txt``.

    Returns one dict per rated utterance, in file order: ``utterance`` (str), ``start_s``,
    ``end_s`` (float, seconds in the dialog), ``label`` (str, as written, e.g. ``exc``),
    ``dims`` (tuple valence, activation, dominance). Evaluator lines are ignored.
    """
    out = []
    for line in Path(path).read_text(encoding="utf-8", errors="replace").splitlines():
        m = _EVAL_LINE.match(line)
        if m:
            out.append({"utterance": m.group(3), "start_s": float(m.group(1)), "end_s": float(m.group(2)),
                        "label": m.group(4), "dims": tuple(float(m.group(i)) for i in (5, 6, 7))})
    return out


def read_transcriptions(path: str | Path) -> dict[str, str]:
    """Parse one ``transcriptions/{dialog}.txt`` into ``{utterance: text}``."""
    out = {}
    for line in Path(path).read_text(encoding="utf-8", errors="replace").splitlines():
        m = _TRANSCRIPT_LINE.match(line.strip())
        if m:
            out[m.group(1)] = m.group(2).strip()
    return out


def read_wdseg(path: str | Path) -> tuple[Tensor, list[str]]:
    """Parse a Sphinx ``.wdseg`` word segmentation.

    Rows ``SFrm EFrm SegAScr Word`` with frames of 10 ms, ``EFrm`` inclusive. Silence and
    noise tokens (``<s>``, ``</s>``, ``<sil>``, ``++BREATH++`` ...) are skipped, and
    pronunciation variants are stripped (``HELLO(2)`` -> ``HELLO``).

    Returns:
        ``(words, word_list)``: float64 ``(K, 2)`` ``[start, end)`` times in seconds
        (``SFrm / 100``, ``(EFrm + 1) / 100``) and the ``K`` words.

    Raises:
        ValueError: a malformed row (the message names the file and line).
    """
    path = Path(path)
    words, names = [], []
    for n, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
        parts = line.split()
        if not parts or parts[0] == "SFrm" or line.strip().lower().startswith(("total score", "end of file")):
            continue
        if len(parts) != 4:
            raise ValueError(f"{path}:{n}: expected 'SFrm EFrm SegAScr Word', got {line.strip()!r}")
        try:
            s, e = int(parts[0]), int(parts[1])
        except ValueError:
            raise ValueError(f"{path}:{n}: frame indices must be integers, got {line.strip()!r}") from None
        if e < s or s < 0:
            raise ValueError(f"{path}:{n}: end frame {e} before start frame {s}")
        word = parts[3]
        if (word.startswith("<") and word.endswith(">")) or (word.startswith("++") and word.endswith("++")):
            continue
        words.append([s / WDSEG_FRAME_RATE, (e + 1) / WDSEG_FRAME_RATE])
        names.append(_VARIANT.sub("", word))
    return torch.tensor(words, dtype=torch.float64).reshape(-1, 2), names


class IEMOCAPDataset(RecordDataset):
    """Utterances of IEMOCAP sessions with categorical and dimensional labels.

    Args:
        root: the release folder holding ``Session1`` ... ``Session5``.
        sessions: session numbers to include.
        classes: categorical labels kept, in class-id order; utterances with any other
            label (``xxx``, ``fru``, ...) are skipped.
        merge_excited: relabel ``exc`` (excited) as ``hap`` (then ``exc`` may not be in
            ``classes``).
        improvised_only: keep only the improvised dialogs (``*_impro*``).

    Items follow the dataset item contract: ``wave`` float32 ``(T,)`` (mono), ``sample_rate``,
    ``index``, ``label`` (index in ``classes``), ``label_name``, ``dims`` float32 ``(3,)``
    (valence, activation, dominance, raw 1..5), ``speaker`` (session + speaker gender, e.g.
    ``Ses01F``), ``session`` (``Ses01``), and when present ``text`` and ``words`` (float64
    ``(K, 2)``, seconds) / ``word_list``.

    Attributes:
        label_names, labels (int per item), utterances, speakers, sessions: per-item lists;
        dims: float32 ``(N, 3)`` tensor of all ratings.
    """

    def __init__(self, root: str | Path, *, sessions: Sequence[int] = (1, 2, 3, 4, 5),
                 classes: Sequence[str] = ("neu", "hap", "sad", "ang"), merge_excited: bool = True,
                 improvised_only: bool = False):
        self.root = Path(root)
        self.label_names = list(classes)
        unknown = [c for c in self.label_names if c not in IEMOCAP_LABELS]
        if unknown or len(set(self.label_names)) != len(self.label_names) or not self.label_names:
            raise ValueError(f"classes must be distinct IEMOCAP labels {IEMOCAP_LABELS}; got {self.label_names}")
        if merge_excited and "exc" in self.label_names:
            raise ValueError("merge_excited=True relabels 'exc' as 'hap'; "
                             "drop 'exc' from classes or set merge_excited=False")
        self._check_root(sessions)
        self._records: list[dict] = []
        for s in sessions:
            self._read_session(int(s), merge_excited, improvised_only)
        if not self._records:
            raise ValueError(f"no IEMOCAP utterance with a label in {self.label_names} under {self.root} "
                             f"(sessions {list(sessions)}, improvised_only={improvised_only})")
        missing = [str(r["wav"]) for r in self._records if not r["wav"].is_file()]
        if missing:
            raise FileNotFoundError(f"{len(missing)} rated utterance(s) have no wav file, e.g. {missing[:3]}")

    def _check_root(self, sessions: Sequence[int]) -> None:
        found = sorted(p.name for p in self.root.glob("Session*") if (p / "dialog" / "EmoEvaluation").is_dir())
        if not found:
            nested = (self.root / "IEMOCAP_full_release").is_dir()
            hint = " (did you mean its IEMOCAP_full_release folder?)" if nested else ""
            raise ValueError(f"{self.root} is not an IEMOCAP tree{hint}: expected Session{{n}}/dialog/EmoEvaluation/"
                             "{dialog}.txt and Session{n}/sentences/wav/{dialog}/{utt}.wav")
        absent = [f"Session{int(s)}" for s in sessions if f"Session{int(s)}" not in found]
        if absent:
            raise ValueError(f"{self.root} has no {absent} with dialog/EmoEvaluation; found {found}")

    def _read_session(self, session: int, merge_excited: bool, improvised_only: bool) -> None:
        base = self.root / f"Session{session}"
        for ev in sorted((base / "dialog" / "EmoEvaluation").glob("*.txt")):
            dialog = ev.stem
            if dialog.startswith(".") or (improvised_only and "_impro" not in dialog):
                continue
            tr = base / "dialog" / "transcriptions" / f"{dialog}.txt"
            texts = read_transcriptions(tr) if tr.is_file() else {}
            for row in read_emo_evaluation(ev):
                name = "hap" if merge_excited and row["label"] == "exc" else row["label"]
                if name not in self.label_names:
                    continue
                utt = row["utterance"]
                m = _UTTERANCE.match(utt)
                if not m:
                    raise ValueError(f"{ev}: unexpected utterance name {utt!r} (expected e.g. Ses01F_impro01_F000)")
                self._records.append({
                    "utterance": utt, "label_name": name, "label": self.label_names.index(name),
                    "dims": row["dims"], "session": m.group(1), "speaker": m.group(1) + m.group(2),
                    "text": texts.get(utt), "wav": base / "sentences" / "wav" / dialog / f"{utt}.wav",
                    "wdseg": base / "sentences" / "ForcedAlignment" / dialog / f"{utt}.wdseg",
                })

    @property
    def sessions(self) -> list[str]:
        return self.column("session")

    @property
    def dims(self) -> Tensor:
        return torch.tensor([r["dims"] for r in self._records], dtype=torch.float32)

    def __getitem__(self, index: int) -> dict:
        index, r, wave, sr = self._read(index)
        item = {"wave": wave, "sample_rate": sr, "index": index, "label": r["label"],
                "label_name": r["label_name"], "dims": torch.tensor(r["dims"], dtype=torch.float32),
                "speaker": r["speaker"], "session": r["session"]}
        if r["text"] is not None:
            item["text"] = r["text"]
        if r["wdseg"].is_file():
            item["words"], item["word_list"] = read_wdseg(r["wdseg"])
        return item
