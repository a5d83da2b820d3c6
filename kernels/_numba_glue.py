"""Torch <-> Numba glue shared by the Numba kernel modules (small and generic).

* :func:`kernel_array`: the array a Numba kernel takes for a tensor: a NumPy view of a CPU
  tensor (for ``@njit`` kernels, and for ``@cuda.jit`` kernels under the CUDA simulator, which
  take host arrays) or a zero-copy ``cuda.as_cuda_array`` view of a CUDA tensor.
* :func:`torch_stream`: torch's current CUDA stream as a Numba stream, so kernels are ordered
  with the surrounding torch work (``0``, the default stream, under the simulator).
* :func:`cuda_device`: context manager making a tensor's GPU Numba's current device.
* :func:`grid_1d`: ``(blocks, threads)`` of a 1-D launch covering ``n`` threads;
  :func:`launch_per_sample` launches a kernel with one thread per element of an array.
* :data:`CPU_LOCK`: held around every parallel ``@njit`` launch (see fork safety below); entering
  it also applies the CPU thread budget (:func:`apply_thread_budget`, below).

Fork safety: numba's default CPU threading layer on Linux without TBB is GNU OpenMP, which
aborts a forked child (e.g. a DataLoader worker) that launches a parallel kernel after its
parent did. Unless ``NUMBA_THREADING_LAYER`` is set, importing this module selects numba's
``forksafe`` layer (TBB if installed, else ``workqueue``); ``workqueue`` rejects concurrent
launches from several threads, so every CPU kernel of gpuaug runs under :data:`CPU_LOCK`.

Thread budget: one budget for torch and Numba, applied on every CPU kernel launch (entering
:data:`CPU_LOCK`): ``numba.set_num_threads(cpu_thread_budget())``, where the budget is
``torch.get_num_threads()`` unless :func:`gpuaug.backend.set_num_threads` set an override in
this process, clamped to ``[1, NUMBA_NUM_THREADS]`` (the size of Numba's pool). So
``torch.set_num_threads(n)`` / ``OMP_NUM_THREADS`` govern the ``prange`` kernels too, and a
DataLoader worker (torch sets one thread there) runs them on one thread. The override is
per process: a forked child (a worker) ignores its parent's and follows torch. Numba's thread
count is per Python thread, so it is set in the launching thread, under the lock; the check
costs a microsecond (``numba.set_num_threads`` only runs when the count changes).

Kernels write into arrays the caller allocated with torch (C-contiguous), so results stay
in torch's caching allocator and need no copy back. CUDA views are taken without a host
sync: launch the kernels on :func:`torch_stream`, which orders them with torch's work.

JIT and on-disk cache (:func:`jit_cpu`, :func:`jit_cuda`): every ``@njit`` function and every
``@cuda.jit`` kernel of gpuaug is compiled through these two helpers, which are
``numba.njit(cache=True)`` / ``numba.cuda.jit(cache=True)`` with gpuaug's cache locator
(CUDA device functions stay plain ``cuda.jit(device=True)``: they are compiled into, and
cached with, the kernels that call them). The locator differs from Numba's in two ways:

* Freshness: Numba keys a cache entry on the *defining* file's contents only, so a kernel
  that inlines a jitted helper of another module (``segment_warp`` calls
  ``warp_sinc._point_cpu`` / ``_point_cuda`` and reads its constants) would keep a stale
  machine code after an edit of the callee's file alone. Here the source stamp of every
  entry is one SHA-256 of all ``*.py`` files of this folder (:func:`kernels_source_stamp`):
  an edit of any kernel module recompiles all of gpuaug's kernels once (a few seconds),
  never runs stale code, and needs no bookkeeping of who calls whom.
* Location: ``$NUMBA_CACHE_DIR/<folder>_<hash>`` when the user set ``NUMBA_CACHE_DIR``
  (never overridden), else ``__pycache__`` next to the kernel modules when writable, else
  ``$XDG_CACHE_HOME/gpuaug/numba/<folder>_<hash>`` (``~/.cache`` without ``XDG_CACHE_HOME``)
  for a read-only installation; where no directory is writable the kernels compile in
  every process (no error). Numba's global settings are not touched.

A ``parallel=True, twin=True`` kernel of :func:`jit_cpu` is a :class:`ThreadedKernel`: the
parallel dispatcher and a serial twin (cached under its own index, ``<line>serial``), which a
call takes when Numba's thread count is 1 (no hand-off to the thread pool).

Cache entries are per signature and target (CPU features, or compute capability for CUDA
kernels); the CUDA simulator ignores ``cache``. The Numba internals used
(``numba.core.caching``, ``Dispatcher._cache``) are guarded: if they change, the helpers
fall back to Numba's own ``cache=True`` (per-file stamps), then to no cache.

:data:`CUDA_KERNELS` tables (:func:`cuda_entry`): each kernel module lists its
``@cuda.jit`` kernels with the op they serve, their block size and the Numba signatures
its wrappers launch them with (``{f}`` / ``{g}`` placeholders expand to float32 and
float64); the compile gate :mod:`gpuaug.kernels._compile_gate` compiles exactly these, and
:func:`probe_cuda_op` (``backend="auto"`` on a GPU) compiles and loads them once per device.
"""
from __future__ import annotations

