"""The one launch helper of gpuaug's Numba kernels (every ``@njit`` / ``@cuda.jit`` launch goes through it).

* :func:`kernel_float`: the floating tensor a kernel computes on (float32 / float64; other
  float dtypes such as float16 are computed in float32).
* :func:`run_numba`: run a CPU ``@njit`` kernel on NumPy views (under
  :data:`~gpuaug.kernels._numba_glue.CPU_LOCK`, which also sets Numba's thread count to the
  torch / gpuaug thread budget) or a CUDA launcher on zero-copy device views inside
  :func:`~gpuaug.kernels._numba_glue.cuda_device` on torch's current stream
  (:func:`~gpuaug.kernels._numba_glue.torch_stream`), by the tensors' device. Kernels write
  into tensors the caller allocated, so nothing is copied back.
"""
from __future__ import annotations

from typing import Callable

import torch

from gpuaug.kernels._numba_glue import CPU_LOCK, cuda_device, kernel_array, torch_stream

__all__ = ["kernel_float", "run_numba"]


def kernel_float(t: torch.Tensor) -> torch.Tensor:
    """``t`` detached and C-contiguous, in float32 unless it is float32 or float64."""
    t = t.detach()
    return (t if t.dtype in (torch.float32, torch.float64) else t.float()).contiguous()


def run_numba(kernel_cpu: Callable | None, launch_cuda: Callable | None, tensors: list[torch.Tensor],
              *scalars) -> None:
    """``kernel_cpu(*views, *scalars)`` on CPU tensors, else ``launch_cuda(*views, *scalars, stream=...)``.

    ``tensors`` are C-contiguous and on one device; outputs among them are written in place.
    ``kernel_cpu`` / ``launch_cuda`` ``None``: the kernel has no twin on that device (raises).
    """
    device = tensors[0].device
    target = launch_cuda if device.type == "cuda" else kernel_cpu
    if target is None:
        raise ValueError(f"this kernel has no {device.type} implementation")
    views = [kernel_array(t) for t in tensors]
    if device.type != "cuda":
        with CPU_LOCK:  # fork-safe threading layer + thread budget, see gpuaug.kernels._numba_glue
            kernel_cpu(*views, *scalars)
        return
    with cuda_device(device):
        launch_cuda(*views, *scalars, stream=torch_stream(device))
