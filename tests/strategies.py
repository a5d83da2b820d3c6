"""Shared hypothesis strategies for op edge cases."""
import numpy as np
from hypothesis import strategies as st


@st.composite
def edge_signal(draw, max_len: int = 64):
    """A float64 clip: silence, one sample, clipped full scale, or arbitrary values in [-1, 1]."""
    kind = draw(st.sampled_from(["silence", "one_sample", "full_scale", "noise"]))
    L = 1 if kind == "one_sample" else draw(st.integers(1, max_len))
    if kind == "silence":
        return np.zeros(L)
    if kind == "full_scale":
        return np.where(np.arange(L) % 3 == 0, 1.0, -1.0)
    return np.asarray(draw(st.lists(st.floats(-1, 1), min_size=L, max_size=L)))
