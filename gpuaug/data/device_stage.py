"""The device stage: move batches to the GPU and finish their augmentation there.

DataLoader workers must never initialise CUDA, so with workers the collate returns
``pending`` batches (CPU work done, parameters drawn). :class:`DeviceLoader` wraps the
DataLoader in the main process: it moves each batch to the device and runs the augmentation
there. On CUDA it prepares the next batch on a side stream while the current one is used.

Prefetch safety (CUDA): a batch built on the side stream is used on the consumer's stream
(the current stream when the consumer asks for the batch). Three rules make that safe:

* ordering: the consumer stream waits for the side stream (``wait_stream``) right before
  the batch is handed over, i.e. after the consumer enqueued its work on the previous batch
  and before the side stream starts the next one, so the overlap is kept;
* memory: every CUDA tensor reachable from the batch (dataclass fields, dicts, lists,
  tuples, recursively: :func:`record_stream`) is marked as used by the consumer stream
  (``Tensor.record_stream``). Without it a freed batch returns its blocks to the side
  stream's pool at once, and the next prefetch can overwrite them while the consumer's
  queued kernels still read them;
* transfer: the host-to-device copy is asynchronous only from pinned memory; audio the
  DataLoader did not pin (``DataLoader(pin_memory=True)`` pins it in its own thread) is
  pinned here first (``pin_memory=True``, the default).

The side stream also starts by waiting for the consumer stream, so device work the caller
enqueued before iterating (banks moved to the GPU, say) is visible to the prefetch.
"""
from __future__ import annotations

import dataclasses
from typing import Iterator

import torch
from torch import Tensor

from .batch import Batch
from .collate import AugmentCollate

__all__ = ["DeviceLoader", "iter_tensors", "record_stream"]


def iter_tensors(obj) -> Iterator[Tensor]:
    """Every tensor reachable from ``obj``, each once (by identity).

    Walks dataclass instances (their fields), dicts (values), lists, tuples and sets,
    recursively; other objects (strings, numbers, modules, banks held by reference) are
    not entered.
    """
    seen: set[int] = set()
    stack = [obj]
    while stack:
        o = stack.pop()
        if id(o) in seen:
            continue
        seen.add(id(o))
        if isinstance(o, Tensor):
            yield o
        elif dataclasses.is_dataclass(o) and not isinstance(o, type):
            stack.extend(reversed([getattr(o, f.name) for f in dataclasses.fields(o)]))
        elif isinstance(o, dict):
            stack.extend(reversed(list(o.values())))
        elif isinstance(o, (list, tuple, set, frozenset)):
            stack.extend(reversed(list(o)))


def record_stream(obj, stream, device_type: str = "cuda") -> list[Tensor]:
    """``t.record_stream(stream)`` for every tensor of ``obj`` on ``device_type``; returns them.

    After this a tensor's memory is not reused before the work queued on ``stream`` at the
    time the tensor is freed has finished (see :meth:`torch.Tensor.record_stream`).
    """
    done = [t for t in iter_tensors(obj) if t.device.type == device_type]
    for t in done:
        t.record_stream(stream)
    return done


def _pinned(batch):
    """``batch`` with its audio in pinned host memory (``batch`` itself when there is nothing to pin).

    Only ``wave`` is pinned here: it is the one large copy (``Batch.to`` sends the small
    tensors in one pinned block of its own).
    """
    if not isinstance(batch, Batch) or not isinstance(batch.wave, Tensor) or batch.wave.device.type != "cpu" \
            or batch.wave.is_pinned():
        return batch
    return dataclasses.replace(batch, wave=batch.wave.pin_memory())


class DeviceLoader:
    """Iterate ``loader`` yielding batches on ``device`` with augmentation applied.

    Args:
        loader: a DataLoader whose ``collate_fn`` is ``collate``.
        collate: the :class:`AugmentCollate` (its pipeline and banks should live on ``device``).
        device: target device.
        prefetch: on CUDA, prepare the next batch on a side stream (default True).
        pin_memory: on CUDA, pin the audio of host batches the loader did not pin before the
            copy (default True), so the host-to-device copy is asynchronous.
    """

    def __init__(self, loader, collate: AugmentCollate, device, prefetch: bool = True, pin_memory: bool = True):
        self.loader, self.collate = loader, collate
        self.device = torch.device(device)
        self.prefetch = prefetch and self.device.type == "cuda"
        self.pin_memory = pin_memory and self.device.type == "cuda"

    def __len__(self) -> int:
        return len(self.loader)

    def set_epoch(self, epoch: int) -> None:
        """Set the epoch on the collate and, if it has one, the loader's sampler."""
        self.collate.set_epoch(epoch)
        sampler = getattr(self.loader, "sampler", None)
        if hasattr(sampler, "set_epoch"):
            sampler.set_epoch(epoch)

    def _finish(self, batch: Batch) -> Batch:
        if self.pin_memory:
            batch = _pinned(batch)
        return self.collate.apply(batch.to(self.device, non_blocking=True))

    def __iter__(self):
        if not self.prefetch:
            for batch in self.loader:
                yield self._finish(batch)
            return
        side = torch.cuda.Stream(self.device)
        side.wait_stream(torch.cuda.current_stream(self.device))
        batches = iter(self.loader)
        pending = None
        while True:
            with torch.cuda.stream(side):  # an in-process collate's device work runs here too
                try:
                    batch = next(batches)
                except StopIteration:
                    break
                ready = self._finish(batch)
            del batch
            if pending is not None:
                yield pending  # the consumer enqueues its work on it, then asks for the next
            consumer = torch.cuda.current_stream(self.device)
            consumer.wait_stream(side)  # `ready` (and all side work so far) before its use
            record_stream(ready, consumer)
            pending = ready
        if pending is not None:
            yield pending
