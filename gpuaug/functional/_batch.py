"""Shared plumbing of the functional ops: input validation, shapes, masks, parameters.

Conventions every op in :mod:`gpuaug.functional` follows:

* ``wave`` is a floating tensor of shape ``(B, T)`` or ``(B, C, T)``; ops return the same
  rank, dtype and device.
* ``lengths`` is a ``(B,)`` integer tensor of valid samples per clip (``0 <= L <= T``);
  samples at ``t >= lengths[b]`` are padding. Ops return ``(wave, lengths)``, with the
  padding of the output set to exactly zero.
* Length-preserving ops keep ``T``; length-changing ops return ``T_out = max(new_lengths)``
  (0 for an empty batch), so extra input padding never changes the output.
* Every parameter is per clip: a ``(B,)`` tensor (a Python scalar is broadcast).
* Inputs are never modified in place; bad input raises ``ValueError`` / ``TypeError``.
"""
from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar
from typing import Iterator, Sequence

import torch
from torch import Tensor

from .. import _allocator
from .._sync import check_later, has_mirror, host_of, is_host, mirrored, to_host_many
from ..backend import ROW_PEAK, kernel_for

__all__ = [
    "as_3d",
    "restore_rank",
    "check_wave",
    "valid_mask",
    "zero_padding",
    "per_clip",
    "per_clip_int",
    "empty_like_lengths",
    "check_companion",
    "finite_checked",
    "finite_trusted",
    "NARROW_FLOATS",
    "check_finite_output",
    "finite_rows",
    "check_rows",
    "mark_finite",
    "marked_finite",
    "row_peak_kernel",
    "in_float32",
]

#: 16-bit floating dtypes. Ops whose torch path needs FFTs (which torch does not run in these
#: dtypes on every device) compute in float32 and return the input dtype (:func:`in_float32`).
NARROW_FLOATS = (torch.float16, torch.bfloat16)

#: True while the waves reaching the ops are known to be finite (see :func:`finite_checked`).
_FINITE_TRUSTED: ContextVar[bool] = ContextVar("gpuaug_finite_trusted", default=False)


@contextmanager
def finite_checked() -> Iterator[None]:
    """Within this block :func:`check_wave` skips its NaN / Inf scan (one full pass per call).

    For callers that checked their input once and then chain gpuaug ops, which never turn
    finite input into NaN / Inf (:class:`~gpuaug.transforms.Pipeline` does this; companion
    audio from a :class:`~gpuaug.data.Bank` is checked when the bank is built). Other
    validation (shapes, dtypes, lengths, parameters) still runs.
    """
    token = _FINITE_TRUSTED.set(True)
    try:
        yield
    finally:
        _FINITE_TRUSTED.reset(token)


def finite_trusted() -> bool:
    """Whether the caller is inside :func:`finite_checked`."""
    return _FINITE_TRUSTED.get()


def mark_finite(wave: Tensor) -> Tensor:
    """Note on ``wave`` (this tensor object) that every sample was checked finite, as it is now:
    :func:`check_wave` then skips its NaN / Inf scan of it until it is written in place (torch's
    version counter, shared with its views, moves on every in-place write). Returns ``wave``.
    :class:`~gpuaug.data.AugmentCollate` marks the batches it pads from items it scanned one by
    one, so the pipeline call does not scan them again. A no-op on an inference-mode tensor
    (it has no version counter)."""
    try:
        wave._gpuaug_finite = wave._version
    except RuntimeError:
        pass
    return wave


def marked_finite(wave: Tensor) -> bool:
    """Whether ``wave`` carries a :func:`mark_finite` mark still valid (not written since)."""
    mark = getattr(wave, "_gpuaug_finite", None)
    if mark is None:
        return False
    try:
        return mark == wave._version
    except RuntimeError:
        return False


def as_3d(wave: Tensor) -> tuple[Tensor, bool]:
    """View ``(B, T)`` as ``(B, 1, T)``; return the view and whether it was 2-D."""
    if wave.dim() == 2:
        return wave.unsqueeze(1), True
    return wave, False


def restore_rank(wave: Tensor, was_2d: bool) -> Tensor:
    """Undo :func:`as_3d`."""
    return wave.squeeze(1) if was_2d else wave


def row_peak_kernel(wave: Tensor):
    """The kernel of op ``row_peak`` for ``wave`` (:func:`gpuaug.kernels.row_reduce.row_peaks`),
    or None: it takes float32 / float64 host tensors only (torch's reductions elsewhere, also on
    the sync-counting stand-in of a device)."""
    if not (is_host(wave.device) and wave.dtype in (torch.float32, torch.float64)):
        return None
    return kernel_for(ROW_PEAK, wave.device)[1]


