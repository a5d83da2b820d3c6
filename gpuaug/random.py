"""Counter-based random numbers: every draw is a pure function of integer keys.

gpuaug never uses a global or stateful RNG. A random value is ``hash(key, stream, counter)``
where ``key`` identifies the item (derived from ``(seed, epoch, item index)``), ``stream``
identifies who draws (a transform slot, a parameter), and ``counter`` enumerates draws
(e.g. the sample index of white noise). Results therefore do not depend on batch size,
batch composition, worker count, device or rank.

The mixer is SplitMix64 (Steele et al., 2014) on int64 tensors with two's-complement
wrap-around; ``tests/test_random.py`` checks it bit-for-bit against a uint64 numpy version.
"""
from __future__ import annotations

import operator
import zlib

import numpy as np
import torch
from torch import Tensor

from gpuaug.kernels._splitmix import C1, C2, GOLDEN, mix_rows, uniform_draws

__all__ = ["mix", "combine", "item_keys", "check_seed", "stream_id", "uniform", "normal"]

#: Seeds are integers in ``[0, SEED_LIMIT)``: exactly the non-negative int64 values, so two
#: different seeds never give the same keys (seeds were once masked to 63 bits, which made
#: ``seed=0`` and ``seed=2**63`` draw the same parameters).
SEED_LIMIT = 1 << 63

# SplitMix64's constants as int64 (two's complement) for the torch path
_GOLDEN, _C1, _C2 = (int(c) - (1 << 64) for c in (GOLDEN, C1, C2))


def _srl(z: Tensor, k: int) -> Tensor:
    """Logical right shift of int64 values (torch's ``>>`` is arithmetic)."""
    return (z >> k) & ((1 << (64 - k)) - 1)


_U64 = (1 << 64) - 1


def mix(z: Tensor) -> Tensor:
    """SplitMix64 finaliser of ``z + golden``: int64 tensor -> well-mixed int64 tensor.

    Plain CPU tensors are mixed as uint64 in a compiled loop (:mod:`gpuaug.kernels._splitmix`;
    the same bits, fewer and cheaper calls: the parameter draws of a pipeline call are many small
    ones); others (CUDA) in torch int64.
    """
    z = z.to(torch.int64)
    if _plain_cpu(z):
        return torch.from_numpy(np.asarray(_mix_np(z.numpy().view(np.uint64))).view(np.int64))
    return _mix_torch(z)


def _plain_cpu(t) -> bool:
    """``t`` is a plain (not subclassed) CPU tensor: its hashing runs on uint64 arrays."""
    return type(t) is Tensor and t.device.type == "cpu"


def _combine_np(key: np.ndarray, value) -> np.ndarray:
    """:func:`combine` on uint64 arrays."""
    return _mix_np(_mix_np(key) ^ value)


def _mix_np(a: np.ndarray) -> np.ndarray:
    """:func:`mix` on a uint64 array (any shape), in one compiled loop (:mod:`gpuaug.kernels._splitmix`)."""
    flat = np.ascontiguousarray(a, dtype=np.uint64).reshape(-1)
    out = np.empty_like(flat)
    mix_rows(flat, out)
    return out.reshape(np.shape(a))


def _mix_torch(z: Tensor) -> Tensor:
    """:func:`mix` in torch int64 ops (any device)."""
    z = z.to(torch.int64) + _GOLDEN
    z = (z ^ _srl(z, 30)) * _C1
    z = (z ^ _srl(z, 27)) * _C2
    return z ^ _srl(z, 31)


def combine(key: Tensor, value: Tensor | int) -> Tensor:
    """Hash ``value`` into ``key`` (both int64, broadcastable)."""
    return mix(mix(key) ^ torch.as_tensor(value, dtype=torch.int64, device=key.device))


def stream_id(name: str) -> int:
    """A stable int for a name (CRC32; the same on every platform and run)."""
    return zlib.crc32(name.encode("utf-8"))


