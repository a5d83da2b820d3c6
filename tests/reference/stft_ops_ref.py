"""Float64 one-clip numpy/scipy references for VTLN and modulation spectrum smoothing.

Slow and obvious on purpose: explicit frame loop for the STFT, ``np.interp`` per frame,
``scipy.signal.butter`` + ``filtfilt`` per bin (written as in the sarulab code). The
documented gpuaug deviations are reproduced: magnitude floor 1e-8 before the log, frames of
digital silence stay silent, output length = input length, clips with <= 9 frames pass
through MSS unchanged.
"""
from __future__ import annotations

import numpy as np
from scipy import signal

N_FFT, HOP, FLOOR = 2048, 512, 1e-8


def _window() -> np.ndarray:
    n = np.arange(N_FFT)
    return 0.5 - 0.5 * np.cos(2 * np.pi * n / N_FFT)  # periodic Hann


def stft_ref(x: np.ndarray) -> np.ndarray:
    """(frames, bins) complex STFT: zero centre padding, frames centred at m * HOP, m <= L // HOP."""
    x = np.asarray(x, dtype=np.float64)
    padded = np.concatenate([np.zeros(N_FFT // 2), x, np.zeros(N_FFT // 2)])
    n_frames = 1 + len(x) // HOP
    w = _window()
    return np.stack([np.fft.rfft(padded[m * HOP : m * HOP + N_FFT] * w) for m in range(n_frames)])


def istft_ref(spec: np.ndarray, length: int) -> np.ndarray:
    """Weighted overlap-add divided by the window envelope, cropped to ``length``."""
    w = _window()
    total = N_FFT + HOP * (len(spec) - 1)
    y, env = np.zeros(total), np.zeros(total)
    for m, frame in enumerate(spec):
        y[m * HOP : m * HOP + N_FFT] += np.fft.irfft(frame, n=N_FFT) * w
        env[m * HOP : m * HOP + N_FFT] += w**2
    y = np.where(env > 1e-8, y / np.where(env > 1e-8, env, 1.0), 0.0)
    return y[N_FFT // 2 : N_FFT // 2 + length]


def _resynth(log_mag: np.ndarray, spec: np.ndarray, length: int) -> np.ndarray:
    active = np.abs(spec).max(axis=1, keepdims=True) > 0
    return istft_ref(np.exp(log_mag) * active * np.exp(1j * np.angle(spec)), length)


def vtln_ref(x: np.ndarray, alpha: float) -> np.ndarray:
    """sarulab ``vtln(x, coef=alpha)`` with the gpuaug floor / silence / length rules."""
    spec = stft_ref(x)
    log_mag = np.log(np.maximum(np.abs(spec), FLOOR))
    freq = np.linspace(0, np.pi, log_mag.shape[1])
    warped_freq = freq + 2.0 * np.arctan(alpha * np.sin(freq) / (1 - alpha * np.cos(freq)))
    warped = np.stack([np.interp(freq, warped_freq, frame) for frame in log_mag])
    return _resynth(warped, spec, len(x))


def mss_ref(x: np.ndarray, alpha: float) -> np.ndarray:
    """sarulab ``modspec_smoothing(x, coef=alpha)`` with the gpuaug rules."""
    x = np.asarray(x, dtype=np.float64)
    spec = stft_ref(x)
    if len(spec) <= 9 or not np.any(x):
        return x.copy()
    log_mag = np.log(np.maximum(np.abs(spec), FLOOR))
    b, a = signal.butter(2, alpha)
    y = log_mag.copy()
    for d in range(y.shape[1]):
        y[:, d] = signal.filtfilt(b, a, y[:, d])
        y[:, d] = signal.filtfilt(b, a, y[::-1, d])[::-1]
    out = _resynth(y, spec, len(x))
    return out * np.sqrt(np.sum(x * x) / np.sum(out * out))
