"""float64 numpy/scipy references for gpuaug.functional.reverb, one clip at a time."""
from __future__ import annotations

import numpy as np
from scipy.signal import fftconvolve


def reverb_ref(x, rir, normalize="energy"):
    """Convolve one clip ``x`` (C, L) with ``rir`` (Cr, Lr), aligned to the direct path."""
    x = np.asarray(x, dtype=np.float64)
    rir = np.asarray(rir, dtype=np.float64)
    C, L = x.shape
    rir = np.broadcast_to(rir, (C, rir.shape[1]))
    d = int(np.argmax(np.max(np.abs(rir), axis=0)))
    y = np.stack([fftconvolve(x[c], rir[c])[d : d + L] for c in range(C)])
    if normalize == "energy" and np.sum(y**2) > 0:
        y = y * np.sqrt(np.sum(x**2) / np.sum(y**2))
    elif normalize == "peak" and np.max(np.abs(y), initial=0) > 0:
        y = y * np.max(np.abs(x)) / np.max(np.abs(y))
    return y


def drr_db(rir, direct=0):
    """Direct-to-reverberant ratio in dB: energy at ``direct`` vs everything after it."""
    rir = np.asarray(rir, dtype=np.float64)
    return 10 * np.log10(rir[direct] ** 2 / np.sum(rir[direct + 1 :] ** 2))


def rt60_schroeder(tail, sample_rate, lo_db=-5.0, hi_db=-25.0):
    """RT60 from Schroeder backward integration of ``tail``, line fit from lo_db to hi_db."""
    tail = np.asarray(tail, dtype=np.float64)
    edc = np.cumsum(tail[::-1] ** 2)[::-1]
    edc_db = 10 * np.log10(edc / edc[0])
    sel = (edc_db <= lo_db) & (edc_db >= hi_db)
    t = np.arange(len(tail))[sel] / sample_rate
    slope = np.polyfit(t, edc_db[sel], 1)[0]
    return -60.0 / slope