import hashlib
import itertools
import math
import os
import threading
from functools import lru_cache
from pathlib import Path
from typing import NamedTuple

import numba
import torch
from numba import config, cuda

from gpuaug import backend as _backend

__all__ = ["kernel_array", "torch_stream", "cuda_device", "grid_1d", "launch_per_sample", "CPU_LOCK",
           "cpu_thread_budget", "apply_thread_budget",
           "jit_cpu", "jit_cuda", "ThreadedKernel", "kernels_source_stamp", "CudaEntry", "cuda_entry", "cuda_kernel_entries",
           "probe_cuda_op"]

#: The folder of the kernel modules (installed as ``gpuaug/kernels``).
KERNELS_DIR = Path(__file__).resolve().parent

if config.THREADING_LAYER == "default":  # see the module docstring (fork safety)
    config.THREADING_LAYER = "forksafe"


def cpu_thread_budget() -> int:
    """Threads the CPU kernels launched now use (module docstring, thread budget)."""
    n = _backend._cpu_threads_override()
    if n is None:
        n = torch.get_num_threads()
    return max(1, min(int(n), config.NUMBA_NUM_THREADS))


def apply_thread_budget() -> int:
    """Set Numba's thread count of the calling thread to :func:`cpu_thread_budget`; returns it."""
    n = cpu_thread_budget()
    if numba.get_num_threads() != n:
        numba.set_num_threads(n)
    return n


class _CpuLaunchLock:
    """A ``threading.Lock`` whose ``with`` block also applies the thread budget (after acquiring)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()

    def __enter__(self):
        self._lock.acquire()
        try:
            apply_thread_budget()
        except BaseException:
            self._lock.release()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self._lock.release()

    def acquire(self, *args, **kwargs) -> bool:
        return self._lock.acquire(*args, **kwargs)

    def release(self) -> None:
        self._lock.release()

    def locked(self) -> bool:
        return self._lock.locked()


#: Serialises the parallel CPU kernels (the ``workqueue`` layer rejects concurrent launches) and
#: applies the thread budget on entry: every CPU kernel launch of gpuaug runs inside it.
CPU_LOCK = _CpuLaunchLock()


def kernel_array(t: torch.Tensor):
    """Zero-copy kernel view of ``t``: ``numpy.ndarray`` (CPU) or Numba device array (CUDA).

    ``t`` must be C-contiguous (a kernel writing into a silent copy would lose its output).
    """
    if not t.is_contiguous():
        raise ValueError("kernel arrays must be C-contiguous tensors")
    t = t.detach()
    if t.device.type == "cuda":  # no host sync: launch on torch_stream(), which orders it
        if 0 in t.stride():  # e.g. expand(1) of a scalar: Numba would type it 'A' (another compile)
            t = t.as_strided(t.shape, _c_strides(t.shape))
        return cuda.as_cuda_array(t, sync=False)
    return t.numpy()


def _c_strides(shape) -> tuple[int, ...]:
    strides, step = [], 1
    for n in reversed(shape):
        strides.append(step)
        step *= max(n, 1)
    return tuple(reversed(strides))


def torch_stream(device: torch.device):
    """torch's current stream on CUDA ``device`` as a Numba stream (``0`` in the simulator)."""
    if config.ENABLE_CUDASIM:
        return 0
    return cuda.external_stream(torch.cuda.current_stream(device).cuda_stream)


