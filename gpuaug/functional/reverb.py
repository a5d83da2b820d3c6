"""Reverberation: batched FFT convolution with per-clip room impulse responses (RIRs), and
seeded synthetic RIRs (direct impulse + pre-delay + exponentially decaying Gaussian tail).
"""
from __future__ import annotations

import math

import torch
from torch import Tensor

from gpuaug._sync import check_later, host_of, mirrored, upload
from gpuaug.functional._batch import (
    NARROW_FLOATS,
    as_3d,
    check_finite_output,
    in_float32,
    check_companion,
    check_wave,
    per_clip,
    per_clip_int,
    restore_rank,
    valid_mask,
    zero_padding,
)
from gpuaug.functional.fft_sizes import fast_fft_size
from gpuaug.random import normal, stream_id

__all__ = ["reverb", "synthetic_rir"]

_NORMALIZE = ("energy", "peak", "none")
_RIR_STREAM = stream_id("gpuaug.functional.synthetic_rir")


def _next_fast_len(n: int) -> int:
    """The FFT size for a linear convolution of length ``n`` (:func:`~gpuaug.functional.fft_sizes.fast_fft_size`)."""
    return fast_fft_size(n)


def _pow2_scale(peak: Tensor, dtype: torch.dtype) -> tuple[Tensor, Tensor]:
    """Per-clip exact powers of two ``(s1, s2)`` in ``dtype`` with ``peak * s1 * s2`` in
    [0.5, 1) (1 where ``peak`` is 0); two factors so that each stays in range for denormal
    or huge peaks. Multiplying by them is exact (barring underflow of tiny samples)."""
    p = peak.to(torch.float64)
    _, e = torch.frexp(torch.where(p > 0, p, torch.ones_like(p)))
    e = -e.to(torch.float64)  # scale 2**e
    e1 = torch.trunc(e / 2)
    return torch.exp2(e1).to(dtype), torch.exp2(e - e1).to(dtype)


