"""Fused McAdams frame kernel: one pass per frame, all frames of all clips in parallel.

The per-frame math of :func:`gpuaug.functional.mcadams.mcadams` (the torch reference) is
written once as plain Python functions (``register_jitable`` helpers called by
:func:`_frame`) and compiled twice: ``numba.njit`` (CPU, frames in parallel with
``prange``) and ``numba.cuda.jit(device=True)`` (one CUDA thread per frame). For one frame
``f = x[start : start + W] * w`` (``W = winlen``, float64 throughout):

1. Burg LPC of order ``p`` (``a[0] = 1``), step for step as
   :func:`gpuaug.functional.lpc.burg_lpc` (same ``den > 0`` guard, ``tiny`` bias and clamp of
   the reflection coefficient to [-1, 1]); dot products in 4 interleaved partial sums.
2. Roots of ``a`` by the Aberth-Ehrlich iteration in complex arithmetic, all roots updated
   together (Jacobi), so each step is a loop over the roots that vectorises on CPU. Exact
   zero trailing coefficients are deflated as roots at 0; the other ``d`` roots start on a
   circle of radius ``|a_d| ** (1 / d)`` (the geometric mean of the root magnitudes; every
   Burg root lies in the closed unit disk: ~8 sweeps on speech, against ~18 from the
   Fujiwara bound) at angles ``2 pi k / d + 0.4`` (not conjugate-symmetric, so real and
   complex roots both separate). A root stops moving once its backward error is at rounding
   level, ``|A(z)| <= 4 d eps sum_k |a_k| |z|^(d - k)``; at most :data:`MAX_ITER` sweeps.
   Where the roots are well conditioned (speech, poles up to ``|p| = 0.99999``, close
   formants, close real roots) they equal the companion-matrix eigenvalues of the torch
   path to ~1e-11 and the warped polynomials agree to ~1e-12 relative (see the tests).
   Where they are not (a cluster of near-zero roots, from noiseless tones, DC or digital
   silence) any two solvers differ, the torch path included: it changes by O(RMS) when
   such an input is scaled by ``1 + 1e-12``; on digital silence the output is at ``eps``
   level either way.
3. Angle warp exactly as the torch reference: a root with ``|Im| > 1e-10`` becomes
   ``|z| e^{i sign(theta) min(|theta| ** alpha, pi)}``; real roots are kept.
4. ``a_new = real(prod_k (z - z_k))`` in complex128, as ``numpy.poly``.
5. Residual ``e = lfilter(a, [1], f)`` (tap by tap, as the torch path) and synthesis
   ``y = lfilter([1], a_new, e)`` (in place), both with zero state; the output is ``y * w``.

The frames' outputs go to a frame buffer; a second parallel pass overlap-adds them (each
output sample sums its frames in increasing order on CPU and CUDA alike), so results are
deterministic (no atomics), independent of the thread count and bit-reproducible.

CPU: ``@njit(parallel=True, cache=True)`` through :func:`gpuaug.kernels._numba_glue.jit_cpu`,
one compiled signature (the op hands over float64 whatever the wave dtype). The on-disk
cache (``__pycache__`` next to this file, or ``~/.cache/gpuaug/numba`` when the package
folder is read-only; see :mod:`gpuaug.kernels._numba_glue`) turns the first call's compile
(``benchmarks/results/kernel-timings.md``) into a load in later processes (DataLoader workers included); an edit of any
kernel module recompiles. CUDA: one thread per frame on torch's current stream,
in launches of at most :data:`CUDA_CHUNK` frames, with the scratch laid out
``(row, frame)`` so that a warp's accesses coalesce; the same kernels run under the CUDA
simulator on host arrays (see the tests). Both launch through
:func:`gpuaug.kernels._launch.run_numba`.

Registered (:func:`gpuaug.backend.register_kernel`): :func:`mcadams_ola` as op ``mcadams``,
``("numba", "cpu", 0)`` and ``("numba", "cuda", 0)``.
"""
from __future__ import annotations

