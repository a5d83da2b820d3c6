"""EmoDB (Berlin Database of Emotional Speech) in the layout of its official distribution.

Expected tree (the folder holding ``wav/``)::

    wav/{SSTTTEV}.wav                 the utterances (file name: see :func:`parse_emodb_name`)
    silb/{stem}.silb                  syllable onsets: ``seconds<TAB or spaces>syllable`` per line (optional)
    labsilb/{stem}.labsilb            xlabel syllable labels with accent marks (optional)
    lablaut/{stem}xx.lablaut          xlabel phone labels (optional; ``{stem}.lablaut`` also accepted)
    erkennung.txt                     perception test results (optional, see :func:`read_erkennung`)

Alignment conventions, measured on the distribution's files (not assumed from xlabel's usual
end-time convention):

* An xlabel body line ``    0.080080   -1 der<TAB>0.4`` is ``time colour label[<TAB>extras]``,
  and in EmoDB the time is the **onset** of the labelled segment: the syllable onsets of
  ``silb/`` equal the ``labsilb/`` times, each ``labsilb/`` syllable starts at the time of its
  first phone in ``lablaut/`` (e.g. ``dem`` and ``d`` at 0.981748 s), the audio before the
  first mark is silent (391 of 391 files with a first mark after 60 ms: median RMS 0.003
  before vs 0.14 after) and the final mark, ``.``, starts the trailing silence (102 of 102
  files that end before 1.8 s).
* ``.`` (end of speech) and labels starting with ``(`` (``(`` a pause, ``(gef`` a filled
  pause) are boundary marks: they end the segment before them and start none. A mark with an
  empty label (``    0.768183   -1 <TAB>+hoe``) or one whose label is a feature starting with
  ``+`` / ``-`` (``    0.420009   -1 +lar``: voice-quality marks such as ``+lar`` / ``-lar``
  laryngealisation on / off, ``+sth`` / ``-sth`` voicing) is a point annotation inside the
  current phone, not a boundary. Each other mark starts a segment that ends at
  the next boundary or segment mark; a last segment with no mark after it has no known end
  and is dropped (every file of the distribution ends with ``.``).
* Times refer to the original recordings. The shared copy's wavs are cut to 2 s, so
  :class:`EmoDBDataset` drops intervals that start past the audio and clips the others.

Text files mix Latin-1 and UTF-8 (``könnte`` in Latin-1 in some ``labsilb/`` files) and use
non-breaking spaces: every line is decoded as UTF-8 and, failing that, as Latin-1.
"""
from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Iterable

import torch
from torch import Tensor

from .records import RecordDataset

__all__ = ["EMODB_EMOTIONS", "EMODB_LABELS", "EMODB_SPEAKERS", "EMODB_TEXTS", "EMODB_AROUSAL_VALENCE",
           "EMODB_BOUNDARY_LABELS", "parse_emodb_name", "read_erkennung", "read_silb", "read_xlabel_marks",
           "read_xlabel", "marks_to_intervals", "EmoDBDataset"]

#: Emotion code of the file name -> class name (German: W Ärger, L Langeweile, E Ekel, A Angst,
#: F Freude, T Trauer, N neutral).
EMODB_EMOTIONS = {"W": "anger", "L": "boredom", "E": "disgust", "A": "fear", "F": "happiness", "T": "sadness",
                  "N": "neutral"}
#: Class order (class id = position).
EMODB_LABELS = ("anger", "boredom", "disgust", "fear", "happiness", "sadness", "neutral")
#: Speaker code -> (sex ``m`` / ``f``, age in years at recording).
EMODB_SPEAKERS = {"03": ("m", 31), "08": ("f", 34), "09": ("f", 21), "10": ("m", 32), "11": ("m", 26),
                  "12": ("m", 30), "13": ("f", 32), "14": ("f", 35), "15": ("m", 25), "16": ("f", 31)}
