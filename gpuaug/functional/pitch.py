"""Duration-preserving pitch shift: batched phase-vocoder time stretch, then resampling.

To move the pitch by ``a = 2 ** (semitones / 12)``, each clip is first stretched in time by
``a`` with a phase vocoder (same pitch, ``a`` times longer), then played ``a`` times faster
with :func:`~gpuaug.functional.resample.warp` (pitch times ``a``, original length).
"""
from __future__ import annotations

import math

import torch
from torch import Tensor

from gpuaug._sync import host_of, mirrored
from gpuaug.backend import PHASE_LOCK, PHASE_VOCODER, kernel_for

from ._batch import NARROW_FLOATS, as_3d, check_wave, in_float32, per_clip, restore_rank, zero_padding
from .resample import DEFAULT_ROLLOFF, DEFAULT_ZEROS, pass_through, uniform_warp

__all__ = ["pitch_shift", "factor_to_semitones", "MAX_SEMITONES"]

#: Largest accepted ``|semitones|`` (two octaves).
MAX_SEMITONES = 24.0


def factor_to_semitones(factor: float | Tensor) -> float | Tensor:
    """Semitones of a frequency ratio: ``12 * log2(factor)`` (``factor > 0``).

    Example: ``factor_to_semitones(1.25)`` is about ``+3.86``; a Python float in, a float
    out; a tensor in, a tensor out.
    """
    if isinstance(factor, Tensor):
        if not bool((factor > 0).all()):
            raise ValueError("factor must be > 0")
        return 12.0 * torch.log2(factor)
    if not factor > 0:
        raise ValueError(f"factor must be > 0, got {factor}")
    return 12.0 * math.log2(factor)


def _nearest_peak(mag: Tensor) -> Tensor:
    """Index of the nearest spectral peak of every bin (``mag``: ``(..., F, M)``, dim -2).

    A peak is a bin louder than the bin below and at least as loud as the bin above (the
    first bin of the loudest plateau always is one, so every frame has a peak); ties in
    distance go to the lower peak.
    """
    F = mag.shape[-2]
    f = torch.arange(F, device=mag.device)[:, None]
    lower = torch.nn.functional.pad(mag[..., :-1, :], (0, 0, 1, 0), value=-1.0)
    upper = torch.nn.functional.pad(mag[..., 1:, :], (0, 0, 0, 1), value=-1.0)
    peak = (mag > lower) & (mag >= upper)
    prev = torch.cummax(torch.where(peak, f, -1), dim=-2).values
    nxt = torch.flip(torch.cummin(torch.flip(torch.where(peak, f, F), [-2]), dim=-2).values, [-2])
    use_prev = (prev >= 0) & ((nxt >= F) | (f - prev <= nxt - f))
    return torch.where(use_prev, prev, nxt)


def _locked_phases(peak: Tensor, step: Tensor) -> Tensor:
    """Solve ``phase[k] = phase[k-1][peak[k]] + step[k]`` (``phase[-1] = 0``) for all frames.

    ``peak`` (int64) and ``step`` (float64) are ``(N, F, M)``; the gather runs over the
    frequency dim. The recursion is a composition of index maps, solved by a Hillis-Steele
    prefix scan in ``ceil(log2(M))`` vectorised steps: after the step with shift ``d``,
    ``(peak[k], step[k])`` maps ``phase[max(k - 2d, -1)]`` to ``phase[k]``.
    """
    M = peak.shape[-1]
    shift = 1
    while shift < M:
        idx = peak[..., shift:]
        earlier = torch.gather(step[..., :-shift], 1, idx)
        step = torch.cat([step[..., :shift], step[..., shift:] + earlier], -1)
        peak = torch.cat([peak[..., :shift], torch.gather(peak[..., :-shift], 1, idx)], -1)
        shift *= 2
    return step


