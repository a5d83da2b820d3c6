"""Decoded items kept in memory across epochs (small SER corpora fit: EmoDB is ~45 MB at 16 kHz).

Reading and resampling a clip every epoch costs more than training on it with a small model
on a CPU (the synthetic corpus synthesises its speech; EmoDB's wavs are 22.05 kHz). A
:class:`MemoryCache` wraps a dataset: the first access of an item reads it, down-mixes and
resamples its wave to ``sample_rate`` (so the collate does not resample it again) and keeps
the item dict; later epochs reuse it. Items are deterministic, so this changes no result.
Once ``max_bytes`` of audio are held, further items are read as before (not cached). Each
DataLoader worker holds its own cache (use ``num_workers=0``, the trainer's default, to share
one).
"""
from __future__ import annotations

import torch
from torch.utils.data import Dataset

from ..audio_io import resample, to_mono

__all__ = ["MemoryCache"]

#: Item keys holding ``(K, 2)`` intervals in samples (EmoDB's alignments), rescaled with the wave.
_SAMPLE_INTERVALS = ("syllables", "phones")


class MemoryCache(Dataset):
    """``dataset`` with items cached after their first read, waves as float32 ``(T,)`` at
    ``sample_rate`` Hz (``max_bytes``: cap on the cached audio; default 4 GiB)."""

    def __init__(self, dataset, sample_rate: int, max_bytes: int = 4 << 30):
        self.dataset, self.sample_rate, self.max_bytes = dataset, int(sample_rate), int(max_bytes)
        self._items: dict[int, dict] = {}
        self.nbytes = 0

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> dict:
        index = int(index)
        hit = self._items.get(index)
        if hit is not None:
            return dict(hit)
        item = dict(self.dataset[index])
        wave = torch.as_tensor(item["wave"])
        if wave.is_floating_point():  # integer PCM is left to the collate's conversion
            wave = to_mono(wave.float()) if wave.dim() == 2 else wave.float()
            sr = int(item.get("sample_rate", self.sample_rate))
            if sr != self.sample_rate:
                wave = resample(wave, sr, self.sample_rate)
                for key in _SAMPLE_INTERVALS:  # intervals in samples follow the new rate
                    if isinstance(item.get(key), torch.Tensor):
                        item[key] = torch.round(item[key].double() * (self.sample_rate / sr)).long()
            item["wave"], item["sample_rate"] = wave.contiguous(), self.sample_rate
        size = item["wave"].numel() * item["wave"].element_size()
        if self.nbytes + size <= self.max_bytes:
            self._items[index] = item
            self.nbytes += size
        return dict(item)
