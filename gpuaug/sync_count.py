"""Count host <-> device syncs: on a GPU, or on a CPU stand-in of one (for CI without a GPU).

:func:`count_syncs` counts what blocks the host:

* on CUDA, torch's synchronising calls (``torch.cuda.set_sync_debug_mode("warn")``) plus the
  sanctioned reads of :func:`gpuaug._sync.to_host`;
* on the CPU, host reads of :class:`DeviceResident` tensors, a subclass that stands for what
  would live on the GPU (mark the audio and the banks' audio with :func:`mark_device`; results
  of ops on marked tensors, uploads and tensors created on :data:`STAND_IN` are marked too).
  It also lists calls mixing device and host tensors (an error on CUDA). This count is an
  instrumented stand-in: a tensor created on the host and then filled in place from device
  data stays unmarked, and torch's own C++ syncs (e.g. ``torch.istft``'s window check) are
  invisible to it; the CUDA count has neither gap.
"""
from __future__ import annotations

import traceback
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import torch
from torch import Tensor

__all__ = ["SyncCount", "count_syncs", "DeviceResident", "mark_device", "STAND_IN"]


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
    from ._sync import SANCTIONED

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
