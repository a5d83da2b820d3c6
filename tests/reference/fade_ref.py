"""float64 one-clip reference of gpuaug.functional.fade."""
import numpy as np


def fade_gain_ref(L: int, sample_rate: float, rate: float, direction: int, shape: str) -> np.ndarray:
    """The ``(L,)`` amplitude gain curve, sample by sample."""
    g = np.ones(L)
    if direction == 0:
        return g
    for n in range(L):
        m = n if direction < 0 else L - 1 - n  # samples since the full-gain end
        s = m / sample_rate
        if shape == "linear":
            g[n] = min(1.0, max(0.0, 1.0 - rate * s))
        else:
            g[n] = (1.0 - rate) ** s
    return g


def fade_ref(x: np.ndarray, sample_rate: float, rate: float, direction: int, shape: str) -> np.ndarray:
    """``x`` (..., L) times the fade curve."""
    x = np.asarray(x, dtype=np.float64)
    return x * fade_gain_ref(x.shape[-1], sample_rate, rate, direction, shape)