def check_seed(seed, name: str = "seed") -> int:
    """``seed`` as a Python int in ``[0, 2**63)``; every run seed of gpuaug goes through here.

    Accepts Python / numpy integers and one-element integer tensors. Raises ``TypeError`` for
    non-integers (floats, bools, strings) and ``ValueError`` for values outside ``[0, 2**63)``,
    naming ``name`` (no seed is silently masked, wrapped or rounded).
    """
    if isinstance(seed, bool) or (isinstance(seed, Tensor) and (seed.dtype == torch.bool or seed.numel() != 1)):
        raise TypeError(f"{name} must be an integer in [0, 2**63), got {seed!r}")
    try:
        value = operator.index(seed)
    except TypeError:
        raise TypeError(f"{name} must be an integer in [0, 2**63), got {type(seed).__name__} {seed!r}") from None
    if not 0 <= value < SEED_LIMIT:
        raise ValueError(f"{name} must lie in [0, 2**63), got {value}")
    return value


def _check_epoch(epoch) -> int:
    """``epoch`` as a Python int in the int64 range (negative epochs are internal streams)."""
    if isinstance(epoch, bool):
        raise TypeError(f"epoch must be an integer, got {epoch!r}")
    try:
        value = operator.index(epoch)
    except TypeError:
        raise TypeError(f"epoch must be an integer, got {type(epoch).__name__} {epoch!r}") from None
    if not -SEED_LIMIT <= value < SEED_LIMIT:
        raise ValueError(f"epoch must lie in the int64 range, got {value}")
    return value


def item_keys(seed: int, epoch: int, index: Tensor) -> Tensor:
    """``(B,)`` int64 keys of items: a pure function of ``(seed, epoch, index)``.

    ``seed`` must lie in ``[0, 2**63)`` (see :func:`check_seed`), ``epoch`` in the int64 range.
    """
    seed, epoch = check_seed(seed), _check_epoch(epoch)
    index = torch.as_tensor(index, dtype=torch.int64)
    base = combine(torch.tensor(seed, dtype=torch.int64), epoch)
    return combine(base.to(index.device).expand_as(index), index)


def _unit(h: Tensor, dtype: torch.dtype) -> Tensor:
    """Top 53 bits of ``h`` -> float in [0, 1)."""
    return (_srl(h, 11).to(torch.float64) * (2.0**-53)).to(dtype)


def uniform(key: Tensor, stream: int, counter: Tensor | int = 0, dtype=torch.float64) -> Tensor:
    """Uniform [0, 1) values for each ``key`` (broadcast against ``counter``).

    ``_unit(combine(combine(key, stream), counter))``; for plain CPU tensors on uint64 arrays
    (each mix a compiled loop, or for the parameter draws, 1-D keys, an int counter and float64,
    the whole chain in one compiled loop; the same bits: ``tests/test_random.py``), else in
    torch ops.
    """
    key = torch.as_tensor(key, dtype=torch.int64)
    if _plain_cpu(key) and key.dim() == 1 and isinstance(counter, int) and dtype == torch.float64:
        # the parameter draws (one value per item): the whole chain in one compiled loop
        out = np.empty(key.shape[0], dtype=np.float64)
        uniform_draws(np.ascontiguousarray(key.numpy()).view(np.uint64), np.uint64(int(stream) & _U64),
                       np.uint64(counter & _U64), out)
        return torch.from_numpy(out)
    if _plain_cpu(key) and (not isinstance(counter, Tensor) or _plain_cpu(counter)):
        c = np.asarray(counter.to(torch.int64).numpy() if isinstance(counter, Tensor) else counter, dtype=np.int64)
        h = _combine_np(_combine_np(key.numpy().view(np.uint64), np.uint64(int(stream) & _U64)), c.view(np.uint64))
        u = np.asarray((h >> np.uint64(11)).astype(np.float64) * 2.0**-53)
        return torch.from_numpy(u).to(dtype)
    return _uniform_torch(key, stream, counter, dtype)


def _uniform_torch(key: Tensor, stream: int, counter: Tensor | int, dtype) -> Tensor:
    """:func:`uniform` in torch ops (any device)."""
    counter = torch.as_tensor(counter, dtype=torch.int64, device=key.device)
    return _unit(combine(combine(key, stream), counter), dtype)


def normal(key: Tensor, stream: int, counter: Tensor | int = 0, dtype=torch.float32) -> Tensor:
    """Standard normal values (Box-Muller on two uniform streams), same broadcasting."""
    u1 = uniform(key, stream, counter)
    u2 = uniform(key, stream ^ 0x5BD1E995, counter)
    r = torch.sqrt(-2.0 * torch.log1p(-u1))  # log1p(-u) is finite for u in [0, 1)
    return (r * torch.cos(2.0 * torch.pi * u2)).to(dtype)
