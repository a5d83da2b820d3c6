"""Tempo-only segment speed-up: one segment per clip time-compressed with its pitch kept.

:func:`tempo_segment` is the pitch-preserving twin of
:func:`~gpuaug.functional.speed.speed_segment`: same segment bookkeeping (``n`` samples become
``m = round(n / factor)``), but the segment is stretched by the phase vocoder of
:mod:`~gpuaug.functional.pitch` instead of being resampled, so only the tempo changes
inside the segment (speed_segment moves the pitch by ``factor`` too).
"""
from __future__ import annotations

import math

import torch
from torch import Tensor

from gpuaug._sync import host_of, upload

from ._batch import NARROW_FLOATS, as_3d, check_wave, empty_like_lengths, in_float32, per_clip_int, restore_rank
from .pitch import _phase_vocoder
from .resample import check_factor, pass_through

__all__ = ["tempo_segment", "context_margin", "MIN_FACTOR", "MAX_FACTOR", "DEFAULT_CROSSFADE_S"]

MIN_FACTOR = 0.5
MAX_FACTOR = 2.0
#: Default crossfade at each join, in seconds (``round(0.005 * sample_rate)`` samples).
DEFAULT_CROSSFADE_S = 0.005


def context_margin(n_fft: int, hop: int) -> int:
    """Input samples of context read on each side of the segment: ``n_fft + n_fft // 2 + hop``.

    An output sample at stretched time ``tau`` is synthesised from output frames within
    ``n_fft / 2`` of it, which read input frames ``floor(k / rate)`` and ``+ 1`` covering input
    samples within ``n_fft / (2 rate) + hop + n_fft / 2`` of ``tau / rate``; with
    ``rate >= 0.5`` this margin keeps every frame that builds the segment off the zeros
    beyond the context window (the clip's own ends are real and need no margin).
    """
    return n_fft + n_fft // 2 + hop


