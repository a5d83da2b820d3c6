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

GPU probe: the first time a GPU kernel backend is considered for an op on a CUDA device
(``auto``, or an explicit request), its kernels are compiled and loaded on that device
(``numba``: every ``@cuda.jit`` kernel of the op in every signature of the modules'
``CUDA_KERNELS`` tables, :func:`gpuaug.kernels._numba_glue.probe_cuda_op`, a load from
Numba's on-disk cache after the first run on a machine; ``cupy``: the ``.cu`` source through
NVRTC). Where that fails (no NVVM / NVRTC, a compile error, a module that does not load, a
block size that does not fit), ``auto`` resolves to the next kernel or ``torch``, warns once
(``RuntimeWarning``) and records why in :func:`fallback_reasons`; an explicit request raises
a ``RuntimeError`` naming the op. The verdict is cached per (op, backend, device index), so
later calls are a dict lookup (no compile, no host-device sync). CPU kernels are not probed.

CPU threads: the Numba CPU kernels use ``torch.get_num_threads()`` threads (set at each
launch, clamped to Numba's pool ``NUMBA_NUM_THREADS``), so ``torch.set_num_threads`` /
``OMP_NUM_THREADS`` is the one knob; :func:`set_num_threads` overrides it for the kernels of
this process only (a forked DataLoader worker follows torch, which gives it one thread).
"""
from __future__ import annotations

import os
import threading
import warnings
from functools import lru_cache
from typing import Callable

import torch

BACKENDS = ("auto", "torch", "numba", "cupy")

__all__ = ["BACKENDS", "register", "resolve", "available", "kernels_for", "fallback_reasons",
           "set_num_threads", "get_num_threads"]

# (op, backend, device type) -> preference rank for auto (lower is preferred); filled by
# gpuaug.kernels modules on import.
_KERNELS: dict[tuple[str, str, str], int] = {}
# (op, backend) -> probe(device_index) of a CUDA kernel backend (raises where it cannot run).
_PROBES: dict[tuple[str, str], Callable[[int], None]] = {}
# (op, backend, device index) -> None (the kernels run there) or why they do not.
_VERDICTS: dict[tuple[str, str, int], str | None] = {}
# (op, backend, device type) -> why auto did not use that kernel (first failure).
_REASONS: dict[tuple[str, str, str], str] = {}
_PROBE_LOCK = threading.Lock()
# (threads, pid of the process that set it) of set_num_threads, or None: follow torch.
_CPU_THREADS: tuple[int, int] | None = None


def set_num_threads(n: int | None) -> None:
    """Run gpuaug's Numba CPU kernels on ``n`` threads in this process (``None``: follow
    ``torch.get_num_threads()``, the default). Requests above Numba's pool
    (``numba.config.NUMBA_NUM_THREADS``) are clamped at launch. A forked child (e.g. a
    DataLoader worker) does not inherit the override: it follows torch there."""
    global _CPU_THREADS
    if n is None:
        _CPU_THREADS = None
        return
    if isinstance(n, bool) or int(n) != n or n < 1:
        raise ValueError(f"set_num_threads needs a positive int or None, got {n!r}")
    _CPU_THREADS = (int(n), os.getpid())


def _cpu_threads_override() -> int | None:
    """The :func:`set_num_threads` override of this process, or ``None``."""
    ov = _CPU_THREADS
    return ov[0] if ov is not None and ov[1] == os.getpid() else None


def get_num_threads() -> int:
    """Threads a Numba CPU kernel launched now would use (override or torch's, clamped)."""
    from gpuaug.kernels._numba_glue import cpu_thread_budget

    return cpu_thread_budget()


def register(op: str, backend: str, device_type: str, auto_rank: int | None = 0,
             probe: Callable[[int], None] | None = None) -> None:
    """Declare that ``op`` has a ``backend`` kernel for ``device_type`` (``cpu`` | ``cuda``).

    ``auto_rank=None`` registers a kernel that ``auto`` never picks (e.g. one slower than
    torch on that device, kept for comparison). ``probe(device_index)`` (CUDA only) compiles
    and loads the kernels on that GPU, raising where they cannot run; a ``numba`` CUDA kernel
    without one is probed with :func:`gpuaug.kernels._numba_glue.probe_cuda_op`.
    """
    _KERNELS[(op, backend, device_type)] = 10**9 if auto_rank is None else auto_rank
    if probe is not None and device_type == "cuda":
        _PROBES[(op, backend)] = probe


def fallback_reasons() -> dict[tuple[str, str, str], str]:
    """``{(op, backend, device_type): reason}`` of every GPU kernel that ``auto`` skipped
    because its probe failed on this machine (see the module docstring)."""
    return dict(_REASONS)


def _default_probe(op: str, backend: str) -> Callable[[int], None] | None:
    if backend == "numba":
        def probe(device_index: int) -> None:
            from gpuaug.kernels._numba_glue import probe_cuda_op

            probe_cuda_op(op, device_index)

        return probe
    return None


def _probe_failure(op: str, backend: str, device: torch.device) -> str | None:
    """Why ``backend``'s kernels of ``op`` cannot run on CUDA ``device`` (``None``: they can);
    probed once per (op, backend, device index)."""
    index = device.index if device.index is not None else torch.cuda.current_device()
    key = (op, backend, index)
    if key in _VERDICTS:
        return _VERDICTS[key]
    with _PROBE_LOCK:
        if key not in _VERDICTS:
            probe = _PROBES.get((op, backend)) or _default_probe(op, backend)
            reason = None
            if probe is not None:
                try:
                    probe(index)
                except Exception as e:  # noqa: BLE001 - any failure means: not on this machine
                    first = str(e).strip().splitlines()[0] if str(e).strip() else ""
                    reason = f"{type(e).__name__}: {first}"[:500]
            _VERDICTS[key] = reason
    return _VERDICTS[key]


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
    """The backend that runs ``op`` on ``device`` (``torch`` | ``numba`` | ``cupy``).

    On a CUDA device a kernel backend's first resolution probes its kernels (module
    docstring); later calls only look the verdict up. An ``op`` no kernel module registers
    raises ``ValueError`` (a misspelt op name would otherwise silently run torch).
    """
    requested = backend or os.environ.get(f"GPUAUG_BACKEND_{op.upper()}") or os.environ.get("GPUAUG_BACKEND") or "auto"
    if requested not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {requested!r}")
    device = torch.device(device)
    dev = device.type
    _load_kernels()
    if not any(o == op for o, _, _ in _KERNELS):  # a typo must not silently run torch
        raise ValueError(f"unknown op {op!r}: no kernel registers it; ops with kernels: "
                         f"{sorted({o for o, _, _ in _KERNELS})}")
    if requested == "torch":
        return "torch"
    if requested != "auto":
        if (op, requested, dev) not in _KERNELS:
            raise ValueError(f"no {requested!r} kernel for op {op!r} on {dev}; "
                             f"available: {sorted(kernels_for(op))} (or 'torch')")
        if not available(requested, dev):
            raise RuntimeError(f"backend {requested!r} cannot run op {op!r} on {dev} here "
                               f"(is numba-cuda / cupy installed?)")
        if dev == "cuda":
            reason = _probe_failure(op, requested, device)
            if reason is not None:
                raise RuntimeError(f"backend {requested!r} cannot run op {op!r} on {device}: its kernels do not "
                                   f"compile or load here ({reason}); use backend='torch' or 'auto'")
        return requested
    candidates = sorted((rank, b) for (o, b, d), rank in _KERNELS.items()
                        if o == op and d == dev and rank < 10**9 and available(b, dev))
    for _, name in candidates:
        if dev != "cuda":
            return name
        reason = _probe_failure(op, name, device)
        if reason is None:
            return name
        key = (op, name, dev)
        if key not in _REASONS:
            _REASONS[key] = reason
            warnings.warn(f"gpuaug: the {name!r} kernels of op {op!r} cannot run on {device} ({reason}); "
                          f"'auto' falls back to the next backend (see gpuaug.backend.fallback_reasons())",
                          RuntimeWarning, stacklevel=2)
    return "torch"
