"""McAdams-coefficient voice transformation (VoicePrivacy Challenge baseline B2), batched.

Recipe (Patino et al. 2021; ``shared/reference_algorithms.md``), per clip with coefficient
``alpha``:

1. ``x = x + eps`` (float32 eps, added to the valid samples only). Frames of
   ``winlen = floor(0.020 fs)`` samples every ``hop = floor(0.010 fs)`` samples, window
   ``w = sqrt(hann_sym(winlen) / K)``, ``K = sum(hann_sym) / hop`` (``w**2`` overlap-adds
   to ~1), used for analysis and synthesis.
2. Per frame ``f = x[m hop : m hop + winlen] * w``: LPC of order 20 by Burg's method
   (:func:`~gpuaug.functional.lpc.burg_lpc`), poles = roots of ``a``. Every complex pole
   ``r e^{i theta}`` (``|Im| > 1e-10``) becomes ``r e^{i sign(theta) min(|theta|**alpha, pi)}``:
   the angle in ``(0, pi)`` is raised to ``alpha`` and the conjugate gets the negated
   angle; pairing is by the sign of the angle, never by position. The clip to ``[0, pi]``
   is the 2020/2022 behaviour (2024 drops it; it only matters for ``alpha > 1``). Real
   poles are untouched. ``a_new = real(poly(poles))`` in float64.
3. Residual ``e = lfilter(a, [1], f)`` (FIR, zero state); synthesis
   ``y_f = lfilter([1], a_new, e) * w`` (IIR, zero state, truncated to ``winlen``);
   overlap-add at ``m hop``.
4. Level: ``"preserve"`` (default) scales each channel so its RMS over the valid samples
   equals the input's (loudness is an arousal cue); ``"peak"`` is the reference
   (``y / max|y|`` over the clip); ``"none"`` keeps the raw overlap-add, whose level
   drifts a lot (EmoDB RMS: x2 at ``alpha`` 0.8, x100 at 0.5).

Not reproduced: the 2020 VPC script also adds ``eps`` a second time to the windowed frame
given to ``librosa.lpc`` (not to the residual filter); the shared recipe has one ``eps``.

Frame layout for variable lengths: clip ``b`` (length ``L``) uses frames ``m = 0 .. F - 1``
with ``F = ceil(L / hop)``: frame 0 IS processed (2024 behaviour; 2020/2022 skip it), and
every frame that starts inside the clip is processed, the last ones zero-padded past ``L``
(the reference stops at the last complete frame and leaves the tail silent). So every valid
sample is covered by at least two frames except the first ``hop`` ones, which keep the window's
fade-in as in the reference. Output length == input length; padding is exactly zero.
All frames of all clips and channels are gathered into one ``(N, winlen)`` batch: one Burg
call, one batched ``torch.linalg.eigvals`` (companion matrices, as ``np.roots``), one
polynomial expansion and one IIR recursion (a loop over the ``winlen`` time steps).

Pass-through (output == input): clips shorter than one frame (``L < winlen``; the recipe
needs a complete frame) and all-silent channels (every valid sample is 0).
"""
from __future__ import annotations

import math

import torch
from torch import Tensor

from gpuaug._sync import host_of, mirrored
from ..backend import MCADAMS, kernel_for
from ._batch import as_3d, check_wave, per_clip, restore_rank, valid_mask, zero_padding
from .lpc import burg_lpc

__all__ = ["mcadams"]

_LEVELS = ("preserve", "peak", "none")
# Poles with |imag| at or below this are real (Burg poles lie inside the unit circle, so
# this is also an angle bound in radians; warping such a pair would move it < 1e-8 rad).
_IMAG_TOL = 1e-10


def _window(winlen: int, hop: int, device) -> Tensor:
    """``sqrt(hann_sym(winlen) / K)``, ``K = sum(hann_sym) / hop`` (float64)."""
    hann = torch.hann_window(winlen, periodic=False, dtype=torch.float64, device=device)
    return torch.sqrt(hann / (hann.sum() / hop))


def _roots(a: Tensor) -> Tensor:
    """Roots of monic polynomials ``a`` ``(N, p + 1)`` as companion eigenvalues ``(N, p)``."""
    n, p1 = a.shape
    p = p1 - 1
    comp = a.new_zeros(n, p, p)
    comp[:, 0, :] = -a[:, 1:]
    if p > 1:
        idx = torch.arange(p - 1, device=a.device)
        comp[:, idx + 1, idx] = 1.0
    return torch.linalg.eigvals(comp)