import math

import numpy as np
import torch
from numba import cuda, prange
from numba.extending import register_jitable
from torch import Tensor

from gpuaug._sync import host_of
from gpuaug.backend import MCADAMS, register_kernel

from ._launch import run_numba
from ._numba_glue import cuda_entry, grid_1d, jit_cpu, jit_cuda

__all__ = ["CUDA_CHUNK", "MAX_ITER", "scratch_len", "mcadams_ola", "launch_cuda"]

#: Frames per CUDA launch: bounds the scratch memory (7.2 kB per frame at 16 kHz, 237 MB).
CUDA_CHUNK = 1 << 15
#: Threads per block of the frame kernel (one frame per thread) and of the overlap-add.
FRAME_THREADS = 64
OLA_THREADS = 256
#: Aberth sweeps at most (well-conditioned frames converge in ~6-12).
MAX_ITER = 80
_IMAG_TOL = 1e-10  # as gpuaug.functional.mcadams: poles with |Im| <= this are real
_TINY = float(np.finfo(np.float64).tiny)
_EPS = float(np.finfo(np.float64).eps)
_START_ANGLE = 0.4


@register_jitable
def scratch_len(winlen: int, order: int) -> int:
    """Float64 scratch entries one frame needs: 2 frame rows, 3 polynomials, 10 root rows."""
    return 2 * winlen + 3 * (order + 1) + 10 * order


@register_jitable
def _dot(u, v, n):
    """``sum_j u[j] v[j]``, ``j < n``, in 4 interleaved partial sums (short dependency chains)."""
    s0 = 0.0
    s1 = 0.0
    s2 = 0.0
    s3 = 0.0
    n4 = n - n % 4
    for j in range(0, n4, 4):
        s0 += u[j] * v[j]
        s1 += u[j + 1] * v[j + 1]
        s2 += u[j + 2] * v[j + 2]
        s3 += u[j + 3] * v[j + 3]
    for j in range(n4, n):
        s0 += u[j] * v[j]
    return (s0 + s1) + (s2 + s3)


@register_jitable
def _burg(x, start, win, order, fw, bw, a):
    """Burg LPC of the frame ``x[start:start + W] * win`` into ``a`` (``order + 1``).

    ``fw``, ``bw``: ``W``-long scratch rows (forward / backward prediction errors). Loops
    run over views indexed from 0, which lets LLVM vectorise them on CPU.
    """
    W = win.shape[0]
    for j in range(W - 1):
        fw[j] = x[start + j + 1] * win[j + 1]
        bw[j] = x[start + j] * win[j]
    den = _dot(fw, fw, W - 1) + _dot(bw, bw, W - 1)
    num = _dot(bw, fw, W - 1)
    a[0] = 1.0
    for j in range(1, order + 1):
        a[j] = 0.0
    for i in range(order):
        # current errors: fwd = fw[i : W - 1], bwd = bw[0 : L], L = W - 1 - i
        L = W - 1 - i
        k = -2.0 * num / (den + _TINY) if den > 0.0 else 0.0
        if k > 1.0:  # exact range [-1, 1] (no min / max: the CUDA target mistypes them)
            k = 1.0
        elif k < -1.0:
            k = -1.0
        a[i + 1] = k  # Levinson step a_j += k a_{i+1-j}, j = 1 .. i + 1 (a_{i+1} was 0)
        lo = 1
        hi = i
        while lo < hi:
            t_lo = a[lo]
            t_hi = a[hi]
            a[lo] = t_lo + k * t_hi
            a[hi] = t_hi + k * t_lo
            lo += 1
            hi -= 1
        if lo == hi:
            a[lo] = a[lo] + k * a[lo]
        fwd = fw[i : i + L]
        bwd = bw[0:L]
        for j in range(L):
            f = fwd[j]
            b = bwd[j]
            fwd[j] = f + k * b
            bwd[j] = b + k * f
        den = (1.0 - k * k) * den - bwd[L - 1] * bwd[L - 1] - fwd[0] * fwd[0]
        num = _dot(bwd, fw[i + 1 : i + L], L - 1)  # next order: dot(bwd[:-1], fwd[1:])


