"""Tabulated Hann-windowed sinc of the CPU resampling kernels (shared by ``segment_warp`` and ``uniform_warp``).

The filter of :mod:`gpuaug.functional.resample` (Hann-windowed sinc, ``zeros`` crossings per
side, normalised by the sum of the weights of all taps) at a cutoff ``f`` that is constant
over many output samples, tabulated once at ``K = TABLE_PHASES`` phases of the unit interval:
row ``q`` of a table holds the weights of the ``2 h`` taps ``i = floor(p) - h + 1 + t``
(``h = ceil(zeros / f)``; the tap ``floor(p) - h`` of the exact kernel always has
``|u| >= zeros``, i.e. weight 0) for the fractional position ``q / K``, normalised by their
sum. An output sample with fractional position ``phi`` reads rows ``q = floor(phi K)`` and
``q + 1``, interpolates them linearly (``a = phi K - q``) and takes the dot product with the
taps inside ``[0, L)`` (zero padding, as the exact kernel): :func:`table_run`. A position on
a tabulated phase (``a = 0``: every output of a segment sped up by exactly 5 / 4, whose phases are
multiples of 1/4) reads row ``q`` alone: the same weights, one multiply fewer per tap. A cutoff of 1
at an integer position copies the input sample (the exact kernel's unit impulse).

Error bound (``K = 512``, any cutoff ``f <= 1``): ``|y_tab - y_exact| <= E * max|x|`` over the
taps, ``E`` the largest L1 norm over all phases of the difference between the interpolated and
the exact normalised weights: -102.1 dB at ``f = 1``, -104.3 dB at ``f = 0.945``, falling as
``1 / K**2`` and with ``f``; float32 tables and accumulation add rounding of the order
``2**-24 * sqrt(taps)``. **Stated bound** (:data:`TABLE_ERROR_DB`): every output sample is
within -100 dB of the clip's peak absolute value (``1e-5 * peak``) of the exact kernel; the
kernels' tests measure it (``tests/test_kernels_segment_warp.py``,
``tests/test_kernels_warp.py``).

Rows are padded with zero weights to a multiple of :data:`TAP_ALIGN` taps
(:func:`padded_taps`): an output sample whose taps all lie inside the clip takes the dot product
over the padded row, a whole number of SIMD vectors with no scalar remainder loop (the extra taps
read valid samples with weight 0: the same sum up to its rounding).

Planning on the host: :func:`plan_tables` (one table per distinct cutoff among the clips that
use one), :func:`table_groups` (consecutive groups of clips whose tables fit a memory budget),
:func:`launch_tables` (the tables of one launch, built once per cutoff and kept across launches
in a cache of :data:`TABLE_CACHE_BYTES`).
"""
from __future__ import annotations

import math
from collections import OrderedDict

import numba
import numpy as np
import torch
from numba import prange

from gpuaug.kernels._launch import run_numba
from gpuaug.kernels._numba_glue import jit_cpu

__all__ = ["TABLE_PHASES", "TABLE_ERROR_DB", "TABLE_MIN_SAMPLES", "TABLE_BYTES", "TABLE_CACHE_BYTES", "TAP_ALIGN",
           "sinc_table", "plan_tables", "table_groups", "launch_tables", "padded_taps", "table_run"]

#: Phases ``K`` of the tabulated windowed sinc per unit interval (rows ``0 .. K`` of a table).
TABLE_PHASES = 512
#: Stated worst error of the tabulated path against the exact kernel, in dB of the clip's peak
#: (module docstring; ``tests/test_kernels_segment_warp.py`` measures it).
TABLE_ERROR_DB = -100.0
#: Clips (segments) of fewer output samples x channels use the exact kernel even where the table is
#: asked for: building a table (a ``h K`` grid of the kernel, then ``K + 1`` rows of ``2 h``
#: taps) costs about as much as 300 exact output samples (the measured break-even:
#: ``benchmarks/results/kernel-timings.md``).
TABLE_MIN_SAMPLES = 512
#: Memory for the tables of one launch: larger batches of distinct cutoffs run in groups of clips.
TABLE_BYTES = 32 << 20
#: Built tables kept across launches (least recently used dropped first): a batch drawing the
#: cutoffs of earlier batches (a fixed segment factor, speed factors on their grid) builds none.
TABLE_CACHE_BYTES = 32 << 20
#: Table rows are padded with zero weights to a multiple of this many taps (8 float32: one AVX2
#: vector; module docstring).
TAP_ALIGN = 8
#: Grid points per block of :func:`_sinc_grid` (one direct evaluation of sin / cos per block).
_BLOCK = 128