#: Text code -> the German sentence (the corpus README transliterates the umlauts: koennte ...).
EMODB_TEXTS = {
    "a01": "Der Lappen liegt auf dem Eisschrank.",
    "a02": "Das will sie am Mittwoch abgeben.",
    "a04": "Heute abend könnte ich es ihm sagen.",
    "a05": "Das schwarze Stück Papier befindet sich da oben neben dem Holzstück.",
    "a07": "In sieben Stunden wird es soweit sein.",
    "b01": "Was sind denn das für Tüten, die da unter dem Tisch stehen?",
    "b02": "Sie haben es gerade hochgetragen und jetzt gehen sie wieder runter.",
    "b03": "An den Wochenenden bin ich jetzt immer nach Hause gefahren und habe Agnes besucht.",
    "b09": "Ich will das eben wegbringen und dann mit Karl was trinken gehen.",
    "b10": "Die wird auf dem Platz sein, wo wir sie immer hinlegen.",
}
#: Class -> (activation bin, valence bin), bins ``0`` low / ``1`` mid / ``2`` high (the bins of
#: :func:`gpuaug.data.iemocap.bin_dimension`). EmoDB has **no dimensional ratings**: this is a
#: common convention placing the acted categories in the circumplex, not an annotation.
#: (Schuller et al., "Acoustic emotion recognition: a benchmark comparison of performances",
#: ASRU 2009, cluster EmoDB's emotions into *binary* arousal / valence tasks; this three-level
#: table is not taken from that paper.)
EMODB_AROUSAL_VALENCE = {
    "anger": (2, 0),
    "boredom": (0, 0),
    "disgust": (1, 0),
    "fear": (2, 0),
    "happiness": (2, 2),
    "sadness": (0, 0),
    "neutral": (1, 1),
}
#: Labels that end a segment and start none: ``.`` end of speech, ``(`` pause (any label
#: starting with ``(`` is a pause, e.g. ``(gef``, a filled pause).
EMODB_BOUNDARY_LABELS = frozenset({".", "("})

_NAME = re.compile(r"^(\d{2})([ab]\d{2})([A-Z])([a-z])$")
_XLABEL_LINE = re.compile(r"^\s*([-+]?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?)\s+(-?\d+)(?:\s(.*))?$")


def parse_emodb_name(stem: str) -> dict:
    """Split an EmoDB file stem ``SSTTTEV`` (e.g. ``03a01Wa``; a ``.wav`` suffix or a folder is
    ignored).

    Returns:
        ``speaker`` (``"03"``), ``text_code`` (``"a01"``), ``emotion`` (the code, ``"W"``),
        ``emotion_name`` (``"anger"``), ``version`` (``"a"``).

    Raises:
        ValueError: not of the form ``SSTTTEV`` or an unknown emotion / speaker / text code
            (the message names the file).
    """
    name = Path(str(stem)).name
    if name.lower().endswith(".wav"):
        name = name[:-4]
    m = _NAME.match(name)
    if not m:
        raise ValueError(f"{stem!r} is not an EmoDB file name: expected SSTTTEV (speaker SS, text TTT, "
                         "emotion E, version V), e.g. 03a01Wa.wav")
    speaker, text, emotion, version = m.groups()
    if emotion not in EMODB_EMOTIONS:
        raise ValueError(f"{stem!r}: unknown EmoDB emotion code {emotion!r} (known: {''.join(EMODB_EMOTIONS)})")
    if speaker not in EMODB_SPEAKERS:
        raise ValueError(f"{stem!r}: unknown EmoDB speaker {speaker!r} (known: {sorted(EMODB_SPEAKERS)})")
    if text not in EMODB_TEXTS:
        raise ValueError(f"{stem!r}: unknown EmoDB text code {text!r} (known: {sorted(EMODB_TEXTS)})")
    return {"speaker": speaker, "text_code": text, "emotion": emotion, "emotion_name": EMODB_EMOTIONS[emotion],
            "version": version}


def _lines(path: Path) -> list[str]:
    """The lines of a file, each decoded as UTF-8 or, failing that, Latin-1 (a leading UTF-8
    byte-order mark and trailing CR are dropped)."""
    raw = path.read_bytes()
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    out = []
    for line in raw.split(b"\n"):
        line = line.rstrip(b"\r")
        try:
            out.append(line.decode("utf-8"))
        except UnicodeDecodeError:
            out.append(line.decode("latin-1"))
    return out


