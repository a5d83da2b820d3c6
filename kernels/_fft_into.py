"""scipy.fft's real FFTs along the last axis, written into arrays the caller keeps.

``scipy.fft.rfft`` / ``irfft`` allocate their output on every call. The pocketfft module under
them, ``scipy.fft._pocketfft.pypocketfft``, takes an ``out=`` array: its ``r2c`` / ``c2r`` are
the functions ``scipy.fft`` calls, with the same arguments (``inorm`` 0 forward, 2 inverse for
the default ``norm="backward"``; ``nthreads`` for ``workers``), so the values are the same bit
for bit. The reverb kernel (:mod:`gpuaug.kernels.reverb_io`) keeps its spectrum and output
buffers across passes and batches this way: a pass touches its two kept buffers instead of one
kept input and two freshly allocated outputs (``benchmarks/results/kernel-timings.md``).

The module is private to scipy, so :data:`POCKETFFT` is probed once at import: small float32
and float64 transforms through it must equal ``scipy.fft``'s bit for bit. When it is missing,
has another signature or differs, :data:`POCKETFFT` is None and the functions call
``scipy.fft`` and copy its result into ``out`` (the same values, one allocation and copy more).
"""
from __future__ import annotations

import numpy as np
import scipy.fft

__all__ = ["POCKETFFT", "rfft_into", "irfft_into"]


def _probe():
    """scipy's pocketfft module if its ``r2c`` / ``c2r`` with ``out=`` give ``scipy.fft``'s values, else None."""
    try:
        from scipy.fft._pocketfft import pypocketfft as pp
    except ImportError:
        return None
    for real, cplx in ((np.float32, np.complex64), (np.float64, np.complex128)):
        x = np.sin(np.arange(2 * 3 * 10, dtype=real) * real(0.7)).reshape(2, 3, 10)
        spec, y = np.empty((2, 3, 6), cplx), np.empty_like(x)
        try:
            pp.r2c(x, axes=[2], forward=True, inorm=0, out=spec, nthreads=1)
            pp.c2r(spec, axes=[2], lastsize=10, forward=False, inorm=2, out=y, nthreads=1)
        except (TypeError, ValueError, RuntimeError, AttributeError):
            return None
        if not (np.array_equal(spec, scipy.fft.rfft(x)) and np.array_equal(y, scipy.fft.irfft(spec, n=10))):
            return None
    return pp


#: ``scipy.fft._pocketfft.pypocketfft`` when it passed the import-time probe, else None.
POCKETFFT = _probe()


def rfft_into(x: np.ndarray, out: np.ndarray, workers: int) -> None:
    """``out[...] = scipy.fft.rfft(x, axis=-1, workers=workers)``.

    Args:
        x: ``(..., n)`` C-contiguous float32 / float64 array.
        out: ``(..., n // 2 + 1)`` C-contiguous complex64 / complex128 array of ``x``'s
            precision, not overlapping ``x``.
        workers: threads of the transform.
    """
    if POCKETFFT is None:
        out[...] = scipy.fft.rfft(x, axis=-1, workers=workers)
    else:
        POCKETFFT.r2c(x, axes=[x.ndim - 1], forward=True, inorm=0, out=out, nthreads=workers)


def irfft_into(spec: np.ndarray, out: np.ndarray, workers: int) -> None:
    """``out[...] = scipy.fft.irfft(spec, n=out.shape[-1], axis=-1, workers=workers)``.

    Args:
        spec: ``(..., n // 2 + 1)`` C-contiguous complex64 / complex128 array (left unchanged).
        out: ``(..., n)`` C-contiguous float array of ``spec``'s precision, not overlapping it.
        workers: threads of the transform.
    """
    n = out.shape[-1]
    if POCKETFFT is None:
        out[...] = scipy.fft.irfft(spec, n=n, axis=-1, workers=workers)
    else:
        POCKETFFT.c2r(spec, axes=[spec.ndim - 1], lastsize=n, forward=False, inorm=2, out=out, nthreads=workers)
