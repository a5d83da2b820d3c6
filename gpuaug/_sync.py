"""Host <-> device traffic of a pipeline call: the one upload, the allowed syncs, and a counter.

On CUDA every read of a device value by the host (``.item()``, ``bool(t)``, ``.tolist()``,
``.cpu()``, ``nonzero``, boolean-mask indexing, ...) blocks the host until the GPU has caught
up, so inside a prefetch little overlap survives. gpuaug keeps everything that decides
shapes on the host (lengths, parameters, bank lengths, alignments) and the audio on the
device, and reads the device back only at the documented points:

* :func:`to_host`: a device tensor copied to the host (counted as one sync on CUDA; free
  on CPU).
* :func:`upload`: host tensors to the device in **one** pinned, non-blocking copy (no sync).
* :func:`deferred_reads`: inside it, :func:`check_later` (data-dependent validation) and
  :func:`read_later` (device values a record needs) are collected and read back in **one**
  copy when the block ends (:meth:`Deferred.flush`); outside it they run at once.

A pipeline call therefore syncs at most twice on CUDA: its input NaN / Inf scan (which also
reads device ``lengths`` that have no host mirror, in the same copy) and the deferred read
(none when nothing is deferred).

:func:`count_syncs` counts what really blocks: on CUDA through
``torch.cuda.set_sync_debug_mode("warn")``; on the CPU through :class:`DeviceResident`, a
tensor subclass that marks what would live on the GPU (the audio, the banks' audio, device
lengths and everything computed from them) and counts every host read of a marked tensor.
The CPU count is an instrumented stand-in: tensors created by factory functions and then
filled in place stay unmarked, so it can miss a read of such a tensor (the CUDA count
cannot).
"""
from __future__ import annotations

import traceback
from contextvars import ContextVar
from pathlib import Path
from typing import Callable
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Iterator, Sequence

import torch
from torch import Tensor

__all__ = ["deferred_reads", "check_later", "read_later", "Deferred", "to_host", "to_host_many", "host_of", "has_mirror", "is_host", "mirrored", "upload", "take_rows", "DeviceResident", "SyncCount", "count_syncs",
           "mark_device", "STAND_IN"]


#: Syncs taken through :func:`to_host` on CUDA so far (the sanctioned sync points).
SANCTIONED = {"count": 0}


def to_host(t: Tensor) -> Tensor:
    """``t`` on the CPU (``t`` itself when it is already there). One host sync on CUDA.

    This is the sanctioned sync point: under ``torch.cuda.set_sync_debug_mode("error")`` it
    still runs (the mode is lifted for this copy) and is counted in :data:`SANCTIONED`, so
    any other sync on the hot path raises.
    """
    if t.device.type == "cpu":
        return t.cpu() if isinstance(t, DeviceResident) else t
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
    if all(is_host(t.device) and not isinstance(t, DeviceResident) for t in tensors):
        return list(tensors)
    flat, slots = _pack(tensors)
    return _unpack(to_host(flat), slots)


def host_of(t: Tensor) -> Tensor:
    """The host copy of ``t``: its mirror from :func:`mirrored` if neither changed since, else
    :func:`to_host` (a sync on CUDA). Never modify the result in place."""
    mirror = getattr(t, "_gpuaug_host", None)
    if mirror is not None:
        host, version, host_version = mirror
        if t._version == version and host._version == host_version:
            return host
    return to_host(t)


def is_host(device: torch.device | str) -> bool:
    """Whether ``device`` is the host (the CPU, not the CPU stand-in of a device)."""
    device = torch.device(device)
    return device.type == "cpu" and device != STAND_IN


def has_mirror(t: Tensor) -> bool:
    """Whether :func:`host_of` of ``t`` is free: a host tensor, or a device tensor whose mirror
    is still valid."""
    if t.device.type == "cpu" and not isinstance(t, DeviceResident):
        return True
    mirror = getattr(t, "_gpuaug_host", None)
    return mirror is not None and t._version == mirror[1] and mirror[0]._version == mirror[2]


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
    mirror = getattr(value, "_gpuaug_host", None)
    state = _DEFERRED.get()
    if state is None or (value.device.type == "cpu" and not isinstance(value, DeviceResident)) or mirror is not None:
        sink(host_of(value))
        return
    state.reads.append((value, sink))


