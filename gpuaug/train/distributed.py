"""Data order and data-parallel training (DDP) that give the same parameters as one process.

* :class:`EpochBatchSampler`: the training order, a permutation of the fold's items drawn from
  ``(seed, epoch)`` only, cut into global batches of ``batch_size``; rank ``r`` of ``W`` takes
  positions ``r, r + W, ...`` of every global batch (a rank left without a clip by a short last
  batch runs a weight-0 stand-in, so all ranks take the same steps). Each item's augmentation is a function of
  (seed, epoch, item index), so the union of the ranks' batches is the single-process batch,
  clip for clip.
* The loss of a rank is normalised by the *global* batch's normaliser (:func:`global_sum`)
  and multiplied by ``W`` (DDP averages gradients over ranks), so the summed gradient is the
  single-process gradient; parameters after a step agree to floating-point rounding (the
  reduction order differs).
* :func:`init_from_env`: under ``torchrun`` (``WORLD_SIZE`` > 1) initialise the process group
  (``gloo`` on CPU, ``nccl`` on CUDA); otherwise a single process.

Validation and test sets are evaluated in full on every rank (deterministic, so every rank
takes the same early-stopping decision); rank 0 writes the outputs.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch.utils.data import Sampler

__all__ = ["EpochBatchSampler", "DistContext", "init_from_env", "global_sum"]


class EpochBatchSampler(Sampler[list[int]]):
    """Batches of positions into a fold's item list, in an order drawn from ``(seed, epoch)``.

    Args:
        n: items in the fold.
        batch_size: the *global* batch size (all ranks together).
        seed: run seed; the permutation of epoch ``e`` uses ``torch.Generator`` seeded with
            ``seed * 1_000_003 + e`` (so resuming at any epoch gives the same order).
        rank, world: this rank's share of every global batch (positions ``rank::world``).
        shuffle: False keeps the fold's order (evaluation).
    """

    def __init__(self, n: int, batch_size: int, *, seed: int = 0, rank: int = 0, world: int = 1,
                 shuffle: bool = True):
        if n < 1 or batch_size < 1:
            raise ValueError(f"EpochBatchSampler needs n >= 1 and batch_size >= 1, got {n}, {batch_size}")
        if not 0 <= rank < world:
            raise ValueError(f"EpochBatchSampler: rank {rank} outside [0, {world})")
        if batch_size < world:
            raise ValueError(f"batch_size {batch_size} is smaller than the world size {world}")
        self.n, self.batch_size, self.seed, self.rank, self.world, self.shuffle = n, batch_size, seed, rank, world, shuffle
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def global_batches(self) -> list[list[int]]:
        """Every global batch of this epoch (positions into the fold)."""
        if self.shuffle:
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
            order = torch.randperm(self.n, generator=g).tolist()
        else:
            order = list(range(self.n))
        return [order[i:i + self.batch_size] for i in range(0, self.n, self.batch_size)]

    def __iter__(self):
        for batch in self.global_batches():
            yield batch[self.rank::self.world] or batch[:1]

    def dummy_steps(self) -> list[bool]:
        """Per step of this epoch: True where this rank has no clip of the global batch (a
        last batch of fewer than ``world`` clips) and was given the batch's first clip as a
        stand-in, which the trainer weights 0 (ranks must run the same number of steps)."""
        return [not b[self.rank::self.world] for b in self.global_batches()]

    def __len__(self) -> int:
        return len(self.global_batches())


@dataclass(frozen=True)
class DistContext:
    """Where this process stands: ``rank`` of ``world`` (1: no process group)."""

    rank: int = 0
    world: int = 1

    @property
    def main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.world > 1:
            dist.barrier()


def init_from_env(device: torch.device) -> DistContext:
    """Initialise ``torch.distributed`` from torchrun's environment (``RANK``, ``WORLD_SIZE``,
    ``MASTER_ADDR``, ``MASTER_PORT``) when ``WORLD_SIZE`` > 1; else a single process."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistContext()
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return DistContext(dist.get_rank(), dist.get_world_size())


def global_sum(value: torch.Tensor, ctx: DistContext) -> torch.Tensor:
    """``value`` summed over ranks (a detached copy; the value itself with one process)."""
    if ctx.world == 1:
        return value.detach()
    out = value.detach().clone()
    dist.all_reduce(out, op=dist.ReduceOp.SUM)
    return out
