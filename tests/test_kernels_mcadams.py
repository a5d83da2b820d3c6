"""Fused McAdams frame kernel (gpuaug.kernels.mcadams_frames) vs the torch reference.

``mcadams(..., backend="numba")`` (CPU ``@njit``) against ``backend="torch"``; the Aberth
roots and warped polynomials against companion-matrix eigenvalues (the torch path); the
``@cuda.jit`` kernels under the CUDA simulator (tiny inputs, launched directly with numpy
arrays); determinism, dispatch, and (when NVVM is installed) PTX compilation of the CUDA
code without a GPU.

Agreement is measured relative to the clip RMS on signals with a noise floor (speech-like,
real speech, noise): noiseless tones / DC make the transform itself ill-posed (a cluster of
near-zero LPC roots whose warp depends on rounding: the torch path changes by O(RMS) when
such an input is scaled by 1 + 1e-12), so no two root finders agree there; those inputs are
only checked for the op contract.
"""
from __future__ import annotations

import importlib
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numba
import numpy as np
import pytest
import scipy.signal
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import gpuaug.kernels.mcadams_frames as km
from gpuaug import backend as gb
from gpuaug.functional.lpc import burg_lpc
from gpuaug.functional.mcadams import mcadams
from harness import check_op, mixed_batch
from reference.signals import speech_like

mcadams_module = importlib.import_module("gpuaug.functional.mcadams")  # the module, not the op

FS = 16000
HOP = 160
WINLEN = 320
ORDER = 20
EPS32 = float(np.finfo(np.float32).eps)




def speech_batch(lengths, T=None, C=None, dtype=torch.float64, seed=0) -> tuple[torch.Tensor, torch.Tensor]:
    T = T or max(lengths)
    shape = (len(lengths), T) if C is None else (len(lengths), C, T)
    wave = torch.zeros(shape, dtype=torch.float64)
    for b, L in enumerate(lengths):
        for c in range(C or 1):
            x = torch.from_numpy(speech_like(L, seed + 10 * b + c))
            if C is None:
                wave[b, :L] = x
            else:
                wave[b, c, :L] = x
    return wave.to(dtype), torch.tensor(lengths)


def err_over_rms(got: torch.Tensor, want: torch.Tensor, lengths: torch.Tensor) -> list[float]:
    """Max |got - want| over each signal's valid samples, relative to that signal's RMS."""
    out = []
    for b, L in enumerate(lengths.tolist()):
        g = got[b, ..., :L].double().reshape(-1, L)
        w = want[b, ..., :L].double().reshape(-1, L)
        for gc, wc in zip(g, w):
            rms = float(wc.pow(2).mean().sqrt())
            out.append(float((gc - wc).abs().max()) / rms if rms > 0 else float((gc - wc).abs().max()))
    return out


# ---------------------------------------------------------------- CPU (njit) vs torch


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("C", [None, 2])
@pytest.mark.parametrize("level", ["none", "preserve"])
def test_numba_matches_torch(dtype, C, level):
    wave, lengths = speech_batch([3200, 2500, 1000, 200], C=C, dtype=dtype, seed=1)
    alpha = torch.tensor([0.8, 1.2, 0.5, 0.9], dtype=torch.float64)
    ref, _ = mcadams(wave, lengths, alpha=alpha, level=level, backend="torch")
    out, out_len = mcadams(wave, lengths, alpha=alpha, level=level, backend="numba")
    assert torch.equal(out_len, lengths) and out.dtype == dtype and out.shape == wave.shape
    assert max(err_over_rms(out, ref, lengths)) < (1e-5 if dtype == torch.float32 else 1e-8)
    assert torch.equal(out[3], wave[3])  # shorter than a frame: pass-through on both paths


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("channels", [None, 2])
def test_check_op_numba(dtype, channels):
    wave, lengths = mixed_batch(B=4, T=2400, C=channels, seed=3, dtype=dtype)
    lengths[0] = 250  # shorter than one frame
    wave[0, ..., 250:] = 0
    wave[1] = 0  # all-silent clip
    alpha = torch.tensor([0.8, 0.9, 1.1, 0.7])
    out, _ = check_op(mcadams, wave, lengths, alpha=alpha, backend="numba")
    assert torch.equal(out[0], wave[0]) and torch.equal(out[1], wave[1])
    ref, _ = mcadams(wave, lengths, alpha=alpha, backend="torch")
    assert max(err_over_rms(out, ref, lengths)[2:]) < 1e-5


