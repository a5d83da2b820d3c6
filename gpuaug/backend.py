"""Backend dispatch: which implementation of an op runs (plain torch or a kernel), and the kernel.

Backends:
    ``torch``: the reference implementation in :mod:`gpuaug.functional` (CPU and CUDA).
    ``numba``: Numba kernels from :mod:`gpuaug.kernels` (``@njit`` on CPU tensors,
        ``@cuda.jit`` on CUDA tensors).
    ``cupy``: CUDA C kernels (``kernels/*.cu``) through CuPy, CUDA tensors only.
    ``auto``: the fastest available kernel for the tensor's device, else ``torch``.

Ops: every op with kernels is named once, here (:data:`OPS` and one constant per op, e.g.
:data:`WARP`); the transforms' ``kernel_op``, the functional ops' dispatch and the kernel
modules' registrations import these constants. A transform class whose ``kernel_op`` is not
in :data:`OPS` raises when it is defined.

Registry: a kernel module registers each entry point with the decorator
:func:`register_kernel` ``(op, backend, device_type, auto_rank=0, probe=None)``, which stores
the callable itself; :func:`kernel_for` ``(op, device, backend=None)`` returns
``(backend_name, callable)`` (``callable`` is ``None`` for ``torch``) and :func:`resolve` is
its backend name (what transform records store). Registering a second, different callable
for the same ``(op, backend, device_type)`` raises; registering the same one again is a
no-op.

Calling convention of a registered kernel: ``fn(*tensors, **params)``. The tensors are the
ones the op's torch implementation works on, already checked and prepared by the functional
op (e.g. a ``(B, C, T)`` wave, its ``(B,)`` lengths and the op's per-clip tables), passed
positionally in the order the kernel's docstring lists; every other argument (Python ints,
floats, strings, flags) is keyword-only. No backend argument: the callable *is* one
backend's kernel (one callable may be registered for several ``(backend, device_type)``,
e.g. a Numba entry point that launches ``@njit`` on CPU and ``@cuda.jit`` on CUDA tensors).
A kernel returns new tensors on the inputs' device (the inputs are never written) and does
no validation the functional op already did.

Resolution order: the ``backend=`` argument of the op / transform, then the environment
variable ``GPUAUG_BACKEND_<OP>`` (e.g. ``GPUAUG_BACKEND_MCADAMS=torch``), then
``GPUAUG_BACKEND``, then ``auto``. ``auto`` falls back to ``torch`` silently when CUDA,
numba-cuda or cupy is absent; an explicitly requested backend that cannot run raises.
:func:`resolve` is deterministic, so a transform can record which backend ran.

Functional ops with several kernel ops: ``speed_segment`` (op :data:`SEGMENT_WARP`, the fused
splice + resampling, and, where that resolves to ``torch``, the splice path around op
:data:`WARP`), the constant-speed resampling ``uniform_warp`` of ``speed``, ``resample`` and
``pitch_shift`` (op :data:`UNIFORM_WARP`, positions ``j * step`` formed in the kernel, and,
where that resolves to ``torch``, the general op :data:`WARP` at a position table),
``pitch_shift`` (that, plus op :data:`PHASE_VOCODER` for the fused phase vocoder between the
STFT and the ISTFT and, where that resolves to ``torch``, op :data:`PHASE_LOCK` for the torch
vocoder's phase locking) and ``tempo_segment`` (:data:`PHASE_VOCODER`, then
:data:`PHASE_LOCK`). Each op is resolved on its own: its own environment variable, its own
``auto`` ranks, never from how the other one resolved. Their one ``backend=`` argument is
*shared* (``kernel_for(..., shared=True)``): ``torch`` runs all their ops in torch, a kernel
backend runs the kernel of each op that has one of that backend on the device and torch for
an op that has none (``speed_segment(backend="cupy")``: the splice path with the CuPy warp;
``pitch_shift(backend="cupy")``: the torch vocoder with the torch phase lock and the CuPy
warp); ``GPUAUG_BACKEND`` is shared the same way, while ``GPUAUG_BACKEND_<OP>`` names one op
and raises where that op has no such kernel. What ``auto`` picks: :data:`SEGMENT_WARP`: the
Numba kernel on CPU and CUDA (else torch: the splice path, whose warp core resolves
:data:`WARP` by itself, e.g. ``GPUAUG_BACKEND_SEGMENT_WARP=torch`` with the Numba warp);
:data:`UNIFORM_WARP`: the Numba kernel on CPU (tabulated sinc for float32), none on CUDA (the
general :data:`WARP` kernel there); :data:`PHASE_VOCODER`: the Numba kernel on CPU, none on
CUDA; :data:`PHASE_LOCK`: the Numba frame-by-frame kernel on CPU, the torch prefix scan on
CUDA (no CUDA kernel: the scan's passes are parallel there); :data:`REVERB`: the fused Numba
passes around the FFTs on CPU (:mod:`gpuaug.kernels.reverb_io`), torch on CUDA (its
``backend=`` is shared: a kernel backend without a reverb kernel on the device runs torch);
:data:`RAGGED_GATHER` (bank rows into a padded batch, :func:`gpuaug.banks.gather_ragged`): the
Numba row copy on CPU, the torch index gather on CUDA; :data:`ROW_PEAK` (each clip's peak and
finiteness: a pipeline's input scan and output level, :mod:`gpuaug.kernels.row_reduce`): the
Numba integer max of bit patterns on CPU, torch's ``amax`` / ``amin`` on CUDA;
:data:`ROW_SCATTER` (processed rows written back into a batch,
:func:`gpuaug.transforms.base.merge_rows`): the Numba row copy on CPU, torch's ``index_copy_``
on CUDA.

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
from typing import Callable, NamedTuple

import torch

BACKENDS = ("auto", "torch", "numba", "cupy")
#: The backends a kernel can be registered for, and the device types.
KERNEL_BACKENDS = ("numba", "cupy")
DEVICE_TYPES = ("cpu", "cuda")

# ---- the ops with kernels (each name written once: transforms, functional ops and kernels import these)
GAIN = "gain"
FADE = "fade"
MIX_NOISE = "mix_noise"
INSERT_CLIP = "insert_clip"
DROP_SEGMENTS = "drop_segments"
WARP = "warp"
SEGMENT_WARP = "segment_warp"
MCADAMS = "mcadams"
PHASE_LOCK = "phase_lock"
UNIFORM_WARP = "uniform_warp"
PHASE_VOCODER = "phase_vocoder"
REVERB = "reverb"
RAGGED_GATHER = "ragged_gather"
ROW_PEAK = "row_peak"
ROW_SCATTER = "row_scatter"
#: Every op gpuaug's kernel modules register (see the module docstring).
OPS = (GAIN, FADE, MIX_NOISE, INSERT_CLIP, DROP_SEGMENTS, WARP, SEGMENT_WARP, MCADAMS, PHASE_LOCK, UNIFORM_WARP,
       PHASE_VOCODER, REVERB, RAGGED_GATHER, ROW_PEAK, ROW_SCATTER)

__all__ = ["BACKENDS", "OPS", "GAIN", "FADE", "MIX_NOISE", "INSERT_CLIP", "DROP_SEGMENTS", "WARP", "SEGMENT_WARP",
           "MCADAMS", "PHASE_LOCK", "UNIFORM_WARP", "PHASE_VOCODER", "REVERB", "RAGGED_GATHER", "ROW_PEAK", "ROW_SCATTER", "register_kernel", "kernel_for", "resolve", "check_op", "available",
           "kernels_for", "fallback_reasons", "set_num_threads", "get_num_threads"]

#: ``auto_rank`` of a kernel that ``auto`` never picks.
_NEVER = 10**9


class Kernel(NamedTuple):
    """One registered kernel: the entry point and its ``auto`` preference (lower first)."""

    fn: Callable
    rank: int


# (op, backend, device type) -> the kernel; filled by gpuaug.kernels modules on import.
_KERNELS: dict[tuple[str, str, str], Kernel] = {}
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


def check_op(op: str | None, where: str = "kernel_op") -> None:
    """Raise ``ValueError`` unless ``op`` is ``None`` or one of :data:`OPS` (no kernel import)."""
    if op is not None and op not in OPS:
        raise ValueError(f"{where} {op!r} is not an op with kernels; ops: {OPS}")


def _qualname(fn) -> str:
    return f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', repr(fn))}"


def register_kernel(op: str, backend: str, device_type: str, auto_rank: int | None = 0,
                    probe: Callable[[int], None] | None = None) -> Callable[[Callable], Callable]:
    """Decorator: register the decorated callable as ``op``'s ``backend`` kernel on
    ``device_type`` (``cpu`` | ``cuda``); returns the callable unchanged (stackable).

    The callable follows the calling convention of the module docstring
    (``fn(*tensors, **params)``). ``auto_rank``: ``auto``'s preference among the op's kernels
    on that device (lower first); ``None`` registers a kernel that ``auto`` never picks (e.g.
    one slower than torch there, kept for comparison). ``probe(device_index)`` (CUDA only)
    compiles and loads the kernels on that GPU, raising where they cannot run; a ``numba``
    CUDA kernel without one is probed with :func:`gpuaug.kernels._numba_glue.probe_cuda_op`.
    A different callable already registered for ``(op, backend, device_type)`` raises
    ``ValueError``.
    """
    if backend not in KERNEL_BACKENDS:
        raise ValueError(f"kernels are registered for one of {KERNEL_BACKENDS}, got {backend!r}")
    if device_type not in DEVICE_TYPES:
        raise ValueError(f"device_type must be one of {DEVICE_TYPES}, got {device_type!r}")
    if auto_rank is not None and (isinstance(auto_rank, bool) or not isinstance(auto_rank, int) or auto_rank < 0):
        raise ValueError(f"auto_rank must be a non-negative int or None, got {auto_rank!r}")
    key = (op, backend, device_type)

    def decorator(fn: Callable) -> Callable:
        if not callable(fn):
            raise TypeError(f"register_kernel{key} decorates a callable, got {fn!r}")
        old = _KERNELS.get(key)
        if old is not None and old.fn is not fn:
            raise ValueError(f"op {op!r} already has a {backend!r} kernel on {device_type} ({_qualname(old.fn)}); "
                             f"cannot register {_qualname(fn)} too")
        _KERNELS[key] = Kernel(fn, _NEVER if auto_rank is None else auto_rank)
        if probe is not None and device_type == "cuda":
            _PROBES[(op, backend)] = probe
        return fn

    return decorator


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
    return {(b, d): k.rank for (o, b, d), k in _KERNELS.items() if o == op}


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


def _requested(op: str, backend: str | None, shared: bool) -> tuple[str, bool]:
    """``(request, shared)``: the backend asked for (argument, environment, ``auto``) and
    whether the request is shared with other ops (not ``GPUAUG_BACKEND_<OP>``)."""
    if backend:
        return backend, shared
    own = os.environ.get(f"GPUAUG_BACKEND_{op.upper()}")
    if own:
        return own, False
    return os.environ.get("GPUAUG_BACKEND") or "auto", shared


def kernel_for(op: str, device: torch.device | str, backend: str | None = None, *,
               shared: bool = False) -> tuple[str, Callable | None]:
    """``(backend_name, kernel)`` that runs ``op`` on ``device``: ``("torch", None)`` or a
    kernel backend's name and its registered callable (module docstring: resolution order,
    probes, calling convention).

    ``shared=True``: ``backend`` (or ``GPUAUG_BACKEND``) is the one ``backend=`` argument of
    a functional op running several kernel ops; a kernel backend that ``op`` has no kernel
    of on this device means ``torch`` for ``op`` instead of an error (module docstring).
    An ``op`` no kernel module registers raises ``ValueError`` (a misspelt op name would
    otherwise silently run torch).
    """
    requested, shared = _requested(op, backend, shared)
    if requested not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {requested!r}")
    device = torch.device(device)
    dev = device.type
    _load_kernels()
    if dev != "cpu":  # CUDA: probes and their warnings on every resolution
        return _kernel_for(op, device, requested, shared)
    # CPU: memoised per registry state (a registration or a replaced registry starts afresh)
    key = (op, requested, shared, id(_KERNELS), len(_KERNELS))
    hit = _CPU_RESOLVED.get(key)
    if hit is not None and (hit[1] is None or getattr(_KERNELS.get((op, hit[0], dev)), "fn", None) is hit[1]):
        return hit
    hit = _CPU_RESOLVED[key] = _kernel_for(op, device, requested, shared)
    return hit


#: :func:`kernel_for`'s CPU resolutions: (op, request, shared, registry id, registry size) -> result.
_CPU_RESOLVED: dict = {}


def _kernel_for(op: str, device: torch.device, requested: str, shared: bool) -> tuple[str, Callable | None]:
    """:func:`kernel_for` of a checked request (no memo)."""
    dev = device.type
    if not any(o == op for o, _, _ in _KERNELS):  # a typo must not silently run torch
        raise ValueError(f"unknown op {op!r}: no kernel registers it; ops with kernels: "
                         f"{sorted({o for o, _, _ in _KERNELS})}")
    if requested == "torch":
        return "torch", None
    if requested != "auto":
        kernel = _KERNELS.get((op, requested, dev))
        if kernel is None:
            if shared:
                return "torch", None
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
        return requested, kernel.fn
    candidates = sorted((k.rank, b) for (o, b, d), k in _KERNELS.items()
                        if o == op and d == dev and k.rank < _NEVER and available(b, dev))
    for _, name in candidates:
        if dev == "cuda":
            reason = _probe_failure(op, name, device)
            if reason is not None:
                key = (op, name, dev)
                if key not in _REASONS:
                    _REASONS[key] = reason
                    warnings.warn(f"gpuaug: the {name!r} kernels of op {op!r} cannot run on {device} ({reason}); "
                                  f"'auto' falls back to the next backend (see gpuaug.backend.fallback_reasons())",
                                  RuntimeWarning, stacklevel=3)
                continue
        return name, _KERNELS[(op, name, dev)].fn
    return "torch", None


def resolve(op: str, device: torch.device | str, backend: str | None = None) -> str:
    """The backend that runs ``op`` on ``device`` (``torch`` | ``numba`` | ``cupy``): the name
    of :func:`kernel_for` (same lookup, same probes, errors and warnings)."""
    return kernel_for(op, device, backend)[0]
