"""The passes around reverb's FFTs on the CPU, fused: op ``reverb`` (:func:`reverb_convolve`).

:func:`gpuaug.functional.reverb.reverb` in plain torch spends, per 8 s clip, about as long on
copies, masks, zero fills, norms and freshly faulted-in buffers as on its two FFTs. Here the
convolution of a batch with its (already computed, direct-path aligned) RIR spectra ``H`` runs
in passes of :func:`pass_clips` clips, each pass three steps around two FFTs. A pass's FFT input
and its spectrum are kept buffers of at most :data:`PASS_BYTES` each (the inverse FFT writes its
output over the input buffer, :mod:`gpuaug.kernels._fft_into`), so a batch of 32 clips of 8 s
runs in one pass on two 23.6 MB buffers. Measured (``benchmarks/reverb_speed.py``, the whole
transform, min / median of 9 repeats; ``benchmarks/results/kernel-timings.md``, issue 11 ninth
round): one pass of 32 took 0.88x / 0.89x the CPU time of passes of 8 and 0.96x / 0.99x of
passes of 16; writing the FFTs into the kept buffers took 0.95x the time of scipy's freshly
allocated outputs (ad hoc A/B, paired median). The output is bit-identical whatever the passes
(``tests/test_reverb_kernel.py``):

1. **load** (``@njit``, one ``prange`` over clips): the clip's valid samples copied into the
   FFT input (zero tail) while their energy (float64 sum of squares) and peak are taken, one
   vectorised read (:func:`gpuaug.kernels.row_reduce.copy_stats`; 0.20 -> 0.14 ms per 8 s clip
   against a copy followed by a second read, ``benchmarks/results/kernel-timings.md``); a
   clip whose peak lies outside [2**-60, 2**60] is then scaled in place by the exact power of
   two ``s`` that brings it to [0.5, 1), as the torch path scales every clip, so denormal or
   huge clips neither underflow nor overflow (:data:`SAFE_EXP`: for the others ``s = 1``
   gives the scaled result bit for bit);
2. the forward FFT into the kept spectrum buffer (scipy's pocketfft ``r2c``, as
   ``scipy.fft.rfft`` runs it, with the thread budget of
   :func:`gpuaug.kernels._numba_glue.cpu_thread_budget`), ``X[b] *= H[H_row[b]]`` (``@njit``:
   the distinct RIR spectra are read in place, never gathered per clip), and the inverse FFT
   (``c2r``, as ``scipy.fft.irfft``) into the FFT input buffer. Both buffers come from the
   caller's :class:`gpuaug._workspace.Workspace`, so they are not faulted in again every batch.
   scipy's FFTs, not torch's: at the 8 s clips' size they took ~25 % less CPU time than
   ``torch.fft`` into kept buffers (``benchmarks/reverb_speed.py`` measures both floors); the
   FFT size comes from the table measured for pocketfft
   (:data:`gpuaug.functional.fft_sizes.POCKETFFT_SIZES`);
3. **store** (``@njit``): the output's energy (float64) and peak over the valid samples (one
   vectorised read, which also flags non-finite samples), the
   gain ``ref / got`` (energy: ``sqrt``) divided by ``s`` and cast to the wave's dtype, then
   ``out = y * gain`` on the valid samples (times the optional fade gain of
   :mod:`gpuaug.kernels.elementwise`, cast to the dtype first, exactly as the fade kernel
   multiplies), zero padding, and the per-clip flag of any non-finite output sample.

The arithmetic of ``out`` matches the torch path's except for the FFTs (pocketfft here, torch's
there: rounding) and the energy sums (float64 here, float32 in torch: gains differ by ~1e-7
relative). With a fade the output is bit-identical to
running this kernel and then the fade kernel. ``normalize="none"`` does not scale (``s = 1``)
and multiplies by 1.

Registered (:func:`gpuaug.backend.register_kernel`): :func:`reverb_convolve` as op ``reverb``,
``("numba", "cpu", 0)`` only: on CUDA the torch path's elementwise passes run on the GPU and
the caching allocator already reuses the buffers. Timings: ``benchmarks/reverb_speed.py``.
"""
from __future__ import annotations

import math

import torch
from numba import prange

