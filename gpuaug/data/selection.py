"""Which clips get augmented: the augmentation ratio and its selection modes.

All choices are pure functions of ``(seed, epoch, item index)`` (and the dataset size for
``fixed_subset``), so they do not depend on batch size, worker count or rank.

* ``bernoulli``: each item, each epoch, is augmented with probability ``ratio``.
* ``fixed_subset``: the same ``round(ratio * N)`` items are augmented in every epoch (the
  seeds' "augment 10 % of the training data").
* ``append``: the originals stay clean and augmented copies of the selected items (chosen as
  in ``fixed_subset`` when the dataset size is known, else ``bernoulli``) are appended to
  the batch, emulating a "clean + noisy copies" training set.
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
        ratio: share of items to augment, in [0, 1].
        mode: one of :data:`MODES`.
        seed: the run's seed.
        dataset_size: number of items N (required for ``fixed_subset``).
        max_per_batch: optional cap on augmented clips per batch (the ones with the
            smallest selection score are kept, so the cap is deterministic too).
    """

    def __init__(self, ratio: float = 1.0, mode: str = "bernoulli", *, seed: int = 0,
                 dataset_size: int | None = None, max_per_batch: int | None = None):
        if not 0.0 <= float(ratio) <= 1.0:
            raise ValueError(f"ratio must be in [0, 1], got {ratio}")
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        if mode == "fixed_subset" and dataset_size is None:
            raise ValueError("mode='fixed_subset' needs dataset_size (the number of training items)")
        if max_per_batch is not None and max_per_batch < 0:
            raise ValueError(f"max_per_batch must be >= 0, got {max_per_batch}")
        self.ratio, self.mode, self.seed = float(ratio), mode, int(seed)
        self.dataset_size, self.max_per_batch = dataset_size, max_per_batch
        self._rank: Tensor | None = None

    def _subset_rank(self) -> Tensor:
        """Rank of every item in a seed-fixed permutation of the dataset (computed once)."""
        if self._rank is None:
            n = int(self.dataset_size)
            score = uniform(item_keys(self.seed, -1, torch.arange(n)), stream_id("select/subset"))
            rank = torch.empty(n, dtype=torch.int64)
            rank[torch.argsort(score, stable=True)] = torch.arange(n)
            self._rank = rank
        return self._rank

    def select(self, index: Tensor, epoch: int) -> Tensor:
        """``(B,)`` bool: which of the items ``index`` (``(B,)`` int64) to augment in ``epoch``."""
        index = torch.as_tensor(index, dtype=torch.int64).cpu()
        if self.dataset_size is not None and self.mode != "bernoulli":
            if bool(((index < 0) | (index >= self.dataset_size)).any()):
                raise ValueError(f"item index out of range for dataset_size={self.dataset_size}: {index.tolist()}")
            k = round(self.ratio * self.dataset_size)
            score = self._subset_rank()[index].double()
            chosen = score < k
        else:
            score = uniform(item_keys(self.seed, epoch, index), stream_id("select/bernoulli"))
            chosen = score < self.ratio
        if self.max_per_batch is not None and int(chosen.sum()) > self.max_per_batch:
            order = torch.argsort(torch.where(chosen, score, torch.inf), stable=True)
            chosen = torch.zeros_like(chosen)
            chosen[order[: self.max_per_batch]] = True
        return chosen
