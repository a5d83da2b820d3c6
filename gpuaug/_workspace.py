"""Reusable CPU scratch buffers of one owner (a transform): :class:`Workspace`.

Why: glibc hands allocations of 32 MiB and more (and, after heap trimming, smaller ones) back
to the kernel when they are freed, so every fresh buffer of that size is paid again in page
faults on first touch. A batch of 32 clips x 8 s at 16 kHz reverberated at an FFT size of
186,624 needs a 24 MB float32 FFT input per call (the spectrum and the inverse FFT's output
are scipy's own allocations, which glibc's heap reuses at that size); with the pipeline's other
fresh batch-sized buffers, ~120 MB of page faults per noise + reverb call cost ~0.7 ms per clip,
about half of the FFTs (ad hoc: the same pipeline with glibc's mmap and trim thresholds raised;
``benchmarks/results/kernel-timings.md``); with the workspace and the in-place steps, ~3.6 MB
per call (ad hoc, issue 11 round 4). A workspace keeps one flat buffer
per name, grown to the largest request seen, and hands out C-contiguous views of its start
(``benchmarks/reverb_speed.py`` rows ``transform_batches_cached`` / ``_fresh_buffers``).

Concurrency: :meth:`Workspace.take` removes the buffer from the workspace and
:meth:`Workspace.give` puts it back, both under a lock, so two threads calling the same
transform at once never share a buffer (the second one allocates its own). A forked
DataLoader worker gets a copy-on-write copy, as with any Python object; a pickled one (a
spawned worker, ``copy.deepcopy``) arrives empty, with a lock of its own.
"""
from __future__ import annotations

import math
import threading

import torch
from torch import Tensor

__all__ = ["Workspace"]


class Workspace:
    """Named flat scratch buffers, reused across calls (module docstring).

    Args:
        max_bytes: largest buffer kept (bytes); a larger request is allocated and dropped
            after use. Default 512 MiB.
    """

    def __init__(self, max_bytes: int = 512 << 20):
        self.max_bytes = int(max_bytes)
        self._lock = threading.Lock()
        self._buffers: dict[tuple[str, torch.dtype, torch.device], Tensor] = {}
        #: Requests served from a kept buffer / by a new allocation.
        self.stats = {"reused": 0, "allocated": 0}

    def take(self, name: str, shape: tuple[int, ...], dtype: torch.dtype, device: torch.device | str = "cpu") -> Tensor:
        """An uninitialised C-contiguous ``shape`` tensor for scratch use; return it with :meth:`give`."""
        device = torch.device(device)
        numel = math.prod(shape)
        key = (name, dtype, device)
        with self._lock:
            flat = self._buffers.pop(key, None)
            fits = flat is not None and flat.numel() >= numel
            self.stats["reused" if fits else "allocated"] += 1
        if not fits:
            flat = torch.empty(numel, dtype=dtype, device=device)
        return flat[:numel].view(shape)

    def give(self, name: str, buffer: Tensor) -> None:
        """Keep ``buffer`` (a tensor from :meth:`take`) for the next :meth:`take` of ``name``."""
        flat = buffer.detach()
        base = flat._base if flat._base is not None else flat
        if base.numel() * base.element_size() > self.max_bytes:
            return
        key = (name, base.dtype, base.device)
        with self._lock:
            kept = self._buffers.get(key)
            if kept is None or kept.numel() < base.numel():
                self._buffers[key] = base.reshape(-1)

    def __getstate__(self) -> dict:
        """Pickled (spawned DataLoader workers, ``copy.deepcopy``) without its buffers or lock."""
        return {"max_bytes": self.max_bytes}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["max_bytes"])

    def clear(self) -> None:
        """Drop every kept buffer."""
        with self._lock:
            self._buffers.clear()

    @property
    def nbytes(self) -> int:
        """Bytes held by the kept buffers."""
        with self._lock:
            return sum(b.numel() * b.element_size() for b in self._buffers.values())
