"""Float64 numpy reference of ``librosa.lpc`` (Burg's method, librosa 0.10 ``__lpc``).

A literal, one-frame, slow transcription of librosa's recursion (Marple 1980, section III),
including its ``den + tiny`` bias, so that an all-zero frame gives ``[1, 0, ..., 0]``.
"""
from __future__ import annotations

import numpy as np


def burg_lpc_ref(y, order: int) -> np.ndarray:
    """LPC coefficients ``a`` (``a[0] = 1``) of the 1-D frame ``y`` by Burg's method."""
    y = np.asarray(y, dtype=np.float64)
    epsilon = np.finfo(np.float64).tiny
    ar_coeffs = np.zeros(order + 1)
    ar_coeffs[0] = 1.0
    ar_coeffs_prev = ar_coeffs.copy()

    fwd_pred_error = y[1:]
    bwd_pred_error = y[:-1]
    den = np.sum(fwd_pred_error**2 + bwd_pred_error**2)

    for i in range(order):
        reflect_coeff = np.sum(bwd_pred_error * fwd_pred_error)
        reflect_coeff *= -2
        reflect_coeff /= den + epsilon

        ar_coeffs_prev, ar_coeffs = ar_coeffs, ar_coeffs_prev
        for j in range(1, i + 2):
            ar_coeffs[j] = ar_coeffs_prev[j] + reflect_coeff * ar_coeffs_prev[i - j + 1]

        fwd_pred_error_tmp = fwd_pred_error
        fwd_pred_error = fwd_pred_error + reflect_coeff * bwd_pred_error
        bwd_pred_error = bwd_pred_error + reflect_coeff * fwd_pred_error_tmp

        q = 1.0 - reflect_coeff**2
        den = q * den - bwd_pred_error[-1] ** 2 - fwd_pred_error[0] ** 2

        fwd_pred_error = fwd_pred_error[1:]
        bwd_pred_error = bwd_pred_error[:-1]

    return ar_coeffs.copy()