@jit_cpu
def _sinc_grid(f, zeros, K, g):
    """``g[r] = k(r f / K)`` for ``r = 0 .. len(g) - 1`` (``k``: the Hann-windowed sinc of
    :mod:`gpuaug.functional.resample`, 0 for ``|u| >= zeros``), in float64.

    In blocks of :data:`_BLOCK` points: ``sin(pi u)`` and the window's ``cos(pi u / zeros)``
    at the block's first point are evaluated directly (``sin(pi u)`` as
    ``(-1)^n sin(pi (u - n))``), the others by one rotation each from there (angle addition
    with directly evaluated offsets: no recurrence, independent points, vectorised). Below
    ``|u| < 0.5`` ``sin`` is evaluated directly (there ``1 / u`` would amplify rounding), as in
    :func:`~gpuaug.kernels.warp_sinc._warp_point`.
    """
    step = f / K
    N = g.shape[0]
    rs = np.empty(_BLOCK)  # sin / cos of the offsets k * step (times pi, pi / zeros)
    rc = np.empty(_BLOCK)
    rws = np.empty(_BLOCK)
    rwc = np.empty(_BLOCK)
    for k in range(_BLOCK):
        rs[k], rc[k] = math.sin(math.pi * k * step), math.cos(math.pi * k * step)
        rws[k], rwc[k] = math.sin(math.pi * k * step / zeros), math.cos(math.pi * k * step / zeros)
    for r0 in range(0, N, _BLOCK):
        u0 = r0 * step
        n = math.floor(u0 + 0.5)
        s0, c0 = math.sin(math.pi * (u0 - n)), math.cos(math.pi * (u0 - n))
        if n % 2 != 0:
            s0, c0 = -s0, -c0
        ws0, wc0 = math.sin(math.pi * u0 / zeros), math.cos(math.pi * u0 / zeros)
        for k in range(min(_BLOCK, N - r0)):
            u = (r0 + k) * step
            g[r0 + k] = ((s0 * rc[k] + c0 * rs[k]) / (math.pi * max(u, 0.5))
                         * (0.5 + 0.5 * (wc0 * rwc[k] - ws0 * rws[k])))
    for r in range(N):  # the core (direct sin) and the end of the window
        u = r * step
        if u >= 0.5:
            break
        g[r] = 1.0 if r == 0 else math.sin(math.pi * u) / (math.pi * u) * (0.5 + 0.5 * math.cos(math.pi * u / zeros))
    for r in range(max(int(zeros / step) - 1, 0), N):
        if r * step >= zeros:
            g[r] = 0.0


@jit_cpu(parallel=True)
def _build_tables(cutoffs, half, zeros, tables):
    """Fill ``tables[v, q, :2 h]`` (``h = half[v]``) with the normalised weights of phase
    ``q / K`` at cutoff ``cutoffs[v]`` (module docstring); the rest of each row is left as it is
    (zero). Tap ``t`` (offset ``o = t - h + 1`` from ``floor(p)``) at phase ``q / K`` is
    ``g[|o K - q|]`` of :func:`_sinc_grid`: a contiguous run of the grid per tap."""
    U, K1, _ = tables.shape
    K = K1 - 1
    for v in prange(U):
        h = half[v]
        g = np.empty(h * K + 1)
        _sinc_grid(cutoffs[v], zeros, K, g)
        sums = np.zeros(K1)
        for t in range(2 * h):
            run = _tap_run(g, t - h + 1, K)
            for q in range(K1):
                sums[q] += run[q]
        inv = 1.0 / sums
        for t in range(2 * h):
            run = _tap_run(g, t - h + 1, K)
            for q in range(K1):
                tables[v, q, t] = run[q] * inv[q]


