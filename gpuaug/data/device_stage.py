"""The device stage: move batches to the GPU and finish their augmentation there.

DataLoader workers must never initialise CUDA, so with workers the collate returns
``pending`` batches (CPU work done, parameters drawn). :class:`DeviceLoader` wraps the
DataLoader in the main process: it moves each batch to the device and runs the augmentation
there. On CUDA it prepares the next batch on a side stream while the current one is used.
"""
from __future__ import annotations

import torch

from .batch import Batch
from .collate import AugmentCollate

__all__ = ["DeviceLoader"]


class DeviceLoader:
    """Iterate ``loader`` yielding batches on ``device`` with augmentation applied.

    Args:
        loader: a DataLoader whose ``collate_fn`` is ``collate``.
        collate: the :class:`AugmentCollate` (its pipeline and banks should live on ``device``).
        device: target device.
        prefetch: on CUDA, prepare the next batch on a side stream (default True).
    """

    def __init__(self, loader, collate: AugmentCollate, device, prefetch: bool = True):
        self.loader, self.collate = loader, collate
        self.device = torch.device(device)
        self.prefetch = prefetch and self.device.type == "cuda"

    def __len__(self) -> int:
        return len(self.loader)

    def set_epoch(self, epoch: int) -> None:
        """Set the epoch on the collate and, if it has one, the loader's sampler."""
        self.collate.set_epoch(epoch)
        sampler = getattr(self.loader, "sampler", None)
        if hasattr(sampler, "set_epoch"):
            sampler.set_epoch(epoch)

    def _finish(self, batch: Batch) -> Batch:
        return self.collate.apply(batch.to(self.device, non_blocking=True))

    def __iter__(self):
        if not self.prefetch:
            for batch in self.loader:
                yield self._finish(batch)
            return
        stream = torch.cuda.Stream(self.device)
        pending = None
        for batch in self.loader:
            with torch.cuda.stream(stream):
                ready = self._finish(batch)
            if pending is not None:
                yield pending
            torch.cuda.current_stream(self.device).wait_stream(stream)
            pending = ready
        if pending is not None:
            yield pending