def finite_rows(wave: Tensor) -> Tensor:
    """``(B,)`` bool: clip ``b`` holds no NaN / Inf. Max and min propagate NaN and reach +-Inf,
    so two reductions replace ``isfinite().all()`` (far less CPU time, see
    ``benchmarks/results/kernel-timings.md``) with the same answer."""
    flat = wave.reshape(wave.shape[0], -1)
    if flat.shape[1] == 0:  # no samples: nothing to be non-finite
        return torch.ones(flat.shape[0], dtype=torch.bool, device=wave.device)
    kernel = row_peak_kernel(wave)
    if kernel is not None:  # CPU: one integer max of bit patterns per row (gpuaug.kernels.row_reduce)
        return kernel(flat)[1]
    return torch.isfinite(flat.amax(dim=1)) & torch.isfinite(flat.amin(dim=1))


def check_wave(wave: Tensor, lengths: Tensor, *, name: str = "wave") -> Tensor:
    """Validate a ``(wave, lengths)`` pair and return ``lengths`` as int64 on ``wave``'s device.

    Raises:
        TypeError: ``wave`` is not a floating tensor or ``lengths`` is not integer.
        ValueError: wrong ranks, mismatched batch size, lengths outside ``[0, T]``,
            or NaN / Inf samples (the message lists the offending clips).
    """
    if not isinstance(wave, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(wave).__name__}")
    if not wave.is_floating_point():
        raise TypeError(f"{name} must be a floating tensor, got dtype {wave.dtype}")
    if wave.dim() not in (2, 3):
        raise ValueError(f"{name} must have shape (B, T) or (B, C, T), got {tuple(wave.shape)}")
    if not isinstance(lengths, Tensor):
        lengths = torch.as_tensor(lengths)
    if lengths.is_floating_point() or lengths.dtype == torch.bool or lengths.is_complex():
        raise TypeError(f"lengths must be an integer tensor, got dtype {lengths.dtype}")
    if lengths.shape != (wave.shape[0],):
        raise ValueError(
            f"lengths must have shape (B,) = ({wave.shape[0]},), got {tuple(lengths.shape)}"
        )
    if _allocator.applied is None and wave.device.type == "cpu":
        _allocator.retain_freed_memory()  # the first CPU op of the process (gpuaug._allocator)
    B, T = wave.shape[0], wave.shape[-1]
    scan = B > 0 and not finite_trusted() and not marked_finite(wave)
    finite = finite_rows(wave) if scan else None
    mirrored_already = has_mirror(lengths)
    if mirrored_already:
        host = host_of(lengths).to(torch.int64)  # validated on the host: no sync
    elif scan:  # device lengths without a mirror: read them with the NaN scan, in one sync
        host, finite = to_host_many([lengths.to(torch.int64), finite])
    else:
        host = host_of(lengths).to(torch.int64)
    if B and bool(((host < 0) | (host > T)).any()):
        raise ValueError(f"lengths must lie in [0, T={T}], got {host.tolist()}")
    if not (mirrored_already and lengths.dtype == torch.int64 and lengths.device == wave.device):
        lengths = mirrored(host, wave.device)  # later ops read the host copy without a sync
    if scan and not bool(host_of(finite).all()):  # the one sync of an untrusted call
        bad = (~host_of(finite)).nonzero().flatten().tolist()
        raise ValueError(f"{name} contains NaN or Inf samples in clip(s) {bad}")
    return lengths


def check_rows(rows, batch: int) -> Tensor:
    """``rows=`` of an op that changes only some rows of a batch (e.g.
    :func:`~gpuaug.functional.noise.mix_noise_from_bank`, :func:`~gpuaug.functional.reverb.reverb`)
    as a host int64 tensor of distinct rows in ``[0, batch)`` (a device tensor's host mirror:
    no sync)."""
    r = host_of(rows) if isinstance(rows, Tensor) else torch.as_tensor(rows)
    if r.is_floating_point() or r.dtype == torch.bool or r.dim() != 1:
        raise TypeError(f"rows must be a 1-D integer tensor of row indices, got dtype {r.dtype}, shape {tuple(r.shape)}")
    r = r.to(torch.int64)
    if r.numel() and (int(r.min()) < 0 or int(r.max()) >= batch or torch.unique(r).numel() != r.numel()):
        raise ValueError(f"rows must be distinct rows of the batch of {batch}, got {r.tolist()}")
    return r


def valid_mask(lengths: Tensor, T: int) -> Tensor:
    """``(B, T)`` bool mask, True on the valid samples ``t < lengths[b]``."""
    return torch.arange(T, device=lengths.device) < lengths[:, None]


def zero_padding(wave: Tensor, lengths: Tensor) -> Tensor:
    """Return ``wave`` (``(B, T)`` or ``(B, C, T)``) with samples at ``t >= lengths`` set to 0."""
    mask = valid_mask(lengths, wave.shape[-1])
    if wave.dim() == 3:
        mask = mask[:, None, :]
    return torch.where(mask, wave, 0.0)


