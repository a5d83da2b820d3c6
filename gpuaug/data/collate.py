"""The drop-in ``collate_fn``: pad, select, draw parameters, augment (here or on the device).

Usage::

    collate = AugmentCollate(pipeline, ratio=0.3, mode="fixed_subset", dataset_size=len(ds), seed=0)
    loader = DataLoader(ds, batch_size=32, num_workers=4, collate_fn=collate, persistent_workers=True)
    for epoch in range(E):
        collate.set_epoch(epoch)                 # reaches persistent workers (shared memory)
        for batch in DeviceLoader(loader, collate, "cuda"):
            ...                                  # batch.wave, batch.lengths, batch.label_action, batch.record

Where the work runs: the collate always does the CPU work (decode, resample, pad, select,
draw parameters). It then augments right away on ``device`` unless that would initialise
CUDA inside a DataLoader worker, in which case the batch comes back ``pending`` and the
device stage (:class:`~gpuaug.data.device_stage.DeviceLoader` or :meth:`AugmentCollate.apply`)
augments it in the main process. Parameters are identical either way.

One pass: :meth:`AugmentCollate.apply` calls the pipeline once on the whole batch with the
selection as its ``select=`` mask (``append``: on the batch with the selected rows duplicated
at its end, the copies selected), and takes wave, lengths, params, records, tags and label
actions from that one :class:`~gpuaug.transforms.pipeline.AugmentResult`; each transform
gathers and merges exactly the clips it applies to.

``ratio`` is the share of items *selected* for augmentation; each transform of the pipeline
then applies to a selected clip with its own ``p`` (and containers pick among theirs), so the
share of items that get at least one transform is lower (``ratio=1.0`` with
``AddNoise(p=0.8)`` alone: 80 %). Every batch reports both, computed on host masks:
:attr:`Batch.selected_share` and :attr:`Batch.augmented_share` (:meth:`Batch.summary`).
Forcing at least one transform on every selected clip (a ``ratio_of="augmented"`` choice)
is not implemented: set the transforms' ``p`` (or use ``SomeOf(min_count=1)``) for that.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch
from torch import Tensor

from .._sync import host_of, mirrored, take_rows
from ..functional._batch import finite_rows, mark_finite
from ..random import check_seed, item_keys, stream_id, uniform
from ..transforms.pipeline import Pipeline
from ..audio_io import resample
from .batch import Batch
from .padding import pad_batch, pcm_to_float
from .selection import Selector

__all__ = ["AugmentCollate", "CROP_STREAM"]

#: The random stream of the crop starts (:meth:`AugmentCollate.crop_starts`).
CROP_STREAM = stream_id("collate/crop")


def _in_worker() -> bool:
    return torch.utils.data.get_worker_info() is not None


class AugmentCollate:
    """Collate function that augments a selected share of each batch.

    Args:
        pipeline: the :class:`~gpuaug.transforms.Pipeline` (its ``sample_rate`` is the batch
            rate), or ``None`` for a collate that only resamples, crops and pads (clean
            evaluation sets and baselines; give ``sample_rate=``): its batches are never
            augmented (``augmented`` all False, ``tags`` ``"clean"``, no label action).
        sample_rate: the batch rate of a ``pipeline=None`` collate (Hz); with a pipeline it
            must be ``None`` or equal the pipeline's.
        ratio, mode, dataset_size, subset_indices, max_per_batch: see
            :class:`~gpuaug.data.selection.Selector`. ``ratio`` is the share of items
            *selected*; each transform then applies with its own ``p``, so fewer clips get
            a transform (reported per batch: :attr:`Batch.augmented_share`). For a
            cross-validation fold (a ``Subset`` whose items carry their corpus-wide
            ``index``) pass ``subset_indices=`` (the fold's corpus indices) instead of
            ``dataset_size``: ``fixed_subset`` then chooses ``round(ratio * len(fold))`` of
            the fold's own items.
        seed: run seed, an integer in ``[0, 2**63)`` (others raise); every random choice is a
            function of (seed, epoch, item index).
        device: where augmentation runs (default CPU). A CUDA device is never touched in a
            worker: such batches come back ``pending`` for the device stage.
        mono: down-mix multi-channel items (default); else all items need equal channels.
        default_sample_rate: used for items without ``sample_rate`` (else that is an error).
        max_seconds: crop every item longer than this (after resampling to the batch rate:
            ``M = round(max_seconds * sample_rate)`` samples) to an ``M``-sample window, so one
            long file no longer pads the whole batch: the batch is never longer than ``M``.
            The window's start is a pure function of (seed, epoch, item index) and the item's
            length (:meth:`crop_starts`: uniform in ``[0, T - M]``, its own random stream), the
            same for any worker count, batch size or rank. A cropped clip's record starts with
            ``{"transform": "crop", "offset": samples, "offset_s", "length": M,
            "source_length": T}`` (replay ignores it); its ``words`` are shifted by the offset,
            cut to the window, and words wholly outside it dropped. ``None`` (default): no crop.

    Item waves (tensors or numpy arrays) become float32: floating samples are taken as they
    are, integer PCM is rescaled to ``[-1, 1]`` as ``soundfile`` reads it (``int16 / 32768``,
    ``int32 / 2**31``, ``int8 / 128``, ``uint8``: ``(x - 128) / 128``; see
    :func:`~gpuaug.data.padding.pcm_to_float`); other dtypes (bool, complex, int64) raise.
    """

    def __init__(self, pipeline: Pipeline | None, *, ratio: float = 1.0, mode: str = "bernoulli", seed: int = 0,
                 dataset_size: int | None = None, max_per_batch: int | None = None, device=None,
                 mono: bool = True, default_sample_rate: int | None = None, max_seconds: float | None = None,
                 subset_indices=None, sample_rate: int | None = None):
        if pipeline is not None and not isinstance(pipeline, Pipeline):
            raise TypeError(f"AugmentCollate: pipeline must be a gpuaug Pipeline or None, got {type(pipeline).__name__}")
        if pipeline is None:
            if isinstance(sample_rate, bool) or not isinstance(sample_rate, int) or sample_rate <= 0:
                raise ValueError(f"AugmentCollate(None) needs sample_rate= a positive int (Hz), got {sample_rate!r}")
            ratio = 0.0
        elif sample_rate is not None and sample_rate != pipeline.sample_rate:
            raise ValueError(f"AugmentCollate: sample_rate={sample_rate!r} differs from the pipeline's "
                             f"{pipeline.sample_rate}")
        self.pipeline = pipeline
        self.sample_rate = pipeline.sample_rate if pipeline is not None else int(sample_rate)
        self.seed = check_seed(seed)  # [0, 2**63): refused, never masked
        self.selector = Selector(ratio, mode, seed=self.seed, dataset_size=dataset_size, max_per_batch=max_per_batch,
                                 subset_indices=subset_indices)
        self.device = torch.device(device) if device is not None else torch.device("cpu")
        self.mono = mono
        self.default_sample_rate = default_sample_rate
        self.max_samples = None
        if max_seconds is not None:
            if isinstance(max_seconds, bool) or not isinstance(max_seconds, (int, float)) \
                    or not math.isfinite(max_seconds) or max_seconds <= 0:
                raise ValueError(f"max_seconds must be a finite number of seconds > 0 or None, got {max_seconds!r}")
            self.max_samples = max(1, int(round(float(max_seconds) * self.sample_rate)))
        self.max_seconds = max_seconds
        self._epoch = torch.zeros((), dtype=torch.int64).share_memory_()

    # ---- epoch ---------------------------------------------------------------------
    def set_epoch(self, epoch: int) -> None:
        """Set the epoch for the next batches (shared memory: reaches persistent workers)."""
        self._epoch.fill_(int(epoch))

    @property
    def epoch(self) -> int:
        return int(self._epoch)

    # ---- cropping ----------------------------------------------------------------------
    def crop_starts(self, index, lengths, epoch: int | None = None) -> Tensor:
        """``(B,)`` int64 crop starts (samples at the batch rate) of items ``index`` with
        ``lengths`` samples: ``floor(u * (T - M + 1))`` with ``u`` uniform in ``[0, 1)`` drawn
        from ``(seed, epoch, index)`` (stream :data:`CROP_STREAM`); 0 where ``T <= M`` or
        without ``max_seconds``. ``epoch`` defaults to the current one."""
        index = torch.as_tensor(index, dtype=torch.int64).reshape(-1)
        lengths = torch.as_tensor(lengths, dtype=torch.int64).reshape(-1)
        if self.max_samples is None:
            return torch.zeros_like(index)
        u = uniform(item_keys(self.seed, self.epoch if epoch is None else epoch, index), CROP_STREAM)
        room = (lengths - self.max_samples).clamp(min=0)
        return torch.minimum((u * (room + 1).to(torch.float64)).floor().long(), room)

    # ---- collation -------------------------------------------------------------------
    def _wave(self, item: dict, pos: int) -> Tensor:
        wave = item.get("wave")
        if isinstance(wave, np.ndarray):
            wave = torch.from_numpy(np.ascontiguousarray(wave))
        if not isinstance(wave, Tensor):
            raise TypeError(f"item {pos}: 'wave' must be a tensor or numpy array, got {type(wave).__name__}")
        wave = pcm_to_float(wave, name=f"item {pos} (index {item.get('index')}): wave").float()  # int16 / 32768, ...
        if wave.dim() not in (1, 2) or wave.shape[-1] == 0:
            raise ValueError(f"item {pos} (index {item.get('index')}): wave must be (T,) or (C, T) with T > 0, "
                             f"got shape {tuple(wave.shape)}")
        if self.mono and wave.dim() == 2:
            wave = wave.mean(dim=0)
        sr = item.get("sample_rate", self.default_sample_rate)
        if sr is None:
            raise ValueError(f"item {pos} (index {item.get('index')}) has no 'sample_rate' "
                             "(give it, or set default_sample_rate on the collate)")
        if int(sr) != self.sample_rate:
            wave = resample(wave, int(sr), self.sample_rate)
        # scanned as it enters the batch (after the down-mix and resampling, which carry a NaN / Inf
        # through): the padded batch is then marked finite (collate) and not scanned again
        if not bool(finite_rows(wave.reshape(1, -1))[0]):  # max / min: no (T,) bool temporary
            raise ValueError(f"item {pos} (index {item.get('index')}): wave contains NaN or Inf samples")
        return wave

    def collate(self, items: Sequence[dict]) -> Batch:
        """CPU-only part: resample, pad, labels, selection and parameter draws (``pending`` batch).

        The pending batch's ``params`` hold every clip's drawn parameters (``(B,)`` per name);
        ``augmented`` is the ``(B,)`` bool selection."""
        if len(items) == 0:
            raise ValueError("cannot collate an empty list of items")
        for pos, item in enumerate(items):
            if not isinstance(item, dict):
                raise TypeError(f"item {pos}: expected a dict with 'wave', 'sample_rate', 'index', got {type(item).__name__}")
            if "index" not in item:
                raise ValueError(f"item {pos} has no 'index': reproducible augmentation draws each item's parameters "
                                 "from (seed, epoch, index); return the dataset index from __getitem__")
        waves = [self._wave(it, pos) for pos, it in enumerate(items)]
        if not self.mono and len({w.shape[0] if w.dim() == 2 else 0 for w in waves}) != 1:
            raise ValueError("mismatched channel counts in batch: "
                             f"{[tuple(w.shape[:-1]) for w in waves]} (use mono=True to down-mix)")
        index = torch.tensor([int(it["index"]) for it in items], dtype=torch.int64)
        epoch = self.epoch
        starts = self.crop_starts(index, [w.shape[-1] for w in waves], epoch)
        record: list = [[] for _ in items]
        if self.max_samples is not None:
            M = self.max_samples
            for i, w in enumerate(waves):
                if w.shape[-1] > M:
                    o = int(starts[i])
                    record[i].append({"transform": "crop", "offset": o, "offset_s": o / self.sample_rate,
                                      "length": M, "source_length": int(w.shape[-1])})
                    waves[i] = w[..., o : o + M]
        wave, lengths = pad_batch(waves)
        mark_finite(wave)  # every item was scanned (_wave); padding is zero
        chosen = self.selector.select(index, epoch)
        words, word_text = self._words(items, starts, lengths)
        batch = Batch(
            wave=wave, lengths=lengths, index=index, sample_rate=self.sample_rate,
            labels=self._stack(items, "label", torch.int64), dims=self._stack(items, "dims", torch.float32),
            speaker=[it.get("speaker") for it in items], text=[it.get("text") for it in items],
            words=words, word_text=word_text, augmented=chosen,
            is_copy=torch.zeros(len(items), dtype=torch.bool), epoch=epoch, seed=self.seed, pending=True,
            record=record if any(record) else [],  # the crop entries; [] as before without crops
        )
        # every clip's parameters, drawn from (seed, epoch, index): the pipeline applies them
        # to the selected clips only (``select=``), so they do not depend on the selection
        batch.params = {} if self.pipeline is None else \
            self.pipeline.sample(len(items), seed=self.seed, epoch=epoch, index=index)
        return batch

    def __call__(self, items: Sequence[dict]) -> Batch:
        batch = self.collate(items)
        if _in_worker() and self.device.type != "cpu":
            return batch  # CUDA never initialised in a worker: the device stage finishes it
        return self.apply(batch.to(self.device))

    @staticmethod
    def _stack(items, key, dtype):
        values = [it.get(key) for it in items]
        if all(v is None for v in values):
            return None
        if any(v is None for v in values):
            raise ValueError(f"some items have {key!r} and others do not")
        return torch.stack([torch.as_tensor(v, dtype=dtype) for v in values])

    def _words(self, items, starts: Tensor | None = None, lengths: Tensor | None = None):
        """``(words, word_text)``: the ``(B, K, 2)`` int64 word intervals in samples (or None)
        and per clip the words of its rows (the items' ``word_list``; ``[]`` for an item
        without one; None when no item has one). With a crop the intervals are shifted by
        its start, cut to the window and the words wholly outside it dropped (the kept ones
        first, in order), their ``word_list`` entries with them."""
        words = [it.get("words") for it in items]
        if all(w is None for w in words):
            return None, None
        texts = [it.get("word_list") for it in items]
        has_text = any(t is not None for t in texts)
        rows, kept_text = [], []
        for i, w in enumerate(words):  # per-item metadata, not audio
            t = None if texts[i] is None else [str(x) for x in texts[i]]
            if w is None or not len(w):
                rows.append(torch.zeros(0, 2, dtype=torch.int64))
                kept_text.append([])
                continue
            r = (torch.as_tensor(w, dtype=torch.float64).reshape(-1, 2) * self.sample_rate).round().long()
            if t is not None and len(t) != r.shape[0]:
                raise ValueError(f"item {i} (index {items[i].get('index')}): word_list has {len(t)} words for "
                                 f"{r.shape[0]} 'words' intervals")
            if self.max_samples is not None and starts is not None:
                r = (r - int(starts[i])).clamp(min=0, max=int(lengths[i]))
                keep = r[:, 1] > r[:, 0]
                r = r[keep]
                t = None if t is None else [x for x, k in zip(t, keep.tolist()) if k]
            rows.append(r)
            kept_text.append([] if t is None else t)
        K = max(1, max(len(r) for r in rows))
        out = torch.zeros(len(items), K, 2, dtype=torch.int64)
        for i, r in enumerate(rows):
            out[i, : len(r)] = r
        return out, (kept_text if has_text else None)

    # ---- augmentation ------------------------------------------------------------------
    def apply(self, batch: Batch, records: list | None = None) -> Batch:
        """Augment a pending batch on its device, in one pipeline call.

        The pipeline runs once on the whole batch with ``select=`` the selection (host
        mirror: no sync): parameters were drawn for every clip, each transform gathers,
        runs on and merges back exactly the selected clips it applies to, and the batch's
        wave, lengths, params, record (after any crop entry), tags and label action come
        straight from that one result. With ``mode="append"`` the selected rows are
        duplicated first (wave and lengths on the device keeping host mirrors, words,
        labels, item indices, parameters: :meth:`_duplicate`) and the pipeline augments the
        copies only. The items' word intervals, words (``word_list``) and speakers reach the
        pipeline as ``alignments=``, ``word_text=`` and ``speakers=``.

        ``records`` replays a past batch instead of using ``batch.params``: one record per
        clip of the output batch (``Batch.record``: ``B`` clips, ``B + n`` with ``append``),
        or, as before, one per selected clip (``n``), in batch order.
        """
        if not batch.pending:
            return batch
        if self.pipeline is None:  # resample / crop / pad only
            return Batch(**{**batch.__dict__, "tags": ["clean"] * len(batch), "pending": False,
                            "applied": mirrored(torch.zeros(len(batch), dtype=torch.bool), batch.wave.device)})
        select = host_of(batch.augmented)  # the host mirror: no sync
        base = [list(r) for r in batch.record] if len(batch.record) == len(batch) else None  # crop entries
        params = batch.params
        if self.selector.mode == "append":
            batch, select, params, base = self._duplicate(batch, select, params, base)
        if records is not None:
            params = self.pipeline.params_from_records(self._records_per_clip(records, select))
        speakers = batch.speaker if any(x is not None for x in batch.speaker) else None
        out = self.pipeline(batch.wave, batch.lengths, params=params, alignments=batch.words,
                            word_text=batch.word_text, speakers=speakers, select=select)
        record = out.record
        if base is not None:
            record = [b + r for b, r in zip(base, record)]  # per-clip host metadata: crop first
        device = batch.wave.device
        return Batch(**{**batch.__dict__, "wave": out.wave, "lengths": out.lengths, "params": out.params,
                        "record": record, "tags": out.tags, "label_action": out.labels.to(device),
                        "applied": mirrored(out.applied, device), "pending": False})

    @staticmethod
    def _records_per_clip(records: list, select: Tensor) -> list:
        """``records`` as one record per clip of the batch (``len(select)``): given per clip,
        or per selected clip (spread to the selected positions, the others empty)."""
        B, sel = select.shape[0], select.nonzero().flatten().tolist()
        if len(records) == B:
            return list(records)
        if len(records) == len(sel):
            full: list = [[] for _ in range(B)]
            for j, b in enumerate(sel):
                full[b] = records[j]
            return full
        raise ValueError(f"records must have one record per clip of the batch ({B}) or per selected clip "
                         f"({len(sel)}), got {len(records)}")

    def _duplicate(self, batch: Batch, select: Tensor, params: dict, base: list | None):
        """``append``: the batch with its selected rows copied to its end.

        Returns ``(batch, select, params, base)``: ``B + n`` rows (the ``B`` originals, then
        copies of the ``n`` selected ones in batch order); tensors of ``B`` rows are gathered
        on their device with one index upload (``take_rows``: lengths and words keep their
        host mirrors, no sync), lists and the host parameters likewise; ``augmented`` and
        ``is_copy`` mark the copies, which are the new selection.
        """
        B = len(batch)
        sel = select.nonzero().flatten()
        rows = torch.cat([torch.arange(B), sel])
        dev_rows = mirrored(rows, batch.wave.device)
        rows_list = rows.tolist()

        def dup(v):
            if isinstance(v, Tensor) and v.dim() >= 1 and v.shape[0] == B:
                return take_rows(v, rows, dev_rows if v.device == batch.wave.device else None)
            if isinstance(v, list) and len(v) == B:
                return [v[i] for i in rows_list]
            return v

        fields_ = {k: dup(v) for k, v in batch.__dict__.items() if k != "params"}
        copies_host = torch.cat([torch.zeros(B, dtype=torch.bool), torch.ones(sel.numel(), dtype=torch.bool)])
        copies = mirrored(copies_host, batch.wave.device)  # on the batch's device, host copy kept (no sync)
        fields_.update(augmented=copies, is_copy=copies)
        params = {slot: {k: v[rows] for k, v in own.items()} for slot, own in params.items()}
        base = None if base is None else [base[i] for i in rows_list]
        return Batch(**fields_, params=params), copies_host, params, base
