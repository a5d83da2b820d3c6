"""Additive noise at a target SNR: recorded noise (looped / cropped, optional span and fade)
and seeded white Gaussian noise.

SNR definition used throughout (``gain`` scales the noise)::

    P_signal = mean of wave**2 over the clip's valid samples and all channels
    P_noise  = mean of (envelope * noise)**2 over the samples where the noise is active
    gain     = sqrt(P_signal / (P_noise * 10 ** (snr_db / 10)))

so ``10 * log10(P_signal / P_added) == snr_db`` exactly, where ``P_added`` is the mean power
of the added noise over its active span. Powers are computed in float64. A clip whose SNR is
undefined (all-silent signal, empty span, silent noise) passes through unchanged.

:func:`mix_noise` and :func:`mix_noise_from_bank` dispatch on ``backend`` (op name
``"mix_noise"``, see :mod:`gpuaug.backend`); the kernels (:mod:`gpuaug.kernels.snr_mix`) make
one pass for the per-clip powers and one mixing pass, reading the noise straight from a flat
noise store by per-clip start (a ragged bank's concatenated items, or the rows of a noise
batch), and agree with the torch path within float rounding.
"""
from __future__ import annotations

import torch
from torch import Tensor

from gpuaug._sync import check_later, host_of, mirrored, take_rows, upload
from gpuaug.backend import MIX_NOISE, kernel_for
from gpuaug.banks import gather_ragged
from gpuaug.functional._batch import (
    as_3d,
    check_finite_output,
    check_companion,
    check_rows,
    check_wave,
    per_clip,
    per_clip_int,
    restore_rank,
    zero_padding,
)
from gpuaug.random import normal, stream_id

__all__ = ["valid_power", "mix_noise", "mix_noise_from_bank", "white_noise"]

_WHITE_STREAM = stream_id("gpuaug.functional.white_noise")
_CHANNEL_STRIDE = 2**40  # counter offset between channels of white noise


def valid_power(wave: Tensor, lengths: Tensor) -> Tensor:
    """Mean power of each clip over its valid samples and all channels.

    Args:
        wave: ``(B, T)`` or ``(B, C, T)`` float waveform.
        lengths: ``(B,)`` valid samples per clip.

    Returns:
        ``(B,)`` float64 mean of ``wave**2`` (linear power, not dB); 0 for empty clips.
    """
    lengths = check_wave(wave, lengths)
    return _power(as_3d(wave)[0], lengths)


def _power(w: Tensor, lengths: Tensor) -> Tensor:
    """:func:`valid_power` of a checked ``(B, C, T)`` wave (0 for empty clips)."""
    energy = torch.linalg.vector_norm(zero_padding(w, lengths), dim=(1, 2), dtype=torch.float64).square()
    count = (lengths * w.shape[1]).to(torch.float64)
    return energy / count.clamp_min(1.0)


def _snr_scale(snr_db: Tensor) -> Tensor:
    """``10 ** (snr_db / 10)``: the power ratio of the SNR (float64, as the kernels take it)."""
    return 10.0 ** (snr_db / 10.0)


def _snr_gain(p_signal: Tensor, p_noise: Tensor, snr_db: Tensor) -> tuple[Tensor, Tensor]:
    """float64 gains and a bool "mix this clip" mask (False where the SNR is undefined)."""
    ok = (p_signal > 0) & (p_noise > 0)
    ratio = p_signal / (p_noise.clamp_min(torch.finfo(torch.float64).tiny) * _snr_scale(snr_db))
    return torch.where(ok, ratio.sqrt(), torch.zeros_like(ratio)), ok


def _noise_3d(noise: Tensor, noise_lengths: Tensor, batch: int, channels: int, device) -> tuple[Tensor, Tensor]:
    """Validate the noise batch; return it as ``(B, Cn, Tn)`` on ``device`` and its int64 lengths."""
    n, noise_lengths = check_companion(noise, noise_lengths, batch=batch, channels=channels, name="noise",
                                       min_length=1)
    return n.to(device=device), noise_lengths if noise_lengths.device == torch.device(device) else \
        upload([host_of(noise_lengths)], device)[0]


