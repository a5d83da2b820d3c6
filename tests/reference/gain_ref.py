"""float64 one-clip reference of gpuaug.functional.gain."""
import numpy as np


def gain_ref(x: np.ndarray, gain_db: float) -> np.ndarray:
    """``x`` (..., L) scaled by the amplitude ratio ``10 ** (gain_db / 20)``."""
    return np.asarray(x, dtype=np.float64) * 10.0 ** (gain_db / 20.0)