def _percent(cell: str, where: str) -> float:
    text = cell.replace("\xa0", " ").strip().rstrip("%").strip().replace(",", ".")
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{where}: expected a percentage like '65,00', got {cell!r}") from None
    if not (math.isfinite(value) and 0.0 <= value <= 100.0):
        raise ValueError(f"{where}: percentage {value} outside [0, 100]")
    return value


def read_erkennung(path: str | Path) -> dict[str, dict[str, float]]:
    """Parse ``erkennung.txt``, the perception test of the recorded utterances.

    Format (measured on the distribution's file): a header ``Nr.<TAB>Satz<TAB>erkannt<TAB>
    natuerlich`` and one row per utterance, ``815\\xa0\\xa0<TAB>16b10Wa.wav<TAB>100,00\\xa0...<TAB>
    75,00\\xa0...``: a running number, the file name, the % of the 20 listeners who recognised
    the intended emotion and the % who judged it natural, with decimal commas and Latin-1
    non-breaking spaces as padding. Columns are located by the header words (``satz`` /
    ``datei`` / ``file``, ``erkannt``, ``natuerlich`` / ``natürlich``); without a header the
    order above is assumed. Blank lines are skipped.

    Returns:
        ``{stem: {"recognition": float, "naturalness": float}}`` (percent, in ``[0, 100]``).

    Raises:
        FileNotFoundError: missing file. ValueError: a malformed row, a value outside
        ``[0, 100]`` or a file listed twice (the message names the file and line).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"EmoDB perception file not found: {path}")
    cols = {"name": 1, "recognition": 2, "naturalness": 3}
    out: dict[str, dict[str, float]] = {}
    header_seen = False
    for n, line in enumerate(_lines(path), 1):
        text = line.replace("\xa0", " ")
        if not text.strip():
            continue
        cells = [c.strip() for c in (text.split("\t") if "\t" in text else text.split())]
        low = [c.lower() for c in cells]
        if not header_seen and not out and any("erkannt" in c for c in low):
            header_seen = True
            for i, c in enumerate(low):
                if c.startswith(("satz", "datei", "file")):
                    cols["name"] = i
                elif "erkannt" in c:
                    cols["recognition"] = i
                elif c.startswith(("natuerlich", "natürlich", "naturlich")):
                    cols["naturalness"] = i
            continue
        where = f"{path}:{n}"
        if len(cells) <= max(cols.values()):
            raise ValueError(f"{where}: expected 'Nr. file recognition naturalness', got {line.strip()!r}")
        name = cells[cols["name"]]
        stem = name[:-4] if name.lower().endswith(".wav") else name
        if not _NAME.match(stem):
            raise ValueError(f"{where}: {name!r} is not an EmoDB file name (SSTTTEV.wav)")
        if stem in out:
            raise ValueError(f"{where}: {name} is listed twice")
        out[stem] = {"recognition": _percent(cells[cols["recognition"]], where),
                     "naturalness": _percent(cells[cols["naturalness"]], where)}
    return out


def read_silb(path: str | Path) -> tuple[Tensor, list[str]]:
    """Parse a ``silb/`` file: one ``onset_s<TAB or spaces>syllable`` row per syllable, the
    last row usually ``.`` (the end of speech); see the module notes for ``.`` and ``(``.

    A file without any row (``13a01Wb.silb`` of the distribution is empty) gives no onsets.

    Returns:
        ``(onsets, labels)``: float64 ``(K,)`` seconds on the original timeline, in file
        order, and the ``K`` labels (``""`` for a row with an onset only).

    Raises:
        FileNotFoundError: missing file. ValueError: a row whose first field is not a
        number of seconds >= 0, or onsets that decrease (the message names the file and line).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"EmoDB syllable file not found: {path}")
    times, labels = [], []
    for n, line in enumerate(_lines(path), 1):
        parts = line.replace("\xa0", " ").split(None, 1)
        if not parts:
            continue
        try:
            t = float(parts[0])
        except ValueError:
            raise ValueError(f"{path}:{n}: expected 'onset_s syllable', got {line.strip()!r}") from None
        if not math.isfinite(t) or t < 0:
            raise ValueError(f"{path}:{n}: onset must be a finite number of seconds >= 0, got {parts[0]!r}")
        if times and t < times[-1]:
            raise ValueError(f"{path}:{n}: onset {t} before the previous one ({times[-1]})")
        times.append(t)
        labels.append(parts[1].split()[0] if len(parts) > 1 and parts[1].split() else "")
    return torch.tensor(times, dtype=torch.float64), labels