from gpuaug._workspace import Workspace
from gpuaug.backend import REVERB, register_kernel
from gpuaug.kernels._fft_into import irfft_into, rfft_into
from gpuaug.kernels._launch import kernel_float, run_numba
from gpuaug.kernels._numba_glue import cpu_thread_budget, jit_cpu
from gpuaug.kernels.elementwise import FADE_SHAPE_CODES, _fade_gain_cpu, check_fade_samples
from gpuaug.kernels.row_reduce import bits_value, copy_stats, finite_bits, row_stats, sumsq

__all__ = ["reverb_convolve", "NORMALIZE_CODES", "FFT_LANES", "PASS_BYTES", "fft_rows", "pass_clips"]

#: Kernel code of each ``normalize`` mode of :func:`gpuaug.functional.reverb.reverb`.
NORMALIZE_CODES = {"energy": 0, "peak": 1, "none": 2}


#: Clips whose peak lies in [2**-SAFE_EXP, 2**SAFE_EXP] are convolved unscaled: no float32 FFT value
#: of theirs under- or overflows, and a power-of-two scale commutes exactly with the FFTs and the
#: gain, so the output is the one of the scaled clip bit for bit.
SAFE_EXP = 60

#: Bytes of a pass's FFT input buffer (its spectrum buffer is as large): a pass holds as many
#: clips as fit, in whole vectors of :data:`FFT_LANES` rows, and a batch is split into passes of
#: equal size (:func:`pass_clips`; module docstring).
PASS_BYTES = 32 << 20
#: float32 rows scipy's pocketfft transforms together in one SIMD vector (its ``VLEN<float>``:
#: 4 in the x86-64 wheels); rows left over run one by one. At n = 69,120 (2 s clips), one thread:
#: rfft + irfft of 1 row 1.09 ms, of 3 rows 3.31 ms, of 4 rows 1.69 ms
#: (``benchmarks/results/kernel-timings.md``), so a pass whose rows x channels leave rows over
#: is padded with zero rows where a whole vector costs less (:func:`fft_rows`).
FFT_LANES = 4
#: The cost of one vector of :data:`FFT_LANES` float32 rows in single rows (1.69 / 1.09 ms, above).
VECTOR_COST = 1.55


@jit_cpu(parallel=True, twin=True)
def _load_cpu(x, lengths, clips, buf, ref, inv, mode):
    G, C, n = buf.shape
    lo, hi = math.ldexp(1.0, -SAFE_EXP), math.ldexp(1.0, SAFE_EXP)
    for i in prange(G):
        b = clips[i]
        L = lengths[b]
        sq, bits = 0.0, 0
        for c in range(C):  # the copy with the clip's energy + peak, in one vectorised read
            s_c, b_c = copy_stats(x[b, c], buf[i, c], 0, L)
            buf[i, c, L:] = 0.0
            sq += s_c
            bits = max(bits, b_c)
        peak = bits_value(x[b, 0], bits)
        s = 1.0
        if mode != 2 and peak > 0.0 and not (lo <= peak <= hi):  # denormal-small or huge: scale (exact)
            s = math.ldexp(1.0, -math.frexp(peak)[1])  # peak * s in [0.5, 1)
            for c in range(C):
                for t in range(L):
                    buf[i, c, t] = x[b, c, t] * s  # exactly representable in the wave's dtype
        acc = 0.0
        if mode == 0:
            acc = sq * s * s  # exact scaling by a power of two, unless float64 squares under- / overflowed:
            if not (acc < math.inf and (acc > 0.0 or peak == 0.0)):
                acc = 0.0  # then sum the scaled samples (a float64 wave with |x| beyond ~1e+-154)
                for c in range(C):
                    acc += sumsq(buf[i, c], 0, L)
        elif mode == 1:
            acc = peak * s
        ref[i] = acc
        inv[i] = 1.0 / s


@jit_cpu
def _faded_store(y, out, gb, L, rate, direc, sample_rate, shape):
    """``out[t] = cast(fade gain of sample t of L); out[t] *= y[t] * gb`` (1-D slices: vectorised)."""
    for t in range(out.shape[0]):
        out[t] = _fade_gain_cpu(t, L, rate, direc, sample_rate, shape)  # cast, then multiply
        out[t] *= y[t] * gb


