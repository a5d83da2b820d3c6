"""Which clips get augmented: the augmentation ratio and its selection modes.

All choices are pure functions of ``(seed, epoch, item index)`` (and the set of items for
``fixed_subset``), so they do not depend on batch size, worker count or rank.

* ``bernoulli``: each item, each epoch, is selected with probability ``ratio``.
* ``fixed_subset``: the same ``round(ratio * N)`` items are selected in every epoch (the
  seeds' "augment 10 % of the training data").
* ``append``: the originals stay clean and augmented copies of the selected items (chosen as
  in ``fixed_subset`` when the set of items is known, else ``bernoulli``) are appended to
  the batch, emulating a "clean + noisy copies" training set.

``ratio`` is the share of items *selected*. Each transform of the pipeline then applies to a
selected clip with its own ``p``, so the share of items that get at least one transform is
lower (``ratio=1.0`` with ``AddNoise(p=0.8)``: 80 % get noise); a batch reports both
(:attr:`~gpuaug.data.Batch.selected_share`, :attr:`~gpuaug.data.Batch.augmented_share`).
There is no ``ratio_of="augmented"`` (forcing at least one transform on every selected clip):
give the transforms ``p=1`` or use ``SomeOf(min_count=1)`` for that.

The set of items (``fixed_subset``, ``append``) is either ``dataset_size=N`` (items carry the
indices ``0 .. N-1``) or ``subset_indices=`` (a cross-validation fold: the corpus-wide
indices its items carry, e.g. ``fold.indices`` of a ``torch.utils.data.Subset`` of a dataset
whose item ``index`` is its position). Mapping: each item of the fold gets the seeded score
of its *corpus* index, the fold's items are ranked by that score, and the
``round(ratio * len(fold))`` lowest are the fixed subset, so the choice depends on which
items form the fold, not on their order in it, and ``subset_indices=range(N)`` is exactly
``dataset_size=N``. An item whose index is outside the declared set raises a ``ValueError``
naming the argument.
"""
from __future__ import annotations

import torch
from torch import Tensor

from ..random import item_keys, stream_id, uniform

MODES = ("bernoulli", "fixed_subset", "append")

__all__ = ["MODES", "Selector"]


