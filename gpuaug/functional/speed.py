"""Speed changes by band-limited resampling: whole utterance or one segment per clip.

Both ops are :func:`~gpuaug.functional.resample.warp` with a piecewise-linear time map, so
duration and pitch change together (as when a tape is played faster). ``factor > 1`` is
faster (shorter, higher); ``factor`` is accepted in ``[0.5, 2]``.
"""
from __future__ import annotations

import torch
from torch import Tensor

from gpuaug._sync import host_of, mirrored, upload
from gpuaug.backend import SEGMENT_WARP, kernel_for

from ._batch import as_3d, check_wave, empty_like_lengths, per_clip_int, restore_rank
from .resample import DEFAULT_ROLLOFF, DEFAULT_ZEROS, check_factor, pass_through, uniform_warp, warp

__all__ = ["speed", "speed_segment", "MIN_FACTOR", "MAX_FACTOR"]

MIN_FACTOR = 0.5
MAX_FACTOR = 2.0


def speed(
    wave: Tensor,
    lengths: Tensor,
    *,
    factor: float | Tensor,
    zeros: int = DEFAULT_ZEROS,
    rolloff: float = DEFAULT_ROLLOFF,
    backend: str | None = None,
    exact: bool | None = None,
) -> tuple[Tensor, Tensor]:
    """Play each clip ``factor`` times faster (duration / factor, frequencies * factor).

    Output sample ``j`` is the band-limited input at position ``j * factor``, low-passed at
    ``rolloff * min(1, 1 / factor)`` of the input Nyquist frequency. Clips with
    ``factor == 1`` pass through unchanged.

    Args:
        wave: input clips.
        lengths: valid samples per clip.
        factor: per-clip speed factor (scalar or ``(B,)``) in ``[0.5, 2]``; ValueError outside.
        zeros: sinc zero crossings per side (see :func:`~gpuaug.functional.resample.warp`).
        rolloff: anti-aliasing margin in ``(0, 1]``.
        backend: backend of the constant-speed resampling (op ``"uniform_warp"``; where that
            resolves to ``torch``, the :func:`~gpuaug.functional.resample.warp` core, op
            ``"warp"``; a shared argument, see :mod:`gpuaug.backend`).
        exact: the Numba CPU kernel of op ``"uniform_warp"`` only (elsewhere always exact):
            ``True`` the exact float64 windowed sinc, ``False`` the tabulated one (within -100 dB
            of the clip's peak of it), ``None`` (default) exact for float64 input and tabulated
            otherwise.

    Shapes:
        ``(B, T)`` / ``(B, C, T)`` -> ``(B, T_out)`` / ``(B, C, T_out)``; new lengths
        ``round(L / factor)`` (half to even); ``T_out`` their maximum.
    """
    lengths = check_wave(wave, lengths)
    f = check_factor(factor, wave.shape[0], wave.device, name="factor", low=MIN_FACTOR, high=MAX_FACTOR)
    if not 0.0 < rolloff <= 1.0:
        raise ValueError(f"rolloff must lie in (0, 1], got {rolloff}")
    f_host = host_of(f)  # lengths and cutoffs from the host mirrors: no sync
    new_lengths, cutoff = upload([torch.round(host_of(lengths).to(torch.float64) / f_host).to(torch.int64),
                                  rolloff * torch.clamp(1.0 / f_host, max=1.0)], wave.device)
    out, new_lengths = uniform_warp(wave, lengths, f, new_lengths, cutoff, zeros=zeros, backend=backend,
                                    exact=exact)
    return pass_through(out, new_lengths, wave, lengths, f_host == 1.0)


