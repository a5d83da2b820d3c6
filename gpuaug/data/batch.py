"""The batch a gpuaug collate returns: audio, labels, and the per-clip augmentation record.

Tensor fields are ``(B, ...)``; list fields have one entry per clip. ``record[b]`` lists the
transforms applied to clip ``b`` with all their parameters as plain numbers (noise
category, SNR, factors, ...), ``tags[b]`` its perception tag, and ``label_action`` what the
perception policy decided for its label (keep / drop / loss mask / relabelled targets).
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields, replace

import torch
from torch import Tensor

from .._sync import host_of, is_host, upload
from ..sync_count import STAND_IN, DeviceResident

from ..policy.labels import LabelAction

__all__ = ["Batch"]


def _move(value, fn):
    if isinstance(value, Tensor):
        return fn(value)
    if isinstance(value, LabelAction):
        return LabelAction(*(fn(getattr(value, f)) if isinstance(getattr(value, f), Tensor) else getattr(value, f)
                             for f in ("keep", "loss_weight", "delta", "dimensional_weight", "action")))
    return value


def _to_device(t: Tensor, device: torch.device, non_blocking: bool) -> Tensor:
    if device == STAND_IN:  # the CPU stand-in of a device (gpuaug.sync_count.count_syncs)
        return t if isinstance(t, DeviceResident) else t.as_subclass(DeviceResident)
    return t.to(device, non_blocking=non_blocking)


@dataclass
class Batch:
    """A collated, possibly augmented batch.

    Attributes:
        wave: ``(B, T)`` or ``(B, C, T)`` float audio at ``sample_rate``, zero padded.
        lengths: ``(B,)`` int64 valid samples.
        index: ``(B,)`` int64 dataset index of each clip.
        sample_rate: Hz.
        labels: ``(B,)`` int64 categorical labels (or None).
        dims: ``(B, 3)`` float dimensional labels (valence, activation, dominance) or None.
        speaker, text: per-clip lists (None entries where absent).
        words: ``(B, K, 2)`` int64 word intervals in samples at ``sample_rate`` (rows with
            ``end <= start`` unused) or None; valid for the clean audio.
        word_text: per clip the words of its ``words`` rows (lists of str, from the items'
            ``word_list``; ``[]`` for an item without one), or None when no item has one.
        augmented: ``(B,)`` bool, clips *selected* for augmentation (with ``mode="append"``,
            once augmented: the appended copies).
        is_copy: ``(B,)`` bool, augmented copies appended by ``mode="append"``.
        params: replayable pipeline parameters of every clip (``{slot: {name: (B,)}}``);
            ``apply`` is False outside the selection once augmentation ran.
        record, tags, label_action: see module docstring (filled once augmentation ran).
        applied: ``(B,)`` bool, clips at least one transform was applied to (a subset of
            ``augmented``: each transform applies with its own ``p``); None while pending.
        pending: True while the augmentation still has to run (device stage).
        epoch, seed: what the parameters were drawn from.

    Shares (``selected_share``, ``augmented_share``, :meth:`summary`) count *items*, the rows
    that are not appended copies, so both compare directly with the collate's ``ratio``.
    """

    wave: Tensor
    lengths: Tensor
    index: Tensor
    sample_rate: int
    labels: Tensor | None = None
    dims: Tensor | None = None
    speaker: list = field(default_factory=list)
    text: list = field(default_factory=list)
    words: Tensor | None = None
    augmented: Tensor | None = None
    is_copy: Tensor | None = None
    params: dict = field(default_factory=dict)
    record: list = field(default_factory=list)
    tags: list = field(default_factory=list)
    label_action: LabelAction | None = None
    pending: bool = False
    epoch: int = 0
    seed: int = 0
    applied: Tensor | None = None
    word_text: list | None = None

    def __len__(self) -> int:
        return self.wave.shape[0]

    # ---- realised shares (host masks: mirrors of uploaded masks, no sync) ------------------
    def _items(self) -> int:
        """Rows that are items, not appended copies."""
        return len(self) if self.is_copy is None else len(self) - int(host_of(self.is_copy).sum())

    @property
    def selected_share(self) -> float | None:
        """Share of the batch's items selected for augmentation, in ``[0, 1]`` (the
        realisation of the collate's ``ratio``; with ``append``: copies / originals); None
        without a selection (``augmented`` None)."""
        if self.augmented is None:
            return None
        items = self._items()
        return int(host_of(self.augmented).sum()) / items if items else 0.0

    @property
    def augmented_share(self) -> float | None:
        """Share of the batch's items that got at least one transform, in ``[0, 1]``
        (``<= selected_share``: each transform applies with its own ``p``); None while
        pending."""
        if self.applied is None:
            return None
        items = self._items()
        return int(host_of(self.applied).sum()) / items if items else 0.0

    def summary(self) -> dict:
        """``{"clips", "items", "selected", "augmented", "selected_share", "augmented_share",
        "tags"}``: rows, items (rows that are not copies), items selected, items that got a
        transform (None while pending), the two shares, and the count of each tag."""
        items = self._items()
        selected = 0 if self.augmented is None else int(host_of(self.augmented).sum())
        augmented = None if self.applied is None else int(host_of(self.applied).sum())
        tags: dict[str, int] = {}
        for t in self.tags:
            tags[t] = tags.get(t, 0) + 1
        return {"clips": len(self), "items": items, "selected": selected, "augmented": augmented,
                "selected_share": self.selected_share, "augmented_share": self.augmented_share, "tags": tags}

    def _map(self, fn) -> "Batch":
        return replace(self, **{f.name: _move(getattr(self, f.name), fn) for f in fields(self)
                                if f.name not in ("params",)})

    def to(self, device, non_blocking: bool = False) -> "Batch":
        """Move every tensor to ``device`` (parameters stay on the CPU, as records).

        From the host to a GPU, the small tensors (lengths, index, labels, masks, words, the
        label action) go in one pinned non-blocking copy and keep their host copies as
        mirrors (:func:`gpuaug._sync.host_of`), so the device stage reads lengths and
        selections without a sync; ``wave`` is copied as it is (pinned by the DataLoader's
        ``pin_memory=True`` for a non-blocking copy).
        """
        device = torch.device(device)
        if is_host(device):
            return self._map(lambda t: t.to(device, non_blocking=non_blocking))
        small = [f.name for f in fields(self) if f.name not in ("wave", "params")
                 and isinstance(getattr(self, f.name), Tensor) and getattr(self, f.name).device.type == "cpu"]
        moved = dict(zip(small, upload([getattr(self, k) for k in small], device)))
        rest = {f.name: _to_device(getattr(self, f.name), device, non_blocking) for f in fields(self)
                if isinstance(getattr(self, f.name), Tensor) and f.name not in small}
        action = None if self.label_action is None else self.label_action.to(device)
        return replace(self, **moved, **rest, label_action=action)

    def pin_memory(self) -> "Batch":
        """Pinned-memory copy of the host tensors (called by ``DataLoader(pin_memory=True)``;
        tensors already on a device, from a collate that augmented there, stay as they are)."""
        return self._map(lambda t: t.pin_memory() if t.device.type == "cpu" else t)

    def kept(self) -> "Batch":
        """The batch without the clips the label policy says to drop."""
        if self.label_action is None or bool(self.label_action.keep.all()):
            return self
        keep = self.label_action.keep.to(self.wave.device)
        rows = keep.nonzero().flatten()
        rows_cpu = rows.cpu().tolist()

        def take(v):
            if isinstance(v, Tensor) and v.dim() >= 1 and v.shape[0] == len(self):
                return v[rows.to(v.device)]
            if isinstance(v, list) and len(v) == len(self):
                return [v[i] for i in rows_cpu]
            if isinstance(v, LabelAction):
                return LabelAction(take(v.keep), take(v.loss_weight), take(v.delta), take(v.dimensional_weight),
                                   take(v.action))
            return v

        return replace(self, **{f.name: take(getattr(self, f.name)) for f in fields(self) if f.name != "params"})

    def dimensional_targets(self) -> Tensor | None:
        """``dims`` with the policy's relabel deltas added to valence and activation."""
        if self.dims is None:
            return None
        if self.label_action is None:
            return self.dims
        out = self.dims.clone()
        out[:, :2] = out[:, :2] + self.label_action.delta.to(out.device, out.dtype)
        return out