@jit_cpu
def _tap_run(g, o, K):
    """``g[|o K - q|]`` for ``q = 0 .. K`` (a view, reversed for ``o > 0``)."""
    if o <= 0:
        return g[-o * K:-o * K + K + 1]
    return g[o * K - K:o * K + 1][::-1]


@jit_cpu(fastmath={"reassoc", "contract"})
def _lerp_dot(w0, w1, a, xs):
    """``sum_t (w0[t] + a (w1[t] - w0[t])) xs[t]`` in the rows' dtype (vectorised: the sum is
    reassociated, which changes only its rounding)."""
    acc = numba.float32(0.0)
    for t in range(xs.shape[0]):
        acc += (w0[t] + a * (w1[t] - w0[t])) * xs[t]
    return acc


@jit_cpu(fastmath={"reassoc", "contract"})
def _dot(w, xs):
    """``sum_t w[t] xs[t]`` in the row's dtype (vectorised as :func:`_lerp_dot`): the lerp at
    ``a = 0``, whose weights ``w0 + 0 * (w1 - w0)`` are ``w0`` exactly."""
    acc = numba.float32(0.0)
    for t in range(xs.shape[0]):
        acc += w[t] * xs[t]
    return acc


@jit_cpu(fastmath={"reassoc", "contract"})
def _lerp_dot2(w0, w1, a, xs, v0, v1, b, ys):
    """:func:`_lerp_dot` of two outputs in one loop over the taps (two independent sums, each
    vectorised as :func:`_lerp_dot`'s: the same values)."""
    acc = numba.float32(0.0)
    acc2 = numba.float32(0.0)
    for t in range(xs.shape[0]):
        acc += (w0[t] + a * (w1[t] - w0[t])) * xs[t]
        acc2 += (v0[t] + b * (v1[t] - v0[t])) * ys[t]
    return acc, acc2


@jit_cpu(fastmath={"reassoc", "contract"})
def _dot2(w, xs, v, ys):
    """:func:`_dot` of two outputs in one loop over the taps (as :func:`_lerp_dot2`)."""
    acc = numba.float32(0.0)
    acc2 = numba.float32(0.0)
    for t in range(xs.shape[0]):
        acc += w[t] * xs[t]
        acc2 += v[t] * ys[t]
    return acc, acc2


def sinc_table(cutoff: float, zeros: int, phases: int = TABLE_PHASES, dtype=np.float32) -> np.ndarray:
    """The ``(phases + 1, 2 ceil(zeros / cutoff))`` table of the tabulated path for one cutoff
    (row ``q``: the normalised tap weights at fractional position ``q / phases``)."""
    h = math.ceil(zeros / cutoff)
    tables = np.zeros((1, phases + 1, 2 * h), dtype=dtype)
    arrays = [torch.tensor([cutoff], dtype=torch.float64), torch.tensor([h]), torch.from_numpy(tables)]
    run_numba(lambda c, half, t, z: _build_tables(c, half, z, t), None, arrays, int(zeros))
    return tables[0]


@jit_cpu(inline="always")
def padded_taps(h):
    """Width of a table row of ``h`` taps per side: ``2 h`` rounded up to a multiple of
    :data:`TAP_ALIGN` (compiled: the kernels call it too)."""
    return (2 * h + TAP_ALIGN - 1) // TAP_ALIGN * TAP_ALIGN


#: (cutoff, zeros, phases, dtype) -> its ``(phases + 1, padded_taps(h))`` table (:func:`launch_tables`).
_CACHE: OrderedDict = OrderedDict()