def _poly(roots: Tensor) -> Tensor:
    """Real part of the monic polynomial with the given roots: ``(N, p)`` -> ``(N, p + 1)``."""
    n, p = roots.shape
    c = roots.new_ones(n, 1)
    zero = roots.new_zeros(n, 1)
    for k in range(p):  # c(z) <- c(z) (z - r_k), as numpy.poly
        c = torch.cat([c, zero], dim=1) - roots[:, k : k + 1] * torch.cat([zero, c], dim=1)
    return c.real


def _warp_poles(poles: Tensor, alpha: Tensor) -> Tensor:
    """Raise the angle of every complex pole to ``alpha`` (sign kept, clipped to pi)."""
    theta = torch.angle(poles)
    warped = torch.sign(theta) * torch.clamp(theta.abs() ** alpha[:, None], max=math.pi)
    complex_pole = poles.imag.abs() > _IMAG_TOL
    new = torch.polar(poles.abs(), warped)
    return torch.where(complex_pole, new, poles)


def _fir(a: Tensor, x: Tensor) -> Tensor:
    """``lfilter(a, [1], x)`` row-wise with zero state: ``(N, p + 1)``, ``(N, W)`` -> ``(N, W)``."""
    p = a.shape[1] - 1
    W = x.shape[1]
    padded = torch.nn.functional.pad(x, (p, 0))
    out = a[:, :1] * x
    for k in range(1, p + 1):  # loop over the taps, vectorised over frames and time
        out = out + a[:, k : k + 1] * padded[:, p - k : p - k + W]
    return out


def _all_pole(a: Tensor, e: Tensor) -> Tensor:
    """``lfilter([1], a, e)`` row-wise with zero state (exact recursion, ``a[:, 0] = 1``)."""
    n, W = e.shape
    p = a.shape[1] - 1
    back = a[:, 1:].flip(-1)  # pairs with y[t - p] .. y[t - 1]
    y = e.new_zeros(n, p + W)
    for t in range(W):
        y[:, p + t] = e[:, t] - torch.linalg.vecdot(back, y[:, t : t + p])
    return y[:, p:]


def _ola(frames: Tensor, hop: int) -> Tensor:
    """Overlap-add ``(S, F, W)`` frames at multiples of ``hop`` -> ``(S, (F - 1) hop + W)``."""
    S, F, W = frames.shape
    out_len = (F - 1) * hop + W
    folded = torch.nn.functional.fold(
        frames.transpose(1, 2), output_size=(1, out_len), kernel_size=(1, W), stride=(1, hop)
    )
    return folded.reshape(S, out_len)


