"""Drop time segments (words, letters) from each clip and stitch the rest, optionally crossfaded.

:func:`drop_segments` dispatches on ``backend`` (op name ``"drop_segments"``, see
:mod:`gpuaug.backend`). The gather kernel (:mod:`gpuaug.kernels.splice`) reads small
``(B, K + 1)`` tables of the kept pieces (:func:`piece_tables`) instead of ``(B, T)`` maps.
"""
from __future__ import annotations

import torch
from torch import Tensor

from .._sync import host_of, upload
from ..backend import DROP_SEGMENTS, kernel_for
from ._batch import as_3d, check_wave, per_clip_int, restore_rank

__all__ = ["drop_segments", "piece_tables"]


def _check_intervals(intervals, batch: int) -> Tensor:
    """Validate ``intervals`` and return it as a ``(B, K, 2)`` int64 host tensor."""
    iv = host_of(intervals) if isinstance(intervals, Tensor) else torch.as_tensor(intervals)
    if iv.is_floating_point() or iv.is_complex() or iv.dtype == torch.bool:
        raise TypeError(f"intervals must be an integer tensor, got dtype {iv.dtype}")
    if iv.dim() != 3 or iv.shape[0] != batch or iv.shape[2] != 2:
        raise ValueError(f"intervals must have shape (B={batch}, K, 2), got {tuple(iv.shape)}")
    return iv.to(torch.int64)


def _run_bounds(keep: Tensor) -> tuple[Tensor, Tensor]:
    """For every sample of ``keep`` ``(B, T)``: start and (exclusive) end of its run of kept samples.

    Values at non-kept samples are meaningless.
    """
    B, T = keep.shape
    t = torch.arange(T, device=keep.device).expand(B, T)
    last_gap = torch.where(keep, torch.full_like(t, -1), t).cummax(dim=1).values
    next_gap = torch.where(keep, torch.full_like(t, T), t).flip(1).cummin(dim=1).values.flip(1)
    return last_gap + 1, next_gap


def piece_tables(intervals: Tensor, lengths: Tensor, crossfade: Tensor) -> tuple[Tensor, ...]:
    """Kept pieces of every clip as ``(B, K + 1)`` tables (the semantics of :func:`drop_segments`).

    Args:
        intervals: ``(B, K, 2)`` int64 ``[start, end)`` already clipped to ``[0, L]``.
        lengths: ``(B,)`` int64 valid samples; crossfade: ``(B,)`` int64 ``X >= 0``.

    Returns:
        ``(src, size, overlap, ostart, new_len)``: per piece slot its source start, length,
        overlap ``x_i`` with the next piece and output start (``sum_{k<i} size_k - x_k``);
        the pieces come first in time order, then zero-length slots (output start
        ``new_len``). ``new_len`` ``(B,)`` = kept samples minus the overlaps.

    With the used intervals sorted by start and ``M_i`` the running maximum of their ends, the
    uncovered samples are the gaps ``[M_{i-1}, s_i)`` (``M_{-1} = 0``, ``s_K = L``; unused rows
    become ``[L, L)``); consecutive non-empty gaps are separated by a dropped interval.
    """
    B = intervals.shape[0]
    L = lengths[:, None]
    s, e = intervals[..., 0], intervals[..., 1]
    used = e > s
    s, order = torch.where(used, s, L).sort(dim=1)
    e = torch.where(used, e, L).gather(1, order)
    lo = torch.cat([torch.zeros_like(L), e.cummax(dim=1).values], dim=1)
    size = (torch.cat([s, L], dim=1) - lo).clamp(min=0)
    order = torch.sort((size == 0).to(torch.int32), dim=1, stable=True).indices  # pieces first
    src, size = lo.gather(1, order), size.gather(1, order)
    half = size // 2
    overlap = torch.cat([torch.minimum(torch.minimum(half[:, :-1], half[:, 1:]), crossfade[:, None]),
                         size.new_zeros(B, 1)], dim=1)
    step = size - overlap
    return src, size, overlap, step.cumsum(dim=1) - step, step.sum(dim=1)