def cuda_device(device: torch.device):
    """Context manager selecting CUDA ``device`` for Numba (launch and stream creation)."""
    index = device.index if device.index is not None else torch.cuda.current_device()
    return cuda.gpus[index]


def grid_1d(n: int, threads: int = 128) -> tuple[int, int]:
    """``(blocks, threads)`` for a 1-D launch of at least ``n`` threads (``n >= 1``)."""
    return (n + threads - 1) // threads, threads


def launch_per_sample(kernel, shape: tuple[int, ...], threads: int, stream, *args) -> None:
    """``kernel(*args)`` on ``stream`` with one thread per element of an array of ``shape``
    (blocks of ``threads``); nothing is launched for an empty shape."""
    n = math.prod(shape)
    if n:
        blocks, threads = grid_1d(n, threads)
        kernel[blocks, threads, stream](*args)


# ------------------------------------------------------------------------------- JIT + on-disk cache


@lru_cache(maxsize=8)
def _hash_sources(stats: tuple) -> str:
    digest = hashlib.sha256()
    for name, _, _ in stats:
        digest.update(name.encode() + b"\0" + (KERNELS_DIR / name).read_bytes() + b"\0")
    return digest.hexdigest()


def kernels_source_stamp() -> str:
    """SHA-256 of every ``*.py`` file of the kernel folder: the freshness stamp of each cache
    entry (see the module docstring; re-hashed when a file's size or mtime changes)."""
    stats = []
    for path in sorted(KERNELS_DIR.glob("*.py")):
        st = path.stat()
        stats.append((path.name, st.st_mtime_ns, st.st_size))
    return _hash_sources(tuple(stats))


def _cache_dirs(py_file: str):
    """Candidate cache directories of a kernel module, in order (see the module docstring)."""
    from numba.core.caching import _CacheLocator

    sub = _CacheLocator.get_suitable_cache_subpath(py_file)
    if config.CACHE_DIR:  # the user's NUMBA_CACHE_DIR
        yield os.path.join(config.CACHE_DIR, sub)
    yield os.path.join(os.path.dirname(os.path.abspath(py_file)), "__pycache__")
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    yield os.path.join(base, "gpuaug", "numba", sub)


