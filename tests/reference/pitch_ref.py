"""Float64 numpy reference of gpuaug.functional.pitch_shift: one clip, loops over frames.

Phase-vocoder stretch with identity phase locking written as the plain frame-by-frame
recursion (Laroche & Dolson, 1999), numpy rfft / irfft with explicit framing and a
window-envelope-normalised overlap-add, then the direct windowed-sinc resampler of
``resample_ref``.
"""
import math

import numpy as np

from reference.resample_ref import warp_ref


def _stft(x, n_fft, hop, window):
    """Frames centred at k * hop over x zero-padded by n_fft // 2 (left) and n_fft // 2 + n_fft (right)."""
    xp = np.concatenate([np.zeros(n_fft // 2), x, np.zeros(n_fft + n_fft // 2)])
    n_frames = 1 + (len(xp) - n_fft) // hop
    return np.stack([np.fft.rfft(xp[k * hop : k * hop + n_fft] * window) for k in range(n_frames)], 1)


def _nearest_peak(mag):
    F = len(mag)
    peaks = [f for f in range(F) if mag[f] > (mag[f - 1] if f else -1.0)
             and mag[f] >= (mag[f + 1] if f + 1 < F else -1.0)]
    if not peaks:
        return np.arange(F)
    peaks = np.array(peaks)
    out = np.empty(F, dtype=np.int64)
    for f in range(F):
        d = np.abs(peaks - f)
        out[f] = peaks[np.flatnonzero(d == d.min())[0]]  # tie -> lower peak
    return out


def stretch_ref(x, rate, n_fft, hop):
    """Clip (L,) stretched ``rate`` times longer; returns (ceil(L * rate),) samples."""
    L = len(x)
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)  # periodic Hann
    spec = _stft(x, n_fft, hop, window)
    F, n_frames = spec.shape
    mag = np.concatenate([np.abs(spec), np.zeros((F, 2))], 1)
    ang = np.concatenate([np.where(np.abs(spec) > 0, np.angle(spec), 0.0), np.zeros((F, 2))], 1)
    n_len = math.ceil(L * rate)
    n_out = n_len // hop + n_fft // hop + 2
    advance = 2 * np.pi * hop / n_fft * np.arange(F)
    out_spec = np.zeros((F, n_out), dtype=complex)
    phase = None
    prev_delta = None
    for k in range(n_out):
        t = k / rate
        i = min(int(np.floor(t)), n_frames)
        alpha = t - np.floor(t)
        m = (1 - alpha) * mag[:, i] + alpha * mag[:, i + 1]
        a = ang[:, i]
        d = ang[:, i + 1] - a - advance
        d = d - 2 * np.pi * np.round(d / (2 * np.pi)) + advance
        if k == 0:
            phase = a.copy()
        else:
            p = _nearest_peak(m)
            phase = phase[p] + prev_delta[p] + a - a[p]
        prev_delta = d
        out_spec[:, k] = m * np.exp(1j * phase)
    total = n_fft + hop * (n_out - 1)
    y = np.zeros(total)
    env = np.zeros(total)
    for k in range(n_out):
        y[k * hop : k * hop + n_fft] += np.fft.irfft(out_spec[:, k], n_fft) * window
        env[k * hop : k * hop + n_fft] += window**2
    y = y[n_fft // 2 : n_fft // 2 + n_len] / env[n_fft // 2 : n_fft // 2 + n_len]
    return y


def pitch_shift_ref(x, semitones, n_fft=512, hop=128, zeros=24, rolloff=0.945):
    """Clip (C, L) pitch-shifted by ``semitones``, same length."""
    x = np.atleast_2d(np.asarray(x, dtype=np.float64))
    if semitones == 0:
        return x.copy()
    a = 2.0 ** (semitones / 12.0)
    L = x.shape[-1]
    out = []
    for c in range(x.shape[0]):
        y = stretch_ref(x[c], a, n_fft, hop)
        out.append(warp_ref(y, np.arange(L) * a, np.full(L, rolloff * min(1.0, 1.0 / a)), zeros)[0])
    return np.stack(out)


def spectral_scale(x, y, sr, band=(150.0, 3500.0)):
    """Frequency scale factor c that best maps the long-term spectrum of x onto that of y.

    Log long-term average spectra (512-point Hann frames, hop 128); c maximises the
    correlation of log LTAS_y(f) with log LTAS_x(f / c) over ``band`` (c on a 0.1 % grid).
    """
    def log_ltas(v):
        frames = np.lib.stride_tricks.sliding_window_view(np.asarray(v, dtype=np.float64), 512)[::128]
        return np.log((np.abs(np.fft.rfft(frames * np.hanning(512), axis=1)) ** 2).mean(0) + 1e-12)

    f = np.fft.rfftfreq(512, 1 / sr)
    sel = (f > band[0]) & (f < band[1])
    lx, ly = log_ltas(x), log_ltas(y)
    cands = np.exp(np.arange(np.log(0.4), np.log(2.5), 1e-3))
    score = [np.corrcoef(ly[sel], np.interp(f[sel] / c, f, lx))[0, 1] for c in cands]
    return float(cands[int(np.argmax(score))])
