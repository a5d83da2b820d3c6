"""Freed CPU batch buffers kept for reuse: glibc's malloc thresholds raised once per process.

Why: glibc serves a block above its mmap threshold (dynamic, at most 32 MiB) with a fresh
``mmap`` and returns the heap's top to the kernel once more than twice that lies free there, so
a pipeline whose batch-sized tensors are ~16 MB (32 clips x 8 s at 16 kHz, float32) pays for
most of them again in page faults every call: 8,300-10,100 minor faults and 35-38 ms of system
time per ``retaining`` call on 32 x 8 s clips here, against 0.5-74 faults and ~1 ms with the
thresholds below (``benchmarks/results/kernel-timings.md``, issue 11 round 8). The per-transform
:class:`gpuaug._workspace.Workspace` covers the FFT scratch; the ops' outputs are the caller's,
so only the allocator can reuse them. PyTorch's CPU tuning guide recommends jemalloc / tcmalloc
for the same reason; this is the glibc equivalent, with no new dependency.

:func:`retain_freed_memory` (called by the first CPU op, :func:`gpuaug.functional._batch.check_wave`)
sets ``M_MMAP_THRESHOLD`` to :data:`MMAP_THRESHOLD` and ``M_TRIM_THRESHOLD`` to
:data:`TRIM_THRESHOLD` through ``mallopt``: blocks below 256 MiB come from the heap and are
reused, and up to 512 MiB of freed heap is kept instead of being returned to the kernel (the
process's resident memory stays near its high-water mark). Not applied when the environment
variable ``GPUAUG_RETAIN_MEMORY`` is ``0``, when the user already set glibc's own
``MALLOC_MMAP_THRESHOLD_`` / ``MALLOC_TRIM_THRESHOLD_``, or outside Linux with glibc.
"""
from __future__ import annotations

import ctypes
import os
import platform
import sys

__all__ = ["MMAP_THRESHOLD", "TRIM_THRESHOLD", "ENV", "retain_freed_memory"]

#: Blocks of fewer bytes come from the heap (reused after a free), not from a fresh mmap.
MMAP_THRESHOLD = 256 << 20
#: Freed memory at the heap's top kept up to this many bytes before it goes back to the kernel.
TRIM_THRESHOLD = 512 << 20
#: ``GPUAUG_RETAIN_MEMORY=0`` leaves glibc's thresholds as they are.
ENV = "GPUAUG_RETAIN_MEMORY"
_GLIBC_ENV = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_")
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc's malloc.h

#: None until :func:`retain_freed_memory` ran in this process, then whether it set the thresholds.
applied: bool | None = None


def retain_freed_memory() -> bool:
    """Raise glibc's mmap and trim thresholds (module docstring), once per process; returns
    whether they are set by gpuaug in this process (False: opted out, set by the user, or not
    glibc)."""
    global applied
    if applied is None:
        applied = _set_thresholds()
    return applied


def _set_thresholds() -> bool:
    if os.environ.get(ENV, "1") == "0" or any(k in os.environ for k in _GLIBC_ENV):
        return False
    if not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc":
        return False
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD))