def launch_tables(cutoffs: np.ndarray, half: np.ndarray, zeros: int, phases: int, dtype) -> np.ndarray:
    """The ``(max(U, 1), phases + 1, padded_taps(max(half)))`` tables of one launch (table ``v``:
    cutoff ``cutoffs[v]``, ``h = half[v]``; zero beyond each row's ``2 h`` taps), from
    :func:`plan_tables`. Tables built before (the same cutoff, zeros, phases and dtype) come
    from the cache, the others are built (:func:`_build_tables`) and cached within
    :data:`TABLE_CACHE_BYTES`. Call it under :data:`~gpuaug.kernels._numba_glue.CPU_LOCK` (the
    kernels' launch: it builds with a parallel kernel and updates the cache). A launch of one cached
    table gets the cached array itself (read-only use)."""
    dtype = np.dtype(dtype)
    keys = [(float(c), int(zeros), int(phases), dtype.str) for c in cutoffs]
    found = {}
    for k in keys:
        if k in _CACHE:
            _CACHE.move_to_end(k)
            found[k] = _CACHE[k]
    missing = [i for i, k in enumerate(keys) if k not in found]
    if missing:
        built = np.zeros((len(missing), phases + 1, padded_taps(int(half[missing].max()))), dtype=dtype)
        _build_tables(np.ascontiguousarray(cutoffs[missing]), np.ascontiguousarray(half[missing]), int(zeros), built)
        for i, table in zip(missing, built):
            found[keys[i]] = _remember(keys[i], np.ascontiguousarray(table[:, :padded_taps(int(half[i]))]))
    width = padded_taps(int(half.max())) if len(keys) else TAP_ALIGN
    if len(keys) == 1 and found[keys[0]].shape[1] == width:
        return found[keys[0]][None]
    out = np.zeros((max(len(keys), 1), phases + 1, width), dtype=dtype)
    for v, k in enumerate(keys):
        out[v, :, :found[k].shape[1]] = found[k]
    return out


def _remember(key, table: np.ndarray) -> np.ndarray:
    """Keep ``table`` in the cache under ``key`` (dropping the least recently used beyond
    :data:`TABLE_CACHE_BYTES`); returns it."""
    _CACHE[key] = table
    total = sum(t.nbytes for t in _CACHE.values())
    while total > TABLE_CACHE_BYTES and len(_CACHE) > 1:
        total -= _CACHE.popitem(last=False)[1].nbytes
    return table


@jit_cpu(inline="always")
def table_run(xc, oc, j0, j1, origin, slope, L, f, h, rows, width):
    """``oc[j]`` for ``j`` in ``[j0, j1)`` at positions ``p = origin + (j - origin) * slope`` from
    one channel's input ``xc`` (``(T,)``, valid length ``L``) and one table's ``rows`` (cutoff
    ``f``, ``(K + 1, width)``, ``h`` taps per side). Where every padded tap (``padded_taps(h)
    <= width``) lies inside the clip: the dot product over the padded row, on a tabulated phase
    without interpolation, two neighbouring outputs per loop over the taps where both are such
    points of the same kind (two independent sums: the same values as one at a time); near an
    end (and for a unit impulse, cutoff 1 at an integer position) :func:`_edge_point` (module
    docstring). One channel per call: the loop over output samples is the inner one, its slices
    contiguous views."""
    wide = padded_taps(h)
    tight = wide <= width
    K = rows.shape[0] - 1
    unit = f == 1.0
    j = j0
    while j < j1:
        p = origin + (j - origin) * slope
        base = math.floor(p)
        first = int(base) - h + 1
        if not (tight and first >= 0 and first + wide <= L and not (unit and p == base)):
            oc[j] = _edge_point(xc, L, p, f, h, rows)
            j += 1
            continue
        phase = (p - base) * K  # exact: p - base in [0, 1), K a power of 2
        row = min(int(phase), K - 1)
        if j + 1 < j1:
            q = origin + (j + 1 - origin) * slope
            base2 = math.floor(q)
            first2 = int(base2) - h + 1
            if first2 >= 0 and first2 + wide <= L and not (unit and q == base2):
                phase2 = (q - base2) * K
                row2 = min(int(phase2), K - 1)
                if phase != row and phase2 != row2:
                    oc[j], oc[j + 1] = _lerp_dot2(rows[row, :wide], rows[row + 1, :wide], numba.float32(phase - row),
                                                  xc[first:first + wide], rows[row2, :wide], rows[row2 + 1, :wide],
                                                  numba.float32(phase2 - row2), xc[first2:first2 + wide])
                    j += 2
                    continue
                if phase == row and phase2 == row2:
                    oc[j], oc[j + 1] = _dot2(rows[row, :wide], xc[first:first + wide], rows[row2, :wide],
                                             xc[first2:first2 + wide])
                    j += 2
                    continue
        if phase == row:
            oc[j] = _dot(rows[row, :wide], xc[first:first + wide])
        else:
            oc[j] = _lerp_dot(rows[row, :wide], rows[row + 1, :wide], numba.float32(phase - row), xc[first:first + wide])
        j += 1


