"""Device kernels of gpuaug (Numba ``@njit`` / ``@cuda.jit`` and CUDA C sources for CuPy).

This folder is installed as ``gpuaug.kernels`` (see ``pyproject.toml``), never as a
top-level ``kernels`` module. The plain-torch ops in :mod:`gpuaug.functional` are the
reference implementations; every kernel here must match them within fp32 tolerance and
registers its entry points with :func:`gpuaug.backend.register_kernel` when its module is
imported.
Importing this package imports every kernel module in it.
"""
from importlib import import_module
from pkgutil import iter_modules

for _module in iter_modules(__path__):
    if not _module.name.startswith("_"):
        import_module(f"{__name__}.{_module.name}")