@lru_cache(maxsize=1)
def _cache_classes():
    """``(cpu_cache_class, cuda_cache_class or None, serial_twin_cache_class)`` using gpuaug's locator."""
    from numba.core.caching import CompileResultCacheImpl, FunctionCache, _CacheLocator

    class KernelCacheLocator(_CacheLocator):
        """Numba cache locator of gpuaug's kernels: stamp over all kernel sources."""

        def __init__(self, py_func, cache_path):
            self._lineno = py_func.__code__.co_firstlineno
            self._cache_path = cache_path

        def get_cache_path(self):
            return self._cache_path

        def get_source_stamp(self):
            return kernels_source_stamp()

        def get_disambiguator(self):
            return str(self._lineno) + self.suffix

        suffix = ""

        @classmethod
        def from_function(cls, py_func, py_file):
            for path in _cache_dirs(py_file):
                self = cls(py_func, path)
                self._py_file = py_file  # numba's "cannot cache" warning reads it
                try:
                    self.ensure_cache_path()
                except OSError:  # not writable: next candidate
                    continue
                return self
            return None

    class CPUImpl(CompileResultCacheImpl):
        _locator_classes = [KernelCacheLocator]

    class CPUCache(FunctionCache):
        _impl_class = CPUImpl

    class SerialLocator(KernelCacheLocator):
        """The serial twin of a parallel kernel (:class:`ThreadedKernel`): its own index file
        (Numba's cache key holds no compile flags)."""

        suffix = "serial"

    class SerialImpl(CompileResultCacheImpl):
        _locator_classes = [SerialLocator]

    class SerialCache(FunctionCache):
        _impl_class = SerialImpl

    cuda_cache = None
    if not config.ENABLE_CUDASIM:
        try:
            from numba.cuda.dispatcher import CUDACache, CUDACacheImpl

            class CUDAImpl(CUDACacheImpl):
                _locator_classes = [KernelCacheLocator]

            class KernelCUDACache(CUDACache):
                _impl_class = CUDAImpl

            cuda_cache = KernelCUDACache
        except ImportError:  # pragma: no cover - other numba-cuda layouts: numba's own cache
            pass
    return CPUCache, cuda_cache, SerialCache


def _attach_cache(disp, fn, which: int):
    """Give ``disp`` gpuaug's on-disk cache (``which``: 0 CPU, 1 CUDA, 2 the serial twin of a
    parallel CPU kernel); ``False`` where that is not possible."""
    try:
        cls = _cache_classes()[which]
        if cls is None or not hasattr(disp, "_cache"):
            return False
        disp._cache = cls(fn)
        return True
    except RuntimeError:  # no writable cache directory: compile in every process
        return True
    except Exception:  # pragma: no cover - numba internals changed
        return False


def _njit_cached(fn, which: int, options: dict):
    """``numba.njit(**options)(fn)`` with cache ``which`` of :func:`_attach_cache` (Numba's own
    ``cache=True`` where that fails)."""
    disp = numba.njit(**options)(fn)
    if not _attach_cache(disp, fn, which):
        try:
            disp = numba.njit(cache=True, **options)(fn)
        except RuntimeError:  # numba finds no writable cache directory
            pass
    return disp


class ThreadedKernel:
    """A ``parallel=True`` CPU kernel with its serial twin (the same function compiled without
    ``parallel``: ``prange`` runs as ``range``). A call runs the twin when Numba's thread count
    of the calling thread is 1 (the budget of a one-thread process or of a DataLoader worker):
    even on one thread, a launch of the parallel code hands its loop to Numba's thread pool and
    waits for it, which measured 10-120 us of CPU time per launch on this VM (about a dozen
    launches per pipeline call), the twin about 3 us (``benchmarks/results/kernel-timings.md``).
    gpuaug's kernels have independent ``prange`` iterations (no parallel reductions), so both
    compute the same values. Other attributes (``py_func``, ``stats``, ...) are those of the
    parallel dispatcher; the twin is :attr:`serial`."""

    def __init__(self, fn, options: dict):
        self.parallel = _njit_cached(fn, 0, options)
        self.serial = _njit_cached(fn, 2, {**options, "parallel": False})
        self.__wrapped__ = fn
        self.__name__, self.__qualname__, self.__doc__ = fn.__name__, fn.__qualname__, fn.__doc__

    def __call__(self, *args):
        return (self.serial if numba.get_num_threads() == 1 else self.parallel)(*args)

    def __getattr__(self, name):
        if name in ("parallel", "serial"):  # not yet set (e.g. while unpickling)
            raise AttributeError(name)
        return getattr(self.parallel, name)


