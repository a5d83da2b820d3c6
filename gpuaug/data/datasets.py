"""Datasets that yield the item dicts the collate consumes: a CSV/JSONL manifest and the synthetic corpus.

Item contract (every dataset's ``__getitem__``): a plain dict with

* ``wave``: float32 tensor ``(T,)`` or ``(C, T)`` at the file's own rate;
* ``sample_rate``: int, Hz;
* ``index``: int, the dataset index (always present: it keys the item's random draws);
* optional ``label`` (int class id), ``label_name`` (str), ``dims`` (float32 ``(3,)``:
  valence, activation, dominance on the corpus' raw scale), ``speaker``, ``session``,
  ``text`` (str), ``words`` (float64 ``(K, 2)`` word intervals ``[start, end)`` in seconds)
  and ``word_list`` (the ``K`` words).

Audio is read in ``__getitem__`` (so in DataLoader workers), never at construction.
"""
from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path
from typing import Sequence

import torch
from torch import Tensor
from torch.utils.data import Dataset

from ..audio_io import read_audio, to_mono
from .iemocap import read_wdseg
from .records import read_jsonl
from .synthetic import EMOTIONS, synthetic_annotation, synthetic_item

__all__ = ["DIM_COLUMNS", "read_alignment", "ManifestDataset", "SyntheticSERDataset"]

#: Manifest columns of the dimensional labels, in the order of the item's ``dims``.
DIM_COLUMNS = ("valence", "activation", "dominance")
_TEXT_COLUMNS = ("speaker", "session", "text")


def _read_text(path: Path, what: str) -> str:
    """The text of a manifest / alignment file as UTF-8 (a leading byte-order mark, as Excel
    writes, is dropped). Other encodings are refused rather than guessed: a ``ValueError``
    names the file, the first undecodable byte and its line."""
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise ValueError(f"{what} {path} is not valid UTF-8 (byte 0x{raw[e.start]:02x} at offset {e.start}, "
                         f"line {line}); re-save it as UTF-8, e.g. iconv -f latin1 -t utf-8") from None


def read_alignment(path: str | Path) -> tuple[Tensor, list[str]]:
    """Read word intervals from an alignment file.

    Formats: IEMOCAP ``.wdseg`` (see :func:`gpuaug.data.iemocap.read_wdseg`), otherwise one
    word per line as ``start_s end_s word`` separated by tabs, commas or spaces (the word
    is the rest of the line); blank lines, ``#`` comments and a header line
    (e.g. ``start end word``) are skipped.

    Returns:
        ``(words, word_list)``: float64 ``(K, 2)`` ``[start, end)`` in seconds, and the words.

    Raises:
        FileNotFoundError: missing file. ValueError: a malformed line or an interval with
        ``start < 0`` or ``end <= start`` (the message names the file and line).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"alignment file not found: {path}")
    if path.suffix.lower() == ".wdseg":
        return read_wdseg(path)
    words, names, first = [], [], True
    for n, raw in enumerate(_read_text(path, "alignment file").splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if "\t" in line:
            parts = [p.strip() for p in line.split("\t", 2)]
        elif "," in line:
            parts = [p.strip() for p in next(csv.reader([line]))]
            parts = parts[:2] + [",".join(parts[2:])]
        else:
            parts = line.split(None, 2)
        try:
            start, end = float(parts[0]), float(parts[1])
        except (ValueError, IndexError):
            if first:  # a header line
                first = False
                continue
            raise ValueError(f"{path}:{n}: expected 'start_s end_s word', got {line!r}") from None
        first = False
        if len(parts) < 3 or not parts[2]:
            raise ValueError(f"{path}:{n}: missing word in {line!r}")
        if not (math.isfinite(start) and math.isfinite(end)) or start < 0 or end <= start:
            raise ValueError(f"{path}:{n}: need 0 <= start < end (seconds), got {start}, {end}")
        words.append([start, end])
        names.append(parts[2])
    return torch.tensor(words, dtype=torch.float64).reshape(-1, 2), names


def _read_rows(manifest: Path) -> list[dict]:
    suffix = manifest.suffix.lower()
    if suffix in (".jsonl", ".ndjson"):
        return [row for _, row in read_jsonl(manifest, _read_text(manifest, "manifest"))]
    if suffix in (".csv", ".tsv"):
        text = _read_text(manifest, "manifest")
        reader = csv.DictReader(io.StringIO(text, newline=""), delimiter="\t" if suffix == ".tsv" else ",")
        if reader.fieldnames is None:
            return []
        reader.fieldnames = [c.strip() for c in reader.fieldnames]
        return [dict(r) for r in reader]
    raise ValueError(f"manifest {manifest}: unknown format {suffix!r} (use .csv, .tsv, .jsonl or .ndjson)")


def _field(row: dict, key: str) -> str | None:
    """A row's value as a stripped string; None when absent or empty."""
    v = row.get(key)
    if v is None:
        return None
    v = str(v).strip()
    return v or None


