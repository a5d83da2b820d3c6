"""Batched band-limited resampling at arbitrary positions: the time-warp core of gpuaug.

:func:`warp` evaluates every clip at arbitrary, per-clip, per-output-sample fractional input
positions with a windowed-sinc interpolator whose cutoff can change per output sample. It
serves :func:`resample` (sample-rate change), :mod:`~gpuaug.functional.speed` (speed and
segment speed-up) and the resampling half of :mod:`~gpuaug.functional.pitch`.

Definition (the contract a CUDA kernel of this op must reproduce). For clip ``b`` of valid
length ``L``, output sample ``j < new_lengths[b]`` with input position ``p = positions[b, j]``
(in input samples) and cutoff ``f = cutoff[b, j]`` (fraction of the input Nyquist
frequency, ``0 < f <= 1``)::

    u_i   = (i - p) * f                                       for every integer i
    k(u)  = sinc(u) * cos(pi * u / (2 * Z))**2  if |u| < Z else 0  (Hann-windowed sinc)
    y[j]  = sum_{0 <= i < L} x[i] * k(u_i)  /  sum_{all integers i} k(u_i)

with ``sinc(u) = sin(pi u) / (pi u)`` and ``Z = zeros`` zero crossings per side (default 24).
Samples outside ``[0, L)`` count as zero, so padding never leaks into the valid region, and
the normalisation (over all taps, valid or not) makes the DC gain exactly 1 in the interior.
The kernel is the one of ``julius.resample_frac`` (Hann window, 24 zeros); :func:`resample`
uses julius' anti-aliasing ``rolloff`` too, so both agree in the interior of a clip (julius
pads by edge replication, gpuaug by zeros, so the first and last ``Z / f`` samples differ).
With ``f = 1`` and integer positions, ``k`` is an exact unit impulse (``sin(pi u)`` is
evaluated as ``(-1)^n sin(pi (u - n))``, exactly 0 at integers): the input is copied bit
for bit.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor

from gpuaug._sync import check_later, host_of, mirrored, take_rows
from gpuaug.backend import UNIFORM_WARP, WARP, kernel_for

from ._batch import (
    as_3d,
    check_wave,
    empty_like_lengths,
    finite_trusted,
    per_clip,
    per_clip_int,
    restore_rank,
    zero_padding,
)

__all__ = ["warp", "resample", "DEFAULT_ZEROS", "DEFAULT_ROLLOFF", "MIN_CUTOFF"]

#: Zero crossings of the windowed sinc on each side (as julius).
DEFAULT_ZEROS = 24
#: Anti-aliasing margin: the cutoff is ``rolloff * min(1, new_rate / old_rate)`` (as julius).
DEFAULT_ROLLOFF = 0.945
#: Smallest accepted cutoff; it bounds the tap count at ``2 * ceil(zeros / MIN_CUTOFF) + 1``.
MIN_CUTOFF = 1.0 / 32
#: Elements of the gathered ``(B, C, chunk, taps)`` block per chunk of output time.
_CHUNK_ELEMENTS = 1 << 22


def _cutoff_table(cutoff, batch: int, t_out: int, device) -> tuple[Tensor, Tensor | None]:
    """Broadcast a scalar, ``(B,)`` or ``(B, T')`` cutoff to a float64 ``(B, T_out)`` table.

    Also returns the per-clip cutoffs on the host (``None`` for a ``(B, T')`` table, which
    only the device holds).
    """
    if isinstance(cutoff, Tensor) and cutoff.dim() == 2:
        if cutoff.shape[0] != batch or cutoff.shape[1] < t_out:
            raise ValueError(
                f"cutoff of shape (B, T') needs B = {batch} and T' >= {t_out}, got {tuple(cutoff.shape)}"
            )
        return cutoff[:, :t_out].to(device=device, dtype=torch.float64), None
    c = per_clip(cutoff, batch, name="cutoff", device=device, dtype=torch.float64)
    return c[:, None].expand(batch, t_out), host_of(c)


def _window_weights(u: Tensor, zeros: int) -> Tensor:
    """Hann-windowed sinc ``k(u)`` of the module docstring (zero for ``|u| >= zeros``).

    ``cos(x)**2 = (1 + cos(2x)) / 2`` is used for the window.
    """
    n = torch.round(u)
    # sin(pi u) = (-1)^n sin(pi (u - n)): exactly 0 at integers, so f = 1 at an integer
    # position gives an exact unit impulse (a bit-exact copy).
    sin_pi_u = torch.sin(math.pi * (u - n)) * (1.0 - 2.0 * torch.remainder(n, 2.0))
    v = u * math.pi
    k = sin_pi_u / torch.where(u == 0, 1.0, v) * (0.5 + 0.5 * torch.cos(v / zeros))
    return torch.where(u == 0, 1.0, torch.where(u.abs() < zeros, k, 0.0))


def warp(
    wave: Tensor,
    lengths: Tensor,
    positions: Tensor,
    new_lengths: Tensor,
    cutoff: float | Tensor = 1.0,
    *,
    zeros: int = DEFAULT_ZEROS,
    backend: str | None = None,
) -> tuple[Tensor, Tensor]:
    """Band-limited evaluation of each clip at fractional input positions (see module doc).

    Args:
        wave: input clips, zero or garbage beyond ``lengths`` (never read).
        lengths: valid input samples per clip.
        positions: input-sample positions of the output samples (float; computed in float64).
            Only ``positions[b, :new_lengths[b]]`` is read; it must be finite there. Positions
            outside ``[0, L)`` are allowed and see zeros.
        new_lengths: valid output samples per clip (``(B,)`` int, scalar broadcast).
        cutoff: low-pass cutoff as a fraction of the *input* Nyquist frequency, in
            ``[MIN_CUTOFF, 1]``: scalar, per clip ``(B,)`` or per output sample ``(B, T')``.
            Use ``min(1, 1 / local_speed)`` (times a rolloff) so reading faster than one input
            sample per output sample does not alias.
        zeros: zero crossings of the sinc per side (taps per output sample: about
            ``2 * zeros / min(cutoff)``).

    Shapes:
        wave ``(B, T)`` or ``(B, C, T)``; lengths ``(B,)``; positions ``(B, T')`` with
        ``T' >= max(new_lengths)``; output ``(B, T_out)`` / ``(B, C, T_out)`` with
        ``T_out = max(new_lengths)`` (0 for B = 0), padding exactly zero, and ``(B,)`` int64
        new lengths.

    torch path: the taps are summed in ``wave``'s dtype with weights computed in float64;
    output time is processed in chunks so the gathered block stays near ``4M`` elements.
    Kernels accumulate in float64 and agree with it within float32 rounding.
    """
    lengths = check_wave(wave, lengths)
    B = wave.shape[0]
    device = wave.device
    if not isinstance(zeros, int) or zeros < 1:
        raise ValueError(f"zeros must be a positive int, got {zeros!r}")
    new_lengths = per_clip_int(new_lengths, B, name="new_lengths", device=device)
    new_host = host_of(new_lengths)  # sizes and checks on the host (no sync with a mirror)
    if bool((new_host < 0).any()):
        raise ValueError(f"new_lengths must be >= 0, got {new_host.tolist()}")
    t_out = int(new_host.max()) if B else 0
    if not isinstance(positions, Tensor) or not positions.is_floating_point():
        raise TypeError("positions must be a floating torch.Tensor")
    if positions.dim() != 2 or positions.shape[0] != B or positions.shape[1] < t_out:
        raise ValueError(
            f"positions must have shape (B={B}, T' >= {t_out}), got {tuple(positions.shape)}"
        )
    out_mask = torch.arange(t_out, device=device) < new_lengths[:, None]
    pos = torch.where(out_mask, positions[:, :t_out].to(device=device, dtype=torch.float64), 0.0)
    if not finite_trusted() and not bool(torch.isfinite(pos).all()):
        raise ValueError("positions must be finite on the valid output samples")
    table, per_clip_fc = _cutoff_table(cutoff, B, t_out, device)
    fc = torch.where(out_mask, table, 1.0)
    if per_clip_fc is not None:  # per-clip cutoffs: checked on the host
        used = per_clip_fc[new_host > 0]
        if used.numel() and not bool(((used >= MIN_CUTOFF) & (used <= 1.0)).all()):
            raise ValueError(f"cutoff must lie in [{MIN_CUTOFF}, 1], got min {float(used.min())}, "
                             f"max {float(used.max())}")
    elif t_out:
        check_later((fc >= MIN_CUTOFF) & (fc <= 1.0), lambda ok: f"cutoff must lie in [{MIN_CUTOFF}, 1]")

    x3, was_2d = as_3d(wave)
    C, T = x3.shape[1], x3.shape[2]
    out = empty_like_lengths(x3, t_out)
    if B == 0 or t_out == 0:
        return restore_rank(out, was_2d), new_lengths
    kernel = kernel_for(WARP, device, backend)[1]
    if kernel is not None:
        return restore_rank(kernel(x3, lengths, pos, fc, new_lengths, zeros=zeros), was_2d), new_lengths

    fc_min = float(fc.min()) if per_clip_fc is None else float(per_clip_fc[new_host > 0].min().clamp(max=1.0))
    half = math.ceil(zeros / fc_min)
    taps = torch.arange(-half, half + 1, device=device)  # integer offsets around floor(p)
    # Positions far outside the clip only ever see zeros; clamping keeps floor() in int range.
    pos = pos.clamp(-(half + 1.0), T + half + 1.0)
    # Invalid taps (i < 0 or i >= L) read the extra zero appended at index T.
    x_pad = torch.nn.functional.pad(x3, (0, 1))
    chunk = max(1, _CHUNK_ELEMENTS // (B * C * taps.numel()))
    for s in range(0, t_out, chunk):
        p = pos[:, s : s + chunk]
        base = torch.floor(p)
        idx = base.to(torch.int64)[..., None] + taps  # (B, n, K)
        u = (idx.to(torch.float64) - p[..., None]) * fc[:, s : s + chunk, None]
        w = _window_weights(u, zeros)
        w = w / w.sum(dim=-1, keepdim=True)
        valid = (idx >= 0) & (idx < lengths[:, None, None])
        idx = torch.where(valid, idx, T)
        n = p.shape[1]
        g = torch.gather(x_pad, 2, idx.reshape(B, 1, n * taps.numel()).expand(B, C, -1))
        g = g.view(B, C, n, taps.numel())
        out[..., s : s + n] = torch.einsum("bcnk,bnk->bcn", g, w.to(x3.dtype))
    return restore_rank(zero_padding(out, new_lengths), was_2d), new_lengths


def check_factor(value, batch: int, device, *, name: str, low: float, high: float) -> Tensor:
    """Per-clip float64 factor, ValueError outside ``[low, high]``."""
    f = per_clip(value, batch, name=name, device=device, dtype=torch.float64)
    host = host_of(f)
    if batch and not bool(((host >= low) & (host <= high)).all()):
        raise ValueError(f"{name} must lie in [{low}, {high}], got {host.tolist()}")
    return f


def uniform_warp(
    wave: Tensor,
    lengths: Tensor,
    step: Tensor,
    new_lengths: Tensor,
    cutoff: Tensor,
    *,
    zeros: int,
    backend: str | None = None,
    exact: bool | None = None,
) -> tuple[Tensor, Tensor]:
    """:func:`warp` at positions ``j * step[b]`` (constant speed); ``step`` float64 ``(B,)``,
    ``cutoff`` ``(B,)`` (per clip) or ``(B, T')``.

    Op ``uniform_warp`` (resolved with ``backend`` shared, see :mod:`gpuaug.backend`): its
    Numba CPU kernel (:func:`gpuaug.kernels.uniform_warp.uniform_warp_kernel`) forms the
    positions in the kernel (no ``(B, T_out)`` float64 tables) and, with ``exact`` ``False`` /
    ``None`` on non-float64 input, uses the tabulated windowed sinc (within -100 dB of the
    clip's peak of the exact filter); ``exact=True`` (``None`` on float64 input) is bit for bit
    the general warp kernel. Elsewhere (``torch``, CUDA) :func:`warp` of the position table
    (always exact; ``exact`` ignored).
    """
    new_host = host_of(new_lengths)
    t_out = int(new_host.max()) if new_lengths.numel() else 0
    per_clip_cutoff = not (isinstance(cutoff, Tensor) and cutoff.dim() == 2)
    kernel = kernel_for(UNIFORM_WARP, wave.device, backend, shared=True)[1] if per_clip_cutoff else None
    if kernel is None:
        j = torch.arange(t_out, device=wave.device, dtype=torch.float64)
        return warp(wave, lengths, j[None, :] * step[:, None], new_lengths, cutoff, zeros=zeros, backend=backend)
    lengths = check_wave(wave, lengths)
    B = wave.shape[0]
    if not isinstance(zeros, int) or zeros < 1:
        raise ValueError(f"zeros must be a positive int, got {zeros!r}")
    new_lengths = per_clip_int(new_lengths, B, name="new_lengths", device=wave.device)
    new_host = host_of(new_lengths)
    if bool((new_host < 0).any()):
        raise ValueError(f"new_lengths must be >= 0, got {new_host.tolist()}")
    fc = per_clip(cutoff, B, name="cutoff", device=wave.device, dtype=torch.float64)
    st = per_clip(step, B, name="step", device=wave.device, dtype=torch.float64)
    used = host_of(fc)[new_host > 0]
    if used.numel() and not bool(((used >= MIN_CUTOFF) & (used <= 1.0)).all()):
        raise ValueError(f"cutoff must lie in [{MIN_CUTOFF}, 1], got min {float(used.min())}, max {float(used.max())}")
    if not bool(torch.isfinite(host_of(st)[new_host > 0]).all()):
        raise ValueError("step must be finite")
    x3, was_2d = as_3d(wave)
    out = kernel(x3, lengths, st, fc, new_lengths, zeros=zeros, t_out=t_out, exact=exact)
    return restore_rank(out, was_2d), new_lengths


def resample(
    wave: Tensor,
    lengths: Tensor,
    *,
    ratio: float | Tensor,
    zeros: int = DEFAULT_ZEROS,
    rolloff: float = DEFAULT_ROLLOFF,
    backend: str | None = None,
    exact: bool | None = None,
) -> tuple[Tensor, Tensor]:
    """Change the sample rate of each clip by ``ratio = new_rate / old_rate``.

    Output sample ``j`` is the band-limited input at position ``j / ratio`` (input samples),
    low-passed at ``rolloff * min(1, ratio)`` of the input Nyquist frequency (the
    ``julius.resample_frac`` filter). Clips with ``ratio == 1`` pass through unchanged.

    Args:
        wave: input clips.
        lengths: valid samples per clip.
        ratio: per-clip rate ratio (scalar or ``(B,)``), in ``[1/16, 16]``.
        zeros: sinc zero crossings per side.
        rolloff: anti-aliasing margin in ``(0, 1]``.
        backend: backend of the constant-speed resampling (op ``"uniform_warp"``; where that
            resolves to ``torch``, the :func:`warp` core, op ``"warp"``; shared, see
            :mod:`gpuaug.backend`).
        exact: the Numba CPU kernel of op ``"uniform_warp"`` only (elsewhere always exact):
            ``True`` the exact float64 windowed sinc, ``False`` the tabulated one (within -100 dB
            of the clip's peak of it), ``None`` (default) exact for float64 input and tabulated
            otherwise.

    Shapes:
        wave ``(B, T)`` or ``(B, C, T)`` -> ``(B, T_out)`` / ``(B, C, T_out)``; new lengths
        ``round(L * ratio)`` (half to even), ``T_out = max`` of them.
    """
    lengths = check_wave(wave, lengths)
    B = wave.shape[0]
    r = check_factor(ratio, B, wave.device, name="ratio", low=1.0 / 16, high=16.0)
    if not 0.0 < rolloff <= 1.0:
        raise ValueError(f"rolloff must lie in (0, 1], got {rolloff}")
    r_host = host_of(r)
    new_lengths = mirrored(torch.round(host_of(lengths).to(torch.float64) * r_host).to(torch.int64), wave.device)
    cutoff = mirrored(rolloff * torch.clamp(r_host, max=1.0), wave.device)
    out, new_lengths = uniform_warp(wave, lengths, 1.0 / r, new_lengths, cutoff, zeros=zeros, backend=backend,
                                    exact=exact)
    return pass_through(out, new_lengths, wave, lengths, r_host == 1.0)


def pass_through(out: Tensor, out_lengths: Tensor, wave: Tensor, lengths: Tensor, keep: Tensor):
    """Replace the clips where ``keep`` (a host bool ``(B,)``) is True by the input (zero past
    its length; lengths must then agree); lengths are combined on their host mirrors. ``out``
    is the op's own fresh output: the kept rows are written into it in place (only those rows
    are read, padded and copied)."""
    keep = host_of(keep)
    if not bool(keep.any()):
        return out, out_lengths
    rows = keep.nonzero().flatten()
    dev_rows = mirrored(rows, out.device)
    T = out.shape[-1]
    src = wave.index_select(0, dev_rows)
    src = src[..., :T] if src.shape[-1] >= T else torch.nn.functional.pad(src, (0, T - src.shape[-1]))
    out.index_copy_(0, dev_rows, zero_padding(src, take_rows(lengths, rows, dev_rows)).to(out.dtype))
    new_host = torch.where(keep, host_of(lengths), host_of(out_lengths))
    return out, mirrored(new_host, out.device)