def reverb(
    wave: Tensor, lengths: Tensor, rir: Tensor, rir_lengths: Tensor, *, normalize: str = "energy",
    direct: Tensor | None = None, rir_index: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """Convolve each clip with its own RIR (batched FFT convolution), aligned to the direct path.

    The direct path of clip ``b`` is ``d_b = argmax_t max_c |rir[b, c, t]|`` over the RIR's
    valid samples (one index per clip, shared by all channels so inter-channel delays of
    multichannel RIRs are kept). The output is ``full_conv[t + d_b]`` for ``t`` in
    ``[0, L)``: the reverberant clip without the RIR's pre-delay, truncated to the input
    length (the reverb tail past the clip end is dropped).

    Args:
        wave: ``(B, T)`` or ``(B, C, T)`` float waveform.
        lengths: ``(B,)`` valid samples per clip.
        rir: ``(B, Tr)`` or ``(B, Cr, Tr)`` float RIRs at the wave's sample rate, ``Cr``
            equal to 1 (applied to every channel) or ``C``.
        rir_lengths: ``(B,)`` valid RIR samples per clip, each >= 1; the valid part must
            not be all zero.
        normalize: ``"energy"`` (output energy over the valid samples, all channels, equals
            the input's), ``"peak"`` (output peak |sample| equals the input's) or ``"none"``
            (plain convolution). Silent inputs give silent outputs.
        direct: optional ``(B,)`` int64 host tensor of the direct-path indices ``d_b`` (as
            defined above, e.g. :attr:`gpuaug.banks.Bank.peak_index`); saves reading
            them back from the device (a host sync on CUDA). Not checked against ``rir``.
        rir_index: optional ``(B,)`` int64 host tensor: clip ``b`` is convolved with
            ``rir[rir_index[b]]``. Then ``rir``, ``rir_lengths`` and ``direct`` hold ``U``
            distinct RIRs (``U`` rows) and each RIR's spectrum is computed once, however many
            clips use it (a bank of 7 RIRs drawn for 32 clips: 7 FFTs instead of 32). Default:
            row ``b`` for clip ``b``.

    Shapes:
        returns ``wave`` with the input's shape, dtype and device and ``lengths`` unchanged.

    Notes:
        The FFT size is the smallest measured-fast size (:mod:`gpuaug.functional.fft_sizes`)
        >= ``n_w + n_h - 1`` with ``n_w = max(lengths)`` and ``n_h = min(max(rir_lengths),
        n_w + max(d))`` (RIR samples past that never reach the kept output), computed in the
        wave's dtype (float32 FFTs for float32 waves), so batched and single-clip results
        differ only by FFT rounding (~1e-6 relative in float32). The direct-path alignment is
        a circular shift of each RIR by ``-d_b`` before its FFT (exact: the FFT is long
        enough that nothing wraps into the kept output), so the output is a plain slice.
        With ``normalize`` "energy" or "peak" the RIR and the clip are first scaled by exact
        powers of two to peak in [0.5, 1) (the result does not depend on their scale), so a
        denormal or huge RIR or clip does not underflow or overflow; the energies are then
        summed in the wave's dtype (float32: ~1e-6 relative), and the gain applied in one
        multiply. float16 / bfloat16 waves are computed in float32 and returned in their
        dtype.

    Raises:
        ValueError: unknown ``normalize``, mismatched batch / channel counts,
            ``rir_lengths < 1``, an all-zero RIR, NaN / Inf samples, an output that overflows
            the dtype (``normalize="none"`` with a huge RIR; inside a pipeline call these
            data-dependent checks are raised at the end of the call).
    """
    if normalize not in _NORMALIZE:
        raise ValueError(f"normalize must be one of {_NORMALIZE}, got {normalize!r}")
    lengths = check_wave(wave, lengths)
    w, was_2d = as_3d(wave)
    B, C, T = w.shape
    if rir_index is not None:
        rir_index = host_of(torch.as_tensor(rir_index)).to(torch.int64)
        U = rir.shape[0] if isinstance(rir, Tensor) else 0
        if rir_index.shape != (B,) or (B and not bool(((rir_index >= 0) & (rir_index < U)).all())):
            raise ValueError(f"rir_index must be ({B},) row indices into the {U} RIRs, got {rir_index.tolist()}")
    h, rir_lengths = check_companion(rir, rir_lengths, batch=B if rir_index is None else rir.shape[0], channels=C,
                                     name="rir", min_length=1)
    if wave.dtype in NARROW_FLOATS:  # torch's FFTs refuse 16-bit floats on the CPU: compute in float32
        return in_float32(reverb, wave, lengths, rir, rir_lengths, normalize=normalize, direct=direct,
                          rir_index=rir_index, name="reverb")
    if B == 0:
        return wave.clone(), lengths
    dev, dt = w.device, w.dtype
    len_host, hl_host = host_of(lengths), host_of(rir_lengths)
    n_w = int(len_host.max())
    h = h.to(device=dev)
    if direct is None:
        if int(hl_host.min()) < h.shape[-1]:  # samples past rir_lengths are not part of the RIR
            h_lengths = rir_lengths if rir_lengths.device == dev else mirrored(hl_host, dev)
            h = zero_padding(h, h_lengths)
        direct = h.abs().amax(dim=1).argmax(dim=1)  # first maximum; padding is zero and never wins
        direct_host = host_of(direct)  # a sync on CUDA: pass direct= to avoid it
    else:
        direct_host = host_of(direct).to(torch.int64)
    R = int(hl_host.max())
    h = h[..., :R]
    if int(hl_host.min()) < R:  # samples past rir_lengths are not part of the RIR
        h = h * valid_mask(rir_lengths if rir_lengths.device == dev else mirrored(hl_host, dev), R)[:, None, :].to(h.dtype)
    h_peak = h.abs().amax(dim=(1, 2))
    check_later(h_peak > 0, lambda ok: f"reverb: rir of clip(s) {(~ok).nonzero().flatten().tolist()} is all zero")
    if n_w == 0:  # only empty clips: nothing to convolve
        return zero_padding(wave, lengths), lengths

    # Every RIR is delayed by D - d_b so that all direct paths sit at D = max(d): output
    # t < L is then full_conv[t + D] for every clip (one uniform slice). Delayed RIR samples
    # past n_w + D never reach the output.
    D = int(direct_host.max())
    n_h = min(int((hl_host + D - direct_host).max()), n_w + D)
    n_fft = _next_fast_len(max(1, n_w + n_h - 1))
    scaled = normalize != "none"
    if scaled:  # scale-free: the RIR scaled to peak in [0.5, 1) by exact powers of two
        s1, s2 = _pow2_scale(h_peak, dt)
        h = h.to(dt) * s1[:, None, None]
        h.mul_(s2[:, None, None])
    else:
        h = h.to(dt)
    # delayed RIRs in one gather: hs[b, k] = h[b, k - (D - d_b)] (zero outside the RIR)
    src = torch.arange(n_h)[None, :] - (D - direct_host)[:, None]  # host index table
    keep = (src >= 0) & (src < R)
    src_dev, keep_dev = upload([src.clamp(0, R - 1), keep], dev)
    hs = torch.gather(h, 2, src_dev[:, None, :].expand(h.shape[0], h.shape[1], n_h)) * keep_dev[:, None, :].to(dt)
    H = torch.fft.rfft(hs, n=n_fft)  # one spectrum per distinct RIR
    del hs
    if rir_index is not None:
        H = H[mirrored(rir_index, dev)]
    # the clip, zero past its length (and scaled to peak in [0.5, 1)), written into the padded FFT input
    x = w[..., :n_w]
    masked = int(len_host.min()) < n_w
    mask = valid_mask(lengths, n_w)[:, None, :].to(dt) if masked else None  # multiplied: cheaper than where
    if scaled:
        x_peak = torch.maximum(x.amax(dim=(1, 2)), -x.amin(dim=(1, 2)))  # padding may be nonzero: an upper bound
        x1, x2 = _pow2_scale(x_peak, dt)
        xs = x * x1[:, None, None]
        xs.mul_(mask * x2[:, None, None] if masked else x2[:, None, None])
    else:
        xs = x * mask if masked else x
    X = torch.fft.rfft(xs, n=n_fft)
    X.mul_(H)
    y = torch.fft.irfft(X, n=n_fft)[..., D:D + n_w]
    del X, H

    out = w.new_empty(B, C, T)
    if T > n_w:
        out[..., n_w:] = 0
    o = out[..., :n_w]
    if masked:
        torch.mul(y, mask, out=o)
    else:
        o.copy_(y)
    del y
    if scaled:
        if normalize == "energy":  # values <= 1 (x) and <= n_h (y): float32 sums neither overflow nor lose range
            ref, got = torch.linalg.vector_norm(xs, dim=(1, 2)), torch.linalg.vector_norm(o, dim=(1, 2))
        else:
            ref = torch.maximum(xs.amax(dim=(1, 2)), -xs.amin(dim=(1, 2)))
            got = torch.maximum(o.amax(dim=(1, 2)), -o.amin(dim=(1, 2)))
        # the gain restores the clip's scale: (ref / got) / (x1 * x2), in float64
        ref64, got64 = ref.to(torch.float64), got.to(torch.float64)
        gain = ref64 / got64.clamp_min(torch.finfo(torch.float64).tiny) / (x1.to(torch.float64) * x2.to(torch.float64))
        gain = torch.where(got64 > 0, gain, torch.zeros_like(gain))
        out.mul_(gain.to(dt)[:, None, None])  # an overflowing gain is caught just below
    check_finite_output(out, "reverb", lambda: f"normalize={normalize!r} overflows {dt}")
    return restore_rank(out, was_2d), lengths


def synthetic_rir(
    seed,
    *,
    rt60_s,
    drr_db,
    predelay_s,
    sample_rate: float,
    length=None,
    dtype: torch.dtype = torch.float32,
) -> tuple[Tensor, Tensor]:
    """Seeded synthetic RIRs: unit direct impulse, silent pre-delay, decaying Gaussian tail.

    ``rir[b, 0] = 1``; samples ``1 .. n0 - 1`` are 0 with ``n0 = max(1, round(predelay_s *
    sample_rate))``; from ``n0`` on, ``rir[b, n] = g * N(n) * 10 ** (-3 (n - n0) / (rt60_s *
    sample_rate))`` (energy falls 60 dB over ``rt60_s``) with ``N(n) =
    gpuaug.random.normal(key=seed[b], stream=<rir stream>, counter=n)`` and ``g`` chosen so
    that ``10 log10(E_direct / E_tail) = drr_db`` exactly on the drawn tail. Each RIR
    depends only on its seed and parameters (not on batch composition or device).

    With a very low ``drr_db`` and short ``rt60_s`` a tail sample can exceed the direct
    impulse, and :func:`reverb` would then align to that sample.

    Args:
        seed: ``(B,)`` integer seeds (defines ``B`` and the device).
        rt60_s: per-clip reverberation time in seconds (> 0).
        drr_db: per-clip direct-to-reverberant energy ratio in dB.
        predelay_s: per-clip delay from the direct impulse to the tail onset, seconds (>= 0).
        sample_rate: sampling rate in Hz (> 0).
        length: per-clip RIR length in samples, or None for ``ceil((predelay_s + rt60_s) *
            sample_rate)``; at least ``n0 + 1`` (the tail must not be empty).
        dtype: floating dtype of the returned RIRs.

    Returns:
        ``rir`` ``(B, Tr)`` with ``Tr = max(rir_lengths)`` (zero padded) and ``rir_lengths``
        ``(B,)`` int64.
    """
    seed = torch.as_tensor(seed)
    if seed.dim() != 1 or seed.is_floating_point() or seed.is_complex() or seed.dtype == torch.bool:
        raise ValueError(f"seed must be a (B,) integer tensor, got {seed.dtype} {tuple(seed.shape)}")
    if not dtype.is_floating_point:
        raise TypeError(f"dtype must be floating, got {dtype}")
    sr = float(sample_rate)
    if not (math.isfinite(sr) and sr > 0):
        raise ValueError(f"sample_rate must be > 0, got {sample_rate}")
    B, dev = seed.shape[0], seed.device
    key = seed.to(torch.int64)
    rt60 = per_clip(rt60_s, B, name="rt60_s", device=dev, dtype=torch.float64)
    drr = per_clip(drr_db, B, name="drr_db", device=dev, dtype=torch.float64)
    predelay = per_clip(predelay_s, B, name="predelay_s", device=dev, dtype=torch.float64)
    if B and bool((rt60 <= 0).any()):
        raise ValueError(f"rt60_s must be > 0, got {rt60.tolist()}")
    if B and bool((predelay < 0).any()):
        raise ValueError(f"predelay_s must be >= 0, got {predelay.tolist()}")
    onset = (predelay * sr).round().to(torch.int64).clamp_min(1)
    if length is None:
        rir_lengths = torch.maximum(torch.ceil((predelay + rt60) * sr - 1e-6).to(torch.int64), onset + 1)
    else:
        rir_lengths = per_clip_int(length, B, name="length", device=dev)
        if B and bool((rir_lengths < onset + 1).any()):
            raise ValueError(
                f"length must exceed the pre-delay (>= {(onset + 1).tolist()} samples), "
                f"got {rir_lengths.tolist()}"
            )
    Tr = int(rir_lengths.max()) if B else 0

    n = torch.arange(Tr, device=dev)
    since = (n - onset[:, None]).clamp_min(0).to(torch.float64)
    envelope = torch.pow(10.0, -3.0 * since / (rt60[:, None] * sr))
    in_tail = (n >= onset[:, None]) & valid_mask(rir_lengths, Tr)
    tail = normal(key[:, None], _RIR_STREAM, n[None], dtype=torch.float64) * envelope * in_tail
    energy = tail.square().sum(dim=1).clamp_min(torch.finfo(torch.float64).tiny)
    tail = tail * (10.0 ** (-drr / 10.0) / energy).sqrt()[:, None]
    rir = tail + (n == 0).to(torch.float64)
    return rir.to(dtype), rir_lengths
