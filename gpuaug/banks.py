"""In-memory banks of noises, room impulse responses and insert clips, by category.

A bank holds all its clips ragged: one flat ``(sum(lengths),)`` float32 mono tensor of the
clips concatenated, with host ``(N,)`` offsets (start of each clip), lengths and category
ids, loaded once (and moved to the device once), so a long file costs what it holds (not
``N`` times the longest). Transforms gather from it by per-clip index (:meth:`Bank.gather`,
zero-padded to the longest clip *picked*) or read it in place (the noise-mix kernels, from
the offsets), so there are no disk reads per batch.

Every item has an identity: its name and the sha1 of its float32 samples (:attr:`Bank.hashes`,
16 hex digits; :attr:`Bank.item_keys` holds the same 64 bits as signed int64 for the
numeric records). :attr:`Bank.fingerprint` hashes the identities of all items. Transforms
record the identity of each item they used and replay resolves it by identity
(:meth:`Bank.index_of`), raising :class:`MissingBankItem` when the bank no longer holds it.
"""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Callable, Sequence

import torch
from torch import Tensor

from ._sync import host_of, mirrored, upload
from .backend import RAGGED_GATHER, kernel_for

__all__ = ["Bank", "AUDIO_SUFFIXES", "CATEGORY_SYNONYMS", "MIN_PEAK", "MissingBankItem", "content_hash",
           "key_of_hash", "hash_of_key", "gather_ragged"]

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3")
#: Category names accepted for one another wherever a bank takes categories (the layouts rename
#: ESC-50's ``domestic`` to the study's ``interior``; :meth:`Bank.from_folder` keeps ``domestic``).
CATEGORY_SYNONYMS = {"domestic": "interior", "interior": "domestic"}
#: Items whose absolute peak is below this are refused as silent (they would pass clips through
#: unchanged while the record says they were mixed in).
MIN_PEAK = 1e-6


class MissingBankItem(ValueError):
    """A record names a bank item (name / content hash) that the bank does not hold."""


def content_hash(x: Tensor) -> str:
    """sha1 of a clip's float32 samples (little endian), truncated to 16 hex digits."""
    a = x.detach().to("cpu", torch.float32).contiguous().numpy().astype("<f4", copy=False)
    return hashlib.sha1(a.tobytes()).hexdigest()[:16]


def key_of_hash(h: str) -> int:
    """The signed int64 of a 16-hex-digit :func:`content_hash` (the numeric record field)."""
    return int.from_bytes(bytes.fromhex(h), "big", signed=True)


def hash_of_key(k: int) -> str:
    """Inverse of :func:`key_of_hash`."""
    return int(k).to_bytes(8, "big", signed=True).hex()


def _mono(x: Tensor) -> Tensor:
    x = torch.as_tensor(x, dtype=torch.float32)
    if x.dim() == 2:  # (C, T) -> mean over channels
        x = x.mean(dim=0)
    if x.dim() != 1:
        raise ValueError(f"bank clips must be 1-D (T,) or (C, T), got shape {tuple(x.shape)}")
    return x


def gather_ragged(flat: Tensor, starts: Tensor, lengths: Tensor, width: int) -> Tensor:
    """Rows ``flat[starts[i] : starts[i] + lengths[i]]`` of a ragged store, zero-padded.

    Args:
        flat: ``(S,)`` samples of all items concatenated (any dtype, any device).
        starts: ``(n,)`` int64 first sample of each row in ``flat``, on ``flat``'s device.
        lengths: ``(n,)`` int64 samples per row (``>= 0``, ``starts + lengths <= S``), on
            ``flat``'s device.
        width: host int, the padded row length (``>= max(lengths)``; the caller knows it from
            host copies, so nothing is read back).

    Returns:
        ``(n, width)`` tensor of ``flat``'s dtype and device; samples at ``t >= lengths[i]``
        are ``+0.0``. Built on the device from ``starts`` / ``lengths`` (a clamped index, one
        gather, one masked fill; on the CPU the row-copy kernel of op ``ragged_gather``): no
        host sync.
    """
    n = starts.shape[0]
    if n == 0 or width == 0 or flat.numel() == 0:
        return flat.new_zeros((n, width))
    kernel = kernel_for(RAGGED_GATHER, flat.device)[1] if flat.dtype in (torch.float32, torch.float64) else None
    if kernel is not None:  # CPU: a row copy (gpuaug.kernels.ragged), the same values
        return kernel(flat, starts, lengths, width=int(width))
    t = torch.arange(width, device=flat.device)
    idx = torch.minimum(t, (lengths - 1).clamp_min(0)[:, None])  # in the row: never past its end
    idx += starts[:, None]
    return flat[idx.clamp_(max=flat.numel() - 1)].masked_fill_(t >= lengths[:, None], 0.0)


