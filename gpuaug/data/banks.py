"""In-memory banks of noises, room impulse responses and insert clips, by category.

A bank holds all its clips in one zero-padded ``(N, T_max)`` mono tensor with lengths and
category ids, loaded once (and moved to the device once); transforms gather from it by
per-clip index, so there are no disk reads per batch.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

import torch
from torch import Tensor

from .._sync import host_of, mirrored

__all__ = ["Bank", "AUDIO_SUFFIXES"]

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3")


def _mono(x: Tensor) -> Tensor:
    x = torch.as_tensor(x, dtype=torch.float32)
    if x.dim() == 2:  # (C, T) -> mean over channels
        x = x.mean(dim=0)
    if x.dim() != 1:
        raise ValueError(f"bank clips must be 1-D (T,) or (C, T), got shape {tuple(x.shape)}")
    return x


class Bank:
    """Clips with category labels, stored padded on one device.

    Args:
        clips: sequence of 1-D ``(T,)`` or ``(C, T)`` tensors (down-mixed to mono).
        categories: one category name per clip.
        sample_rate: Hz of the clips.
        names: optional clip names (file stems) for records.

    Attributes:
        audio: ``(N, T_max)`` float32; lengths: ``(N,)`` int64; category_ids: ``(N,)`` int64;
        category_names: sorted list of distinct categories.
    """

    def __init__(self, clips: Sequence[Tensor], categories: Sequence[str], sample_rate: int,
                 names: Sequence[str] | None = None):
        if len(clips) == 0:
            raise ValueError("a bank needs at least one clip")
        if len(categories) != len(clips):
            raise ValueError(f"{len(clips)} clips but {len(categories)} categories")
        mono = [_mono(c) for c in clips]
        for i, c in enumerate(mono):
            if c.numel() == 0:
                raise ValueError(f"bank clip {i} ({names[i] if names else i}) is empty")
            if not bool(torch.isfinite(c).all()):
                raise ValueError(f"bank clip {i} ({names[i] if names else i}) contains NaN/Inf")
        self.sample_rate = int(sample_rate)
        self.lengths = torch.tensor([c.numel() for c in mono], dtype=torch.int64)
        self.audio = torch.zeros(len(mono), int(self.lengths.max()))
        for i, c in enumerate(mono):
            self.audio[i, : c.numel()] = c
        #: ``(N,)`` int64 host index of each clip's first absolute maximum (an RIR's direct path).
        self.peak_index = torch.stack([c.abs().argmax() for c in mono]).to(torch.int64)
        self.category_names = sorted(set(categories))
        self.category_ids = torch.tensor([self.category_names.index(c) for c in categories])
        self.names = list(names) if names is not None else [f"clip{i}" for i in range(len(mono))]

    def __len__(self) -> int:
        return self.audio.shape[0]

    @property
    def device(self) -> torch.device:
        return self.audio.device

    def to(self, device) -> "Bank":
        """Move the bank's audio to ``device`` (in place; returns self)."""
        self.audio = self.audio.to(device)
        return self

    def categories(self) -> list[str]:
        return list(self.category_names)

    def _category_list(self, categories) -> list[str]:
        if categories is None:
            return self.categories()
        cats = [categories] if isinstance(categories, str) else list(categories)
        missing = [c for c in cats if c not in self.category_names]
        if missing:
            raise KeyError(f"bank has no category {missing}; available: {self.category_names}")
        return cats

    def select(self, categories) -> "Bank":
        """A new bank with only ``categories`` (e.g. for leave-one-category-out training)."""
        keep = set(self._category_list(categories))
        return self._take([i for i, c in enumerate(self.category_ids.tolist()) if self.category_names[c] in keep])

    def exclude(self, categories) -> "Bank":
        """A new bank without ``categories`` (the held-out noise types)."""
        drop = set(self._category_list(categories))
        return self._take([i for i, c in enumerate(self.category_ids.tolist()) if self.category_names[c] not in drop])

    def _take(self, rows: list[int]) -> "Bank":
        if not rows:
            raise ValueError("category selection leaves the bank empty")
        clips = [self.audio[i, : int(self.lengths[i])].cpu() for i in rows]
        cats = [self.category_names[int(self.category_ids[i])] for i in rows]
        return Bank(clips, cats, self.sample_rate, [self.names[i] for i in rows]).to(self.device)

    def pick(self, u_category: Tensor, u_item: Tensor, categories=None) -> Tensor:
        """Category-balanced choice of clip indices from two ``(B,)`` uniforms in [0, 1).

        A category is chosen uniformly among ``categories`` (default all), then a clip
        uniformly within it. Vectorised; returns ``(B,)`` int64 indices (CPU).
        """
        cats = torch.tensor([self.category_names.index(c) for c in self._category_list(categories)])
        cat = cats[torch.clamp((u_category * len(cats)).long(), max=len(cats) - 1)]
        order = torch.argsort(self.category_ids * len(self) + torch.arange(len(self)))
        counts = torch.bincount(self.category_ids, minlength=len(self.category_names))
        starts = torch.cumsum(counts, 0) - counts
        within = torch.minimum((u_item * counts[cat]).long(), counts[cat] - 1)
        return order[starts[cat] + within]

    def gather(self, index: Tensor, device=None) -> tuple[Tensor, Tensor]:
        """Clips ``index`` (host int64) as ``(n, T_max_sel)`` padded audio and ``(n,)`` lengths
        on ``device`` (default the bank's). Sizes come from the host lengths: no sync."""
        index = host_of(index)
        host = self.lengths[index]
        T = int(host.max()) if host.numel() else 0
        audio = self.audio[mirrored(index, self.device), :T]
        device = self.device if device is None else torch.device(device)
        return audio.to(device), mirrored(host, device)

    @classmethod
    def from_folder(cls, root: str | Path, sample_rate: int,
                    category_of: Callable[[Path], str] | None = None) -> "Bank":
        """Load every audio file under ``root`` (any rate / channel count), resampled once.

        ``category_of(path)`` names each file's category; by default the part of the file
        stem before the first ``_`` (``natural_rain.wav`` -> ``natural``). Files are read with
        :func:`gpuaug.data.audio_io.load_resampled` (so a truncated, undecodable or NaN file
        raises ``ValueError`` naming it; channels are averaged).
        """
        from .audio_io import check_sample_rate, load_resampled

        sample_rate = check_sample_rate(sample_rate, "sample_rate")
        root = Path(root)
        files = sorted(p for p in root.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES)
        if not files:
            raise FileNotFoundError(f"no audio files ({', '.join(AUDIO_SUFFIXES)}) under {root}")
        category_of = category_of or (lambda p: p.stem.split("_")[0])
        clips = [load_resampled(f, sample_rate) for f in files]
        cats = [category_of(f) for f in files]
        return cls(clips, cats, sample_rate, [f.stem for f in files])