def speed_segment(
    wave: Tensor,
    lengths: Tensor,
    *,
    start: int | Tensor,
    length: int | Tensor,
    factor: float | Tensor = 1.25,
    zeros: int = DEFAULT_ZEROS,
    rolloff: float = DEFAULT_ROLLOFF,
    backend: str | None = None,
    exact: bool | None = None,
) -> tuple[Tensor, Tensor]:
    """Play the segment ``[start, start + length)`` of each clip ``factor`` times faster.

    The segment is clipped to the clip: ``s = min(start, L)``, ``e = min(start + length, L)``,
    ``n = e - s``; it becomes ``m = round(n / factor)`` samples. The time map (output sample
    -> input position) is continuous and piecewise linear::

        p(j) = j                          for j < s            (slope 1: untouched)
        p(j) = s + (j - s) * n / m        for s <= j < s + m   (slope n / m ~= factor)
        p(j) = j - m + n                  for j >= s + m       (slope 1: untouched, shifted)

    Outside the segment positions are integers read with cutoff 1, i.e. copied bit for bit;
    inside, the cutoff is ``rolloff * min(1, m / n)`` and the sinc reads
    the true neighbouring samples across the joins, so the joins are seamless. Only the
    segment is resampled: where op ``"segment_warp"`` resolves to a kernel, the fused kernel
    :mod:`gpuaug.kernels.segment_warp` evaluates this map on the fly; otherwise (``torch``)
    the splice path gathers the untouched parts and warps the ``(B, max(m))`` segment
    positions only, through :func:`~gpuaug.functional.resample.warp` (op ``"warp"``, resolved
    on its own: torch, numba or cupy).
    On the CPU the fused kernel evaluates the sinc from a table by default for float32 (and
    float16 / bfloat16) input: the same filter tabulated at 512 phases per sample, linearly
    interpolated, within -100 dB of the clip's peak of the exact sinc (see
    :mod:`gpuaug.kernels.segment_warp`; its timings: ``benchmarks/results/kernel-timings.md``);
    ``exact=True`` evaluates the exact float64 sinc there too, as the splice path and the CUDA
    kernel always do (and the CPU kernel for segments under 512 output samples). The untouched
    parts are bit-exact copies on every path.
    Clips whose segment keeps its length (``m == n``, e.g. an empty segment) pass through
    unchanged.

    Args:
        wave: input clips.
        lengths: valid samples per clip.
        start: per-clip segment start in samples (``>= 0``).
        length: per-clip segment length in samples (``>= 0``).
        factor: per-clip speed factor of the segment in ``[0.5, 2]`` (default 1.25).
        zeros: sinc zero crossings per side.
        rolloff: anti-aliasing margin in ``(0, 1]`` (applied inside the segment only).
        backend: backend of op ``"segment_warp"`` and of the splice path's warp core (op
            ``"warp"``), a shared argument (see :mod:`gpuaug.backend`): ``"torch"`` the splice
            path in torch, ``"numba"`` the fused kernel, ``"cupy"`` the splice path with the
            CuPy warp; ``None`` / ``"auto"``: op ``"segment_warp"``'s environment variable
            (``GPUAUG_BACKEND_SEGMENT_WARP``) or ``auto`` (the fused kernel), and where that
            gives torch, op ``"warp"``'s own resolution for the splice path.
        exact: numba CPU kernel only (ignored elsewhere, which is always exact): ``True`` the
            exact float64 sinc in the segment, ``False`` the tabulated one, ``None`` (default)
            exact for float64 input and tabulated otherwise.

    Shapes:
        ``(B, T)`` / ``(B, C, T)`` -> ``(B, T_out)`` / ``(B, C, T_out)``; new lengths
        ``L - n + m``; ``T_out`` their maximum.
    """
    lengths = check_wave(wave, lengths)
    B, device = wave.shape[0], wave.device
    f = check_factor(factor, B, device, name="factor", low=MIN_FACTOR, high=MAX_FACTOR)
    cpu = torch.device("cpu")  # the segment map is computed on the host and uploaded once
    start = host_of(per_clip_int(start, B, name="start", device=cpu))
    length = host_of(per_clip_int(length, B, name="length", device=cpu))
    if bool((start < 0).any()) or bool((length < 0).any()):
        raise ValueError(f"start and length must be >= 0, got {start.tolist()}, {length.tolist()}")
    if not 0.0 < rolloff <= 1.0:
        raise ValueError(f"rolloff must lie in (0, 1], got {rolloff}")
    L = host_of(lengths)
    s = torch.minimum(start, L)
    n = torch.minimum(start + length, L) - s
    m = torch.round(n.to(torch.float64) / host_of(f)).to(torch.int64)
    new_host = L - n + m
    t_out = int(new_host.max()) if B else 0
    keep = m == n
    s, n, m, new_lengths = upload([s, n, m, new_host], device)
    if t_out == 0:
        return empty_like_lengths(wave, 0), new_lengths
    kernel = kernel_for(SEGMENT_WARP, device, backend, shared=True)[1]
    x3, was_2d = as_3d(wave)
    if kernel is not None:
        out = kernel(x3, lengths, s, n, m, new_lengths, zeros=zeros, rolloff=rolloff, t_out=t_out, exact=exact)
    else:
        out = _splice_segments(x3, lengths, s, n, m, new_lengths, zeros=zeros, rolloff=rolloff, backend=backend)
    return pass_through(restore_rank(out, was_2d), new_lengths, wave, lengths, keep)


def _splice_segments(x3: Tensor, lengths: Tensor, s: Tensor, n: Tensor, m: Tensor, new_lengths: Tensor, *,
                     zeros: int, rolloff: float, backend: str | None) -> Tensor:
    """:func:`speed_segment` of a checked ``(B, C, T)`` batch around the :func:`warp` core
    (any backend of op ``"warp"``: ``backend`` is passed on).

    The untouched parts are one gather (bit-exact copies, as the warp's unit impulse); only
    the ``(B, max(m))`` segment positions go through :func:`warp`, then are scattered to
    ``s + k``. Same positions and cutoffs as the time map of :func:`speed_segment`.
    """
    B, C, T = x3.shape
    t_out = int(host_of(new_lengths).max())
    j = torch.arange(t_out, device=x3.device)[None, :]
    copy = ((j < s[:, None]) | (j >= (s + m)[:, None])) & (j < new_lengths[:, None])
    src = torch.where(j < s[:, None], j, j - m[:, None] + n[:, None])
    src = torch.where(copy, src, 0).clamp(0, max(T - 1, 0))
    out = torch.where(copy[:, None, :], torch.gather(x3, 2, src[:, None, :].expand(B, C, t_out)), 0.0)
    seg_len = int(host_of(m).max())
    if seg_len:
        k = torch.arange(seg_len, device=x3.device)
        s64, n64, m64 = (v.to(torch.float64)[:, None] for v in (s, n, m))
        slope = n64 / m64.clamp(min=1.0)
        positions = s64 + k.to(torch.float64)[None, :] * slope  # j - s = k exactly
        cutoff = rolloff * torch.clamp(1.0 / slope[:, 0], max=1.0)
        seg, _ = warp(x3, lengths, positions, m, cutoff, zeros=zeros, backend=backend)  # zero past m
        at = (s[:, None] + k[None, :]).clamp(max=t_out - 1)  # k >= m adds zeros
        out = out.scatter_add(2, at[:, None, :].expand(B, C, seg_len), seg)
    return out