class Bank:
    """Clips with category labels, stored ragged (concatenated) on one device.

    Args:
        clips: sequence of 1-D ``(T,)`` or ``(C, T)`` tensors (down-mixed to mono).
        categories: one category name per clip.
        sample_rate: Hz of the clips.
        names: optional clip names (file stems) for records.
        name: optional name of the bank (shown by :meth:`describe`).
        sources: optional source of each clip (file paths), used in messages and by :meth:`split`.

    Attributes:
        audio: ``(sum(lengths),)`` float32, the clips concatenated in item order (clip ``i`` is
        ``audio[offsets[i] : offsets[i] + lengths[i]]``, see :meth:`clip`; no padding), on
        :attr:`device`; offsets: ``(N,)`` int64 (host) first sample of each clip in ``audio``;
        lengths: ``(N,)`` int64 (host) samples per clip; category_ids: ``(N,)`` int64;
        category_names: sorted list of distinct categories; hashes: per item
        :func:`content_hash`; item_keys: ``(N,)`` int64 (host) the same as numbers;
        fingerprint: 16 hex digits over every item's category, name and hash;
        :attr:`nbytes`: bytes of audio held (``4 * sum(lengths)``).

    Raises:
        ValueError: no clip, an empty, NaN / Inf, or silent clip (peak below :data:`MIN_PEAK`),
        naming it.
    """

    def __init__(self, clips: Sequence[Tensor], categories: Sequence[str], sample_rate: int,
                 names: Sequence[str] | None = None, *, name: str | None = None,
                 sources: Sequence[str] | None = None):
        if len(clips) == 0:
            raise ValueError("a bank needs at least one clip")
        if len(categories) != len(clips):
            raise ValueError(f"{len(clips)} clips but {len(categories)} categories")
        if names is not None and len(names) != len(clips):
            raise ValueError(f"{len(clips)} clips but {len(names)} names")
        if sources is not None and len(sources) != len(clips):
            raise ValueError(f"{len(clips)} clips but {len(sources)} sources")
        mono = [_mono(c) for c in clips]

        def what(i):
            return sources[i] if sources is not None else names[i] if names is not None else i

        for i, c in enumerate(mono):  # construction, not the hot path: host reads are fine here
            if c.numel() == 0:
                raise ValueError(f"bank clip {i} ({what(i)}) is empty")
            if not bool(torch.isfinite(c).all()):
                raise ValueError(f"bank clip {i} ({what(i)}) contains NaN/Inf")
            peak = float(c.abs().max())
            if peak < MIN_PEAK:
                raise ValueError(f"bank clip {i} ({what(i)}) is silent (peak {peak:.3g} < {MIN_PEAK:g}): clips "
                                 "drawing it would pass through unchanged; remove it from the bank")
        self.sample_rate = int(sample_rate)
        self.lengths = torch.tensor([c.numel() for c in mono], dtype=torch.int64)
        #: ``(N,)`` int64 host start of each clip in the flat :attr:`audio`.
        self.offsets = torch.cumsum(self.lengths, 0) - self.lengths
        self.audio = torch.cat(mono)  # (sum(lengths),) float32: ragged, no padding
        #: ``(N,)`` int64 host index of each clip's first absolute maximum (an RIR's direct path).
        self.peak_index = torch.stack([c.abs().argmax() for c in mono]).to(torch.int64)
        self.category_names = sorted(set(categories))
        self.category_ids = torch.tensor([self.category_names.index(c) for c in categories])
        self.names = list(names) if names is not None else [f"clip{i}" for i in range(len(mono))]
        self.name = name
        self.sources = list(sources) if sources is not None else None
        self.hashes = [content_hash(c) for c in mono]
        self.item_keys = torch.tensor([key_of_hash(h) for h in self.hashes], dtype=torch.int64)
        self._key_order = torch.argsort(self.item_keys, stable=True)
        self._sorted_keys = self.item_keys[self._key_order]
        self._pick_cache: dict = {}  # category selection -> pick's tables (_pick_tables)
        ident = sorted(f"{c}\t{n}\t{h}" for c, n, h in zip(categories, self.names, self.hashes))
        self.fingerprint = hashlib.sha1("\n".join(ident).encode()).hexdigest()[:16]

    def __len__(self) -> int:
        return self.lengths.shape[0]

    @property
    def device(self) -> torch.device:
        return self.audio.device

    @property
    def nbytes(self) -> int:
        """Bytes of audio the bank holds (its flat float32 :attr:`audio`: ``4 * sum(lengths)``)."""
        return self.audio.numel() * self.audio.element_size()

    def to(self, device) -> "Bank":
        """Move the bank's flat audio to ``device`` (in place; returns self). The offsets,
        lengths and other per-item tables stay on the host."""
        self.audio = self.audio.to(device)
        return self

    def clip(self, i: int) -> Tensor:
        """Clip ``i`` as a ``(lengths[i],)`` float32 view of :attr:`audio` (on :attr:`device`)."""
        o, n = int(self.offsets[i]), int(self.lengths[i])
        return self.audio[o:o + n]

    def categories(self) -> list[str]:
        return list(self.category_names)

    def describe(self) -> str:
        """``bank 'noise' (24 clips, 3 categories, fingerprint 0123...)``."""
        label = f"bank {self.name!r}" if self.name else "bank"
        return (f"{label} ({len(self)} clips, {len(self.category_names)} categories, "
                f"fingerprint {self.fingerprint})")

    def __repr__(self) -> str:
        return self.describe()

    def _category_list(self, categories) -> list[str]:
        """``categories`` (a name or names; ``None``: all) as the bank's own names, deduplicated.
        ``domestic`` and ``interior`` stand for each other (:data:`CATEGORY_SYNONYMS`)."""
        if categories is None:
            return self.categories()
        cats = [categories] if isinstance(categories, str) else list(categories)
        out, missing = [], []
        for c in cats:
            if c not in self.category_names and CATEGORY_SYNONYMS.get(c) in self.category_names:
                c = CATEGORY_SYNONYMS[c]
            if c not in self.category_names:
                missing.append(c)
            elif c not in out:
                out.append(c)
        if missing:
            raise KeyError(f"bank has no category {missing}; available: {self.category_names}")
        return out

    def index_of(self, keys: Tensor, what: str = "item") -> Tensor:
        """Indices (host int64) of the items with :attr:`item_keys` ``keys`` (host int64), the
        first of identical items. Raises :class:`MissingBankItem` naming the hashes not held."""
        keys = torch.as_tensor(keys, dtype=torch.int64)
        pos = torch.searchsorted(self._sorted_keys, keys).clamp(max=len(self) - 1)
        found = self._sorted_keys[pos] == keys
        if not bool(found.all()):
            gone = sorted({hash_of_key(k) for k in keys[~found].tolist()})
            raise MissingBankItem(
                f"replay: {what} with sha1 {', '.join(gone)} not in {self.describe()}; the record was made "
                "with a bank that held it (restore the file or replay with that bank)")
        return self._key_order[pos]

    def choose(self, params: dict, id_key: str, categories=None, what: str = "item") -> Tensor:
        """The items of a transform's clips (host int64): by recorded identity when ``params``
        has ``id_key`` (a replay), else :meth:`pick` from ``u_category`` / ``u_item``."""
        if id_key in params:
            return self.index_of(params[id_key], what)
        return self.pick(params["u_category"], params["u_item"], categories)

    def check_recorded(self, name: str | None, sha1: str | None, fingerprint: str | None = None,
                       what: str = "item") -> None:
        """Raise :class:`MissingBankItem` naming ``name`` unless the bank holds an item with
        content hash ``sha1`` (a record's identity; a renamed file of the same content is fine)."""
        if sha1 is None or sha1 in self.hashes:
            return
        other = "" if fingerprint in (None, self.fingerprint) else f" (the record's bank had fingerprint {fingerprint})"
        raise MissingBankItem(f"replay: the recorded {what} {name!r} (sha1 {sha1}) is not in {self.describe()}"
                              f"{other}; restore the file or replay with the bank the record was made with")

    def select(self, categories) -> "Bank":
        """A new bank with only ``categories`` (e.g. for leave-one-category-out training)."""
        keep = set(self._category_list(categories))
        return self.subset([i for i, c in enumerate(self.category_ids.tolist()) if self.category_names[c] in keep])

    def exclude(self, categories) -> "Bank":
        """A new bank without ``categories`` (the held-out noise types)."""
        drop = set(self._category_list(categories))
        return self.subset([i for i, c in enumerate(self.category_ids.tolist()) if self.category_names[c] not in drop])

    def subset(self, rows: list[int], name: str | None = None) -> "Bank":
        """A new bank of the items ``rows`` (host indices, in that order), on the same device."""
        if not rows:
            raise ValueError("category selection leaves the bank empty")
        host = self.audio.cpu()  # one copy (construction, not the hot path)
        clips = [host[int(self.offsets[i]):int(self.offsets[i] + self.lengths[i])] for i in rows]
        cats = [self.category_names[int(self.category_ids[i])] for i in rows]
        sources = None if self.sources is None else [self.sources[i] for i in rows]
        return Bank(clips, cats, self.sample_rate, [self.names[i] for i in rows], name=name or self.name,
                    sources=sources).to(self.device)

    def split(self, fractions: Sequence[float] = (0.8, 0.1, 0.1), seed: int = 0) -> tuple["Bank", ...]:
        """A seeded, category-stratified split of the items into ``len(fractions)`` banks.

        Within each category the items are ordered by ``sha1(seed, content hash)`` (so the
        split of a category depends only on its own items and ``seed``, not on file order)
        and cut into parts of sizes close to ``fractions`` (largest remainders). A category
        with at least as many items as parts has at least one item in every part; one with
        fewer goes to the parts of the largest fractions first. No item is in two parts.
        Identical items (same content hash) stay in one part together.

        Returns:
            one bank per fraction (e.g. ``(train, val, test)``), named ``{name}/train`` ...
        Raises:
            ValueError: fractions not positive or not summing to 1, or a part left empty
            (too few items for that many parts).
        """
        fr = [float(f) for f in fractions]
        if len(fr) < 2 or min(fr) <= 0 or abs(sum(fr) - 1.0) > 1e-6:
            raise ValueError(f"split: need >= 2 positive fractions summing to 1, got {tuple(fractions)}")
        k = len(fr)
        labels = ("train", "val", "test") if k == 3 else tuple(f"part{j}" for j in range(k))
        parts: list[list[int]] = [[] for _ in range(k)]
        ids = self.category_ids.tolist()
        for cid in range(len(self.category_names)):
            groups: dict[str, list[int]] = {}  # identical content: one unit
            for i in (i for i in range(len(self)) if ids[i] == cid):
                groups.setdefault(self.hashes[i], []).append(i)
            order = sorted(groups, key=lambda h: (hashlib.sha1(f"{int(seed)}:{h}".encode()).hexdigest(), h))
            counts = _split_counts(len(order), fr)
            start = 0
            for j, c in enumerate(counts):
                for h in order[start:start + c]:
                    parts[j].extend(groups[h])
                start += c
        empty = [labels[j] for j in range(k) if not parts[j]]
        if empty:
            raise ValueError(f"split: {len(self)} items are too few for fractions {tuple(fr)}: "
                             f"part(s) {empty} would be empty")
        base = self.name or "bank"
        return tuple(self.subset(sorted(parts[j]), name=f"{base}/{labels[j]}") for j in range(k))

    def pick(self, u_category: Tensor, u_item: Tensor, categories=None) -> Tensor:
        """Category-balanced choice of clip indices from two ``(B,)`` uniforms in [0, 1).

        A category is chosen uniformly among ``categories`` (default all), then a clip
        uniformly within it. Vectorised; returns ``(B,)`` int64 indices (CPU).
        """
        cats, order, counts, starts = self._pick_tables(categories)
        cat = cats[torch.clamp((u_category * len(cats)).long(), max=len(cats) - 1)]
        within = torch.minimum((u_item * counts[cat]).long(), counts[cat] - 1)
        return order[starts[cat] + within]

    def _pick_tables(self, categories) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """:meth:`pick`'s tables for ``categories``: their category ids, the items in category
        order, and each category's item count and first position in that order. A bank's items
        never change after construction, so they are built once per category selection."""
        key = None if categories is None else ((categories,) if isinstance(categories, str) else tuple(categories))
        cache = self._pick_cache
        if key not in cache:
            cats = torch.tensor([self.category_names.index(c) for c in self._category_list(categories)])
            order = torch.argsort(self.category_ids * len(self) + torch.arange(len(self)))
            counts = torch.bincount(self.category_ids, minlength=len(self.category_names))
            cache[key] = (cats, order, counts, torch.cumsum(counts, 0) - counts)
        return cache[key]

    def gather(self, index: Tensor, device=None) -> tuple[Tensor, Tensor]:
        """Clips ``index`` (``(n,)`` host int64) as ``(n, T_max_sel)`` float32 audio, zero-padded
        to the longest clip picked, and their ``(n,)`` int64 lengths (samples), on ``device``
        (default the bank's). Sizes come from the host offsets / lengths, which are uploaded
        in one non-blocking copy and expanded on the bank's device
        (:func:`gather_ragged`): no sync."""
        index = host_of(index)
        host = self.lengths[index]
        T = int(host.max()) if host.numel() else 0
        starts, lens = upload([self.offsets[index], host], self.device)
        audio = gather_ragged(self.audio, starts, lens, T)
        device = self.device if device is None else torch.device(device)
        if device == self.device:
            return audio, lens
        return audio.to(device), mirrored(host, device)

    @classmethod
    def from_folder(cls, root: str | Path, sample_rate: int,
                    category_of: Callable[[Path], str] | None = None) -> "Bank":
        """Load every audio file under ``root`` (any rate / channel count), resampled once.

        ``category_of(path)`` names each file's category; by default the part of the file
        stem before the first ``_`` (``natural_rain.wav`` -> ``natural``). Files are read with
        :func:`gpuaug.audio_io.load_resampled` (so a truncated, undecodable or NaN file
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
        return cls(clips, cats, sample_rate, [f.stem for f in files], name=root.name,
                   sources=[str(f) for f in files])


def _split_counts(n: int, fractions: list[float]) -> list[int]:
    """Sizes of the parts of ``n`` items: near ``n * fractions`` (largest remainders), each at
    least 1 when ``n >= len(fractions)``; else one item each to the largest fractions."""
    k = len(fractions)
    by_size = sorted(range(k), key=lambda j: (-fractions[j], j))
    if n < k:
        return [1 if j in by_size[:n] else 0 for j in range(k)]
    target = [f * n for f in fractions]
    counts = [max(1, int(t)) for t in target]
    while sum(counts) > n:  # take from the part most above its target (keeping >= 1)
        j = max((j for j in range(k) if counts[j] > 1), key=lambda j: (counts[j] - target[j], -j))
        counts[j] -= 1
    while sum(counts) < n:  # give to the part most below its target
        j = max(range(k), key=lambda j: (target[j] - counts[j], -j))
        counts[j] += 1
    return counts