def _phase_lock(mag: Tensor, dp: Tensor, ang: Tensor) -> Tensor:
    """Identity-locked phases ``(N, F, M)`` (float64, not wrapped) of :func:`_phase_vocoder`.

    ``mag``: output magnitudes (peaks by :func:`_nearest_peak`); ``dp = d[k - 1] - a[k]`` and
    ``ang = a[k]``, float64: ``phase[0] = a[0]``,
    ``phase[k, f] = phase[k - 1, p] + (dp[k, p] + a[k, f])`` with ``p`` the nearest peak of
    ``f`` in frame ``k``. The recursion is solved by the scan :func:`_locked_phases`.
    """
    peak = _nearest_peak(mag)
    step = torch.gather(dp, 1, peak) + ang
    step[..., 0] = ang[..., 0]
    return _locked_phases(peak, step)


def _phase_vocoder(x: Tensor, lengths: Tensor, rate: Tensor, n_fft: int, hop: int,
                   lock_backend: str | None = "torch"):
    """Stretch each clip of ``x`` (``(B, C, T)``, zero padding) ``rate[b]`` times longer.

    STFT with a periodic Hann window (zero-padded ends). Output frame ``k`` of clip ``b``
    reads the input at fractional frame ``t = k / rate[b]`` (``i = floor(t)``): magnitudes
    are interpolated linearly between frames ``i`` and ``i + 1``; the phase increment
    ``d[k]`` of every bin is the measured one between those frames (wrapped around the bin
    frequency: the instantaneous frequency times ``hop``). Phases use identity phase
    locking (Laroche & Dolson, 1999): with ``p`` the nearest peak of bin ``f`` in output
    frame ``k`` (peaks of the interpolated magnitudes) and ``a[k]`` the input phases of
    frame ``i``::

        phase[0]    = a[0]
        phase[k, f] = phase[k-1, p] + d[k-1, p] + a[k, f] - a[k, p]

    i.e. peaks advance by their instantaneous frequency and the bins around a peak keep
    their input phase offset to it (vertical coherence; without it a stretched pure tone
    loses ~10 % amplitude and speech ~half its energy). The recursion is solved without a
    loop over frames by :func:`_phase_lock` or by the kernel of op ``"phase_lock"`` that
    ``lock_backend`` (a shared request, see :mod:`gpuaug.backend`) resolves to (the CPU
    kernel :func:`gpuaug.kernels.phase_lock.phase_lock_kernel`, frame by frame). The
    ISTFT (:func:`_istft`) renormalises the overlap-add by the window envelope. Returns the stretched clips
    and their lengths ``ceil(L * rate)``.
    """
    B, C, T = x.shape
    window = torch.hann_window(n_fft, periodic=True, dtype=x.dtype, device=x.device)
    # Trailing zeros so that every frame touching a clip exists whatever the batch's T.
    flat = torch.nn.functional.pad(x.reshape(B * C, T), (0, n_fft))
    spec = torch.stft(flat, n_fft, hop, window=window, center=True, pad_mode="constant",
                      return_complex=True)
    n_freq, n_frames = spec.shape[1], spec.shape[2]
    new_host = torch.ceil(host_of(lengths).to(torch.float64) * host_of(rate)).to(torch.int64)  # on the host
    t_len = int(new_host.max())
    new_lengths = mirrored(new_host, x.device)
    n_out = t_len // hop + n_fft // hop + 2
    vocoder = kernel_for(PHASE_VOCODER, x.device, lock_backend, shared=True)[1]
    if vocoder is not None:
        stretched = vocoder(spec, rate, channels=C, hop=hop, n_fft=n_fft, n_out=n_out)
    else:
        stretched = _stretch_frames(spec, rate, C, n_fft, hop, n_out, lock_backend)
    y = _istft(stretched, window, hop, t_len)
    return zero_padding(y.view(B, C, t_len), new_lengths), new_lengths