@jit_cpu(parallel=True, twin=True)
def _store_cpu(y, lengths, clips, ref, inv, rate, direc, out, gain, top_out, bad, mode, sample_rate, shape):
    G, C, _ = y.shape
    for i in prange(G):
        b = clips[i]
        L = lengths[b]
        sq, bits = 0.0, 0
        for c in range(C):
            s_c, b_c = row_stats(y[i, c], 0, L)
            sq += s_c
            bits = max(bits, b_c)
        top = bits_value(y[i, 0], bits)
        g = 1.0
        if mode != 2:
            got = sq if mode == 0 else top
            if got > 0.0:
                g = (math.sqrt(ref[i] / got) if mode == 0 else ref[i] / got) * inv[i]
            else:
                g = 0.0
        gain[i] = g  # cast to the wave's dtype, as the torch path casts its gain
        gb = gain[i]
        # the largest |y * gb| in the wave's dtype is at max |y| (rounding is monotonic; exact
        # cast of ``top``) and a fade gain lies in [0, 1]
        top_out[i] = top
        top_out[i] *= gb
        bad[i] = not (finite_bits(y[i, 0], bits) and abs(top_out[i]) < math.inf)
        d = direc[b]
        for c in range(C):
            yc, oc = y[i, c], out[b, c]
            if d != 0:
                _faded_store(yc[:L], oc[:L], gb, L, rate[b], d, sample_rate, shape)
            else:
                for t in range(L):
                    oc[t] = yc[t] * gb
            oc[L:] = 0.0


@jit_cpu(parallel=True, twin=True)
def _mul_spectra(spec, H, row):
    B, C, nf = spec.shape
    Cr = H.shape[1]
    for q in prange(B * C):
        b = q // C
        c = q % C
        h = H[row[b], c if Cr > 1 else 0]
        x = spec[b, c]
        for k in range(nf):
            x[k] *= h[k]