@register_jitable
def _roots(a, order, zr, zi, work):
    """Roots of the monic ``a`` (``order + 1`` real coefficients) into ``zr + i zi``.

    Aberth-Ehrlich with simultaneous (Jacobi) updates, so each step is a loop over the roots
    (SIMD on CPU). ``work``: ``8 * order`` scratch entries.
    """
    deg = order
    while deg > 0 and a[deg] == 0.0:  # exact zero roots
        deg -= 1
        zr[deg] = 0.0
        zi[deg] = 0.0
    if deg == 0:
        return
    pr = work[0:order]  # A(z_i)
    pi_ = work[order : 2 * order]
    dr = work[2 * order : 3 * order]  # A'(z_i)
    di = work[3 * order : 4 * order]
    bound = work[4 * order : 5 * order]  # sum_k |a_k| |z_i|^(deg - k)
    az = work[5 * order : 6 * order]
    sr = work[6 * order : 7 * order]  # sum_{j != i} 1 / (z_i - z_j)
    si = work[7 * order : 8 * order]
    radius = math.pow(abs(a[deg]), 1.0 / deg)
    for i in range(deg):
        ang = 2.0 * math.pi * i / deg + _START_ANGLE
        zr[i] = radius * math.cos(ang)
        zi[i] = radius * math.sin(ang)
    tol = 4.0 * deg * _EPS
    for _ in range(MAX_ITER):
        for i in range(deg):
            pr[i] = 1.0
            pi_[i] = 0.0
            dr[i] = 0.0
            di[i] = 0.0
            bound[i] = 1.0
            az[i] = math.sqrt(zr[i] * zr[i] + zi[i] * zi[i])
            sr[i] = 0.0
            si[i] = 0.0
        for k in range(1, deg + 1):  # Horner for A and A'
            ak = a[k]
            abs_ak = abs(ak)
            for i in range(deg):
                xr = zr[i]
                xi = zi[i]
                t = dr[i] * xr - di[i] * xi + pr[i]
                di[i] = dr[i] * xi + di[i] * xr + pi_[i]
                dr[i] = t
                t = pr[i] * xr - pi_[i] * xi + ak
                pi_[i] = pr[i] * xi + pi_[i] * xr
                pr[i] = t
                bound[i] = bound[i] * az[i] + abs_ak
        moving = 0
        for i in range(deg):  # roots at rounding-level backward error stay where they are
            lim = tol * bound[i]
            if pr[i] * pr[i] + pi_[i] * pi_[i] > lim * lim:
                moving += 1
        if moving == 0:
            return
        for j in range(deg):  # the j == i term is 0 (0 * 1 / tiny)
            yr = zr[j]
            yi = zi[j]
            for i in range(deg):
                ur = zr[i] - yr
                ui = zi[i] - yi
                m2 = ur * ur + ui * ui
                inv = 1.0 / (m2 if m2 > _TINY else _TINY)
                sr[i] += ur * inv
                si[i] -= ui * inv
        for i in range(deg):  # Aberth step w = A / (A' - A s)
            lim = tol * bound[i]
            if pr[i] * pr[i] + pi_[i] * pi_[i] > lim * lim:
                qr = dr[i] - (pr[i] * sr[i] - pi_[i] * si[i])
                qi = di[i] - (pr[i] * si[i] + pi_[i] * sr[i])
                q2 = qr * qr + qi * qi
                if q2 > 0.0:
                    zr[i] -= (pr[i] * qr + pi_[i] * qi) / q2
                    zi[i] -= (pi_[i] * qr - pr[i] * qi) / q2


