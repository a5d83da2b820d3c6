"""float64 numpy references for gpuaug.functional.noise, one clip at a time (slow and obvious)."""
from __future__ import annotations

import numpy as np


def mix_noise_ref(x, noise, snr_db, noise_offset=0, span_start=0, span_length=None, fade_out=0):
    """Mix ``noise`` (Cn, Ln) into one clip ``x`` (C, L) at ``snr_db``; returns (C, L) float64.

    SNR: signal power over the whole clip, noise power over the active span.
    """
    x = np.asarray(x, dtype=np.float64)
    noise = np.asarray(noise, dtype=np.float64)
    C, L = x.shape
    Ln = noise.shape[1]
    end = L if span_length is None else min(span_start + span_length, L)
    begin = max(span_start, 0)
    added = np.zeros((C, L))
    active = []
    for t in range(begin, end):
        k = (noise_offset + t - span_start) % Ln
        env = 1.0
        if fade_out > 0 and t >= end - fade_out:
            env = (end - 1 - t) / fade_out
        added[:, t] = env * noise[:, k]  # mono noise broadcasts over channels
        active.append(t)
    p_signal = np.mean(x**2) if L else 0.0
    p_noise = np.mean(added[:, active] ** 2) if active else 0.0
    if p_signal == 0 or p_noise == 0:
        return x.copy()
    gain = np.sqrt(p_signal / (p_noise * 10 ** (snr_db / 10)))
    return x + gain * added


def white_noise_ref(x, noise, *, sigma=None, snr_db=None):
    """Add the given unit white ``noise`` (C, L) to ``x`` (C, L) at ``sigma`` or ``snr_db``."""
    x = np.asarray(x, dtype=np.float64)
    noise = np.asarray(noise, dtype=np.float64)
    if sigma is not None:
        return x + sigma * noise
    p_signal, p_noise = np.mean(x**2), np.mean(noise**2)
    if p_signal == 0:
        return x.copy()
    return x + np.sqrt(p_signal / (p_noise * 10 ** (snr_db / 10))) * noise


def snr_db(clean, noisy, begin=0, end=None):
    """Measured SNR: clean power over the clip vs added power over ``[begin, end)``."""
    clean = np.asarray(clean, dtype=np.float64)
    added = np.asarray(noisy, dtype=np.float64) - clean
    return 10 * np.log10(np.mean(clean**2) / np.mean(added[..., begin:end] ** 2))