def pass_clips(G: int, channels: int, n_fft: int, dtype: torch.dtype) -> int:
    """Clips per pass for ``G`` clips of ``channels`` channels at FFT size ``n_fft``: the fewest
    passes whose FFT input buffer stays within :data:`PASS_BYTES` (at least one vector of
    :data:`FFT_LANES` clips per pass), with the clips shared out evenly among them (float32 at
    184,320, 8 s clips: 32 clips in one pass, 50 in two passes of 25)."""
    per_clip = channels * n_fft * torch.finfo(dtype).bits // 8
    cap = max(FFT_LANES, PASS_BYTES // per_clip // FFT_LANES * FFT_LANES)
    passes = max(1, -(-G // cap))
    return max(1, -(-G // passes))


def fft_rows(n: int, channels: int, dtype: torch.dtype) -> int:
    """Rows of a pass of ``n`` clips of ``channels`` channels to run the FFTs on: the ``m`` in
    ``[n, n + FFT_LANES)`` of the least estimated cost (vectors of :data:`FFT_LANES` rows at
    :data:`VECTOR_COST` single rows each, the rows left over alone; the smallest ``m`` on ties),
    the ``m - n`` extra rows zero: for mono, a pass of ``4k + 2`` or ``4k + 3`` clips runs on
    ``4k + 4`` rows. float64 is never padded (2 lanes: one vector costs about two rows)."""
    if dtype != torch.float32:
        return n

    def cost(m: int) -> float:
        lanes = m * channels
        return lanes // FFT_LANES * VECTOR_COST + lanes % FFT_LANES

    return min(range(n, n + FFT_LANES), key=cost)


def _take(workspace: Workspace | None, name: str, shape, dtype, device) -> torch.Tensor:
    if workspace is None:
        return torch.empty(shape, dtype=dtype, device=device)
    return workspace.take(name, shape, dtype, device)  # host scratch: never returned to the caller


@register_kernel(REVERB, "numba", "cpu")
def reverb_convolve(w, lengths, H, H_row, *, n_fft: int, normalize: str, fade=None,
                    workspace: Workspace | None = None, clips=None, out=None):
    """``(out, finite)``: the clips ``w`` convolved with their RIR spectra ``H`` (module docstring).

    Args:
        w: ``(B, C, T)`` float32 / float64 CPU wave (other float dtypes are computed in float32).
        lengths: ``(B,)`` int64 valid samples per clip (``<= T``).
        H: ``(U, Cr, n_fft // 2 + 1)`` complex spectra of the batch's distinct RIRs (``Cr`` 1
            or ``C``), shifted to the direct path and scaled to peak in [0.5, 1) unless
            ``normalize`` is ``"none"`` (:func:`gpuaug.functional.reverb.reverb`).
        H_row: ``(G,)`` int64: clip ``clips[i]`` is convolved with ``H[H_row[i]]`` (read in
            place, no ``(G, Cr, n_fft // 2 + 1)`` gather).
        n_fft: the FFT size; ``n_fft >= max(lengths)`` plus the RIR span (nothing wraps).
        normalize: ``"energy"`` | ``"peak"`` | ``"none"`` (see the functional op).
        fade: ``None`` or ``(rate, direction, sample_rate, shape)``: ``(B,)`` float64 rates per
            second, ``(B,)`` int64 directions (+1 in, -1 out, 0 none), a float and a shape name
            of :data:`~gpuaug.kernels.elementwise.FADE_SHAPE_CODES`, applied after the
            normalisation as :func:`gpuaug.functional.fade.fade` would.
        workspace: where the FFT buffers come from and go back to (None: fresh tensors).
        clips: ``(G,)`` int64 host tensor, the rows of ``w`` to convolve (default: all ``B``;
            a length bucket of :func:`gpuaug.functional.reverb.reverb` reads and writes its rows
            in place, without a gather or a merge).
        out: ``(B, C, T)`` float32 / float64 tensor of ``w``'s dtype whose rows ``clips`` are
            written (the others are left as they are); default a new one.

    Returns:
        ``out`` ``(B, C, T)`` in ``w``'s dtype (padding zero) and ``finite`` ``(G,)`` bool: clip
        ``clips[i]``'s output samples are all finite.
    """
    x = kernel_float(w)
    B, C, T = x.shape
    mode = NORMALIZE_CODES[normalize]
    lengths = lengths.to(torch.int64).contiguous()
    clips = torch.arange(B) if clips is None else clips.to(torch.int64).contiguous()
    G = clips.shape[0]
    cdt = torch.complex128 if x.dtype == torch.float64 else torch.complex64
    dev = x.device
    ref = x.new_empty(G, dtype=torch.float64)  # new_*: tensors like the input (a sync-counting stand-in stays one)
    inv = x.new_empty(G, dtype=torch.float64)
    if fade is None:
        rate, direc = x.new_zeros(B, dtype=torch.float64), x.new_zeros(B, dtype=torch.int64)
        sample_rate, shape = 1.0, 0
    else:
        check_fade_samples(T, "reverb")
        rate, direc, sample_rate, shape = fade
        rate, direc, shape = rate.to(torch.float64).contiguous(), direc.to(torch.int64).contiguous(), FADE_SHAPE_CODES[shape]
    target = x.new_empty(B, C, T) if out is None else out
    gain, top_out = x.new_empty(G), x.new_empty(G)
    bad = x.new_zeros(G, dtype=torch.bool)
    H = H.to(cdt).contiguous()
    H_row = H_row.to(device=dev, dtype=torch.int64).contiguous()
    workers = cpu_thread_budget()
    step = pass_clips(G, C, n_fft, x.dtype)
    rows = fft_rows(min(step, G), C, x.dtype)
    buf = _take(workspace, "fft_input", (rows, C, n_fft), x.dtype, dev)  # the FFT input, then its output
    spec = _take(workspace, "fft_spectrum", (rows, C, n_fft // 2 + 1), cdt, dev)
    for a in range(0, G, step):
        e = min(a + step, G)
        n, m = e - a, fft_rows(e - a, C, x.dtype)
        bc, cc = buf[:n], clips[a:e]
        run_numba(_load_cpu, None, [x, lengths, cc, bc, ref[a:e], inv[a:e]], mode)
        if m > n:  # zero rows completing the last SIMD vector of the FFTs (fft_rows)
            buf[n:m].zero_()
        rfft_into(buf[:m].numpy(), spec[:m].numpy(), workers)
        run_numba(_mul_spectra, None, [spec[:n], H, H_row[a:e]])
        irfft_into(spec[:m].numpy(), buf[:m].numpy(), workers)  # y overwrites the FFT input
        run_numba(_store_cpu, None, [bc, lengths, cc, ref[a:e], inv[a:e], rate, direc, target, gain[a:e],
                                     top_out[a:e], bad[a:e]], mode, float(sample_rate), shape)
    if workspace is not None:
        workspace.give("fft_input", buf)
        workspace.give("fft_spectrum", spec)
    return (target if out is not None else target.to(w.dtype)), ~bad