def read_xlabel_marks(path: str | Path) -> list[tuple[float, int, str, str]]:
    """The raw marks of an xlabel file (``labsilb/``, ``lablaut/``).

    A header (``signal``, ``type``, ``comment``, ``font``, ``separator``, ``nfields`` ...)
    runs up to a line ``#``; each body line is ``time colour label`` where the label text may
    carry extras after a tab or spaces (accent marks ``0.4`` in ``labsilb/``, features
    ``+asp`` in ``lablaut/``). A label text starting with whitespace, or whose first token is a
    feature (starts with ``+``, ``-`` or ``[``, e.g. ``+lar``, ``[+eng``), has an empty label
    and the whole text as extras (a point annotation).

    Returns:
        ``[(time_s, colour, label, extras)]`` in file order (times as written; see the module
        notes for their meaning in EmoDB).

    Raises:
        FileNotFoundError: missing file. ValueError: no ``#`` line, or a malformed body line
        (the message names the file and line).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"xlabel file not found: {path}")
    lines = _lines(path)
    try:
        body = next(i for i, line in enumerate(lines) if line.strip() == "#") + 1
    except StopIteration:
        raise ValueError(f"{path}: not an xlabel file (no '#' line ending the header)") from None
    marks = []
    for n, line in enumerate(lines[body:], body + 1):
        if not line.replace("\xa0", " ").strip():
            continue
        m = _XLABEL_LINE.match(line)
        if not m:
            raise ValueError(f"{path}:{n}: expected 'time colour label', got {line.strip()!r}")
        t = float(m.group(1))
        if not math.isfinite(t) or t < 0:
            raise ValueError(f"{path}:{n}: time must be a finite number of seconds >= 0, got {m.group(1)!r}")
        text = (m.group(3) or "").replace("\xa0", " ")
        if not text or text[0].isspace() or text[0] in "+-[":
            label, extras = "", text.strip()
        else:
            parts = text.split(None, 1)
            label, extras = parts[0], (parts[1].strip() if len(parts) > 1 else "")
        marks.append((t, int(m.group(2)), label, extras))
    return marks


def _is_boundary(label: str) -> bool:
    return label in EMODB_BOUNDARY_LABELS or label.startswith("(")


def marks_to_intervals(times, labels: Iterable[str]) -> tuple[Tensor, list[str]]:
    """Segments from onset marks (the EmoDB convention, see the module notes).

    A mark labelled ``.`` or starting with ``(`` (:data:`EMODB_BOUNDARY_LABELS`, ``(gef``)
    ends the open segment; an empty label is ignored (a point annotation); any other label starts a segment, ending the
    open one. A segment still open after the last mark has no known end and is dropped.

    Args:
        times: onset times (seconds), non-decreasing.
        labels: one label per time.

    Returns:
        ``(intervals, labels)``: float64 ``(K, 2)`` ``[start, end)`` seconds and the ``K``
        segment labels. Zero-length segments (two marks at the same time) are dropped.
    """
    times = [float(t) for t in torch.as_tensor(times, dtype=torch.float64).reshape(-1).tolist()]
    labels = list(labels)
    if len(times) != len(labels):
        raise ValueError(f"{len(times)} times for {len(labels)} labels")
    rows, names, open_ = [], [], None
    for t, lab in zip(times, labels):
        if lab == "":
            continue
        if open_ is not None and t > open_[0]:
            rows.append([open_[0], t])
            names.append(open_[1])
        open_ = None if _is_boundary(lab) else (t, lab)
    return torch.tensor(rows, dtype=torch.float64).reshape(-1, 2), names


def read_xlabel(path: str | Path) -> tuple[Tensor, list[str]]:
    """Segments of an EmoDB xlabel file: :func:`read_xlabel_marks` turned into intervals by
    :func:`marks_to_intervals` (times are onsets; ``.`` / ``(`` end a segment).

    Returns:
        ``(intervals, labels)``: float64 ``(K, 2)`` ``[start, end)`` seconds (original
        timeline) and the ``K`` labels (syllables / SAMPA phones, extras stripped).
    """
    marks = read_xlabel_marks(path)
    return marks_to_intervals([m[0] for m in marks], [m[2] for m in marks])


class EmoDBDataset(RecordDataset):
    """EmoDB utterances with their speaker, text, perception scores and alignments.

    Args:
        root: the folder holding ``wav/`` (and optionally ``silb/``, ``labsilb/``,
            ``lablaut/``, ``erkennung.txt``).
        utterances: file stems to keep (e.g. ``["03a01Wa", ...]``), in the given order;
            default: every wav, sorted by name.

    Items follow the dataset item contract: ``wave`` float32 ``(T,)`` (mono, the file's own
    rate), ``sample_rate`` (22050 for the shared copy, read from the file), ``index``,
    ``label`` (index in :data:`EMODB_LABELS`), ``label_name``, ``speaker`` (``"03"``),
    ``session`` (``None``: EmoDB has no recording sessions), ``text`` (the German sentence),
    and ``sex``, ``age``, ``text_code``, ``utterance`` (the stem), ``syllables`` (int64
    ``(K, 2)`` ``[start, end)`` samples) with ``syllable_labels``, ``phones`` (int64 ``(K, 2)``)
    with ``phone_labels``, ``recognition`` / ``naturalness`` (percent, ``None`` when not in
    ``erkennung.txt``), ``activation_bin`` / ``valence_bin`` (:data:`EMODB_AROUSAL_VALENCE`).

    Syllables come from ``labsilb/`` or, for an utterance without one, ``silb/`` (same onsets);
    phones from ``lablaut/``. Alignment intervals are clipped to the audio present and those
    starting past its end dropped. An utterance without an alignment file gets ``(0, 2)`` and
    ``[]``. Alignment and perception files are parsed at construction (so a malformed one
    fails early, naming itself); audio is read in ``__getitem__`` only.

    Attributes:
        root, classes (:data:`EMODB_LABELS`), label_names (the same as a list), perception
        (the parsed ``erkennung.txt``, ``{}`` when absent). Per-item lists: ``labels``,
        ``speakers``, ``sessions`` (all ``None``), ``utterances``, ``activation_bins``,
        ``valence_bins`` (properties, as on the other datasets).

    Raises:
        FileNotFoundError: ``root/wav`` is missing, or a requested utterance has no wav.
        ValueError: a wav with a non-EmoDB name, no wav at all, a duplicate requested
            utterance, or a malformed text file (each message names the path).
    """

    classes = EMODB_LABELS

    def __init__(self, root: str | Path, *, utterances: Iterable[str] | None = None):
        self.root = Path(root)
        wav_dir = self.root / "wav"
        if not wav_dir.is_dir():
            hint = " (did you mean its emodb/ folder?)" if (self.root / "emodb" / "wav").is_dir() else ""
            raise FileNotFoundError(f"EmoDB wav folder not found: {wav_dir}{hint}; expected the official layout "
                                    "wav/SSTTTEV.wav (+ optional silb/, labsilb/, lablaut/, erkennung.txt)")
        self.label_names = list(EMODB_LABELS)
        if utterances is None:
            stems = sorted(p.stem for p in wav_dir.iterdir()
                           if p.suffix.lower() == ".wav" and not p.name.startswith("."))
            if not stems:
                raise ValueError(f"no .wav file in {wav_dir}")
        else:
            stems = [Path(str(u)).stem if str(u).lower().endswith(".wav") else str(u) for u in utterances]
            dup = sorted({s for s in stems if stems.count(s) > 1})
            if dup:
                raise ValueError(f"utterances listed more than once: {dup[:5]}")
            missing = [s for s in stems if not (wav_dir / f"{s}.wav").is_file()]
            if missing:
                raise FileNotFoundError(f"{len(missing)} requested EmoDB utterance(s) have no wav in {wav_dir}, "
                                        f"e.g. {missing[:5]}")
        erk = self.root / "erkennung.txt"
        self.perception = read_erkennung(erk) if erk.is_file() else {}
        self._records = [self._record(s) for s in stems]

    def _record(self, stem: str) -> dict:
        try:
            meta = parse_emodb_name(stem)
        except ValueError as e:
            raise ValueError(f"{self.root / 'wav' / (stem + '.wav')}: {e}") from None
        name = meta["emotion_name"]
        sex, age = EMODB_SPEAKERS[meta["speaker"]]
        perc = self.perception.get(stem, {})
        syl, syl_labels = self._syllables(stem)
        phones, phone_labels = self._phones(stem)
        act, val = EMODB_AROUSAL_VALENCE[name]
        return {"utterance": stem, "wav": self.root / "wav" / f"{stem}.wav", "label": EMODB_LABELS.index(name),
                "label_name": name, "speaker": meta["speaker"], "text_code": meta["text_code"],
                "text": EMODB_TEXTS[meta["text_code"]], "sex": sex, "age": age,
                "recognition": perc.get("recognition"), "naturalness": perc.get("naturalness"),
                "syllables_s": syl, "syllable_labels": syl_labels, "phones_s": phones, "phone_labels": phone_labels,
                "activation_bin": act, "valence_bin": val}

    def _syllables(self, stem: str) -> tuple[Tensor, list[str]]:
        lab = self.root / "labsilb" / f"{stem}.labsilb"
        if lab.is_file():
            iv, names = read_xlabel(lab)
            if names:
                return iv, names
        silb = self.root / "silb" / f"{stem}.silb"
        if silb.is_file():
            return marks_to_intervals(*read_silb(silb))
        return torch.zeros(0, 2, dtype=torch.float64), []

    def _phones(self, stem: str) -> tuple[Tensor, list[str]]:
        # the distribution names phone files {stem}xx.lablaut; one utterance also has an
        # empty {stem}.lablaut: the first candidate with any segment wins
        for name in (f"{stem}xx.lablaut", f"{stem}.lablaut"):
            p = self.root / "lablaut" / name
            if p.is_file():
                iv, names = read_xlabel(p)
                if names:
                    return iv, names
        return torch.zeros(0, 2, dtype=torch.float64), []

    @property
    def sessions(self) -> list[None]:
        return [None] * len(self._records)

    @property
    def activation_bins(self) -> list[int]:
        return self.column("activation_bin")

    @property
    def valence_bins(self) -> list[int]:
        return self.column("valence_bin")

    def alignment_seconds(self, index: int) -> dict:
        """The unclipped alignments of item ``index`` on the original timeline (no audio read):
        ``syllables`` / ``phones`` float64 ``(K, 2)`` seconds and their labels."""
        r = self._records[int(index)]
        return {"syllables": r["syllables_s"].clone(), "syllable_labels": list(r["syllable_labels"]),
                "phones": r["phones_s"].clone(), "phone_labels": list(r["phone_labels"])}

    def __getitem__(self, index: int) -> dict:
        index, r, wave, sr = self._read(index)
        n = int(wave.shape[-1])
        syl, keep_s = _clip(r["syllables_s"], sr, n)
        ph, keep_p = _clip(r["phones_s"], sr, n)
        return {"wave": wave, "sample_rate": sr, "index": index, "label": r["label"], "label_name": r["label_name"],
                "speaker": r["speaker"], "session": None, "text": r["text"], "sex": r["sex"], "age": r["age"],
                "text_code": r["text_code"], "utterance": r["utterance"],
                "syllables": syl, "syllable_labels": [x for x, k in zip(r["syllable_labels"], keep_s) if k],
                "phones": ph, "phone_labels": [x for x, k in zip(r["phone_labels"], keep_p) if k],
                "recognition": r["recognition"], "naturalness": r["naturalness"],
                "activation_bin": r["activation_bin"], "valence_bin": r["valence_bin"]}


def _clip(intervals: Tensor, sample_rate: int, n_samples: int) -> tuple[Tensor, list[bool]]:
    """``(samples, keep)``: int64 ``(K', 2)`` ``[start, end)`` samples clipped to the audio and
    the per-interval keep flags (for the labels)."""
    if intervals.numel() == 0:
        return torch.zeros(0, 2, dtype=torch.int64), []
    s = torch.round(intervals * sample_rate).to(torch.int64).clamp(0, n_samples)
    keep = s[:, 1] > s[:, 0]
    return s[keep].contiguous(), keep.tolist()
