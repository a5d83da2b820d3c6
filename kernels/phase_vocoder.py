"""Fused phase vocoder on the CPU: the stretch of :func:`gpuaug.functional.pitch._phase_vocoder`
between the STFT and the ISTFT in one pass.

The torch path builds ``(N, F, M_out)`` blocks for every step (gathers of the input frames,
the interpolated magnitudes, the measured phase increments, the locked phases, their wrap,
``polar``): about fifteen elementwise passes over the output spectrogram. This kernel runs a
``prange`` over the ``N`` rows (clips x channels) and, per output frame ``k``, one pass over the
bins that reads input frames ``i = floor(k / rate)`` and ``i + 1`` and computes, with the
torch path's formulas and in its precisions:

* the magnitude ``(1 - alpha) |X_i| + alpha |X_{i+1}|`` (``alpha = k / rate - i``, in the
  wave's dtype), the input phase ``a = angle(X_i)`` and the increment
  ``d = princarg(angle(X_{i+1}) - a - w) + w`` (``w``: the bin's advance per hop; float64);
* the identity phase lock (Laroche & Dolson) of :func:`gpuaug.functional.pitch._phase_lock`:
  nearest peak ``p`` of every bin among the interpolated magnitudes of frame ``k`` (forward
  and backward sweep as :mod:`gpuaug.kernels.phase_lock`), ``phase[k, f] = phase[k - 1, p] +
  ((d[k - 1, p] - a[p]) + a[f])``, ``phase[0] = a`` (float64, not wrapped);
* ``phase mod 2 pi`` (``torch.remainder``: ``fmod``, plus ``2 pi`` where negative), cast to the
  dtype, and the complex frame ``mag * (cos, sin)(phase)`` (``torch.polar``).

Frames at or beyond the end of the STFT read zeros (the torch path's two zero frames).
``|X|`` and ``angle(X)`` of the input frames come from torch (two elementwise passes over the
*input* frames, so the magnitudes, and with them the peaks, are torch's bit for bit); the
STFT and the ISTFT stay torch's FFTs. Against the torch path the recursion differs by
rounding only (its phases are the same sums in the same order; the kernel's ``cos`` / ``sin``
/ ``fmod`` are libm's): measured differences in ``tests/test_kernels_phase_vocoder.py``.

Registered (:func:`gpuaug.backend.register_kernel`): :func:`phase_vocoder_kernel` as op
``phase_vocoder``, ``("numba", "cpu", 0)``; no CUDA twin (the torch path's passes are parallel
on a GPU). Launched through :func:`gpuaug.kernels._launch.run_numba`. Timings:
``benchmarks/results/kernel-timings.md``.
"""
from __future__ import annotations

import math

import numpy as np
import torch
from numba import prange

from gpuaug.backend import PHASE_VOCODER, register_kernel
from gpuaug.kernels._launch import run_numba
from gpuaug.kernels._numba_glue import jit_cpu
from gpuaug.kernels.phase_lock import nearest_peaks

__all__ = ["phase_vocoder_kernel"]


@jit_cpu
def _unit(re, im):
    """``(|X|, cos a, sin a)`` of ``X = re + i im`` with ``a = angle(X)`` (``a = 0`` where
    ``X = 0``, as the torch path's ``where(mag > 0, angle, 0)``); ``|X|`` in the input's dtype
    as torch computes it on the CPU (``sqrt(re * re + im * im)``, rounded per operation), the
    unit vector in float64."""
    mag = math.sqrt(re * re + im * im)
    if mag > 0:
        r, i = np.float64(re), np.float64(im)
        h = math.sqrt(r * r + i * i)
        return mag, r / h, i / h
    return mag, 1.0, 0.0


