"""Host <-> device traffic of a pipeline call: uploads, host mirrors, the sanctioned syncs.

On CUDA every read of a device value by the host (``.item()``, ``bool(t)``, ``.tolist()``,
``.cpu()``, ``nonzero``, boolean-mask indexing, a blocking upload, ...) blocks the host until
the GPU has caught up, so inside a prefetch little overlap survives. gpuaug keeps everything
that decides shapes on the host (lengths, parameters, bank lengths, alignments, output
lengths) and the audio on the device, and reads the device back only at these points:

* :func:`to_host` / :func:`to_host_many`: device tensors copied to the host (one sync on CUDA,
  the sanctioned sync point; free on the CPU).
* :func:`upload` / :func:`mirrored`: host tensors to the device in **one** pinned,
  non-blocking copy (no sync); each result keeps its host tensor as a *mirror*, which
  :func:`host_of` returns without a sync (and :func:`take_rows` keeps for row subsets).
* :func:`deferred_reads`: inside it, :func:`check_later` (data-dependent validation) and
  :func:`read_later` (device values a record needs) are collected and read back in **one**
  copy when the block ends (:meth:`Deferred.flush`); outside it they run at once.

A pipeline call therefore syncs at most twice on CUDA: its input NaN / Inf scan (which also
reads device ``lengths`` that have no host mirror, in the same copy) and the deferred read
(none when nothing is deferred). :mod:`gpuaug.sync_count` counts them.
"""
from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar
from typing import Callable, Iterator, Sequence

import torch
from torch import Tensor

from .sync_count import STAND_IN, DeviceResident

__all__ = ["to_host", "to_host_many", "host_of", "has_mirror", "is_host", "mirrored", "upload", "take_rows",
           "Deferred", "deferred_reads", "check_later", "read_later", "SANCTIONED"]


#: Syncs taken through :func:`to_host` on CUDA so far (the sanctioned sync points).
SANCTIONED = {"count": 0}


def to_host(t: Tensor) -> Tensor:
    """``t`` on the CPU (``t`` itself when it is already there). One host sync on CUDA.

    This is the sanctioned sync point: under ``torch.cuda.set_sync_debug_mode("error")`` it
    still runs (the mode is lifted for this copy) and is counted in :data:`SANCTIONED`, so
    any other sync on the hot path raises.
    """
    if is_host(t.device):
        return t
    if t.device.type == "cpu":  # the CPU stand-in (sync_count counts this read)
        return t.cpu()
    SANCTIONED["count"] += 1
    mode = torch.cuda.get_sync_debug_mode()
    if mode:
        torch.cuda.set_sync_debug_mode(0)
    try:
        return t.cpu()
    finally:
        if mode:
            torch.cuda.set_sync_debug_mode(mode)


def to_host_many(tensors: Sequence[Tensor]) -> list[Tensor]:
    """Host copies of several tensors of one device in one copy (one sync on CUDA)."""
    if all(is_host(t.device) for t in tensors):
        return list(tensors)
    flat, slots = _pack(tensors)
    return _unpack(to_host(flat), slots)


def host_of(t: Tensor) -> Tensor:
    """The host copy of ``t``: its mirror from :func:`mirrored` if neither changed since, else
    :func:`to_host` (a sync on CUDA). Never modify the result in place."""
    mirror = _mirror(t)
    return mirror if mirror is not None else to_host(t)


def is_host(device: torch.device | str) -> bool:
    """Whether ``device`` is the host (the CPU, not the CPU stand-in of a device)."""
    device = torch.device(device)
    return device.type == "cpu" and device != STAND_IN


def has_mirror(t: Tensor) -> bool:
    """Whether :func:`host_of` of ``t`` is free: a host tensor, or a device tensor whose mirror
    is still valid."""
    return is_host(t.device) or _mirror(t) is not None


def mirrored(host: Tensor, device: torch.device | str) -> Tensor:
    """``host`` (a CPU tensor) on ``device``, uploaded without a sync, with ``host`` kept as
    its mirror for :func:`host_of` (on the CPU: ``host`` itself). Never modify either in place
    (an in-place change is detected through the version counters and costs a sync)."""
    return upload([host], device)[0]