class ManifestDataset(Dataset):
    """Audio files listed in a CSV / TSV (header row) or JSONL manifest.

    Columns (keys): ``path`` (required; relative to ``root``, by default the manifest's
    folder), ``label`` (class name), ``valence`` / ``activation`` / ``dominance`` (all
    three or none; numbers on the corpus' scale), ``speaker``, ``session``, ``text``,
    ``alignment`` (path of a word alignment file read by :func:`read_alignment`, e.g. a
    ``start_s end_s word`` TSV or an IEMOCAP ``.wdseg``). Empty cells count as absent.

    Args:
        manifest: path of the manifest.
        root: folder the relative paths are relative to (default: the manifest's folder).
        label_names: class names in class-id order; by default the sorted distinct labels
            (numerically sorted when all labels are integers). Give it explicitly to keep
            ids consistent across train / test manifests.
        mono: down-mix to ``(T,)``; otherwise ``wave`` is ``(C, T)`` as stored.

    Raises:
        FileNotFoundError: missing manifest (missing audio / alignment files raise when
            their item is loaded).
        ValueError: unknown manifest format, a manifest that is not UTF-8 (a UTF-8
            byte-order mark is accepted; other encodings are refused, naming the file,
            not guessed), no rows, no ``path`` column, a row without
            path, labels in some rows only, a label outside ``label_names``, incomplete
            or non-numeric dimensions.
    """

    def __init__(self, manifest: str | Path, *, root: str | Path | None = None,
                 label_names: Sequence[str] | None = None, mono: bool = True):
        self.manifest = Path(manifest)
        if not self.manifest.is_file():
            raise FileNotFoundError(f"manifest not found: {self.manifest}")
        self.root = Path(root) if root is not None else self.manifest.parent
        self.mono = bool(mono)
        rows = _read_rows(self.manifest)
        if not rows:
            raise ValueError(f"manifest {self.manifest} has no rows")
        if all("path" not in r for r in rows):
            raise ValueError(f"manifest {self.manifest} has no 'path' column; columns: {sorted(rows[0])}")
        first_row = 2 if self.manifest.suffix.lower() in (".csv", ".tsv") else 1  # CSV: after the header
        self._records = [self._record(r, n) for n, r in enumerate(rows, first_row)]
        names = [r["label_name"] for r in self._records]
        if any(n is None for n in names) and not all(n is None for n in names):
            row = next(i for i, n in enumerate(names) if n is None)
            raise ValueError(f"manifest {self.manifest}: item {row} has no label but others do")
        self.has_labels = names[0] is not None
        if label_names is not None:
            self.label_names = [str(n) for n in label_names]
            if len(set(self.label_names)) != len(self.label_names):
                raise ValueError(f"label_names has duplicates: {self.label_names}")
        elif self.has_labels:
            distinct = set(names)
            numeric = all(n.lstrip("-").isdigit() for n in distinct)
            self.label_names = sorted(distinct, key=int) if numeric else sorted(distinct)
        else:
            self.label_names = []
        if self.has_labels:
            unknown = sorted(set(names) - set(self.label_names))
            if unknown:
                raise ValueError(f"manifest {self.manifest}: labels {unknown} not in label_names {self.label_names}")
            ids = {n: i for i, n in enumerate(self.label_names)}
            for r in self._records:
                r["label"] = ids[r["label_name"]]

    def _path(self, value: str) -> Path:
        p = Path(value)
        return p if p.is_absolute() else self.root / p

    def _record(self, row: dict, n: int) -> dict:
        where = f"manifest {self.manifest} row {n}"
        path = _field(row, "path")
        if path is None:
            raise ValueError(f"{where}: empty path")
        rec = {"path": self._path(path), "label_name": _field(row, "label")}
        given = [c for c in DIM_COLUMNS if _field(row, c) is not None]
        if given:
            if len(given) != len(DIM_COLUMNS):
                raise ValueError(f"{where}: dimensions need all of {DIM_COLUMNS}, got only {given}")
            try:
                dims = [float(_field(row, c)) for c in DIM_COLUMNS]
            except ValueError:
                raise ValueError(f"{where}: non-numeric dimension in {[row[c] for c in DIM_COLUMNS]}") from None
            if not all(math.isfinite(d) for d in dims):
                raise ValueError(f"{where}: dimensions must be finite, got {dims}")
            rec["dims"] = dims
        for c in _TEXT_COLUMNS:
            if _field(row, c) is not None:
                rec[c] = _field(row, c)
        if _field(row, "alignment") is not None:
            rec["alignment"] = self._path(_field(row, "alignment"))
        return rec

    def __len__(self) -> int:
        return len(self._records)

    @property
    def labels(self) -> list[int]:
        """Class id per item (for class weights / stratified splits)."""
        if not self.has_labels:
            raise ValueError(f"manifest {self.manifest} has no labels")
        return [r["label"] for r in self._records]

    @property
    def speakers(self) -> list[str | None]:
        return [r.get("speaker") for r in self._records]

    @property
    def sessions(self) -> list[str | None]:
        return [r.get("session") for r in self._records]

    def __getitem__(self, index: int) -> dict:
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} items")
        index = int(index) % len(self)
        r = self._records[index]
        wave, sr = read_audio(r["path"])
        item = {"wave": to_mono(wave) if self.mono else wave, "sample_rate": sr, "index": index}
        if self.has_labels:
            item["label"], item["label_name"] = r["label"], r["label_name"]
        if "dims" in r:
            item["dims"] = torch.tensor(r["dims"], dtype=torch.float32)
        for c in _TEXT_COLUMNS:
            if c in r:
                item[c] = r[c]
        if "alignment" in r:
            item["words"], item["word_list"] = read_alignment(r["alignment"])
        return item


