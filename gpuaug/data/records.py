"""Base of the corpus readers that index their items as records read at construction.

A reader fills ``self._records`` (one dict per item, no audio) in its constructor; this base
gives ``len``, reading an item's audio (:meth:`RecordDataset._read`) and the per-item columns the folds and the trainer read (``labels``,
``speakers``, ``utterances``) without touching audio. Also :func:`read_jsonl`, the JSON-lines
reader of manifests and fold files.
"""
from __future__ import annotations

import json
from pathlib import Path

from torch import Tensor
from torch.utils.data import Dataset

from ..audio_io import read_audio, to_mono

__all__ = ["RecordDataset", "read_jsonl"]


class RecordDataset(Dataset):
    """A dataset over ``self._records`` (list of dicts with ``label``, ``speaker``, ``utterance``)."""

    _records: list[dict]

    def __len__(self) -> int:
        return len(self._records)

    def column(self, key: str) -> list:
        """``record[key]`` of every item, in dataset order."""
        return [r[key] for r in self._records]

    @property
    def labels(self) -> list[int]:
        return self.column("label")

    @property
    def speakers(self) -> list[str]:
        return self.column("speaker")

    @property
    def utterances(self) -> list[str]:
        return self.column("utterance")

    def _read(self, index: int) -> tuple[int, dict, Tensor, int]:
        """``(index, record, mono wave (T,), sample_rate)`` of item ``index`` (negative indices
        count from the end; out of range raises ``IndexError``); reads the record's ``wav``."""
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} items")
        index = int(index) % len(self)
        record = self._records[index]
        wave, sr = read_audio(record["wav"])
        return index, record, to_mono(wave), sr


def read_jsonl(path: Path, text: str) -> list[tuple[int, dict]]:
    """``(line number, object)`` of every non-blank line of the JSON-lines ``text`` read from
    ``path``; a line that is not a JSON object raises ``ValueError`` naming ``path:line``."""
    rows = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise ValueError(f"{path}:{n}: invalid JSON ({e})") from None
        if not isinstance(row, dict):
            raise ValueError(f"{path}:{n}: each line must be a JSON object")
        rows.append((n, row))
    return rows
