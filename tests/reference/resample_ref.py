"""Float64 numpy references of gpuaug.functional.resample / speed: one clip, direct sums.

Every output sample is an explicit windowed-sinc sum over all integers inside the kernel
support (no tap table, no chunking, no gather), following the definition in
``gpuaug/functional/resample.py``.
"""
import math

import numpy as np


def kernel_ref(u, zeros):
    """Hann-windowed sinc: sinc(u) * cos(pi u / (2 zeros))**2 on |u| < zeros, else 0."""
    u = np.asarray(u, dtype=np.float64)
    return np.where(np.abs(u) < zeros, np.sinc(u) * np.cos(np.pi * u / (2 * zeros)) ** 2, 0.0)


def warp_ref(x, positions, cutoffs, zeros=24):
    """x: (C, L) float64 clip; positions, cutoffs: (N,) -> (C, N) output."""
    x = np.atleast_2d(np.asarray(x, dtype=np.float64))
    L = x.shape[-1]
    out = np.zeros((x.shape[0], len(positions)))
    for j, (p, fc) in enumerate(zip(positions, cutoffs)):
        reach = zeros / fc
        i = np.arange(math.ceil(p - reach), math.floor(p + reach) + 1)
        w = kernel_ref((i - p) * fc, zeros)
        w = w / w.sum()
        ok = (i >= 0) & (i < L)
        out[:, j] = x[:, i[ok]] @ w[ok]
    return out


def resample_ref(x, ratio, zeros=24, rolloff=0.945):
    """Clip (C, L) at rate ratio ``new / old``: positions j / ratio, cutoff rolloff*min(1, ratio)."""
    x = np.atleast_2d(np.asarray(x, dtype=np.float64))
    if ratio == 1:
        return x.copy()
    n = int(np.round(x.shape[-1] * ratio))
    pos = np.arange(n) / ratio
    return warp_ref(x, pos, np.full(n, rolloff * min(1.0, ratio)), zeros)


def speed_ref(x, factor, zeros=24, rolloff=0.945):
    """Clip (C, L) played ``factor`` times faster: positions j * factor."""
    x = np.atleast_2d(np.asarray(x, dtype=np.float64))
    if factor == 1:
        return x.copy()
    n = int(np.round(x.shape[-1] / factor))
    pos = np.arange(n) * factor
    return warp_ref(x, pos, np.full(n, rolloff * min(1.0, 1.0 / factor)), zeros)


def speed_segment_ref(x, start, length, factor, zeros=24, rolloff=0.945):
    """Clip (C, L) whose segment [start, start + length) is played ``factor`` times faster."""
    x = np.atleast_2d(np.asarray(x, dtype=np.float64))
    L = x.shape[-1]
    s = min(start, L)
    e = min(start + length, L)
    n = e - s
    m = int(np.round(n / factor))
    if m == n:
        return x.copy()
    pos, cut = [], []
    for j in range(L - n + m):
        if j < s:
            pos.append(float(j))
            cut.append(1.0)
        elif j < s + m:
            pos.append(s + (j - s) * n / m)
            cut.append(rolloff * min(1.0, m / n))
        else:
            pos.append(float(j - m + n))
            cut.append(1.0)
    return warp_ref(x, np.array(pos), np.array(cut), zeros)


def peak_freq(x, sr):
    """Frequency (Hz) of the strongest spectral peak (Hann window, 8x zero padding, parabolic)."""
    x = np.asarray(x, dtype=np.float64)
    n = len(x)
    mag = np.abs(np.fft.rfft(x * np.hanning(n), 8 * n))
    k = int(np.argmax(mag[1:-1])) + 1
    a, b, c = np.log(mag[k - 1 : k + 2] + 1e-300)
    return (k + 0.5 * (a - c) / (a - 2 * b + c)) * sr / (8 * n)