def _stretch_frames(spec: Tensor, rate: Tensor, C: int, n_fft: int, hop: int, n_out: int,
                    lock_backend: str | None) -> Tensor:
    """The torch path of the stretch between the STFT and the ISTFT of :func:`_phase_vocoder`
    (``spec``: ``(B * C, F, M)`` complex; returns ``(B * C, F, n_out)`` complex): elementwise
    torch ops, the phase lock by op ``"phase_lock"``."""
    n_freq, n_frames = spec.shape[1], spec.shape[2]
    mag = spec.abs()
    ang = torch.where(mag > 0, spec.angle(), 0.0).to(torch.float64)
    # Two zero frames beyond the end: reads past the last frame see silence.
    mag = torch.nn.functional.pad(mag, (0, 2))
    ang = torch.nn.functional.pad(ang, (0, 2))

    steps = torch.arange(n_out, device=spec.device, dtype=torch.float64)[None, :] / rate[:, None]
    base = torch.floor(steps)
    alpha = (steps - base).to(mag.dtype)[:, None, :].repeat_interleave(C, dim=0)
    i0 = base.to(torch.int64).clamp(max=n_frames).repeat_interleave(C, dim=0)[:, None, :]
    i0 = i0.expand(spec.shape[0], n_freq, n_out)

    mag_out = (1 - alpha) * torch.gather(mag, 2, i0) + alpha * torch.gather(mag, 2, i0 + 1)
    bin_advance = (2 * math.pi * hop / n_fft) * torch.arange(n_freq, device=spec.device, dtype=torch.float64)
    ang_i = torch.gather(ang, 2, i0)
    delta = torch.gather(ang, 2, i0 + 1) - ang_i - bin_advance[:, None]
    delta = delta - 2 * math.pi * torch.round(delta / (2 * math.pi)) + bin_advance[:, None]
    delta_prev = torch.nn.functional.pad(delta[..., :-1], (1, 0))  # d[k-1]
    lock = kernel_for(PHASE_LOCK, spec.device, lock_backend, shared=True)[1] or _phase_lock
    locked = lock(mag_out, delta_prev - ang_i, ang_i)
    phase = torch.remainder(locked, 2 * math.pi)
    return torch.polar(mag_out, phase.to(mag.dtype))


def _istft(spec: Tensor, window: Tensor, hop: int, length: int) -> Tensor:
    """``torch.istft(spec, n_fft, hop, window=window, center=True, length=length)`` without its
    window-envelope check, which reads a value back to the host (a sync on CUDA); here the
    envelope is > 0 wherever it is used (Hann window, ``hop <= n_fft / 2``) and a zero
    envelope gives 0, not Inf. The overlap-add is ``aten.unfold_backward``, as in
    ``torch.istft``.

    ``spec``: ``(R, n_fft // 2 + 1, M)`` complex; returns ``(R, length)`` real.
    """
    n_fft, (R, _, M) = window.shape[0], spec.shape
    frames = torch.fft.irfft(spec.transpose(1, 2), n=n_fft, dim=-1) * window  # (R, M, n_fft)
    total = n_fft + hop * (M - 1)
    overlap_add = torch.ops.aten.unfold_backward
    y = overlap_add(frames, [R, total], 1, n_fft, hop)
    env = overlap_add((window**2).expand(M, n_fft), [total], 0, n_fft, hop)
    start = n_fft // 2
    env = env[start:start + length]
    ok = env > 1e-11
    return torch.where(ok, y[:, start:start + length] / torch.where(ok, env, torch.ones_like(env)), 0.0)


