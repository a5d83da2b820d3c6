"""Torch <-> Numba glue shared by the Numba kernel modules (small and generic).

* :func:`kernel_array`: the array a Numba kernel takes for a tensor: a NumPy view of a CPU
  tensor (for ``@njit`` kernels, and for ``@cuda.jit`` kernels under the CUDA simulator, which
  take host arrays) or a zero-copy ``cuda.as_cuda_array`` view of a CUDA tensor.
* :func:`torch_stream`: torch's current CUDA stream as a Numba stream, so kernels are ordered
  with the surrounding torch work (``0``, the default stream, under the simulator).
* :func:`cuda_device`: context manager making a tensor's GPU Numba's current device.
* :func:`grid_1d`: ``(blocks, threads)`` of a 1-D launch covering ``n`` threads;
  :func:`launch_per_sample` launches a kernel with one thread per element of an array.
* :data:`CPU_LOCK`: held around every parallel ``@njit`` launch (see fork safety below).

Fork safety: numba's default CPU threading layer on Linux without TBB is GNU OpenMP, which
aborts a forked child (e.g. a DataLoader worker) that launches a parallel kernel after its
parent did. Unless ``NUMBA_THREADING_LAYER`` is set, importing this module selects numba's
``forksafe`` layer (TBB if installed, else ``workqueue``); ``workqueue`` rejects concurrent
launches from several threads, so every CPU kernel of gpuaug runs under :data:`CPU_LOCK`.

Kernels write into arrays the caller allocated with torch (C-contiguous), so results stay
in torch's caching allocator and need no copy back. CUDA views are taken without a host
sync: launch the kernels on :func:`torch_stream`, which orders them with torch's work.
"""
from __future__ import annotations

import math

import threading

import torch
from numba import config, cuda

__all__ = ["kernel_array", "torch_stream", "cuda_device", "grid_1d", "launch_per_sample", "CPU_LOCK"]

if config.THREADING_LAYER == "default":  # see the module docstring (fork safety)
    config.THREADING_LAYER = "forksafe"
#: Serialises the parallel CPU kernels (the ``workqueue`` layer rejects concurrent launches).
CPU_LOCK = threading.Lock()


def kernel_array(t: torch.Tensor):
    """Zero-copy kernel view of ``t``: ``numpy.ndarray`` (CPU) or Numba device array (CUDA).

    ``t`` must be C-contiguous (a kernel writing into a silent copy would lose its output).
    """
    if not t.is_contiguous():
        raise ValueError("kernel arrays must be C-contiguous tensors")
    t = t.detach()
    if t.device.type == "cuda":  # no host sync: launch on torch_stream(), which orders it
        return cuda.as_cuda_array(t, sync=False)
    return t.numpy()


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