@register_jitable
def _warp_poly(order, alpha, zr, zi, cr, ci):
    """Warp the roots' angles and expand ``prod (z - z_k)`` into ``cr + i ci``."""
    cr[0] = 1.0
    ci[0] = 0.0
    for j in range(1, order + 1):
        cr[j] = 0.0
        ci[j] = 0.0
    for k in range(order):
        rr = zr[k]
        ri = zi[k]
        if abs(ri) > _IMAG_TOL:
            theta = math.atan2(ri, rr)
            mag = math.hypot(rr, ri)
            warped = abs(theta) ** alpha
            if warped > math.pi:
                warped = math.pi
            if theta < 0.0:
                warped = -warped
            rr = mag * math.cos(warped)
            ri = mag * math.sin(warped)
        for j in range(k + 1, 0, -1):  # c_j <- c_j - r c_{j-1}
            pr = cr[j - 1]
            pi_ = ci[j - 1]
            cr[j] = cr[j] - (rr * pr - ri * pi_)
            ci[j] = ci[j] - (rr * pi_ + ri * pr)


@register_jitable
def _filter(x, start, win, order, a, a_new, f, e, y):
    """``y = lfilter([1], a_new, lfilter(a, [1], f)) * win`` with zero states.

    ``f`` and ``e`` are ``W``-long scratch rows (the frame, then residual / synthesis).
    """
    W = win.shape[0]
    for t in range(W):
        f[t] = x[start + t] * win[t]
        e[t] = f[t]
    for k in range(1, order + 1):  # FIR residual, tap by tap (as the torch path)
        ak = a[k]
        e_k = e[k:W]
        f_k = f[0 : W - k]
        for t in range(W - k):
            e_k[t] += ak * f_k[t]
    for t in range(W):  # all-pole synthesis in place; y[t - 1] enters last (short chain)
        acc = 0.0
        for k in range(order if order < t else t, 0, -1):
            acc += a_new[k] * e[t - k]
        e[t] = e[t] - acc
    for t in range(W):
        y[t] = e[t] * win[t]


def _frame(x, start, win, alpha, order, scratch, out):
    """McAdams synthesis of one frame: ``out[:W] = y_f * win`` (see the module docstring).

    ``scratch`` holds :func:`scratch_len` float64 entries (any stride).
    """
    W = win.shape[0]
    p1 = order + 1
    fw = scratch[0:W]
    bw = scratch[W : 2 * W]
    o = 2 * W
    a = scratch[o : o + p1]
    cr = scratch[o + p1 : o + 2 * p1]
    ci = scratch[o + 2 * p1 : o + 3 * p1]
    o += 3 * p1
    zr = scratch[o : o + order]
    zi = scratch[o + order : o + 2 * order]
    work = scratch[o + 2 * order : o + 10 * order]
    _burg(x, start, win, order, fw, bw, a)
    _roots(a, order, zr, zi, work)
    _warp_poly(order, alpha, zr, zi, cr, ci)
    _filter(x, start, win, order, a, cr, bw, fw, out)


# ---------------------------------------------------------------- CPU (njit)


_frame_cpu = jit_cpu(_frame)


@jit_cpu(parallel=True)
def _frames_cpu(xe, frame_sig, frame_m, alpha, win, hop, order, frames):
    """Every frame ``n`` into ``frames[n]`` (``(N, W)``), frames in parallel."""
    n_scratch = scratch_len(win.shape[0], order)
    for n in prange(frame_sig.shape[0]):
        s = frame_sig[n]
        scratch = np.empty(n_scratch)
        _frame_cpu(xe[s], frame_m[n] * hop, win, alpha[s], order, scratch, frames[n])


@jit_cpu(parallel=True)
def _ola_cpu(frames, offsets, n_frames, hop, out):
    """``out[s, t]``: sum of the frames of signal ``s`` covering ``t``, added in frame order
    (the same sums as :func:`_ola_cuda`); signals in parallel."""
    W = frames.shape[1]
    T = out.shape[1]
    for s in prange(out.shape[0]):
        row = out[s]
        row[:] = 0.0
        for m in range(n_frames[s]):
            frame = frames[offsets[s] + m]
            base = m * hop
            for j in range(min(W, T - base)):
                row[base + j] += frame[j]