def test_deterministic_and_thread_count_independent():
    wave, lengths = speech_batch([4000, 3000, 3500], seed=4)
    runs = [mcadams(wave, lengths, alpha=0.7, level="none", backend="numba")[0] for _ in range(2)]
    before = torch.get_num_threads()  # the kernels follow torch's thread count (gpuaug.backend)
    try:
        torch.set_num_threads(1)
        runs.append(mcadams(wave, lengths, alpha=0.7, level="none", backend="numba")[0])
    finally:
        torch.set_num_threads(before)
    assert torch.equal(runs[0], runs[1]) and torch.equal(runs[0], runs[2])  # bit-reproducible


def test_formant_moves_as_torch():
    """An AR(2) resonance at 500 Hz moves to ~692 Hz at alpha 0.8 on both paths."""
    rng = np.random.default_rng(5)
    th = 2 * np.pi * 500 / FS
    x = scipy.signal.lfilter([1.0], [1.0, -2 * 0.98 * np.cos(th), 0.98**2], rng.standard_normal(8000))
    wave = torch.from_numpy(x)[None]
    y, _ = mcadams(wave, torch.tensor([8000]), alpha=0.8, backend="numba")
    a = burg_lpc(y[0, WINLEN:-WINLEN], ORDER).numpy()
    w, h = scipy.signal.freqz([1.0], a, worN=8192, fs=FS)
    peak = w[np.argmax(np.abs(h))]
    assert abs(peak - th**0.8 * FS / (2 * np.pi)) < 20, peak


# ---------------------------------------------------------------- roots and warped polynomial


def _poly_from_roots(roots) -> np.ndarray:
    return np.real(np.poly(np.asarray(roots)))


def _pairs(radii, angles):
    out = []
    for r, a in zip(radii, angles):
        out += [r * np.exp(1j * a), r * np.exp(-1j * a)]
    return out


def _test_polynomials() -> dict[str, np.ndarray]:
    frames = torch.from_numpy(np.stack([speech_like(WINLEN, s) for s in range(3)]) + EPS32)
    hann = torch.hann_window(WINLEN, periodic=False, dtype=torch.float64)
    a_speech = burg_lpc(frames * torch.sqrt(hann / (hann.sum() / HOP)), ORDER).numpy()
    polys = {f"speech{s}": a_speech[s] for s in range(3)}
    radii = [0.99999, 0.9999, 0.9995, 0.999, 0.99, 0.98, 0.95, 0.9, 0.8, 0.7]
    polys["near_unit"] = _poly_from_roots(_pairs(radii, np.linspace(0.2, 2.9, 10)))
    polys["close_formants"] = _poly_from_roots(
        _pairs([0.9995, 0.9995, 0.999, 0.999, 0.99, 0.98, 0.97, 0.9, 0.85],
               [0.30, 0.305, 1.0, 1.004, 1.6, 2.0, 2.4, 2.8, 3.1]) + [0.9995, -0.999])
    polys["near_pi_and_real"] = _poly_from_roots(
        _pairs([0.999, 0.995, 0.9, 0.8, 0.95, 0.6, 0.7], [3.1, 3.0, 0.4, 0.9, 1.5, 2.2, 2.6])
        + [0.99, 0.5, -0.3, -0.95, 0.1, -0.7])
    polys["close_real"] = _poly_from_roots(
        _pairs([0.999, 0.99, 0.97, 0.9, 0.8, 0.7, 0.6, 0.5], np.linspace(0.3, 2.8, 8))
        + [0.9995, 0.999, -0.9995, -0.999])
    polys["zero_roots"] = _poly_from_roots(_pairs([0.99, 0.95, 0.9, 0.8], [0.3, 0.8, 1.5, 2.5]) + [0.0] * 12)
    return polys