def tempo_segment(
    wave: Tensor,
    lengths: Tensor,
    *,
    start: int | Tensor,
    length: int | Tensor,
    factor: float | Tensor,
    sample_rate: int = 16000,
    n_fft: int | None = None,
    hop: int | None = None,
    crossfade: int | None = None,
    backend: str | None = None,
) -> tuple[Tensor, Tensor]:
    """Play the segment ``[start, start + length)`` of each clip ``factor`` times faster, pitch kept.

    Bookkeeping as :func:`~gpuaug.functional.speed.speed_segment`: the segment is clipped to
    the clip, ``s = min(start, L)``, ``e = min(start + length, L)``, ``n = e - s``, and becomes
    ``m = round(n / factor)`` samples (half to even); the new length is ``L - n + m``.

    Algorithm (batched, no loop over clips): the window ``[max(s - M, 0), min(e + M, L))``
    with ``M =`` :func:`context_margin` samples of context on each side is cut out of every
    clip into one zero-padded ``(B, C, max W)`` batch and stretched by
    ``rate = m / n`` (~ ``1 / factor``, exactly the segment's output / input length) with
    :func:`~gpuaug.functional.pitch._phase_vocoder` (phase-locked, same pitch). Input sample
    ``s`` lands at stretched position ``off = round((s - w0) * rate)``; the ``m`` samples from
    there replace the segment. The context keeps the vocoder's edge frames (which see the
    window's zero padding) out of the kept part. At each join the first / last
    ``X = min(crossfade, m // 2)`` samples of the new segment are an equal-power crossfade
    (gains ``cos`` / ``sin`` of ``pi / 2 * (k + 0.5) / X``) between the original signal
    continuing across the join (``x[s + k]`` at the start, ``x[e - X + k]`` at the end) and
    the stretched one, so there is no step at the joins; a join at the very start (``s = 0``)
    or end (``e = L``) of the clip has no neighbour and no crossfade. Samples outside
    ``[s, s + m)`` are copied bit for bit. Equal power suits the mostly uncorrelated phases
    of the two signals (the vocoder's phases drift from the original's); for a pure tone the
    level inside a crossfade lies between 0 and ``sqrt(2)`` times the tone's, depending on the
    phase offset at the join.

    Clips whose segment keeps its length (``m == n``: ``factor == 1``, an empty segment, a
    segment of one sample with ``factor`` close to 1) pass through bit for bit.

    Host syncs: none of its own (sizes come from the host mirrors of ``lengths`` and the
    parameters); the only one is :func:`~gpuaug.functional._batch.check_wave`'s NaN / Inf scan
    (none inside :func:`~gpuaug.functional._batch.finite_checked`).

    Args:
        wave: input clips.
        lengths: valid samples per clip.
        start: per-clip segment start in samples (``>= 0``).
        length: per-clip segment length in samples (``>= 0``).
        factor: per-clip tempo factor of the segment (scalar or ``(B,)``) in ``[0.5, 2]``,
            ``> 1`` faster (shorter segment).
        sample_rate: in Hz; sets the default ``n_fft`` and ``crossfade``.
        n_fft: STFT size (samples, >= 16); default ``2 ** round(log2(0.032 * sample_rate))``
            (about 32 ms: 512 at 16 kHz), as :func:`~gpuaug.functional.pitch.pitch_shift`.
        hop: STFT hop (samples, in ``[1, n_fft // 2]``); default ``n_fft // 4``.
        crossfade: crossfade length at each join in samples (``>= 0``; 0: hard splice);
            default ``round(0.005 * sample_rate)`` (5 ms: 80 samples at 16 kHz).
        backend: backend of the vocoder's phase-locking recursion (op ``"phase_lock"``, a
            shared argument, see :mod:`gpuaug.backend`: ``auto`` runs the Numba kernel on CPU
            tensors, torch on CUDA, where a kernel backend without a phase-lock kernel means
            torch too).

    Shapes:
        ``(B, T)`` / ``(B, C, T)`` -> ``(B, T_out)`` / ``(B, C, T_out)``; new lengths
        ``L - n + m``; ``T_out`` their maximum (0 for an empty batch); zero padding.
        float16 / bfloat16 waves are computed in float32 and returned in their dtype.
    """
    lengths = check_wave(wave, lengths)
    B, device = wave.shape[0], wave.device
    f = check_factor(factor, B, device, name="factor", low=MIN_FACTOR, high=MAX_FACTOR)
    cpu = torch.device("cpu")  # segment bookkeeping on the host, uploaded once
    start = host_of(per_clip_int(start, B, name="start", device=cpu))
    length = host_of(per_clip_int(length, B, name="length", device=cpu))
    if bool((start < 0).any()):
        raise ValueError(f"start must be >= 0, got {start.tolist()}")
    if bool((length < 0).any()):
        raise ValueError(f"length must be >= 0, got {length.tolist()}")
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, int) or sample_rate <= 0:
        raise ValueError(f"sample_rate must be a positive int, got {sample_rate!r}")
    n_fft = 2 ** round(math.log2(0.032 * sample_rate)) if n_fft is None else n_fft
    hop = n_fft // 4 if hop is None else hop
    crossfade = round(DEFAULT_CROSSFADE_S * sample_rate) if crossfade is None else crossfade
    if isinstance(n_fft, bool) or not isinstance(n_fft, int) or n_fft < 16:
        raise ValueError(f"n_fft must be an int >= 16, got {n_fft!r}")
    if isinstance(hop, bool) or not isinstance(hop, int) or not 1 <= hop <= n_fft // 2:
        raise ValueError(f"hop must be an int in [1, n_fft // 2 = {n_fft // 2}], got {hop!r}")
    if isinstance(crossfade, bool) or not isinstance(crossfade, int) or crossfade < 0:
        raise ValueError(f"crossfade must be an int >= 0 (samples), got {crossfade!r}")
    if wave.dtype in NARROW_FLOATS:  # torch's FFTs refuse 16-bit floats on the CPU: compute in float32
        return in_float32(tempo_segment, wave, lengths, start=start, length=length, factor=f,
                          sample_rate=sample_rate, n_fft=n_fft, hop=hop, crossfade=crossfade, backend=backend,
                          name="tempo_segment")

    # ---- host plan (mirrors only: no sync)
    L = host_of(lengths)
    s = torch.minimum(start, L)
    e = torch.minimum(start + length, L)
    n = e - s
    m = torch.round(n.to(torch.float64) / host_of(f)).to(torch.int64)
    new_host = L - n + m
    keep = m == n
    t_out = int(new_host.max()) if B else 0
    if t_out == 0:
        return empty_like_lengths(wave, 0), upload([new_host], device)[0]
    vocode = ~keep & (m > 0)  # m == 0 (one sample at factor >= 1.5): the segment just goes
    rate = torch.where(vocode, m.to(torch.float64) / n.clamp(min=1).to(torch.float64), 1.0)
    margin = context_margin(n_fft, hop)
    w0 = (s - margin).clamp(min=0)
    W = torch.where(vocode, torch.minimum(e + margin, L) - w0, 0)
    off = torch.round((s - w0).to(torch.float64) * rate).to(torch.int64)
    fade = torch.where(vocode, torch.clamp(m // 2, max=crossfade), 0)
    fade_in = torch.where(s > 0, fade, 0)  # no neighbour before a segment at the clip start
    fade_out = torch.where(e < L, fade, 0)  # ... nor after one that runs to the clip end
    m_v = torch.where(vocode, m, 0)  # new segment samples to write
    w_max, seg_max, fade_max = int(W.max()), int(m_v.max()), int(torch.maximum(fade_in, fade_out).max())
    s_d, n_d, m_d, mv_d, new_d, w0_d, W_d, rate_d, off_d, fi_d, fo_d = upload(
        [s, n, m, m_v, new_host, w0, W, rate, off, fade_in, fade_out], device)

    x3, was_2d = as_3d(wave)
    C, T = x3.shape[1], x3.shape[2]
    # untouched parts: one gather, bit-exact copies (x[j] before the segment, x[j - m + n] after it)
    j = torch.arange(t_out, device=device)[None, :]
    before = j < s_d[:, None]
    copy = before | ((j >= (s_d + m_d)[:, None]) & (j < new_d[:, None]))
    src = torch.where(before, j, j - m_d[:, None] + n_d[:, None]).clamp(0, max(T - 1, 0))
    out = torch.where(copy[:, None, :], torch.gather(x3, 2, src[:, None, :].expand(B, C, t_out)), 0.0)
    if seg_max:
        i = torch.arange(w_max, device=device)[None, :]
        win_src = (w0_d[:, None] + i).clamp(max=T - 1)
        windows = torch.where((i < W_d[:, None])[:, None, :],
                              torch.gather(x3, 2, win_src[:, None, :].expand(B, C, w_max)), 0.0)
        stretched, _ = _phase_vocoder(windows, W_d, rate_d, n_fft, hop, backend)  # op phase_lock
        k = torch.arange(seg_max, device=device)[None, :]
        at = (off_d[:, None] + k).clamp(max=stretched.shape[-1] - 1)
        seg = torch.gather(stretched, 2, at[:, None, :].expand(B, C, seg_max))  # (B, C, max m), k < m used
        if fade_max:
            seg = _crossfade(seg, x3, s_d, n_d, mv_d, fi_d, fo_d, fade_max)
        dest = torch.where(k < mv_d[:, None], s_d[:, None] + k, t_out)  # t_out: a spare column
        out = torch.nn.functional.pad(out, (0, 1)).scatter(2, dest[:, None, :].expand(B, C, seg_max), seg)
        out = out[..., :t_out]
    out, new_lengths = pass_through(out, new_d, x3, lengths, keep)
    return restore_rank(out, was_2d), new_lengths


def _crossfade(seg: Tensor, x3: Tensor, s: Tensor, n: Tensor, m: Tensor, fade_in: Tensor, fade_out: Tensor,
               width: int) -> Tensor:
    """The stretched segments ``seg`` (``(B, C, K)``, ``K >= m``) with equal-power crossfades
    from / to the original ``x3`` over their first ``fade_in`` and last ``fade_out`` samples.

    At ramp sample ``q`` (counted from the join) of a ramp of ``X`` samples,
    ``theta = pi / 2 * (q + 0.5) / X`` and the result is ``cos(theta) * original +
    sin(theta) * seg``; the original is ``x[s + q]`` at the start and ``x[e - 1 - q]``
    (``e = s + n``) at the end of the segment. ``fade_in + fade_out <= m``: the ramps never
    overlap. ``width``: the largest ramp (host int). Returns a new tensor.
    """
    B, C, K = seg.shape
    T = x3.shape[-1]
    q = torch.arange(width, device=seg.device)[None, :]
    out = torch.nn.functional.pad(seg, (0, 1))  # column K: where positions past a ramp write
    for ramp, at, orig_at in ((fade_in, q, s[:, None] + q),
                              (fade_out, m[:, None] - 1 - q, (s + n)[:, None] - 1 - q)):
        inside = q < ramp[:, None]
        theta = (q.to(torch.float64) + 0.5) / ramp.clamp(min=1).to(torch.float64)[:, None] * (math.pi / 2)
        g_orig, g_seg = (g.to(seg.dtype)[:, None, :] for g in (torch.cos(theta), torch.sin(theta)))
        at = torch.where(inside, at, 0).clamp(0, K - 1)
        orig = torch.gather(x3, 2, torch.where(inside, orig_at, 0).clamp(0, T - 1)[:, None, :].expand(B, C, width))
        mixed = g_orig * orig + g_seg * torch.gather(seg, 2, at[:, None, :].expand(B, C, width))
        dest = torch.where(inside, at, K)
        out = out.scatter(2, dest[:, None, :].expand(B, C, width), mixed)
    return out[..., :K]