# ---------------------------------------------------------------- CUDA

_frame_cuda = cuda.jit(device=True)(_frame)


@jit_cuda
def _frames_cuda(xe, frame_sig, frame_m, alpha, win, hop, order, n0, scratch, frames_t):
    """One thread per frame ``n = n0 + thread``: output into column ``frames_t[:, n]``
    (``(W, N)``); scratch column ``thread`` (``scratch``: ``(scratch_len, chunk)``)."""
    i = cuda.grid(1)
    n = n0 + i
    if i < scratch.shape[1] and n < frame_sig.shape[0]:
        s = frame_sig[n]
        _frame_cuda(xe[s], frame_m[n] * hop, win, alpha[s], order, scratch[:, i], frames_t[:, n])


@jit_cuda
def _ola_cuda(frames_t, offsets, n_frames, hop, out):
    """One thread per output sample; same sum order as :func:`_ola_cpu`."""
    i = cuda.grid(1)
    T = out.shape[1]
    if i < out.shape[0] * T:
        s = i // T
        t = i - s * T
        W = frames_t.shape[0]
        acc = 0.0
        m_lo = (t - W) // hop + 1
        m_hi = t // hop
        if m_hi > n_frames[s] - 1:
            m_hi = n_frames[s] - 1
        for m in range(m_lo if m_lo > 0 else 0, m_hi + 1):
            acc += frames_t[t - m * hop, offsets[s] + m]
        out[s, t] = acc


#: The ``@cuda.jit`` kernels and the signatures the wrappers below launch them with (views of
#: C-contiguous tensors, Python ints as int64, floats as float64): compiled by the compile
#: gate (:mod:`gpuaug.kernels._compile_gate`) and by ``auto``'s probe on a GPU.
#: float64 only (the op hands over float64 whatever the wave dtype).
CUDA_KERNELS = {
    "_frames_cuda": cuda_entry(MCADAMS, FRAME_THREADS,
                               "float64[:,::1], int64[::1], int64[::1], float64[::1], float64[::1], int64, int64, "
                               "int64, float64[:,::1], float64[:,::1]"),
    "_ola_cuda": cuda_entry(MCADAMS, OLA_THREADS, "float64[:,::1], int64[::1], int64[::1], int64, float64[:,::1]"),
}


def launch_cuda(xe, frame_sig, frame_m, offsets, n_frames, alpha, win, hop, order, scratch,
                frames_t, out, stream=0):
    """Launch the CUDA frame kernel (in chunks of ``scratch.shape[1]`` frames) and the
    overlap-add kernel on ``stream``. Device arrays, or host arrays under the CUDA simulator.

    Args:
        xe: ``(S, span)`` float64 signals (``eps`` added, zero-padded to cover every frame).
        frame_sig, frame_m: ``(N,)`` int64 signal and frame index of each frame, frames of
            a signal contiguous and in order (``offsets[s] + m`` is frame ``m`` of ``s``).
        offsets, n_frames: ``(S,)`` int64 first frame and frame count of each signal.
        alpha: ``(S,)`` float64 McAdams coefficient per signal.
        win: ``(W,)`` float64 analysis / synthesis window; hop: frame step in samples.
        order: LPC order; scratch: ``(scratch_len(W, order), chunk)`` float64 work space.
        frames_t: ``(W, N)`` float64 per-frame outputs; out: ``(S, T_out)`` float64 result.
        stream: Numba stream (``0``: default stream).
    """
    n = frame_sig.shape[0]
    chunk = scratch.shape[1]
    blocks, threads = grid_1d(min(n, chunk), FRAME_THREADS) if n else (0, 0)
    for n0 in range(0, n, chunk):
        _frames_cuda[blocks, threads, stream](xe, frame_sig, frame_m, alpha, win, hop, order, n0,
                                              scratch, frames_t)
    if out.size:
        blocks, threads = grid_1d(out.size, OLA_THREADS)
        _ola_cuda[blocks, threads, stream](frames_t, offsets, n_frames, hop, out)