def upload(tensors: Sequence[Tensor], device: torch.device) -> list[Tensor]:
    """Copy host tensors to ``device`` in one pinned, non-blocking transfer (no host sync).

    The tensors are packed byte-wise into one pinned buffer (8-byte aligned slots), copied
    once, and viewed back with their dtypes and shapes; each result keeps its host tensor as
    the mirror :func:`host_of` returns. On the CPU they are returned as they are. Shapes:
    any; dtypes: any non-complex.
    """
    device = torch.device(device)
    if is_host(device):
        return list(tensors)
    if device == STAND_IN:  # the CPU stand-in of a device (see count_syncs)
        return [_with_mirror(t.detach().clone().as_subclass(DeviceResident), t) for t in tensors]
    if not tensors:
        return []
    flat, slots = _pack([t.detach().cpu() for t in tensors])
    dev = flat.pin_memory().to(device, non_blocking=True)  # the pinned block is not reused before the copy ends
    return [_with_mirror(d, t) for d, t in zip(_unpack(dev, slots), tensors)]


def _pack(tensors: Sequence[Tensor]) -> tuple[Tensor, list]:
    """Tensors of one device as one uint8 tensor (8-byte aligned slots) and the slot table."""
    parts, slots, offset = [], [], 0
    for t in tensors:
        b = t.detach().contiguous().reshape(-1).view(torch.uint8) if t.numel() else t.new_empty(0, dtype=torch.uint8)
        slots.append((offset, b.numel(), t.dtype, t.shape))
        pad = (-b.numel()) % 8
        parts.append(b)
        if pad:
            parts.append(b.new_zeros(pad))
        offset += b.numel() + pad
    return torch.cat(parts), slots


def _unpack(flat: Tensor, slots: list) -> list[Tensor]:
    return [flat[o:o + n].view(dt).reshape(shape) for o, n, dt, shape in slots]


class Deferred:
    """Checks and reads collected by :func:`deferred_reads`, resolved by :meth:`flush`."""

    def __init__(self):
        self.checks: list[tuple[Tensor, Callable[[Tensor], str]]] = []
        self.reads: list[tuple[Tensor, Callable[[Tensor], None]]] = []

    def flush(self) -> None:
        """Read every collected tensor back in one copy (one sync on CUDA), raise the first
        failed check's ``ValueError``, then hand each read to its sink. Empties the lists."""
        checks, reads = self.checks, self.reads
        self.checks, self.reads = [], []
        tensors = [t for t, _ in checks] + [t for t, _ in reads]
        if not tensors:
            return
        host = to_host_many(tensors)
        for (_, message), ok in zip(checks, host):
            if not bool(ok.all()):
                raise ValueError(message(ok))
        for (_, sink), value in zip(reads, host[len(checks):]):
            sink(value)


_DEFERRED: ContextVar[Deferred | None] = ContextVar("gpuaug_deferred", default=None)


@contextmanager
def deferred_reads() -> Iterator[Deferred]:
    """Collect :func:`check_later` / :func:`read_later` inside the block; the caller calls
    :meth:`Deferred.flush` (nothing is read if the block raises)."""
    state = Deferred()
    token = _DEFERRED.set(state)
    try:
        yield state
    finally:
        _DEFERRED.reset(token)


def check_later(ok: Tensor, message: Callable[[Tensor], str]) -> None:
    """Raise ``ValueError(message(host ok))`` unless ``ok`` (a bool tensor) is all True: at once,
    or at the end of the enclosing :func:`deferred_reads` block."""
    state = _DEFERRED.get()
    if state is None:
        if not bool(to_host(ok).all()):
            raise ValueError(message(to_host(ok)))
        return
    state.checks.append((ok, message))


def read_later(value: Tensor, sink: Callable[[Tensor], None]) -> None:
    """``sink(host copy of value)``: at once (free for host tensors and mirrors), or at the end
    of the enclosing :func:`deferred_reads` block."""
    state = _DEFERRED.get()
    if state is None or has_mirror(value):
        sink(host_of(value))
        return
    state.reads.append((value, sink))


def take_rows(t: Tensor, index: Tensor, index_on_device: Tensor | None = None) -> Tensor:
    """``t[index]`` (rows), keeping a host mirror: ``index`` is a host int64 tensor and
    ``index_on_device`` its upload (made here when omitted). No sync when ``t`` has a mirror."""
    if is_host(t.device):
        return t[index]
    dev_index = index_on_device if index_on_device is not None else mirrored(index, t.device)
    out = t[dev_index]
    mirror = _mirror(t)
    if mirror is not None:
        _with_mirror(out, mirror[index])
    return out


def _mirror(t: Tensor) -> Tensor | None:
    """The host mirror of device tensor ``t`` if neither side changed in place since, else None."""
    mirror = getattr(t, "_gpuaug_host", None)
    if mirror is not None and t._version == mirror[1] and mirror[0]._version == mirror[2]:
        return mirror[0]
    return None


def _with_mirror(dev: Tensor, host: Tensor) -> Tensor:
    dev._gpuaug_host = (host, dev._version, host._version)
    return dev