@jit_cpu(inline="always")
def _edge_point(xc, L, p, f, h, rows):
    """The tabulated output at position ``p`` of one channel ``xc`` (valid length ``L``) from the
    taps inside ``[0, L)`` (module docstring): zero where none is, the input sample for a unit
    impulse."""
    K = rows.shape[0] - 1
    base = math.floor(p)
    centre = int(base)
    if f == 1.0 and p == base:  # the exact kernel's unit impulse
        return xc[centre] if centre >= 0 and centre < L else 0.0
    phase = (p - base) * K  # exact: p - base in [0, 1), K a power of 2
    row = min(int(phase), K - 1)
    first = centre - h + 1
    lo, hi = max(first, 0), min(centre + h + 1, L)
    if hi <= lo:  # every tap outside the clip
        return 0.0
    w0 = rows[row, lo - first:hi - first]
    if phase == row:  # the position is on a tabulated phase (e.g. a 5:4 segment): no interpolation
        return _dot(w0, xc[lo:hi])
    return _lerp_dot(w0, rows[row + 1, lo - first:hi - first], numba.float32(phase - row), xc[lo:hi])


def plan_tables(cutoff: torch.Tensor, use: torch.Tensor, zeros: int):
    """``(table_of, half, cutoffs)`` of a CPU launch from the host per-clip ``cutoff``
    (float64 ``(B,)``) and ``use`` (bool ``(B,)``: the clips that run on a table): one table
    per distinct cutoff among the used clips (``table_of[b]``: its index, ``-1``: the exact
    kernel); ``half[v]``: ``h = ceil(zeros / f)`` of table ``v``."""
    B = cutoff.shape[0]
    table_of = torch.full((B,), -1, dtype=torch.int64)
    if not bool(use.any()):
        return table_of.numpy(), np.zeros(1, dtype=np.int64), np.zeros(0)
    cutoffs, inverse = torch.unique(cutoff[use], return_inverse=True)
    table_of[use] = inverse
    cutoffs = cutoffs.numpy()
    half = np.array([math.ceil(zeros / float(fc)) for fc in cutoffs], dtype=np.int64)
    return table_of.numpy(), half, cutoffs


def table_groups(min_cutoff: float, batch: int, zeros: int, row_bytes: int, budget: int) -> list[slice]:
    """Consecutive groups of the ``batch`` clips whose tables (at most one per clip, none wider
    than the one of ``min_cutoff``) fit in ``budget`` bytes (``row_bytes``: bytes of one table
    row per tap)."""
    widest = padded_taps(math.ceil(zeros / min_cutoff)) if batch else 0
    size = max(1, budget // max(widest * row_bytes, 1))
    return [slice(b, min(b + size, batch)) for b in range(0, batch, size)]
