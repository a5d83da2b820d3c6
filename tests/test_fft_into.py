"""kernels/_fft_into: scipy's pocketfft written into kept buffers gives scipy.fft's values bit for bit."""
from __future__ import annotations

import importlib

import numpy as np
import pytest
import scipy.fft

FI = importlib.import_module("gpuaug.kernels._fft_into")


@pytest.mark.parametrize("through", ["pocketfft", "fallback"])
@pytest.mark.parametrize("real,cplx", [(np.float32, np.complex64), (np.float64, np.complex128)])
@pytest.mark.parametrize("n", [4096, 6400, 9375])  # even and odd sizes
def test_into_equals_scipy_fft(monkeypatch, through, real, cplx, n):
    if through == "fallback":
        monkeypatch.setattr(FI, "POCKETFFT", None)
    else:
        assert FI.POCKETFFT is not None  # the probe passed with this scipy
    x = np.random.default_rng(n).standard_normal((3, 2, n)).astype(real)
    x_before = x.copy()
    spec = np.full((3, 2, n // 2 + 1), np.nan, cplx)
    FI.rfft_into(x, spec, 1)
    assert np.array_equal(spec, scipy.fft.rfft(x, axis=-1)) and np.array_equal(x, x_before)
    spec_before = spec.copy()
    y = np.full_like(x, np.nan)
    FI.irfft_into(spec, y, 1)
    assert np.array_equal(y, scipy.fft.irfft(spec_before, n=n, axis=-1)) and np.array_equal(spec, spec_before)
    assert np.abs(y - x).max() < (1e-5 if real is np.float32 else 1e-12) * np.abs(x).max()


def test_probe_refuses_a_module_that_differs(monkeypatch):
    """A pocketfft whose r2c gives other values than scipy.fft's is not used."""
    pp = importlib.import_module("scipy.fft._pocketfft.pypocketfft")

    class Wrong:
        c2r = staticmethod(pp.c2r)

        @staticmethod
        def r2c(a, axes, forward, inorm, out, nthreads):
            pp.r2c(a, axes=axes, forward=forward, inorm=inorm, out=out, nthreads=nthreads)
            out *= 2

    assert FI._probe() is pp
    monkeypatch.setattr("scipy.fft._pocketfft.pypocketfft", Wrong)
    assert FI._probe() is None