def _placement(lengths: Tensor, noise_offset, span_start, span_length, fade_out):
    """Per-clip int64 ``(offset, start, begin, end, fade)`` of the noise span (checked).

    ``[begin, end)`` is the span clipped to ``[0, L)`` (empty when ``end == begin``); the noise
    phase is anchored at ``start`` (see :func:`mix_noise`). Computed and checked on the host
    (``lengths``' mirror), uploaded in one copy.
    """
    B, cpu = lengths.shape[0], torch.device("cpu")
    L = host_of(lengths)
    offset = host_of(per_clip_int(noise_offset, B, name="noise_offset", device=cpu))
    start = host_of(per_clip_int(span_start, B, name="span_start", device=cpu))
    fade = host_of(per_clip_int(fade_out, B, name="fade_out", device=cpu))
    if span_length is None:
        end = L
    else:
        span = host_of(per_clip_int(span_length, B, name="span_length", device=cpu))
        if B and bool((span < 0).any()):
            raise ValueError(f"span_length must be >= 0, got {span.tolist()}")
        end = torch.minimum(start + span, L)
    if B and bool((fade < 0).any()):
        raise ValueError(f"fade_out must be >= 0, got {fade.tolist()}")
    begin = start.clamp(min=0)
    return tuple(upload([offset, start, begin, torch.maximum(end, begin), fade], lengths.device))


