"""Float64 numpy/scipy one-clip reference of the McAdams transformation (VPC 2020 B2).

A literal transcription of the VoicePrivacy Challenge ``anonym()`` recipe as written in
``shared/reference_algorithms.md``: ``x + eps``; 20 ms / 10 ms frames with
``sqrt(hann_sym / K)``; Burg LPC (``burg_lpc_ref``); poles by ``np.roots``; the first pole
of each adjacent conjugate pair (positive angle, LAPACK order) gets ``angle ** alpha``,
clipped to ``[0, pi]``, its neighbour the negated angle; ``a_new = real(np.poly(poles))``;
``lfilter`` residual and synthesis; overlap-add. Only complete frames are processed (the
tail after the last complete frame stays 0). No level normalisation (``peak=True`` gives
the reference's ``y / max|y|``).
"""
from __future__ import annotations

import numpy as np
import scipy.signal

from .lpc_ref import burg_lpc_ref


def mcadams_ref(x, alpha: float, fs: int = 16000, order: int = 20, *, skip_first: bool = False,
                peak: bool = False):
    """McAdams-transform the 1-D clip ``x``.

    Returns ``(y, covered)``: the output (same length) and the number of leading samples
    the processed frames fully determine (``n_frames * hop``; later samples would also get
    a contribution from a frame that starts there).
    """
    eps = np.finfo(np.float32).eps
    x = np.asarray(x, dtype=np.float64) + eps
    winlen = int(np.floor(0.02 * fs))
    hop = int(np.floor(0.01 * fs))
    hann = np.hanning(winlen)
    K = np.sum(hann) / hop
    win = np.sqrt(hann / K)
    n_frames = 1 + (len(x) - winlen) // hop
    y = np.zeros(len(x))
    for m in range(1 if skip_first else 0, n_frames):
        frame = x[m * hop : m * hop + winlen] * win
        a = burg_lpc_ref(frame, order)
        poles = np.roots(a)
        ind_imag = np.where(np.isreal(poles) == False)[0]  # noqa: E712 (as the recipe)
        ind_imag_con = ind_imag[np.arange(0, np.size(ind_imag), 2)]
        angles = np.angle(poles[ind_imag_con])
        assert np.all(angles > 0), "np.roots did not return the positive-angle pole first"
        new_angles = angles**alpha
        new_angles[new_angles >= np.pi] = np.pi
        new_angles[new_angles <= 0] = 0
        new_poles = poles.copy()
        for k in range(np.size(ind_imag_con)):
            i = ind_imag_con[k]
            new_poles[i] = np.abs(poles[i]) * np.exp(1j * new_angles[k])
            new_poles[i + 1] = np.abs(poles[i + 1]) * np.exp(-1j * new_angles[k])
        a_new = np.real(np.poly(new_poles))
        res = scipy.signal.lfilter(a, np.array([1.0]), frame)
        rec = scipy.signal.lfilter(np.array([1.0]), a_new, res) * win
        y[m * hop : m * hop + winlen] += rec
    if peak:
        y = y / np.max(np.abs(y))
    return y, max(n_frames, 0) * hop