def drop_segments(wave: Tensor, lengths: Tensor, *, intervals, crossfade=0,
                  backend: str | None = None) -> tuple[Tensor, Tensor]:
    """Remove the samples inside ``intervals`` from each clip and join the kept pieces.

    Intervals are ``[start, end)`` in samples, clipped to ``[0, L]``; rows with
    ``end <= start`` (after clipping) are unused padding; intervals may be unsorted and may
    overlap or touch (their union is dropped). The kept samples form pieces ``P_0, P_1, ...``
    (maximal runs, in time order); a join is the boundary between two consecutive pieces.

    Crossfade (``crossfade = X > 0`` samples): at the join of ``P_i`` and ``P_{i+1}`` the
    overlap is ``x_i = min(X, len(P_i) // 2, len(P_{i+1}) // 2)`` samples (each piece lends at
    most half of itself to each join, so the overlaps of one piece never meet). The last
    ``x_i`` samples of ``P_i`` are added to the first ``x_i`` samples of ``P_{i+1}`` with
    equal-gain linear weights: for ``k = 0 .. x_i - 1`` the output sample is
    ``(1 - w_k) * P_i[len - x_i + k] + w_k * P_{i+1}[k]`` with ``w_k = (k + 1) / (x_i + 1)``
    (weights sum to 1; neither side is ever weighted exactly 0). Each join therefore
    shortens the output by ``x_i``; there is no join at a dropped clip start or end.

    New length ``= L - (samples dropped) - sum_i x_i``. With ``crossfade = 0`` every output
    sample is an exact copy of a kept input sample. Dropping everything gives a length-0
    clip; no valid interval gives the identity. The torch path builds per-output-sample
    source index and weight maps and gathers twice; the kernels gather from
    :func:`piece_tables` (no per-clip Python in either).

    Args:
        wave: ``(B, T)`` or ``(B, C, T)`` floating waveform.
        lengths: ``(B,)`` valid samples per clip.
        intervals: ``(B, K, 2)`` integer ``[start, end)`` sample indices (``K`` may be 0).
        crossfade: crossfade length ``X >= 0`` in samples (scalar or ``(B,)``).
        backend: ``"auto"`` | ``"torch"`` | ``"numba"`` | ``"cupy"`` or None (op ``"drop_segments"``).

    Shapes:
        Output ``(B, T_out)`` or ``(B, C, T_out)`` with ``T_out = max(new lengths)``
        (0 for an empty batch); new lengths ``(B,)`` int64.

    Raises:
        TypeError: non-integer ``intervals``.
        ValueError: bad ``intervals`` shape, negative ``crossfade``, NaN / Inf in ``wave``.
    """
    lengths = check_wave(wave, lengths)
    w3, was_2d = as_3d(wave)
    B, C, T = w3.shape
    dev = wave.device
    # Intervals, crossfades and the piece tables live on the host (sizes without a sync).
    iv = _check_intervals(intervals, B)
    xf = host_of(per_clip_int(crossfade, B, name="crossfade", device=torch.device("cpu")))
    if B and bool((xf < 0).any()):
        raise ValueError(f"crossfade must be >= 0 samples, got {xf.tolist()}")

    iv = torch.minimum(iv.clamp(min=0), host_of(lengths)[:, None, None])  # clipped to [0, L]
    *tables, new_host = piece_tables(iv, host_of(lengths), xf)
    T_out = int(new_host.max()) if B else 0
    any_overlap = bool((tables[2] > 0).any())
    kernel = kernel_for(DROP_SEGMENTS, dev, backend)[1]
    if kernel is not None:
        *tables, new_len = upload([*tables, new_host], dev)
        out = kernel(w3, *tables, new_len, t_out=T_out)
        return restore_rank(out, was_2d), new_len
    iv, xf, new_len = upload([iv, xf, new_host], dev)

    # union of the intervals via a +1/-1 difference array; kept = valid and not covered
    used = (iv[..., 1] > iv[..., 0]).to(torch.int64)
    diff = torch.zeros(B, T + 1, dtype=torch.int64, device=dev)
    diff.scatter_add_(1, iv[..., 0], used).scatter_add_(1, iv[..., 1], -used)
    t = torch.arange(T, device=dev).expand(B, T)
    keep = (diff[:, :T].cumsum(1) == 0) & (t < lengths[:, None])

    # pieces: index, start, length; per-piece lengths in a (B, T + 1) table (slot T unused)
    start, end = _run_bounds(keep)
    n_piece = end - start
    first = keep & (t == start)
    piece = torch.where(keep, first.cumsum(1) - 1, torch.full_like(t, T))
    piece_len = torch.zeros(B, T + 1, dtype=torch.int64, device=dev)
    piece_len.scatter_reduce_(1, piece, torch.where(keep, n_piece, 0), reduce="amax")
    # overlap of join i (pieces i, i + 1); 0 past the last piece because its length is 0
    half = piece_len // 2
    x_join = torch.minimum(torch.minimum(half[:, :-1], half[:, 1:]), xf[:, None])
    shift = torch.cat([x_join.new_zeros(B, 1), x_join.cumsum(1)], dim=1)  # sum of x before piece i

    # output position and weight of every kept sample
    k = t - start
    x_left = torch.gather(torch.cat([x_join.new_zeros(B, 1), x_join], 1), 1, piece)
    x_right = torch.gather(torch.cat([x_join, x_join.new_zeros(B, 1)], 1), 1, piece)
    pos = keep.cumsum(1) - 1 - torch.gather(shift, 1, piece)
    head = keep & (k < x_left)  # fades in, second contribution to its output sample
    tail = keep & (k >= n_piece - x_right)  # fades out
    kf = k.to(torch.float64)
    w = torch.ones(B, T, dtype=torch.float64, device=dev)
    w = torch.where(head, (kf + 1) / (x_left + 1), w)
    w = torch.where(tail, 1 - (kf - (n_piece - x_right) + 1) / (x_right + 1), w)

    # new lengths (keep.sum(1) - x_join.sum(1)) and T_out are the piece tables' (host)

    # invert to per-output-sample maps (slot T collects the samples that go nowhere)
    sink = torch.full_like(t, T)
    first_pos = torch.where(keep & ~head, pos, sink)
    second_pos = torch.where(head, pos, sink)
    src1 = torch.full((B, T + 1), T, dtype=torch.int64, device=dev).scatter_(1, first_pos, t)
    src2 = torch.full((B, T + 1), T, dtype=torch.int64, device=dev).scatter_(1, second_pos, t)
    w1 = torch.zeros(B, T + 1, dtype=torch.float64, device=dev).scatter_(1, first_pos, w)
    w2 = torch.zeros(B, T + 1, dtype=torch.float64, device=dev).scatter_(1, second_pos, w)
    src1, src2 = src1[:, :T_out], src2[:, :T_out]
    w1, w2 = w1[:, :T_out].to(wave.dtype), w2[:, :T_out].to(wave.dtype)

    padded = torch.cat([w3, w3.new_zeros(B, C, 1)], dim=-1)
    out = torch.gather(padded, 2, src1[:, None, :].expand(B, C, T_out)) * w1[:, None, :]
    if any_overlap:
        out = out + torch.gather(padded, 2, src2[:, None, :].expand(B, C, T_out)) * w2[:, None, :]
    return restore_rank(out, was_2d), new_len