# ---------------------------------------------------------------- torch entry point


def _run_cpu(xe, frame_sig, frame_m, offsets, n_frames, alpha, win, frames, out, hop, order):
    """The CPU side of :func:`mcadams_ola` on NumPy views: every frame into ``frames``
    (``(N, W)``), then the overlap-add into ``out``."""
    if frames.shape[0]:
        _frames_cpu(xe, frame_sig, frame_m, alpha, win, hop, order, frames)
    _ola_cpu(frames, offsets, n_frames, hop, out)


def _run_cuda(xe, frame_sig, frame_m, offsets, n_frames, alpha, win, scratch, frames_t, out, hop, order, stream=0):
    """The CUDA side of :func:`mcadams_ola`: :func:`launch_cuda` on device views."""
    launch_cuda(xe, frame_sig, frame_m, offsets, n_frames, alpha, win, hop, order, scratch, frames_t, out, stream)


@register_kernel(MCADAMS, "numba", "cpu")
@register_kernel(MCADAMS, "numba", "cuda")
def mcadams_ola(xe: Tensor, n_frames: Tensor, alpha: Tensor, win: Tensor, *, hop: int, order: int,
                out_len: int) -> Tensor:
    """McAdams synthesis of every frame, overlap-added: the kernel half of
    :func:`gpuaug.functional.mcadams.mcadams` (``backend="numba"``).

    Signal ``s`` has frames ``m = 0 .. n_frames[s] - 1`` starting at ``m * hop``; frame
    ``m`` is ``xe[s, m hop : m hop + W] * win``. CPU tensors run the ``@njit`` kernels,
    CUDA tensors the ``@cuda.jit`` kernels on torch's current stream.

    Args:
        xe: ``(S, span)`` float64, contiguous; ``span >= (max(n_frames) - 1) hop + W``.
        n_frames: ``(S,)`` int64 frames per signal (0: the signal's output is 0).
        alpha: ``(S,)`` float64 McAdams coefficient per signal (> 0).
        win: ``(W,)`` float64 window (``W > order``); hop: frame step in samples (>= 1).
        order: LPC order; out_len: output samples per signal (``<= span``).

    Returns:
        ``(S, out_len)`` float64 on ``xe``'s device: ``sum_m y_m(t - m hop)``.
    """
    device = xe.device
    S = xe.shape[0]
    W = win.shape[0]
    f64 = dict(dtype=torch.float64, device=device)
    i64 = dict(dtype=torch.int64, device=device)
    xe, win, alpha = (t.to(**f64).contiguous() for t in (xe, win, alpha))
    n_frames = n_frames.to(**i64).contiguous()
    offsets = (torch.cumsum(n_frames, 0) - n_frames).contiguous()
    N = int(host_of(n_frames).sum())  # from the host mirror when the caller gave one (no sync)
    frame_sig = torch.repeat_interleave(torch.arange(S, **i64), n_frames, output_size=N)
    frame_m = torch.arange(N, **i64) - offsets[frame_sig]
    out = torch.empty(S, out_len, **f64)
    tensors = [xe, frame_sig, frame_m, offsets, n_frames, alpha, win]
    if device.type == "cuda":  # scratch columns and a (W, N) frame buffer, so that a warp's accesses coalesce
        tensors += [torch.empty(scratch_len(W, order), max(1, min(N, CUDA_CHUNK)), **f64), torch.empty(W, N, **f64)]
    else:
        tensors.append(torch.empty(N, W, **f64))
    run_numba(_run_cpu, _run_cuda, tensors + [out], hop, order)
    return out