@pytest.mark.parametrize("name, a", list(_test_polynomials().items()))
def test_aberth_roots_and_warped_polynomial_match_eigenvalues(name, a):
    # the plain-Python versions of the jitted helpers (register_jitable keeps them callable)
    zr, zi, work = np.empty(ORDER), np.empty(ORDER), np.empty(8 * ORDER)
    km._roots(a, ORDER, zr, zi, work)
    roots = zr + 1j * zi
    eig = mcadams_module._roots(torch.from_numpy(a)[None])[0].numpy()
    # every eigenvalue has an Aberth root next to it (and vice versa: same count, matched)
    dist = np.abs(eig[:, None] - roots[None, :])
    assert np.max(np.min(dist, axis=1)) < 1e-9 and np.max(np.min(dist, axis=0)) < 1e-9, name
    # the polynomial rebuilt from the roots is the input (backward error at rounding level)
    assert np.max(np.abs(_poly_from_roots(roots) - a)) < 1e-11 * np.abs(a).sum(), name
    for alpha in (0.5, 0.8, 1.2):
        cr, ci = np.empty(ORDER + 1), np.empty(ORDER + 1)
        km._warp_poly(ORDER, alpha, zr, zi, cr, ci)
        alpha_t = torch.tensor([alpha], dtype=torch.float64)
        want = mcadams_module._poly(mcadams_module._warp_poles(torch.from_numpy(eig)[None], alpha_t))[0]
        assert np.max(np.abs(cr - want.numpy())) < 1e-10 * np.abs(want.numpy()).sum(), (name, alpha)


# ---------------------------------------------------------------- CUDA kernels (simulator)