def take_rows(t: Tensor, index: Tensor, index_on_device: Tensor | None = None) -> Tensor:
    """``t[index]`` (rows), keeping a host mirror: ``index`` is a host int64 tensor and
    ``index_on_device`` its upload (made here when omitted). No sync when ``t`` has a mirror."""
    if t.device.type == "cpu" and not isinstance(t, DeviceResident):
        return t[index]
    dev_index = index_on_device if index_on_device is not None else mirrored(index, t.device)
    out = t[dev_index]
    mirror = getattr(t, "_gpuaug_host", None)
    if mirror is not None and t._version == mirror[1] and mirror[0]._version == mirror[2]:
        _with_mirror(out, mirror[0][index])
    return out


def _with_mirror(dev: Tensor, host: Tensor) -> Tensor:
    dev._gpuaug_host = (host, dev._version, host._version)
    return dev


# ---- counting ------------------------------------------------------------------------------
@dataclass
class SyncCount:
    """Host syncs seen inside :func:`count_syncs`: ``count`` and where they happened."""

    count: int = 0
    sites: list[str] = field(default_factory=list)
    #: CPU stand-in only: calls mixing device tensors with host tensors of one or more
    #: dimensions (an error on CUDA, silently fine on the CPU).
    mixed: list[str] = field(default_factory=list)


#: The stand-in device of :class:`DeviceResident` tensors (a CPU device, told apart by its index).
STAND_IN = torch.device("cpu", 0)
_F = torch.Tensor
_HOST_READS = {
    _F.item, _F.tolist, _F.__bool__, _F.__int__, _F.__float__, _F.__index__, _F.cpu,
    _F.nonzero, torch.nonzero, _F.argwhere, torch.argwhere, _F.masked_select, torch.masked_select,
    _F.unique, torch.unique, torch.unique_consecutive, _F.equal, torch.equal, torch.allclose, _F.allclose,
    _F.bincount, torch.bincount, _F.__repr__, _F.__format__,
}
_INDEXING = {_F.__getitem__, _F.__setitem__, _F.index_put_, _F.index_put, torch.index_put}


def _walk(obj):
    if isinstance(obj, Tensor):
        yield obj
    elif isinstance(obj, (tuple, list)):
        for o in obj:
            yield from _walk(o)
    elif isinstance(obj, dict):
        for o in obj.values():
            yield from _walk(o)


def _marked(obj) -> bool:
    return any(isinstance(t, DeviceResident) for t in _walk(obj))


def _target_device(func, args, kwargs):
    dev = kwargs.get("device")
    if dev is None and func in (_F.to, _F.new_empty, _F.new_zeros, _F.new_ones, _F.new_full, _F.new_tensor):
        dev = next((a for a in args[1:] if isinstance(a, (str, torch.device))), None)
        if dev is None and func is _F.to:
            other = next((a for a in args[1:] if isinstance(a, Tensor)), None)
            dev = None if other is None else other.device
    return None if dev is None else torch.device(dev)


def _is_host_read(func, args, kwargs) -> bool:
    if func in _HOST_READS:
        return _marked(args[:1]) or (func in (torch.equal, torch.allclose) and _marked(args))
    if func in _INDEXING:
        if _marked(args[:1]) and any(t.dtype == torch.bool for t in _walk(args[1:2])):
            return True  # a boolean mask: nonzero on the device
        return func is _F.__setitem__ and not _marked(args[:1]) and _marked(args[2:])  # device -> host write
    if func is _F.copy_:
        return not _marked(args[:1]) and _marked(args[1:])
    if func in (torch.repeat_interleave, _F.repeat_interleave):  # tensor repeats: output size read back
        repeats = kwargs.get("repeats", args[1] if len(args) > 1 else None)
        return _marked(args) and isinstance(repeats, Tensor) and kwargs.get("output_size") is None
    if func is _F.to:
        dev = _target_device(func, args, kwargs)
        return _marked(args[:1]) and dev is not None and dev != STAND_IN
    return False


_MOVES = {_F.to, _F.copy_, _F.__setitem__, _F.__getitem__, _F.index_put_, _F.index_put, torch.index_put,
          _F.new_tensor, torch.as_tensor, torch.tensor, _F.as_subclass, _F.__repr__, _F.__format__}