def mcadams(
    wave: Tensor,
    lengths: Tensor,
    *,
    alpha,
    sample_rate: int = 16000,
    order: int = 20,
    level: str = "preserve",
    backend: str | None = None,
) -> tuple[Tensor, Tensor]:
    """McAdams voice transformation: warp LPC pole angles ``theta -> theta ** alpha``.

    ``alpha < 1`` compresses formant angles toward 1 rad (``fs / 2 pi``, ~2546 Hz at
    16 kHz), raising low formants (500 Hz -> ~692 Hz at 0.8); ``alpha > 1`` does the
    opposite; ``alpha = 1`` is ~identity (window overlap-add ripple ~0.5 %, plus the
    first-hop fade-in). Channels of ``(B, C, T)`` input are transformed independently with
    their clip's ``alpha``. See the module docstring for the exact recipe, frame layout and
    pass-through rules.

    Args:
        wave: ``(B, T)`` or ``(B, C, T)`` float waveform.
        lengths: ``(B,)`` valid samples per clip.
        alpha: McAdams coefficient per clip, scalar or ``(B,)``; must be > 0 (VPC: 0.8, or
            U[0.5, 0.9]).
        sample_rate: Hz; sets ``winlen = floor(0.02 fs)``, ``hop = floor(0.01 fs)``.
        order: LPC order (20 in the recipe); needs ``order < winlen``.
        level: ``"preserve"`` (per-channel RMS over valid samples kept), ``"peak"``
            (reference: divide the clip by its max ``|y|``) or ``"none"``.
        backend: ``"torch"`` (this module, the reference), ``"numba"`` (the fused frame
            kernel :mod:`gpuaug.kernels.mcadams_frames`: ``@njit`` on CPU, ``@cuda.jit`` on
            CUDA), ``"auto"`` or ``None`` (see :func:`gpuaug.backend.resolve`). Framing,
            ``eps``, level modes and pass-through are shared; only the per-frame synthesis
            and overlap-add differ (max error <= 2e-5 of the clip RMS on EmoDB speech; on
            noiseless tones / DC the transform itself is ill-posed, see the kernel module).

    Returns:
        ``(wave, lengths)``: same shape, dtype and device; lengths unchanged; padding zero.

    Raises:
        ValueError: bad ``alpha`` / ``sample_rate`` / ``order`` / ``level`` or NaN input.
    """
    lengths = check_wave(wave, lengths)
    if level not in _LEVELS:
        raise ValueError(f"level must be one of {_LEVELS}, got {level!r}")
    for name, v in (("sample_rate", sample_rate), ("order", order)):
        if isinstance(v, bool) or not isinstance(v, int):
            raise TypeError(f"{name} must be an int, got {type(v).__name__}")
    winlen = math.floor(0.02 * sample_rate)
    hop = math.floor(0.01 * sample_rate)
    if hop < 1 or order < 1 or order >= winlen:
        raise ValueError(
            f"need 1 <= order < winlen = floor(0.02 * sample_rate); got order={order}, "
            f"sample_rate={sample_rate} (winlen={winlen})"
        )
    kernel = kernel_for(MCADAMS, wave.device, backend)[1]
    B = wave.shape[0]
    alpha = per_clip(alpha, B, name="alpha", device=wave.device, dtype=torch.float64)
    if B and not bool((host_of(alpha) > 0).all()):
        raise ValueError(f"alpha must be > 0, got {host_of(alpha).tolist()}")
    x3, was_2d = as_3d(wave)
    C, T = x3.shape[1], x3.shape[2]
    if B == 0 or T == 0:
        return wave.clone(), lengths

    # one row per (clip, channel) signal
    x = zero_padding(x3.to(torch.float64), lengths).reshape(B * C, T)
    sig_len = lengths.repeat_interleave(C)
    sig_alpha = alpha.repeat_interleave(C)
    mask = valid_mask(sig_len, T)
    host_len = host_of(lengths).repeat_interleave(C)  # frame counts on the host (no sync)
    n_frames = mirrored(torch.where(host_len >= winlen, (host_len + hop - 1) // hop, torch.zeros_like(host_len)),
                        wave.device)
    F = int(host_of(n_frames).max())

    out = torch.zeros_like(x)
    if F > 0:
        span = (F - 1) * hop + winlen
        eps = torch.finfo(torch.float32).eps
        xe = x + eps * mask.to(x.dtype)
        xe = torch.nn.functional.pad(xe, (0, max(0, span - T)))[:, :span]
        win = _window(winlen, hop, x.device)
        if kernel is None:
            frame_ok = torch.arange(F, device=x.device) < n_frames[:, None]  # (S, F)
            frames = xe.unfold(-1, winlen, hop)[frame_ok] * win  # (N, winlen)
            frame_alpha = sig_alpha[:, None].expand(-1, F)[frame_ok]

            a = burg_lpc(frames, order)
            a_new = _poly(_warp_poles(_roots(a), frame_alpha))
            y = _all_pole(a_new, _fir(a, frames)) * win

            grid = y.new_zeros(B * C, F, winlen)
            grid[frame_ok] = y
            ola = _ola(grid, hop)[:, :T]
        else:
            ola = kernel(xe, n_frames, sig_alpha, win, hop=hop, order=order, out_len=min(span, T))
        out[:, : ola.shape[1]] = ola
        out = out * mask.to(out.dtype)

    in_energy = (x * x).sum(-1)
    out_energy = (out * out).sum(-1)
    if level == "preserve":
        gain = torch.sqrt(in_energy / torch.where(out_energy > 0, out_energy, torch.ones_like(out_energy)))
        out = out * gain[:, None]
    elif level == "peak":
        peak = out.abs().reshape(B, C * T).amax(-1).repeat_interleave(C)
        out = out / torch.where(peak > 0, peak, torch.ones_like(peak))[:, None]
    keep = (n_frames == 0) | (in_energy == 0) | (out_energy == 0)
    out = torch.where(keep[:, None], x, out)
    return restore_rank(out.reshape(B, C, T).to(wave.dtype), was_2d), lengths