def jit_cpu(fn=None, *, twin: bool = False, **options):
    """``numba.njit(cache=True, **options)`` with gpuaug's cache locator (module docstring);
    ``parallel=True, twin=True``: a :class:`ThreadedKernel` (the parallel kernel and its serial
    twin), for the memory-bound kernels whose twin measured faster on one thread (the sinc
    kernels' twins measured 1.4-1.8x slower, so they stay parallel only).

    Usable as ``@jit_cpu``, ``@jit_cpu(parallel=True)`` or ``jit_cpu(fn)``.
    """
    if fn is None:
        return lambda f: jit_cpu(f, twin=twin, **options)
    if twin:
        if not options.get("parallel"):
            raise ValueError("jit_cpu: twin=True is for parallel=True kernels")
        return ThreadedKernel(fn, options)
    return _njit_cached(fn, 0, options)


def jit_cuda(fn=None, **options):
    """``numba.cuda.jit(cache=True, **options)`` (a kernel) with gpuaug's cache locator.

    Under the CUDA simulator this is the simulator's ``cuda.jit`` (no cache).
    """
    if fn is None:
        return lambda f: jit_cuda(f, **options)
    if config.ENABLE_CUDASIM:
        return cuda.jit(cache=True, **options)(fn)
    disp = cuda.jit(**options)(fn)
    if not _attach_cache(disp, fn, 1):
        try:
            disp = cuda.jit(cache=True, **options)(fn)
        except RuntimeError:
            pass
    return disp


# ------------------------------------------------------------------------------- CUDA kernel tables

#: The float dtypes a ``{f}`` / ``{g}`` placeholder of a signature expands to.
FLOATS = ("float32", "float64")


class CudaEntry(NamedTuple):
    """One ``@cuda.jit`` kernel of a :data:`CUDA_KERNELS` table."""

    op: str  #: the backend op it serves (``gpuaug.backend``)
    threads: int  #: threads per block of its launches
    signatures: tuple[str, ...]  #: Numba signatures, as the wrappers launch it


def cuda_entry(op: str, threads: int, args: str) -> CudaEntry:
    """A :class:`CudaEntry` for ``void(args)``, every ``{f}`` / ``{g}`` of ``args`` expanded
    over :data:`FLOATS` (independently: ``{f}`` and ``{g}`` give four signatures)."""
    names = [n for n in ("f", "g") if "{" + n + "}" in args]
    sigs = tuple(f"void({args.format(**dict(zip(names, combo)))})"
                 for combo in itertools.product(FLOATS, repeat=len(names)))
    return CudaEntry(op, threads, sigs)


def cuda_kernel_entries(op: str | None = None) -> list[tuple[str, str, object, CudaEntry]]:
    """``(module, name, kernel, entry)`` of every :data:`CUDA_KERNELS` table entry of the kernel
    modules (those of ``op`` only when given)."""
    from importlib import import_module
    from pkgutil import iter_modules

    out = []
    for info in iter_modules([str(KERNELS_DIR)]):
        module = import_module(f"gpuaug.kernels.{info.name}")
        for name, entry in getattr(module, "CUDA_KERNELS", {}).items():
            if op is None or entry.op == op:
                out.append((module.__name__, name, getattr(module, name), entry))
    return out


def probe_cuda_op(op: str, device_index: int) -> None:
    """Compile (or load from the on-disk cache) and load every CUDA kernel of ``op`` in every
    declared signature on GPU ``device_index``, and check its block size fits; raises on any
    failure (NVVM missing, a compile error, a module that does not load)."""
    from numba.core import sigutils

    with cuda.gpus[device_index]:
        for module, name, kernel, entry in cuda_kernel_entries(op):
            for sig in entry.signatures:
                argtypes, _ = sigutils.normalize_signature(sig)
                compiled = kernel.compile(argtypes)  # the key the launches look up
                limit = compiled.max_threads_per_block
                if limit < entry.threads:
                    raise RuntimeError(f"{module}.{name}{sig}: launched with {entry.threads} threads per "
                                       f"block, at most {limit} fit ({compiled.regs_per_thread} registers)")