def _mixes_devices(func, args, kwargs) -> bool:
    """A device tensor and a host tensor with ``dim >= 1`` in one op (CUDA refuses it; the
    index of ``t[index]`` is excepted: torch moves it, with a sync counted apart)."""
    if func in _MOVES or func in _HOST_READS:
        return False
    tensors = list(_walk((args, kwargs)))
    return any(isinstance(t, DeviceResident) for t in tensors) and any(
        not isinstance(t, DeviceResident) and t.dim() >= 1 for t in tensors)


def _site() -> str:
    """``file:line code`` of the innermost gpuaug frame (package or kernels) of the caller."""
    import gpuaug.kernels

    roots = (str(Path(__file__).parent), str(Path(gpuaug.kernels.__file__).parent))
    frames = [f for f in reversed(traceback.extract_stack()[:-2]) if f.filename.startswith(roots) and f.filename != __file__]
    if not frames:
        return "outside gpuaug"
    site = f"{Path(frames[0].filename).parent.name}/{Path(frames[0].filename).name}:{frames[0].lineno} {frames[0].line}"
    callers = " < ".join(f"{Path(f.filename).name}:{f.lineno}" for f in frames[1:3])
    return f"{site}  [< {callers}]" if callers else site


class DeviceResident(Tensor):
    """A CPU tensor standing for a device tensor; its ``device`` reads :data:`STAND_IN`.

    Results of ops on a marked tensor are marked (torch's default subclass handling); under
    :func:`count_syncs`, tensors created on or moved to :data:`STAND_IN` are marked, and the
    result of a host read is a plain host tensor.
    """

    @property
    def device(self) -> torch.device:  # type: ignore[override]
        return STAND_IN


class _Counting(torch.overrides.TorchFunctionMode):
    def __init__(self, result: SyncCount):
        super().__init__()
        self.result = result

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        read = _is_host_read(func, args, kwargs)
        if func is _F.to and _marked(args[:1]) and _target_device(func, args, kwargs) == STAND_IN:
            # already "on the device": as on CUDA, .to() of the same device must not copy
            args = tuple(torch.device("cpu") if isinstance(a, torch.device) and a == STAND_IN else a for a in args)
            kwargs = {k: (torch.device("cpu") if k == "device" else v) for k, v in kwargs.items()}
        if read:
            self.result.count += 1
            self.result.sites.append(_site())
        elif _mixes_devices(func, args, kwargs):
            self.result.mixed.append(f"{getattr(func, '__name__', func)} at {_site()}")
        out = func(*args, **kwargs)
        if read:
            return out.as_subclass(Tensor) if isinstance(out, DeviceResident) else out
        if isinstance(out, Tensor) and not isinstance(out, DeviceResident) and _target_device(func, args, kwargs) == STAND_IN:
            return out.as_subclass(DeviceResident)
        return out


def mark_device(t: Tensor) -> Tensor:
    """``t`` viewed as a :class:`DeviceResident` tensor (CPU stand-in for a GPU tensor)."""
    return t.as_subclass(DeviceResident)


@contextmanager
def count_syncs(device: torch.device | str = "cpu") -> Iterator[SyncCount]:
    """Count host syncs inside the block (see the module docstring).

    ``device``: ``cuda`` counts torch's synchronising CUDA calls (sync debug mode ``warn``)
    plus the sanctioned ones of :func:`to_host`; ``cpu`` counts host reads of
    :class:`DeviceResident` tensors.
    """
    result = SyncCount()
    if torch.device(device).type == "cuda":
        previous, sanctioned = torch.cuda.get_sync_debug_mode(), SANCTIONED["count"]
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            torch.cuda.set_sync_debug_mode("warn")
            try:
                yield result
            finally:
                torch.cuda.set_sync_debug_mode(previous)
        hits = [w for w in caught if "synchroniz" in str(w.message)]
        n_sanctioned = SANCTIONED["count"] - sanctioned
        result.count = len(hits) + n_sanctioned
        result.sites = [f"{w.filename}:{w.lineno}" for w in hits] + ["gpuaug._sync.to_host"] * n_sanctioned
        return
    with _Counting(result):
        yield result