def pitch_shift(
    wave: Tensor,
    lengths: Tensor,
    *,
    semitones: float | Tensor,
    sample_rate: int = 16000,
    n_fft: int | None = None,
    hop: int | None = None,
    zeros: int = DEFAULT_ZEROS,
    rolloff: float = DEFAULT_ROLLOFF,
    backend: str | None = None,
    exact: bool | None = None,
) -> tuple[Tensor, Tensor]:
    """Shift the pitch of each clip by ``semitones`` keeping its duration.

    Phase-vocoder stretch by ``a = 2 ** (semitones / 12)`` (see :func:`_phase_vocoder`),
    then :func:`~gpuaug.functional.resample.warp` at positions ``j * a`` with cutoff
    ``rolloff * min(1, 1 / a)``. Clips with ``semitones == 0`` pass through unchanged.

    Args:
        wave: input clips.
        lengths: valid samples per clip.
        semitones: per-clip shift (scalar or ``(B,)``) in ``[-24, 24]``; use
            :func:`factor_to_semitones` for frequency ratios.
        sample_rate: in Hz; only sets the default ``n_fft`` (about 32 ms: 512 at 16 kHz).
        n_fft: STFT size (samples, >= 16); default ``2 ** round(log2(0.032 * sample_rate))``.
        hop: STFT hop (samples, in ``[1, n_fft // 2]``); default ``n_fft // 4``.
        zeros: sinc zero crossings per side of the resampler.
        rolloff: anti-aliasing margin of the resampler in ``(0, 1]``.
        backend: shared backend request (see :mod:`gpuaug.backend`) of the ops it runs, each
            resolved on its own: the resampling half (op ``"uniform_warp"``; where that resolves
            to ``torch``, op ``"warp"``) and the phase vocoder (op ``"phase_vocoder"``; where
            that resolves to ``torch``, the torch vocoder with op ``"phase_lock"``). ``"torch"``
            runs them all in torch, a kernel backend the kernel of each op that has one on the
            device; ``None`` / ``"auto"``: each op's environment variable or ``auto`` (CPU
            tensors: the fused Numba vocoder and the Numba constant-speed resampler; CUDA: the
            torch vocoder and the CUDA warp kernel).
        exact: resampling on the Numba CPU kernel of op ``"uniform_warp"`` only (elsewhere
            always exact): ``True`` the exact float64 windowed sinc, ``False`` the tabulated one
            (within -100 dB of the clip's peak of it), ``None`` (default) exact for float64
            input and tabulated otherwise.

    Shapes:
        ``(B, T)`` / ``(B, C, T)`` -> ``(B, T_out)`` / ``(B, C, T_out)`` with
        ``T_out = max(lengths)``; output lengths equal input lengths. float16 / bfloat16
        waves are computed in float32 and returned in their dtype.
    """
    lengths = check_wave(wave, lengths)
    B, device = wave.shape[0], wave.device
    s = per_clip(semitones, B, name="semitones", device=device, dtype=torch.float64)
    s_host = host_of(s)  # checks and sizes on the host (no sync)
    if B and not bool((s_host.abs() <= MAX_SEMITONES).all()):
        raise ValueError(f"semitones must lie in [-{MAX_SEMITONES}, {MAX_SEMITONES}], got {s_host.tolist()}")
    if not isinstance(sample_rate, int) or sample_rate <= 0:
        raise ValueError(f"sample_rate must be a positive int, got {sample_rate!r}")
    n_fft = 2 ** round(math.log2(0.032 * sample_rate)) if n_fft is None else n_fft
    hop = n_fft // 4 if hop is None else hop
    if not isinstance(n_fft, int) or n_fft < 16:
        raise ValueError(f"n_fft must be an int >= 16, got {n_fft!r}")
    if not isinstance(hop, int) or not 1 <= hop <= n_fft // 2:
        raise ValueError(f"hop must be an int in [1, n_fft // 2 = {n_fft // 2}], got {hop!r}")
    if not 0.0 < rolloff <= 1.0:
        raise ValueError(f"rolloff must lie in (0, 1], got {rolloff}")
    if wave.dtype in NARROW_FLOATS:  # torch's FFTs refuse 16-bit floats on the CPU: compute in float32
        return in_float32(pitch_shift, wave, lengths, semitones=s, sample_rate=sample_rate, n_fft=n_fft, hop=hop,
                          zeros=zeros, rolloff=rolloff, backend=backend, exact=exact, name="pitch_shift")

    x3, was_2d = as_3d(wave)
    t_out = int(host_of(lengths).max()) if B else 0
    if t_out == 0:
        return restore_rank(x3.new_zeros(B, x3.shape[1], 0), was_2d), lengths
    x3 = zero_padding(x3[..., :t_out], lengths)
    if not bool((s_host != 0).any()):
        return restore_rank(x3, was_2d), lengths
    a_host = 2.0 ** (s_host / 12.0)
    a = mirrored(a_host, device)
    stretched, stretched_lengths = _phase_vocoder(x3, lengths, a, n_fft, hop, backend)
    cutoff = mirrored(rolloff * torch.clamp(1.0 / a_host, max=1.0), device)
    out, out_lengths = uniform_warp(stretched, stretched_lengths, a, lengths, cutoff, zeros=zeros,
                                    backend=backend, exact=exact)
    out, out_lengths = pass_through(out, out_lengths, x3, lengths, s_host == 0)
    return restore_rank(out, was_2d), out_lengths
