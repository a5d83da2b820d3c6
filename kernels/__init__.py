"""Device kernels of gpuaug (Numba-CUDA and CUDA C sources).

This folder is installed as ``gpuaug.kernels`` (see ``pyproject.toml``), never as a
top-level ``kernels`` module. The plain-torch ops in :mod:`gpuaug.functional` are the
reference implementations; kernels here must match them within fp32 tolerance.
"""