class Selector:
    """Selects items to augment.

    Args:
        ratio: share of items *selected* for augmentation, in [0, 1] (each transform then
            applies with its own ``p``: see the module docstring).
        mode: one of :data:`MODES`.
        seed: the run's seed.
        dataset_size: number of items N, whose indices are ``0 .. N-1`` (``fixed_subset``
            needs it or ``subset_indices``).
        max_per_batch: optional cap on augmented clips per batch (the ones with the
            smallest selection score are kept, so the cap is deterministic too).
        subset_indices: the corpus-wide indices of the items of a fold (any integer
            sequence or tensor, distinct values), instead of ``dataset_size``; then
            ``N = len(subset_indices)`` (a ``dataset_size`` given too must equal it) and
            every item's index must be one of them, in every mode.
    """

    def __init__(self, ratio: float = 1.0, mode: str = "bernoulli", *, seed: int = 0,
                 dataset_size: int | None = None, max_per_batch: int | None = None, subset_indices=None):
        if not 0.0 <= float(ratio) <= 1.0:
            raise ValueError(f"ratio must be in [0, 1], got {ratio}")
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        if dataset_size is not None and (isinstance(dataset_size, bool) or int(dataset_size) != dataset_size
                                         or dataset_size < 1):
            raise ValueError(f"dataset_size must be an integer >= 1 or None, got {dataset_size!r}")
        self._members: Tensor | None = None  # sorted corpus indices of the fold
        if subset_indices is not None:
            self._members = self._check_subset(subset_indices)
            if dataset_size is not None and int(dataset_size) != self._members.numel():
                raise ValueError(f"dataset_size={dataset_size} does not match len(subset_indices)="
                                 f"{self._members.numel()}; give subset_indices alone")
            dataset_size = self._members.numel()
        if mode == "fixed_subset" and dataset_size is None:
            raise ValueError("mode='fixed_subset' needs dataset_size (the number of training items) or "
                             "subset_indices (the corpus indices of a cross-validation fold's items)")
        if max_per_batch is not None and max_per_batch < 0:
            raise ValueError(f"max_per_batch must be >= 0, got {max_per_batch}")
        self.ratio, self.mode, self.seed = float(ratio), mode, int(seed)
        self.dataset_size = None if dataset_size is None else int(dataset_size)
        self.max_per_batch = max_per_batch
        self._rank: Tensor | None = None

    @staticmethod
    def _check_subset(subset_indices) -> Tensor:
        """``subset_indices`` as a sorted ``(N,)`` int64 host tensor (``ValueError`` naming it)."""
        if isinstance(subset_indices, Tensor):
            t = subset_indices.detach().cpu()
        else:
            try:
                t = torch.as_tensor(list(subset_indices))
            except (TypeError, ValueError, RuntimeError) as e:
                raise ValueError(f"subset_indices must be a sequence of integer item indices: {e}") from None
        if t.numel() == 0:
            raise ValueError("subset_indices is empty: a fold needs at least one item")
        if t.dtype == torch.bool or t.is_floating_point() or t.is_complex():
            raise ValueError(f"subset_indices must hold integer item indices, got dtype {t.dtype}")
        if t.dim() > 1:
            raise ValueError(f"subset_indices must be one-dimensional (the corpus indices of the fold's items), "
                             f"got shape {tuple(t.shape)}")
        t = t.to(torch.int64).reshape(-1)
        members = torch.sort(t).values
        dup = members[1:][members[1:] == members[:-1]]
        if dup.numel():
            raise ValueError(f"subset_indices holds repeated indices {torch.unique(dup).tolist()[:10]}: "
                             "every item of the fold must appear once")
        return members

    @property
    def subset_indices(self) -> Tensor | None:
        """The declared fold's corpus indices, sorted (None without ``subset_indices``)."""
        return self._members

    def _subset_rank(self) -> Tensor:
        """Rank of every item of the set (in sorted-index order) by its seeded score (computed once)."""
        if self._rank is None:
            n = int(self.dataset_size)
            members = torch.arange(n) if self._members is None else self._members
            score = uniform(item_keys(self.seed, -1, members), stream_id("select/subset"))
            rank = torch.empty(n, dtype=torch.int64)
            rank[torch.argsort(score, stable=True)] = torch.arange(n)
            self._rank = rank
        return self._rank

    def positions(self, index) -> Tensor:
        """``(B,)`` int64 positions of the items ``index`` in the declared set (sorted order:
        the index itself with ``dataset_size``); ``ValueError`` naming the argument for an
        index outside it. Vectorised (one ``searchsorted``), host only."""
        index = torch.as_tensor(index, dtype=torch.int64).cpu().reshape(-1)
        if self._members is None:
            n = self.dataset_size
            bad = (index < 0) | (index >= n)
            if bool(bad.any()):
                raise ValueError(
                    f"item index {index[bad].tolist()[:10]} out of range for dataset_size={n} (indices 0..{n - 1}); "
                    "for a cross-validation fold whose items carry corpus-wide indices, pass "
                    "subset_indices=<the fold's corpus indices> instead of dataset_size")
            return index
        members = self._members
        pos = torch.searchsorted(members, index).clamp(max=members.numel() - 1)
        bad = members[pos] != index
        if bool(bad.any()):
            raise ValueError(f"item index {index[bad].tolist()[:10]} is not in subset_indices (the declared fold of "
                             f"{members.numel()} items): give subset_indices the corpus indices of every item "
                             "the loader yields")
        return pos

    def fixed_subset(self) -> Tensor:
        """Sorted int64 indices of the ``round(ratio * N)`` items ``fixed_subset`` selects."""
        if self.dataset_size is None:
            raise ValueError("fixed_subset() needs dataset_size or subset_indices")
        members = torch.arange(self.dataset_size) if self._members is None else self._members
        return members[self._subset_rank() < round(self.ratio * self.dataset_size)]

    def select(self, index: Tensor, epoch: int) -> Tensor:
        """``(B,)`` bool: which of the items ``index`` (``(B,)`` int64) to augment in ``epoch``."""
        index = torch.as_tensor(index, dtype=torch.int64).cpu()
        if self.dataset_size is not None and self.mode != "bernoulli":
            k = round(self.ratio * self.dataset_size)
            score = self._subset_rank()[self.positions(index)].double()
            chosen = score < k
        else:
            if self._members is not None:
                self.positions(index)  # every item must belong to the declared fold
            score = uniform(item_keys(self.seed, epoch, index), stream_id("select/bernoulli"))
            chosen = score < self.ratio
        if self.max_per_batch is not None and int(chosen.sum()) > self.max_per_batch:
            order = torch.argsort(torch.where(chosen, score, torch.inf), stable=True)
            chosen = torch.zeros_like(chosen)
            chosen[order[: self.max_per_batch]] = True
        return chosen
