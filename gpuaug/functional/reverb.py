"""Reverberation: batched FFT convolution with per-clip room impulse responses (RIRs), and
seeded synthetic RIRs (direct impulse + pre-delay + exponentially decaying Gaussian tail).
"""
from __future__ import annotations

import math

import torch
from torch import Tensor

from gpuaug._sync import check_later, host_of, mirrored
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
from gpuaug.random import normal, stream_id

__all__ = ["reverb", "synthetic_rir"]

_NORMALIZE = ("energy", "peak", "none")
_RIR_STREAM = stream_id("gpuaug.functional.synthetic_rir")


def _next_fast_len(n: int) -> int:
    """Smallest 5-smooth integer (2^a 3^b 5^c) >= ``n`` (>= 1): a fast FFT size."""
    best = 1 << max(0, (n - 1).bit_length())
    p5 = 1
    while p5 < best:
        p35 = p5
        while p35 < best:
            q = -(-n // p35)
            best = min(best, p35 << max(0, (q - 1).bit_length()))
            p35 *= 3
        p5 *= 5
    return best


def reverb(
    wave: Tensor, lengths: Tensor, rir: Tensor, rir_lengths: Tensor, *, normalize: str = "energy",
    direct: Tensor | None = None,
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

    Shapes:
        returns ``wave`` with the input's shape, dtype and device and ``lengths`` unchanged.

    Notes:
        The FFT size is the next 5-smooth size >= ``n_w + n_h - 1`` with ``n_w =
        max(lengths)`` and ``n_h = min(max(rir_lengths), n_w + max(d))`` (RIR samples past
        that never reach the kept output), computed in the wave's dtype, so batched and
        single-clip results differ only by FFT rounding (~1e-6 relative in float32).
        With ``normalize`` "energy" or "peak" the RIR is first scaled to peak 1 in float64
        (the result does not depend on its scale), so a denormal or huge RIR does not
        underflow or overflow; normalisation energies are computed in float64 and the gains
        applied in the wave's dtype. float16 / bfloat16 waves are computed in float32 and
        returned in their dtype.

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
    h, rir_lengths = check_companion(rir, rir_lengths, batch=B, channels=C, name="rir", min_length=1)
    if wave.dtype in NARROW_FLOATS:  # torch's FFTs refuse 16-bit floats on the CPU: compute in float32
        return in_float32(reverb, wave, lengths, rir, rir_lengths, normalize=normalize, direct=direct,
                          name="reverb")
    if B == 0:
        return wave.clone(), lengths
    h_lengths = rir_lengths if rir_lengths.device == w.device else mirrored(host_of(rir_lengths), w.device)
    h = zero_padding(h.to(device=w.device), h_lengths)  # still in the RIR's dtype
    peak = h.abs().amax(dim=1)  # (B, Tr)
    h_peak = peak.amax(dim=1)
    check_later(h_peak > 0, lambda ok: f"reverb: rir of clip(s) {(~ok).nonzero().flatten().tolist()} is all zero")
    if direct is None:
        direct = peak.argmax(dim=1)  # first maximum; padding is zero and never wins
        direct_host = host_of(direct)  # a sync on CUDA: pass direct= to avoid it
    else:
        direct_host = host_of(direct).to(torch.int64)
        direct = mirrored(direct_host, w.device)
    if normalize != "none":  # scale-free: convolve the RIR scaled to peak 1 (denormal / huge RIRs do not underflow)
        h_scale = torch.where(h_peak > 0, h_peak, torch.ones_like(h_peak)).to(torch.float64)
        h = (h.to(torch.float64) / h_scale[:, None, None]).to(w.dtype)
    else:
        h = h.to(w.dtype)

    n_w = int(host_of(lengths).max())
    if n_w == 0:  # only empty clips: nothing to convolve
        return zero_padding(wave, lengths), lengths
    # output t < L reads full_conv[t + d]: RIR samples past n_w + max(d) never reach it
    n_h = min(int(host_of(rir_lengths).max()), n_w + int(direct_host.max()))
    n_fft = _next_fast_len(max(1, n_w + n_h - 1))
    x = zero_padding(w, lengths)[..., :n_w]
    spec = torch.fft.rfft(x, n=n_fft) * torch.fft.rfft(h[..., :n_h], n=n_fft)
    full = torch.fft.irfft(spec, n=n_fft)
    idx = (torch.arange(T, device=w.device) + direct[:, None]).clamp(max=n_fft - 1)
    out = zero_padding(torch.gather(full, 2, idx[:, None, :].expand(B, C, T)), lengths)

    if normalize != "none":
        if normalize == "energy":  # root energies, accumulated in float64
            ref, got = (torch.linalg.vector_norm(v, dim=(1, 2), dtype=torch.float64) for v in (x, out))
        else:
            ref, got = (v.abs().amax(dim=(1, 2)).to(torch.float64) for v in (x, out))
        gain = ref / got.clamp_min(torch.finfo(torch.float64).tiny)
        gain = torch.where(got > 0, gain, torch.zeros_like(gain))
        out = out * gain.to(w.dtype)[:, None, None]  # an overflowing gain is caught just below
    check_finite_output(out, "reverb", lambda: f"normalize={normalize!r} overflows {w.dtype}")
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