def _kernel_inputs(wave: torch.Tensor, lengths: torch.Tensor):
    """The op's shared preprocessing (mono): eps on the valid samples, frames, zero-padded span."""
    T = wave.shape[1]
    mask = torch.arange(T) < lengths[:, None]
    n_frames = torch.where(lengths >= WINLEN, (lengths + HOP - 1) // HOP, torch.zeros_like(lengths))
    span = (int(n_frames.max()) - 1) * HOP + WINLEN
    xe = torch.nn.functional.pad(wave.double() * mask + EPS32 * mask, (0, max(0, span - T)))[:, :span]
    return xe.contiguous(), n_frames, mcadams_module._window(WINLEN, HOP, "cpu"), min(span, T)


def test_cuda_kernels_on_simulator_match_torch():
    if not numba.config.ENABLE_CUDASIM and not torch.cuda.is_available():
        pytest.skip("needs the CUDA simulator (NUMBA_ENABLE_CUDASIM=1) or a GPU")
    wave, lengths = speech_batch([600, 500, 300], seed=6)  # 4 + 4 + 0 frames
    alpha = torch.tensor([0.8, 1.2, 0.9], dtype=torch.float64)
    xe, n_frames, win, out_len = _kernel_inputs(wave, lengths)
    S, N = xe.shape[0], int(n_frames.sum())
    offsets = torch.cumsum(n_frames, 0) - n_frames
    frame_sig = torch.repeat_interleave(torch.arange(S), n_frames)
    frame_m = torch.arange(N) - offsets[frame_sig]
    host = [t.numpy() for t in (xe, frame_sig, frame_m, offsets, n_frames, alpha, win)]
    scratch = np.empty((km.scratch_len(WINLEN, ORDER), 3))  # 3 frames per launch: chunking
    frames_t = np.empty((WINLEN, N))
    out = np.full((S, out_len), np.nan)
    if torch.cuda.is_available():  # real GPU: device copies, torch's stream
        from numba import cuda

        dev = [cuda.to_device(a) for a in (*host, scratch, frames_t, out)]
        km.launch_cuda(*dev[:7], HOP, ORDER, *dev[7:])
        out = dev[-1].copy_to_host()
    else:
        km.launch_cuda(*host, HOP, ORDER, scratch, frames_t, out)
    ref, _ = mcadams(wave, lengths, alpha=alpha, level="none", backend="torch")
    got = torch.from_numpy(out[:, : wave.shape[1]]) * (torch.arange(wave.shape[1]) < lengths[:, None])
    assert max(err_over_rms(got[:2], ref[:2], lengths[:2])) < 1e-9
    assert not got[2].any()  # no frames: zero output (the op then passes the clip through)
    cpu = km.mcadams_ola(xe, n_frames, alpha, win, hop=HOP, order=ORDER, out_len=out_len).numpy()
    # simulator: the same code and sums as the CPU njit. Real GPU: libdevice atan2/hypot/pow/sin/cos
    # (<= 2 ulp) and FMA contraction change the Aberth iterates' rounding and the all-pole filter
    # amplifies it; both are within 1e-9 RMS of torch (the GPU above, the njit under the simulator).
    atol = (1e-12 if numba.config.ENABLE_CUDASIM else 2e-9) * np.abs(cpu).max()
    np.testing.assert_allclose(out, cpu, rtol=0, atol=atol)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_cuda_tensors_match_torch(dtype):
    """On a GPU: the op with CUDA tensors runs the @cuda.jit kernels on torch's stream."""
    wave, lengths = speech_batch([16000, 9000, 4000, 200], C=2, dtype=dtype, seed=8)
    wave, lengths = wave.cuda(), lengths.cuda()
    alpha = torch.tensor([0.8, 1.2, 0.5, 0.9], dtype=torch.float64, device="cuda")
    assert gb.resolve("mcadams", wave.device) == "numba"
    ref, _ = mcadams(wave, lengths, alpha=alpha, level="none", backend="torch")
    out, out_len = mcadams(wave, lengths, alpha=alpha, level="none", backend="numba")
    assert out.device == wave.device and out.dtype == dtype and torch.equal(out_len, lengths)
    assert torch.equal(out[3], wave[3])  # shorter than a frame: pass-through
    assert max(err_over_rms(out.cpu(), ref.cpu(), lengths.cpu())) < (1e-5 if dtype == torch.float32 else 1e-8)
    again, _ = mcadams(wave, lengths, alpha=alpha, level="none", backend="numba")
    assert torch.equal(again, out)  # deterministic: no atomics


def test_cuda_code_compiles_to_ptx():
    """Without a GPU, NVVM still compiles the two CUDA kernels (frames, overlap-add) to PTX.

    Numba compiles device functions for the current device's compute capability; with no
    device, the subprocess substitutes a fake one (cc 8.0).
    """
    script = textwrap.dedent("""
        import sys
        import numba.cuda.dispatcher as dispatcher
        from numba import cuda, float64, int64
        from numba.cuda.cudadrv import nvvm
        try:
            nvvm.NVVM()
        except Exception as e:
            print("SKIP: CUDA NVVM not installed:", e); sys.exit(0)
        if not hasattr(dispatcher, "get_current_device"):
            print("SKIP: this Numba version resolves the device elsewhere"); sys.exit(0)

        class FakeDevice:
            compute_capability = (8, 0)

        dispatcher.get_current_device = FakeDevice
        import gpuaug.kernels.mcadams_frames as km
        C2, I1, F1 = float64[:, ::1], int64[::1], float64[::1]
        ptx, _ = cuda.compile_ptx(km._frames_cuda.py_func, (C2, I1, I1, F1, F1, int64, int64, int64, C2, C2), cc=(8, 0))
        assert ".entry" in ptx
        ptx, _ = cuda.compile_ptx(km._ola_cuda.py_func, (C2, I1, I1, int64, C2), cc=(8, 0))
        assert ".entry" in ptx
        print("PTX_OK")
    """)
    env = {**os.environ, "NUMBA_ENABLE_CUDASIM": "0"}
    res = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120,
                         cwd=Path(__file__).resolve().parents[1])
    if res.stdout.startswith("SKIP"):
        pytest.skip(res.stdout.strip())
    assert res.returncode == 0 and "PTX_OK" in res.stdout, res.stderr[-3000:]


# ---------------------------------------------------------------- dispatch


