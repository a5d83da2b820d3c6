"""Backend dispatch: which implementation of an op runs (plain torch or a kernel).

Backends:
    ``torch``: the reference implementation in :mod:`gpuaug.functional` (CPU and CUDA).
    ``numba``: Numba kernels from :mod:`gpuaug.kernels` (``@njit`` on CPU tensors,
        ``@cuda.jit`` on CUDA tensors).
    ``cupy``: CUDA C kernels (``kernels/*.cu``) through CuPy, CUDA tensors only.
    ``auto``: the fastest available kernel for the tensor's device, else ``torch``.

Resolution order: the ``backend=`` argument of the op / transform, then the environment
variable ``GPUAUG_BACKEND_<OP>`` (e.g. ``GPUAUG_BACKEND_MCADAMS=torch``), then
``GPUAUG_BACKEND``, then ``auto``. ``auto`` falls back to ``torch`` silently when CUDA,
numba-cuda or cupy is absent; an explicitly requested backend that cannot run raises.
:func:`resolve` is deterministic, so a transform can record which backend ran.
"""
from __future__ import annotations

import os
from functools import lru_cache

import torch

BACKENDS = ("auto", "torch", "numba", "cupy")

__all__ = ["BACKENDS", "register", "resolve", "available", "kernels_for"]

# (op, backend, device type) -> preference rank for auto (lower is preferred); filled by
# gpuaug.kernels modules on import.
_KERNELS: dict[tuple[str, str, str], int] = {}


def register(op: str, backend: str, device_type: str, auto_rank: int | None = 0) -> None:
    """Declare that ``op`` has a ``backend`` kernel for ``device_type`` (``cpu`` | ``cuda``).

    ``auto_rank=None`` registers a kernel that ``auto`` never picks (e.g. one slower than
    torch on that device, kept for comparison).
    """
    _KERNELS[(op, backend, device_type)] = 10**9 if auto_rank is None else auto_rank


def kernels_for(op: str) -> dict[tuple[str, str], int]:
    """``{(backend, device_type): rank}`` registered for ``op``."""
    _load_kernels()
    return {(b, d): r for (o, b, d), r in _KERNELS.items() if o == op}


@lru_cache(maxsize=None)
def _numba_cuda_ok() -> bool:
    try:
        from numba import cuda

        return bool(cuda.is_available())
    except Exception:  # numba-cuda missing or no driver
        return False


@lru_cache(maxsize=None)
def _cupy_ok() -> bool:
    try:
        import cupy

        return cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:
        return False


@lru_cache(maxsize=1)
def _load_kernels() -> None:
    import gpuaug.kernels  # noqa: F401  (kernel modules register themselves)


def available(backend: str, device_type: str) -> bool:
    """Whether ``backend`` can run on ``device_type`` on this machine."""
    if backend == "torch":
        return True
    if backend == "numba":
        return device_type == "cpu" or (device_type == "cuda" and _numba_cuda_ok())
    if backend == "cupy":
        return device_type == "cuda" and _cupy_ok()
    return False


def resolve(op: str, device: torch.device | str, backend: str | None = None) -> str:
    """The backend that runs ``op`` on ``device`` (``torch`` | ``numba`` | ``cupy``)."""
    requested = backend or os.environ.get(f"GPUAUG_BACKEND_{op.upper()}") or os.environ.get("GPUAUG_BACKEND") or "auto"
    if requested not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {requested!r}")
    dev = torch.device(device).type
    if requested == "torch":
        return "torch"
    _load_kernels()
    if requested != "auto":
        if (op, requested, dev) not in _KERNELS:
            raise ValueError(f"no {requested!r} kernel for op {op!r} on {dev}; "
                             f"available: {sorted(kernels_for(op))} (or 'torch')")
        if not available(requested, dev):
            raise RuntimeError(f"backend {requested!r} cannot run on {dev} here (is numba-cuda / cupy installed?)")
        return requested
    candidates = sorted((rank, b) for (o, b, d), rank in _KERNELS.items()
                        if o == op and d == dev and rank < 10**9 and available(b, dev))
    return candidates[0][1] if candidates else "torch"