@jit_cpu(parallel=True)
def _vocoder_cpu(spec, rate, out, channels):
    """``spec``: ``(N, M, F, 2)`` STFT frames (frames-major, real / imaginary parts, the wave's
    dtype); ``rate``: ``(B,)`` float64; ``out``: ``(N, M_out, F, 2)`` (the wave's dtype)."""
    N, M, F, _ = spec.shape
    n_out = out.shape[1]
    for n in prange(N):
        r = rate[n // channels]
        ur = np.empty(F)  # e^{i phase[k - 1]} of every bin (float64)
        ui = np.empty(F)
        dr = np.empty(F)  # e^{i d[k - 1]}: the measured increment of frame k - 1
        di = np.empty(F)
        ar = np.empty(F)  # e^{i a[k]}: the input phase of frame k
        ai = np.empty(F)
        qr = np.empty(F)  # e^{i (phase[k - 1] + d[k - 1] - a[k])}, read at the peaks
        qi = np.empty(F)
        m_cur = np.empty(F, spec.dtype)  # interpolated magnitudes of frame k (the wave's dtype)
        scalar = np.empty(2, spec.dtype)  # casts to the wave's dtype: 1, alpha
        scalar[0] = 1.0
        one = scalar[0]
        zero = one - one
        last_below = np.empty(F, np.int64)  # scratch of nearest_peaks
        peak = np.empty(F, np.int64)
        for k in range(n_out):
            t = k / r
            base = math.floor(t)
            scalar[1] = t - base
            alpha = scalar[1]
            i0 = min(int(base), M)
            for f in range(F):
                m0, c0, s0 = zero, 1.0, 0.0
                m1, c1, s1 = zero, 1.0, 0.0
                if i0 < M:
                    m0, c0, s0 = _unit(spec[n, i0, f, 0], spec[n, i0, f, 1])
                if i0 + 1 < M:
                    m1, c1, s1 = _unit(spec[n, i0 + 1, f, 0], spec[n, i0 + 1, f, 1])
                m_cur[f] = (one - alpha) * m0 + alpha * m1
                if k > 0:  # q = u[k - 1] d[k - 1] conj(a[k])
                    pr = ur[f] * dr[f] - ui[f] * di[f]
                    pi = ur[f] * di[f] + ui[f] * dr[f]
                    qr[f] = pr * c0 + pi * s0
                    qi[f] = pi * c0 - pr * s0
                ar[f], ai[f] = c0, s0
                dr[f] = c1 * c0 + s1 * s0  # e^{i (a1 - a0)} = e^{i d} (d is a1 - a0 up to 2 pi)
                di[f] = s1 * c0 - c1 * s0
            if k == 0:
                for f in range(F):
                    ur[f], ui[f] = ar[f], ai[f]
            else:
                nearest_peaks(m_cur, last_below, peak)
                for f in range(F):
                    p = peak[f]
                    ur[f] = qr[p] * ar[f] - qi[p] * ai[f]
                    ui[f] = qr[p] * ai[f] + qi[p] * ar[f]
            for f in range(F):
                out[n, k, f, 0] = m_cur[f] * ur[f]
                out[n, k, f, 1] = m_cur[f] * ui[f]


@register_kernel(PHASE_VOCODER, "numba", "cpu")
def phase_vocoder_kernel(spec: torch.Tensor, rate: torch.Tensor, *, channels: int, hop: int, n_fft: int,
                         n_out: int) -> torch.Tensor:
    """The stretched spectrogram ``(N, F, n_out)`` (complex, the dtype of ``spec``) of
    :func:`gpuaug.functional.pitch._phase_vocoder` from its STFT.

    Args:
        spec: ``(N, F, M)`` complex STFT of the ``N = B * channels`` rows (not modified).
        rate: ``(B,)`` float64 stretch factor of each clip (> 0).
        channels: rows per clip; n_out: output frames; hop, n_fft: the STFT's (unused: the
            increments are products of unit vectors, in which the bin advance cancels).

    The result is a frames-major tensor seen as ``(N, F, n_out)`` (``transpose(1, 2)`` of a
    contiguous ``(N, n_out, F)``), which is the layout the ISTFT's inverse FFT reads.
    """
    if spec.device.type != "cpu":
        raise ValueError(f"the phase_vocoder kernel runs on CPU tensors, got {spec.device}")
    if spec.dim() != 3 or not spec.is_complex():
        raise ValueError(f"spec must be a complex (N, F, M) tensor, got {spec.dtype} {tuple(spec.shape)}")
    # (N, M, F, 2): torch.stft's memory layout, seen as real pairs (no copy)
    frames = torch.view_as_real(spec.detach().transpose(1, 2).contiguous())
    rate = rate.detach().to(torch.float64).contiguous()
    N, F = spec.shape[0], spec.shape[1]
    out = frames.new_empty(N, n_out, F, 2)
    if out.numel():
        run_numba(_vocoder_cpu, None, [frames, rate, out], int(channels))
    return torch.view_as_complex(out).transpose(1, 2)
