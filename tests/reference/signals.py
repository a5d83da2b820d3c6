"""Deterministic float64 test signals shared by tests and benchmarks."""
import numpy as np
import scipy.signal


def speech_like(n: int, seed: int, f0: float = 120.0, fs: int = 16000) -> np.ndarray:
    """Jittered glottal pulse train through three formant resonators, plus breath noise."""
    rng = np.random.default_rng(seed)
    exc = np.zeros(n)
    t = 0.0
    while t < n:
        exc[int(t)] = 1.0
        t += fs / (f0 * (1 + 0.03 * rng.standard_normal()))
    exc = scipy.signal.lfilter([1.0, -0.9], [1.0], exc) + 0.01 * rng.standard_normal(n)
    y = exc
    for f, r in ((600, 0.97), (1400, 0.95), (2600, 0.93)):
        th = 2 * np.pi * f / fs
        y = scipy.signal.lfilter([1.0], [1.0, -2 * r * np.cos(th), r * r], y)
    return 0.5 * y / np.abs(y).max()