def test_dispatch_and_env_override(monkeypatch):
    assert gb.kernels_for("mcadams") == {("numba", "cpu"): 0, ("numba", "cuda"): 0}
    monkeypatch.delenv("GPUAUG_BACKEND", raising=False)
    monkeypatch.delenv("GPUAUG_BACKEND_MCADAMS", raising=False)
    assert gb.resolve("mcadams", "cpu") == "numba"
    wave, lengths = speech_batch([1200, 900], seed=7)
    torch_out, _ = mcadams(wave, lengths, alpha=0.8, backend="torch")
    monkeypatch.setenv("GPUAUG_BACKEND_MCADAMS", "torch")
    assert torch.equal(mcadams(wave, lengths, alpha=0.8)[0], torch_out)
    with pytest.raises(ValueError, match="backend must be"):
        mcadams(wave, lengths, alpha=0.8, backend="opencl")
    with pytest.raises(ValueError, match="no 'cupy' kernel"):
        mcadams(wave, lengths, alpha=0.8, backend="cupy")


# ---------------------------------------------------------------- edge cases


@settings(max_examples=20, deadline=None)
@given(
    length=st.integers(min_value=0, max_value=900),
    pad=st.integers(min_value=0, max_value=40),
    kind=st.sampled_from(["silence", "noise", "clipped", "impulse", "speech_then_silence", "dc", "tone"]),
    alpha=st.floats(min_value=0.5, max_value=1.3),
    level=st.sampled_from(["preserve", "peak", "none"]),
    seed=st.integers(min_value=0, max_value=2**16),
)
def test_hypothesis_edge_cases(length, pad, kind, alpha, level, seed):
    rng = np.random.default_rng(seed)
    t = np.arange(length)
    half = length // 2
    make = {
        "silence": lambda: np.zeros(length),
        "noise": lambda: 0.3 * rng.standard_normal(length),
        "clipped": lambda: np.clip(3 * np.sin(2 * np.pi * 200 / FS * t) + 1e-3 * rng.standard_normal(length), -1, 1),
        "impulse": lambda: np.where(t == seed % max(length, 1), 1.0, 0.0) + 1e-4 * rng.standard_normal(length),
        "speech_then_silence": lambda: np.concatenate([speech_like(half, seed) if half else [],
                                                       np.zeros(length - half)]),
        "dc": lambda: np.full(length, 0.5),
        "tone": lambda: np.sin(2 * np.pi * 440 / FS * t),
    }
    x = make[kind]()
    wave = torch.from_numpy(np.concatenate([x, np.zeros(pad)])).float()[None]
    lengths = torch.tensor([length])
    out, out_len = mcadams(wave, lengths, alpha=alpha, level=level, backend="numba")
    assert out.shape == wave.shape and out.dtype == torch.float32 and int(out_len[0]) == length
    assert bool(torch.isfinite(out).all()) and bool((out[0, length:] == 0).all())
    if kind == "silence" or length < WINLEN:
        assert torch.equal(out, wave)
    elif kind not in ("dc", "tone"):  # ill-posed inputs: contract only (see the module docstring)
        ref, _ = mcadams(wave, lengths, alpha=alpha, level=level, backend="torch")
        assert max(err_over_rms(out, ref, lengths)) < 1e-4


# ---------------------------------------------------------------- real data


@pytest.mark.real_data
def test_real_speech_matches_torch(emodb_speech):
    clips = [c[4000 : 4000 + 16000 - 3000 * i] for i, c in enumerate(emodb_speech)]
    T = max(len(c) for c in clips)
    wave = torch.zeros(len(clips), T)
    for b, c in enumerate(clips):
        wave[b, : len(c)] = c
    lengths = torch.tensor([len(c) for c in clips])
    alpha = torch.tensor([0.5, 0.8, 0.9, 1.2], dtype=torch.float64)
    for level in ("none", "preserve"):
        ref, _ = mcadams(wave, lengths, alpha=alpha, level=level, backend="torch")
        out, _ = mcadams(wave, lengths, alpha=alpha, level=level, backend="numba")
        errs = err_over_rms(out, ref, lengths)
        assert max(errs) < 1e-4, errs