class SyntheticSERDataset(Dataset):
    """The built-in synthetic emotional-speech corpus as a dataset (deterministic, no files).

    Item ``i`` is :func:`gpuaug.data.synthetic.synthetic_item` ``(i, ...)`` with the
    annotations of :func:`~gpuaug.data.synthetic.synthetic_annotation`: labels cycle over
    :data:`~gpuaug.data.synthetic.EMOTIONS` (``neutral, happy, sad, angry``), ``dims`` follow
    the emotion (e.g. angry: valence about 1.9, activation about 4.1 on 1..5), ``speaker``
    ``spk{k}``, ``session`` ``session{k // 2 + 1}`` (two speakers per session, as in
    IEMOCAP), a pseudo-word ``text`` and its syllable-based ``words`` (seconds).

    Each item is generated on its own from ``(seed, index)``, so workers generate only
    the items they load.

    Args:
        n_items: corpus size.
        sample_rate: Hz.
        seed: corpus seed.
        min_s, max_s: duration range in seconds.
        n_speakers: number of synthetic speakers.
    """

    def __init__(self, n_items: int = 256, *, sample_rate: int = 16000, seed: int = 0, min_s: float = 1.5,
                 max_s: float = 4.0, n_speakers: int = 8):
        if n_items < 0:
            raise ValueError(f"n_items must be >= 0, got {n_items}")
        if not 0 < min_s <= max_s:
            raise ValueError(f"need 0 < min_s <= max_s, got {min_s}, {max_s}")
        if n_speakers < 1:
            raise ValueError(f"n_speakers must be >= 1, got {n_speakers}")
        self.n_items = int(n_items)
        self.sample_rate = int(sample_rate)
        self._kw = {"sample_rate": self.sample_rate, "seed": int(seed), "min_s": float(min_s),
                    "max_s": float(max_s), "n_speakers": int(n_speakers)}
        self.label_names = list(EMOTIONS)

    def __len__(self) -> int:
        return self.n_items

    @property
    def labels(self) -> list[int]:
        return [i % len(self.label_names) for i in range(self.n_items)]

    @property
    def speakers(self) -> list[str]:
        return [f"spk{synthetic_annotation(i, **self._kw)['speaker']}" for i in range(self.n_items)]

    @property
    def sessions(self) -> list[str]:
        return [f"session{synthetic_annotation(i, **self._kw)['speaker'] // 2 + 1}" for i in range(self.n_items)]

    def __getitem__(self, index: int) -> dict:
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} items")
        index = int(index) % len(self)
        it = synthetic_item(index, **self._kw)
        ann = synthetic_annotation(index, **self._kw)
        return {"wave": it.wave, "sample_rate": self.sample_rate, "index": index, "label": it.label,
                "label_name": it.emotion, "dims": ann["dims"], "speaker": f"spk{it.speaker}",
                "session": f"session{it.speaker // 2 + 1}", "text": ann["text"], "words": ann["words"],
                "word_list": ann["word_list"]}