def per_clip(
    value: float | Sequence[float] | Tensor,
    batch: int,
    *,
    name: str,
    device: torch.device | str,
    dtype: torch.dtype = torch.float32,
) -> Tensor:
    """Broadcast a scalar or ``(B,)`` parameter to a finite ``(B,)`` tensor on ``device``.

    Validated on the host copy (:func:`~gpuaug._sync.host_of`: no sync for host values or
    uploaded parameters); the result carries that host copy as its mirror.
    """
    t = (host_of(value) if isinstance(value, Tensor) else torch.as_tensor(value, dtype=dtype)).to(dtype)
    if t.dim() == 0:
        t = t.expand(batch)
    if t.shape != (batch,):
        raise ValueError(f"{name} must be a scalar or have shape ({batch},), got {tuple(t.shape)}")
    if t.is_floating_point() and batch and not bool(torch.isfinite(t).all()):
        raise ValueError(f"{name} must be finite, got {t.tolist()}")
    if isinstance(value, Tensor) and value.dtype == dtype and value.shape == (batch,) and value.device == torch.device(device):
        return value
    return mirrored(t.contiguous(), device)


def per_clip_int(value: int | Sequence[int] | Tensor, batch: int, *, name: str, device) -> Tensor:
    """Like :func:`per_clip` for integer (sample-count) parameters; returns int64."""
    if isinstance(value, Tensor) and value.dtype == torch.int64:
        return per_clip(value, batch, name=name, device=device, dtype=torch.int64)
    t = host_of(value) if isinstance(value, Tensor) else torch.as_tensor(value)
    if t.is_floating_point():
        t = t.round()
    return per_clip(t.to(torch.int64), batch, name=name, device=device, dtype=torch.int64)


def empty_like_lengths(wave: Tensor, T: int) -> Tensor:
    """A zero wave with ``wave``'s batch/channel shape, dtype and device, and ``T`` samples."""
    return wave.new_zeros(*wave.shape[:-1], T)


def check_companion(other: Tensor, other_lengths: Tensor, *, batch: int, channels: int, name: str,
                    min_length: int = 0) -> tuple[Tensor, Tensor]:
    """Validate a per-clip companion batch (noise, RIR, insert clip) of a ``(B, C, T)`` wave.

    ``other`` is ``(B, T')`` or ``(B, C', T')`` with ``C'`` 1 (broadcast) or ``C``. Returns the
    ``(B, C', T')`` view and its int64 lengths (``>= min_length`` each, when ``B > 0``).
    """
    if isinstance(other, Tensor) and other.dim() in (2, 3) and other.shape[0] != batch:
        raise ValueError(f"{name} batch size {other.shape[0]} != wave batch size {batch}")
    other_lengths = check_wave(other, other_lengths, name=name)
    o, _ = as_3d(other)
    if o.shape[1] not in (1, channels):
        raise ValueError(f"mismatched channel counts: {name} has {o.shape[1]} channels, wave has {channels} "
                         f"({name} must be mono or have the wave's channel count)")
    if batch and min_length and bool((host_of(other_lengths) < min_length).any()):
        raise ValueError(f"{name}_lengths must be >= {min_length}, got {host_of(other_lengths).tolist()}")
    return o, other_lengths


def check_finite_output(out: Tensor, op: str, why=None) -> None:
    """Raise ``ValueError`` naming ``op`` unless every sample of ``out`` (``(B, ...)``) is finite.

    For ops that can overflow the dtype or divide by a tiny energy. ``why``: a string, or a
    callable returning one (only called on failure), appended to the message. Goes through
    :func:`~gpuaug._sync.check_later`: inside a pipeline call it is read with the call's other
    deferred checks (no sync of its own); outside one it runs at once.
    """
    B = out.shape[0]
    if B == 0 or out.numel() == 0:
        return
    ok = finite_rows(out)

    def message(ok: Tensor) -> str:
        reason = why() if callable(why) else why
        return (f"{op}: the output of clip(s) {(~ok).nonzero().flatten().tolist()} is not finite "
                f"(Inf / NaN in {out.dtype}){': ' + reason if reason else ''}")

    check_later(ok, message)


def in_float32(op, wave: Tensor, lengths: Tensor, *args, name: str, **kwargs) -> tuple[Tensor, Tensor]:
    """``op(wave, lengths, ...)`` computed on a float32 copy of a 16-bit ``wave`` (already checked
    by the caller, so the inner call skips the NaN scan), returned in ``wave``'s dtype; a float16
    result beyond float16's range (65504) raises through :func:`check_finite_output`."""
    with finite_checked():
        out, out_lengths = op(wave.to(torch.float32), lengths, *args, **kwargs)
    out = out.to(wave.dtype)
    if wave.dtype == torch.float16:
        check_finite_output(out, name, "the float32 result exceeds the float16 range")
    return out, out_lengths