def _mix_kernel(kernel, w: Tensor, lengths: Tensor, noise: Tensor, base: Tensor, row_lengths: Tensor,
                snr: Tensor, placement, rows: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """The fused ``kernel`` (powers, gain and mix in one call) of clip ``b`` with the noise
    ``noise[:, base[b] : base[b] + row_lengths[b]]``; returns ``(out, p_signal)``.

    ``w``: checked ``(B, C, T)``; ``noise``: ``(Cn, S)`` flat noise store on ``w``'s device
    (``Cn`` 1 or ``C``); ``base`` / ``row_lengths``: ``(B,)`` int64 on ``w``'s device, first
    sample and valid length of each clip's noise in it. ``p_signal``: float64 ``(B,)``, what
    :func:`valid_power` gives (up to the order of the float64 additions). ``rows``: mix only
    these rows of ``w`` (the per-clip arguments have one entry per row; ``out`` is the whole
    batch, the other rows copied), CPU kernel only.
    """
    if w.numel() == 0:
        return w.clone(), torch.zeros(lengths.shape[0], dtype=torch.float64, device=w.device)
    offset, start, begin, end, fade = placement
    extra = {} if rows is None else {"rows": rows}
    out, p_signal, p_noise, finite = kernel(w, lengths, noise, base, row_lengths, offset, start, begin, end, fade,
                                            _snr_scale(snr), **extra)
    check_later(torch.isfinite(p_noise), lambda ok: "noise contains NaN or Inf samples in the span of clip(s) "
                f"{(~ok).nonzero().flatten().tolist()}")
    _check_mixed(out if finite is None else finite[:, None], "mix_noise", snr)  # CPU: the kernel's flag, no scan
    return out, p_signal


def _check_mixed(out: Tensor, op: str, snr: Tensor) -> None:
    """The mixed clips must be finite: a very low SNR overflows the dtype."""
    check_finite_output(out, op, lambda: f"snr_db={host_of(snr).tolist()} overflows {out.dtype}")


def mix_noise(
    wave: Tensor,
    lengths: Tensor,
    noise: Tensor,
    noise_lengths: Tensor,
    *,
    snr_db,
    noise_offset=0,
    span_start=0,
    span_length=None,
    fade_out=0,
    backend: str | None = None,
) -> tuple[Tensor, Tensor]:
    """Add a recorded noise to each clip at a per-clip SNR (see the module docstring).

    For clip ``b`` with ``L`` valid samples the noise is active on the span
    ``[span_start, span_start + span_length)`` clipped to ``[0, L)``. At clip sample ``t`` of
    the span the noise sample is ``noise[b, ..., (noise_offset + t - span_start) mod
    noise_lengths[b]]``: noise shorter than the span is looped, longer noise is cropped
    starting at ``noise_offset``. The envelope is 1 on the span except its last ``fade_out``
    samples, where it is ``(e - 1 - t) / fade_out`` (``e`` = end of the clipped span), a
    linear ramp reaching 0 on the span's last sample. ``span_start=0`` with a
    ``span_length`` and ``fade_out`` gives "start" placement (noise from the clip start,
    fading out); the defaults give continuous noise over the whole clip.

    SNR: ``P_signal`` is the signal's mean power over the whole valid clip, ``P_noise`` the
    enveloped noise's mean power over the active span only (so the SNR holds where the
    noise is audible). Clips with a silent signal, an empty span or a silent noise span are
    returned unchanged (bit-identical).

    Args:
        wave: ``(B, T)`` or ``(B, C, T)`` float waveform.
        lengths: ``(B,)`` valid samples per clip.
        noise: ``(B, Tn)`` or ``(B, Cn, Tn)`` float noise, ``Cn`` equal to ``C`` or 1 (mono
            noise is added to every channel).
        noise_lengths: ``(B,)`` valid noise samples per clip, each >= 1.
        snr_db: per-clip target SNR in dB.
        noise_offset: per-clip start sample in the noise (taken modulo ``noise_lengths``).
        span_start: per-clip first clip sample of the noise span (may be negative: the
            span is clipped, the noise phase is still anchored at ``span_start``).
        span_length: per-clip span length in samples (>= 0), or None for "to the clip end".
        fade_out: per-clip length in samples (>= 0) of the linear fade at the span end.
        backend: ``"auto"`` | ``"torch"`` | ``"numba"`` | ``"cupy"`` or None (op ``"mix_noise"``).

    Shapes:
        returns ``wave`` with the input's shape, dtype and device and ``lengths`` unchanged.

    Raises:
        ValueError: mismatched batch or channel counts, ``noise_lengths < 1``, negative
            ``span_length`` / ``fade_out``, NaN / Inf samples, an output that overflows the
            dtype (a very low ``snr_db``; inside a pipeline call raised at the end of the call).
    """
    lengths = check_wave(wave, lengths)
    w, was_2d = as_3d(wave)
    B, C, T = w.shape
    dev = w.device
    n, noise_lengths = _noise_3d(noise, noise_lengths, B, C, dev)
    snr = per_clip(snr_db, B, name="snr_db", device=dev, dtype=torch.float64)
    placement = _placement(lengths, noise_offset, span_start, span_length, fade_out)
    kernel = kernel_for(MIX_NOISE, dev, backend)[1]
    if kernel is not None:  # rows of the noise batch as one flat (Cn, B * Tn) store (a view for mono noise)
        Cn, Tn = n.shape[1], n.shape[2]
        flat = n.transpose(0, 1).reshape(Cn, B * Tn)
        base = torch.arange(B, device=dev) * Tn
        return restore_rank(_mix_kernel(kernel, w, lengths, flat, base, noise_lengths, snr, placement)[0],
                            was_2d), lengths
    return _mix_torch(w, was_2d, lengths, n.to(torch.float64), noise_lengths, snr, placement)[:2]


def _mix_torch(w: Tensor, was_2d: bool, lengths: Tensor, n: Tensor, noise_lengths: Tensor, snr: Tensor,
               placement) -> tuple[Tensor, Tensor, Tensor]:
    """torch path of :func:`mix_noise` on checked inputs (``n``: float64 ``(B, Cn, Tn)``);
    returns ``(out, lengths, p_signal)``."""
    B, C, T = w.shape
    dev = w.device
    offset, start, begin, end, fade = placement
    t = torch.arange(T, device=dev)
    in_span = (t >= begin[:, None]) & (t < end[:, None])  # (B, T)
    ramp = (end[:, None] - 1 - t).to(torch.float64) / fade.clamp_min(1)[:, None].to(torch.float64)
    env = torch.where(fade[:, None] > 0, ramp.clamp(max=1.0), torch.ones_like(ramp))
    env = env * in_span.to(torch.float64)

    idx = torch.remainder(offset[:, None] + t - start[:, None], noise_lengths[:, None])
    shaped = env[:, None, :] * torch.gather(n, 2, idx[:, None, :].expand(B, n.shape[1], T))

    count = (end - begin).to(torch.float64) * n.shape[1]
    p_noise = shaped.square().sum(dim=(1, 2)) / count.clamp_min(1.0)
    p_signal = _power(w, lengths)
    gain, ok = _snr_gain(p_signal, p_noise, snr)

    mixed = w + (gain[:, None, None] * shaped).to(w.dtype)
    out = zero_padding(torch.where(ok[:, None, None], mixed, w), lengths)
    _check_mixed(out, "mix_noise", snr)
    return restore_rank(out, was_2d), lengths, p_signal


def mix_noise_from_bank(
    wave: Tensor,
    lengths: Tensor,
    bank_audio: Tensor,
    bank_lengths: Tensor,
    index: Tensor,
    *,
    bank_offsets: Tensor | None = None,
    snr_db,
    noise_offset=0,
    span_start=0,
    span_length=None,
    fade_out=0,
    backend: str | None = None,
    return_signal_power: bool = False,
    rows: Tensor | None = None,
):
    """:func:`mix_noise` with clip ``b``'s noise being the mono bank item ``index[b]``.

    The bank is either ragged (what :class:`~gpuaug.banks.Bank` holds): a flat ``(S,)``
    tensor in which item ``r`` is ``bank_audio[bank_offsets[r] : bank_offsets[r] +
    bank_lengths[r]]``, or padded: ``(N, Tb)`` rows, item ``r`` being
    ``bank_audio[r, :bank_lengths[r]]``. Same semantics as ``mix_noise(wave, lengths,
    items[index], bank_lengths[index], ...)`` for ``items`` those items zero-padded (mono
    noise added to every channel). The torch backend gathers the items (the reference); the
    kernels read the bank in place from the per-clip starts ``bank_offsets[index]``, without
    a gathered ``(B, Tn)`` copy.

    Args:
        wave: ``(B, T)`` or ``(B, C, T)`` float waveform.
        lengths: ``(B,)`` valid samples per clip.
        bank_audio: float mono noises on ``wave``'s device (any float dtype; read as float64):
            flat ``(S,)`` (ragged, with ``bank_offsets``) or ``(N, Tb)`` (padded rows). Items
            must be finite (as :class:`~gpuaug.banks.Bank` guarantees): only the samples a clip
            reads are checked, by the kernels.
        bank_lengths: ``(N,)`` valid samples per item, ``>= 1`` (and ``<= Tb`` when padded;
            any device, read on the host).
        index: ``(B,)`` integer bank item per clip, in ``[0, N)``.
        bank_offsets: flat bank only: ``(N,)`` integer first sample of each item in
            ``bank_audio`` (host; :attr:`Bank.offsets <gpuaug.banks.Bank.offsets>`), with
            ``bank_offsets + bank_lengths <= S``. ``None`` for a flat bank means the items are
            packed in order (``bank_offsets = cumsum(bank_lengths) - bank_lengths``, ``S ==
            sum(bank_lengths)``). Must be ``None`` for a padded bank.
        snr_db, noise_offset, span_start, span_length, fade_out: as :func:`mix_noise`.
        backend: ``"auto"`` | ``"torch"`` | ``"numba"`` | ``"cupy"`` or None (op ``"mix_noise"``).
        return_signal_power: also return the float64 ``(B,)`` signal power ``P_signal`` (on
            ``wave``'s device, no sync): :func:`valid_power` of ``wave`` as measured by the mix
            itself (0 exactly for the silent clips that pass through), without another pass.
        rows: ``None`` (every clip), or a host int64 ``(n,)`` tensor of distinct rows of
            ``wave`` to mix: ``index`` and the per-clip arguments then have ``n`` entries
            (entry ``i`` for row ``rows[i]``, ``p_signal`` too), and the other rows come back
            unchanged, bit for bit. The result is exactly that of mixing ``wave[rows]`` and
            writing it back into a copy of ``wave``; the Numba CPU kernel reads and writes the
            rows in place of that gather and merge (what a transform applied to part of a
            batch does, :meth:`gpuaug.transforms.base.Transform.run`).

    Shapes:
        returns ``(wave, lengths)``: ``wave`` with the input's shape, dtype and device and
        ``lengths`` unchanged; ``(wave, lengths, p_signal)`` with ``return_signal_power``.

    Raises:
        ValueError: bad bank shapes, lengths or offsets, ``index`` out of range, bank on another
            device, plus everything :func:`mix_noise` raises.
        TypeError: non-float bank or non-integer ``index`` / ``bank_lengths`` / ``bank_offsets``.
    """
    lengths = check_wave(wave, lengths)
    w, was_2d = as_3d(wave)
    B, dev = w.shape[0], w.device
    kernel = kernel_for(MIX_NOISE, dev, backend)[1]
    clip_lengths = lengths
    if rows is not None:
        rows = check_rows(rows, B)
        rows_dev = mirrored(rows, dev)
        if not _mixes_rows(kernel, w):  # gather, mix, merge
            sub = mix_noise_from_bank(
                wave.index_select(0, rows_dev), take_rows(lengths, rows, rows_dev), bank_audio, bank_lengths, index,
                bank_offsets=bank_offsets, snr_db=snr_db, noise_offset=noise_offset, span_start=span_start,
                span_length=span_length, fade_out=fade_out, backend=backend, return_signal_power=True)
            out = wave.clone()
            out.index_copy_(0, rows_dev, sub[0])
            return (out, lengths, sub[2]) if return_signal_power else (out, lengths)
        B, clip_lengths = rows.shape[0], take_rows(lengths, rows, rows_dev)
    if not isinstance(bank_audio, Tensor) or not bank_audio.is_floating_point() or bank_audio.dim() not in (1, 2):
        raise TypeError("bank_audio must be a floating flat (S,) or padded (N, Tb) torch.Tensor")
    if bank_audio.device != dev:
        raise ValueError(f"bank_audio is on {bank_audio.device}, wave on {dev}: move the bank once")
    padded = bank_audio.dim() == 2
    if padded and bank_offsets is not None:
        raise ValueError("bank_offsets is for a flat (S,) bank; a padded (N, Tb) bank has its items at its rows")
    S = bank_audio.numel()
    # Bank lengths, offsets and indices are checked on the host (a Bank keeps them there).
    bank_lengths = _host_ints(bank_lengths)
    N = bank_audio.shape[0] if padded else bank_lengths.shape[0]
    index = _host_ints(index)
    offsets = None if bank_offsets is None else _host_ints(bank_offsets)
    for nm, v, size in (("bank_lengths", bank_lengths, N), ("index", index, B), ("bank_offsets", offsets, N)):
        if v is None:
            continue
        if v.is_floating_point() or v.dtype == torch.bool or v.is_complex():
            raise TypeError(f"{nm} must be an integer tensor, got dtype {v.dtype}")
        if v.shape != (size,):
            raise ValueError(f"{nm} must have shape ({size},), got {tuple(v.shape)}")
    bank_lengths, index = bank_lengths.to(torch.int64), index.to(torch.int64)
    if padded:
        Tb = bank_audio.shape[1]
        if N and bool(((bank_lengths < 1) | (bank_lengths > Tb)).any()):
            raise ValueError(f"bank_lengths must lie in [1, Tb={Tb}], got {bank_lengths.tolist()}")
        offsets = torch.arange(N, dtype=torch.int64) * Tb  # the rows of the row-major store
        flat = bank_audio.reshape(1, S)
    else:
        if N and bool((bank_lengths < 1).any()):
            raise ValueError(f"bank_lengths must be >= 1, got {bank_lengths.tolist()}")
        if offsets is None:
            if int(bank_lengths.sum()) != S:
                raise ValueError(f"a flat bank without bank_offsets holds its items packed: sum(bank_lengths) = "
                                 f"{int(bank_lengths.sum())} != {S} samples of bank_audio")
            offsets = torch.cumsum(bank_lengths, 0) - bank_lengths
        offsets = offsets.to(torch.int64)
        if N and bool(((offsets < 0) | (offsets + bank_lengths > S)).any()):
            raise ValueError(f"bank items must lie inside the flat bank of {S} samples: bank_offsets "
                             f"{offsets.tolist()}, bank_lengths {bank_lengths.tolist()}")
        flat = bank_audio[None, :]
    if B and bool(((index < 0) | (index >= N)).any()):
        raise ValueError(f"index must lie in [0, N={N}), got {index.tolist()}")
    host_rows = bank_lengths[index]
    base, row_lengths = upload([offsets[index], host_rows], dev)
    if kernel is None:  # the reference: the picked items zero-padded, then mix_noise
        t_noise = int(host_rows.max()) if B else 1
        noise = gather_ragged(flat[0], base, row_lengths, t_noise)
        n, noise_lengths = _noise_3d(noise, row_lengths, B, w.shape[1], dev)
        snr = per_clip(snr_db, B, name="snr_db", device=dev, dtype=torch.float64)
        placement = _placement(lengths, noise_offset, span_start, span_length, fade_out)
        out, _, p_signal = _mix_torch(w, was_2d, lengths, n.to(torch.float64), noise_lengths, snr, placement)
    else:
        snr = per_clip(snr_db, B, name="snr_db", device=dev, dtype=torch.float64)
        placement = _placement(clip_lengths, noise_offset, span_start, span_length, fade_out)
        out, p_signal = _mix_kernel(kernel, w, clip_lengths, flat, base, row_lengths, snr, placement, rows=rows)
        out = restore_rank(out, was_2d)
    return (out, lengths, p_signal) if return_signal_power else (out, lengths)


def mixes_rows_in_place(wave: Tensor, backend: str | None = None) -> bool:
    """Whether :func:`mix_noise_from_bank` with ``rows=`` and this ``backend`` reads and writes the
    rows of ``wave`` in place (the Numba CPU kernel on a float32 / float64 wave) rather than
    gathering, mixing and merging them."""
    return _mixes_rows(kernel_for(MIX_NOISE, wave.device, backend)[1], wave)


def _mixes_rows(kernel, w: Tensor) -> bool:
    """:func:`mixes_rows_in_place` for a resolved ``kernel`` (None: the torch path)."""
    return kernel is not None and w.device.type == "cpu" and w.dtype in (torch.float32, torch.float64)


def _host_ints(v) -> Tensor:
    """``v`` (a tensor on any device, or a sequence) as a host tensor (a mirror: no sync)."""
    return host_of(v) if isinstance(v, Tensor) else torch.as_tensor(v)


def white_noise(wave: Tensor, lengths: Tensor, *, seed, sigma=None, snr_db=None) -> tuple[Tensor, Tensor]:
    """Add seeded white Gaussian noise, either at an absolute level or at a per-clip SNR.

    The noise sample at clip sample ``t`` of channel ``c`` is
    ``gpuaug.random.normal(key=seed[b], stream=<white-noise stream>, counter=t + c * 2**40)``,
    so each clip's noise depends only on its seed and sample index (not on ``T``, padding,
    batch composition or device).

    Args:
        wave: ``(B, T)`` or ``(B, C, T)`` float waveform.
        lengths: ``(B,)`` valid samples per clip.
        seed: per-clip int64 seed.
        sigma: per-clip absolute noise standard deviation (linear amplitude, >= 0). Silent
            clips get noise too.
        snr_db: per-clip target SNR in dB, with the module's SNR definition over the whole
            valid clip (noise power measured on the drawn noise, so the SNR is exact).
            Silent clips pass through unchanged.
        Exactly one of ``sigma`` / ``snr_db`` must be given.

    Raises:
        ValueError: bad parameters, or an output that overflows the dtype (a huge ``sigma``
            or a very low ``snr_db``; inside a pipeline call raised at the end of the call).

    Shapes:
        returns ``wave`` with the input's shape, dtype and device and ``lengths`` unchanged.
    """
    if (sigma is None) == (snr_db is None):
        raise ValueError("white_noise needs exactly one of sigma / snr_db")
    lengths = check_wave(wave, lengths)
    w, was_2d = as_3d(wave)
    B, C, T = w.shape
    dev = w.device
    key = per_clip_int(seed, B, name="seed", device=dev)
    counter = torch.arange(T, device=dev) + torch.arange(C, device=dev)[:, None] * _CHANNEL_STRIDE
    noise = normal(key[:, None, None], _WHITE_STREAM, counter[None], dtype=torch.float64)
    noise = zero_padding(noise, lengths)
    if sigma is not None:
        scale = per_clip(sigma, B, name="sigma", device=dev, dtype=torch.float64)
        if B and bool((host_of(scale) < 0).any()):
            raise ValueError(f"sigma must be >= 0, got {host_of(scale).tolist()}")
        ok = torch.ones(B, dtype=torch.bool, device=dev)
    else:
        snr = per_clip(snr_db, B, name="snr_db", device=dev, dtype=torch.float64)
        count = (lengths * C).to(torch.float64).clamp_min(1.0)
        scale, ok = _snr_gain(_power(w, lengths), noise.square().sum(dim=(1, 2)) / count, snr)
    mixed = w + (scale[:, None, None] * noise).to(w.dtype)
    out = zero_padding(torch.where(ok[:, None, None], mixed, w), lengths)
    level = (lambda: f"sigma={host_of(scale).tolist()}") if sigma is not None else (lambda: f"snr_db={host_of(snr).tolist()}")
    check_finite_output(out, "white_noise", lambda: f"{level()} overflows {w.dtype}")
    return restore_rank(out, was_2d), lengths
