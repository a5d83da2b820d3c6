"""The fused segment speed-up kernel (gpuaug.kernels.segment_warp) vs the general warp and torch.

It evaluates speed_segment's time map on the fly; the general warp kernel reads the same
positions from a table, so on the CPU its exact path (``exact=True``, the default for float64)
and the general kernel must agree bit for bit. The tabulated path (the CPU default for
float32) is held to its stated error bound ``TABLE_ERROR_DB`` against the exact one, on random
clips / segments / factors and on the sign-aligned worst-case signal; a coarse table (K = 4)
must violate that bound. The ``@cuda.jit`` twin (always exact) runs on the CUDA simulator
without a GPU.
"""
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st

import gpuaug.kernels.segment_warp as sw
from gpuaug.functional.resample import DEFAULT_ROLLOFF, warp
from gpuaug.functional.speed import speed_segment
from harness import check_op, mixed_batch
from reference.resample_ref import kernel_ref

TOL = {torch.float32: dict(atol=2e-5, rtol=1e-5), torch.float64: dict(atol=1e-11, rtol=1e-11)}


def segment_table(lengths, start, length, factor):
    """speed_segment's piecewise time map as a (B, T_out) position / cutoff table (torch side)."""
    s = torch.minimum(start, lengths)
    n = torch.minimum(start + length, lengths) - s
    m = torch.round(n.double() / factor).long()
    new_lengths = lengths - n + m
    j = torch.arange(int(new_lengths.max()), dtype=torch.float64)[None, :]
    s64, n64, m64 = (v.double()[:, None] for v in (s, n, m))
    slope = n64 / m64.clamp(min=1.0)
    inside = (j >= s64) & (j < s64 + m64)
    pos = torch.where(j < s64, j, torch.where(inside, s64 + (j - s64) * slope, j - m64 + n64))
    fc = torch.where(inside, DEFAULT_ROLLOFF * torch.clamp(1.0 / slope, max=1.0), 1.0)
    return pos, fc, new_lengths, (s, n, m)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("C", [None, 2])
def test_fused_equals_general_kernel_and_matches_torch(dtype, C):
    """The exact path (``exact=True``; since the tabulated path became the float32 default this
    test asks for it explicitly) is bit-identical to the general warp kernel."""
    wave, lengths = mixed_batch(B=4, T=2500, C=C, dtype=dtype, seed=21)
    start, length = torch.tensor([0, 300, 2000, 10]), torch.tensor([900, 0, 800, 2500])
    factor = torch.tensor([1.25, 1.3, 0.6, 2.0], dtype=torch.float64)
    out, out_len = speed_segment(wave, lengths, start=start, length=length, factor=factor, backend="numba",
                                 exact=True)
    pos, fc, new_lengths, _ = segment_table(lengths, start, length, factor)
    general, _ = warp(wave, lengths, pos, new_lengths, fc, backend="numba")
    keep = (out_len == lengths).view(-1, *([1] * (wave.dim() - 1)))  # pass-through clips
    assert torch.equal(out_len, new_lengths)
    assert torch.equal(torch.where(keep, out, general), out)
    assert torch.equal(out[~keep.flatten()], general[~keep.flatten()])
    ref, ref_len = speed_segment(wave, lengths, start=start, length=length, factor=factor, backend="torch")
    assert torch.equal(out_len, ref_len) and out.dtype == dtype
    torch.testing.assert_close(out, ref, **TOL[dtype])


def test_fused_contract():
    wave, lengths = mixed_batch(B=3, T=1200, C=2, dtype=torch.float32, seed=4)
    check_op(speed_segment, wave, lengths, start=torch.tensor([100, 0, 50]), length=torch.tensor([400, 300, 0]),
             factor=torch.tensor([1.25, 0.8, 1.5], dtype=torch.float64), backend="numba")


def _edge_case(L, start, length, factor, pad):
    """Two clips (length ``L`` and ``min(L, 3)``, ``pad`` zeros of slack) and their segment arguments."""
    g = torch.Generator().manual_seed(L * 7 + start)
    wave = torch.randn(2, L + pad, generator=g, dtype=torch.float64)
    lengths = torch.tensor([L, min(L, 3)])
    kw = dict(start=torch.tensor([start, 0]), length=torch.tensor([length, 2]),
              factor=torch.tensor([factor, factor], dtype=torch.float64))
    return wave, lengths, kw


@settings(max_examples=40, deadline=None)
@given(L=st.integers(0, 200), start=st.integers(0, 220), length=st.integers(0, 220),
       factor=st.floats(0.5, 2.0), pad=st.integers(0, 30))
def test_fused_edge_cases_match_torch(L, start, length, factor, pad):
    """Empty clips, 1-sample clips, segments past the end, segments that shrink to 0 samples."""
    wave, lengths, kw = _edge_case(L, start, length, factor, pad)
    ref, ref_len = speed_segment(wave, lengths, backend="torch", **kw)
    out, out_len = speed_segment(wave, lengths, backend="numba", **kw)
    assert torch.equal(out_len, ref_len) and out.shape == ref.shape
    torch.testing.assert_close(out, ref, **TOL[torch.float64])


@pytest.mark.parametrize("dtype,C", [(np.float32, 1), (np.float64, 2)])
def test_cuda_kernel_matches_torch(dtype, C):
    """``@cuda.jit`` twin launched with host arrays (CUDA simulator without a GPU)."""
    wave, lengths = mixed_batch(B=2, T=40, C=C, dtype=torch.float64, seed=13)
    x3 = wave.reshape(2, C, 40).to(torch.float32 if dtype == np.float32 else torch.float64)
    start, length = torch.tensor([5, 0]), torch.tensor([20, 12])
    factor = torch.tensor([1.25, 0.7], dtype=torch.float64)
    ref, ref_len = speed_segment(x3, lengths, start=start, length=length, factor=factor, backend="torch")
    _, _, new_lengths, (s, n, m) = segment_table(lengths, start, length, factor)
    seg = torch.stack([s, n, m], dim=1).numpy()
    out = np.full((2, C, int(new_lengths.max())), 7.0, dtype=dtype)  # every sample is written
    sw._launch_cuda(x3.numpy(), lengths.numpy(), seg, new_lengths.numpy(), out, 24, DEFAULT_ROLLOFF)
    tol = TOL[torch.float32] if dtype == np.float32 else TOL[torch.float64]
    torch.testing.assert_close(torch.from_numpy(out), ref, **tol)
    assert np.array_equal(out[0, :, :5], x3.numpy()[0, :, :5])  # untouched head copied bit for bit


# ---------------------------------------------------------------- tabulated sinc (CPU fast path)

BOUND = 10.0 ** (sw.TABLE_ERROR_DB / 20)  # the stated bound as a fraction of the clip's peak


def exact_weights(frac, f, zeros=24):
    """Normalised weights of the taps floor(p) - h + 1 .. floor(p) + h at fractional positions
    ``frac`` (float64, from the independent reference kernel)."""
    h = math.ceil(zeros / f)
    t = np.arange(-h + 1, h + 1)
    w = kernel_ref((t[None, :] - np.asarray(frac)[:, None]) * f, zeros)
    return w / w.sum(1, keepdims=True)


def table_weights(table, frac):
    """The tabulated path's weights: rows floor(frac K), + 1 of ``table``, interpolated."""
    K = table.shape[0] - 1
    row = np.minimum((np.asarray(frac) * K).astype(np.int64), K - 1)
    a = (np.asarray(frac) * K - row)[:, None]
    t = table.astype(np.float64)
    return t[row] + a * (t[row + 1] - t[row])


def run_kernel(wave, lengths, start, length, factor, *, exact, phases=sw.TABLE_PHASES, rolloff=DEFAULT_ROLLOFF):
    """segment_warp_kernel as speed_segment calls it, with a chosen table size."""
    s = torch.minimum(start, lengths)
    n = torch.minimum(start + length, lengths) - s
    m = torch.round(n.double() / factor).long()
    new_lengths = lengths - n + m
    x3 = wave if wave.dim() == 3 else wave[:, None]
    out = sw.segment_warp_kernel(x3, lengths, s, n, m, new_lengths, zeros=24, rolloff=rolloff,
                                 t_out=int(new_lengths.max()), exact=exact, phases=phases)
    return out, new_lengths, (s, n, m)


def random_case(seed, B=24, T=6000, worst_case=False):
    """White noise (random peak) clips, random segments (>= TABLE_MIN_SAMPLES output samples)
    and factors uniform in [0.5, 2]; float64 wave."""
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(T // 2, T + 1, (B,), generator=g)
    wave = (torch.rand(B, T, generator=g, dtype=torch.float64) * 2 - 1)
    wave = wave * (10.0 ** (torch.rand(B, 1, generator=g, dtype=torch.float64) * 4 - 3))  # peaks 1e-3 .. 10
    wave = wave * (torch.arange(T) < lengths[:, None])
    factor = 0.5 + 1.5 * torch.rand(B, generator=g, dtype=torch.float64)
    length = torch.randint(1100, 2500, (B,), generator=g)
    start = (torch.rand(B, generator=g) * (lengths - length + 200).clamp(min=1)).long()  # some run past L
    return wave, lengths, start, length, factor


def worst_error_db(wave, lengths, start, length, factor, *, phases=sw.TABLE_PHASES, rolloff=DEFAULT_ROLLOFF,
                   dtype=torch.float32):
    """Worst |tabulated - exact| of each clip over its peak |x| (dB), exact in float64."""
    ref, new_lengths, _ = run_kernel(wave, lengths, start, length, factor, exact=True, rolloff=rolloff)
    out, _, (s, n, m) = run_kernel(wave.to(dtype), lengths, start, length, factor, exact=False, phases=phases,
                                   rolloff=rolloff)
    assert bool((m * 1 >= sw.TABLE_MIN_SAMPLES).all())  # every clip ran on a table
    err = (out.double() - ref).abs().amax(dim=(1, 2)) / wave.abs().amax(dim=-1)
    return 20 * math.log10(float(err.max())), out, ref, new_lengths


@pytest.mark.parametrize("f", [1.0, DEFAULT_ROLLOFF, DEFAULT_ROLLOFF / 1.25, DEFAULT_ROLLOFF / 2, 0.3, 0.05])
def test_table_weights_within_bound(f):
    """Signal-independent part of the bound: at every phase (mid-phases, where linear
    interpolation errs most, and random ones) the L1 norm of (interpolated - exact) weights,
    which bounds |y_tab - y_exact| / max|x|, stays below the stated bound; a K = 4 table does not."""
    phi = np.concatenate([(np.arange(sw.TABLE_PHASES) + 0.5) / sw.TABLE_PHASES,
                          np.random.default_rng(1).random(500)])
    worst = {}
    for dtype in (np.float32, np.float64):
        table = sw.sinc_table(f, 24, dtype=dtype)
        assert table.shape == (sw.TABLE_PHASES + 1, 2 * math.ceil(24 / f)) and table.dtype == dtype
        np.testing.assert_allclose(table.astype(np.float64), exact_weights(np.arange(sw.TABLE_PHASES + 1) /
                                                                           sw.TABLE_PHASES, f), rtol=0, atol=1e-7)
        worst[dtype] = np.abs(table_weights(table, phi) - exact_weights(phi, f)).sum(1).max()
        assert worst[dtype] < BOUND, (f, dtype, 20 * np.log10(worst[dtype]))
    coarse = np.abs(table_weights(sw.sinc_table(f, 24, phases=4), phi) - exact_weights(phi, f)).sum(1).max()
    assert coarse > BOUND  # the check can fail (K = 4: -72 dB at f = 0.05, -18 dB at f = 1)


@pytest.mark.parametrize("rolloff", [DEFAULT_ROLLOFF, 1.0])
def test_tabulated_error_bound_on_random_clips(rolloff):
    """Worst error of the float32 tabulated path against the float64 exact kernel over 3 x 24
    random white-noise clips, segments and factors in [0.5, 2] stays below TABLE_ERROR_DB
    (measured: -109.1 to -110.5 dB per seed at rolloff 0.945, -107.7 to -109.4 dB at rolloff 1);
    a K = 4 table fails (-25 dB)."""
    worst = []
    for seed in range(3):
        case = random_case(seed)
        db, out, ref, new_lengths = worst_error_db(*case, rolloff=rolloff)
        worst.append(db)
        wave, lengths, start, length, factor = case
        s = torch.minimum(start, lengths)
        n = torch.minimum(start + length, lengths) - s
        m = torch.round(n.double() / factor).long()
        x32 = wave.float()
        for b in range(wave.shape[0]):  # outside the segment: copies bit for bit, zero padding
            sb, nb, mb, Lb = int(s[b]), int(n[b]), int(m[b]), int(lengths[b])
            assert torch.equal(out[b, 0, :sb], x32[b, :sb])
            assert torch.equal(out[b, 0, sb + mb:Lb - nb + mb], x32[b, sb + nb:Lb])
            assert bool((out[b, 0, Lb - nb + mb:] == 0).all())
    assert max(worst) < sw.TABLE_ERROR_DB, worst
    assert worst_error_db(*random_case(0), phases=4, rolloff=rolloff)[0] > sw.TABLE_ERROR_DB  # the check can fail
    # float64 tables (exact=False on float64 input) meet the same bound
    assert worst_error_db(*random_case(5), rolloff=rolloff, dtype=torch.float64)[0] < sw.TABLE_ERROR_DB


@pytest.mark.parametrize("factor", [0.53, 0.8, 1.27, 1.93])
def test_tabulated_worst_case_signal_reaches_the_weight_bound(factor):
    """The sign pattern of the weight error at one output sample (the one whose phase is
    closest to a mid-phase of the table) drives the error there to the L1 norm of the weight
    error: below the stated bound and, at the largest cutoff (factor <= 1: f = 0.945), within
    8 dB of it (measured: -104.8 and -105.3 dB; -109.4 / -117.2 dB at f = 0.744 / 0.490), so
    the bound is tight; white noise stays a few dB lower."""
    T, s, n = 6000, 1000, 3001
    m = round(n / factor)
    slope = n / m
    f = DEFAULT_ROLLOFF * min(1.0, 1.0 / slope)
    table = sw.sinc_table(f, 24)
    K = sw.TABLE_PHASES
    ks = np.arange(m // 4, 3 * m // 4)
    frac = s + ks * slope - np.floor(s + ks * slope)
    k = int(ks[np.argmin(np.abs(frac * K - np.floor(frac * K) - 0.5))])
    p = s + k * slope
    centre, phi = int(math.floor(p)), p - math.floor(p)
    h = math.ceil(24 / f)
    diff = table_weights(table, [phi])[0] - exact_weights([phi], f)[0]
    wave = torch.from_numpy(np.random.default_rng(2).uniform(-1, 1, (1, T)))
    wave[0, centre - h + 1:centre + h + 1] = torch.from_numpy(np.sign(diff))
    lengths = torch.tensor([T])
    kw = dict(start=torch.tensor([s]), length=torch.tensor([n]), factor=torch.tensor([factor], dtype=torch.float64))
    ref, _, _ = run_kernel(wave, lengths, exact=True, **kw)
    out, _, _ = run_kernel(wave.float(), lengths, exact=False, **kw)
    at = float((out[0, 0, s + k].double() - ref[0, 0, s + k]).abs())
    assert at == pytest.approx(np.abs(diff).sum(), rel=0.1)  # float32 accumulation: a few 1e-8
    assert 20 * math.log10(at) < sw.TABLE_ERROR_DB
    if factor <= 1:
        assert 20 * math.log10(at) > sw.TABLE_ERROR_DB - 8
    assert float((out.double() - ref).abs().max()) < BOUND


def test_default_modes_and_dtypes():
    """float64: exact by default (bit-identical to exact=True); float32: tabulated by default
    (bit-identical to exact=False, different from exact, within the bound); float16/bfloat16
    run the float32 table and keep their dtype."""
    wave, lengths = mixed_batch(B=3, T=4000, C=2, dtype=torch.float64, seed=8)
    kw = dict(start=torch.tensor([100, 1000, 0]), length=torch.tensor([2000, 3000, 1500]),
              factor=torch.tensor([1.25, 0.7, 1.9], dtype=torch.float64), backend="numba")
    d64, _ = speed_segment(wave, lengths, **kw)
    assert torch.equal(d64, speed_segment(wave, lengths, exact=True, **kw)[0])
    t64, _ = speed_segment(wave, lengths, exact=False, **kw)
    assert not torch.equal(t64, d64) and float((t64 - d64).abs().max()) < BOUND * float(wave.abs().max())
    w32 = wave.float()
    d32, _ = speed_segment(w32, lengths, **kw)
    e32, _ = speed_segment(w32, lengths, exact=True, **kw)
    assert torch.equal(d32, speed_segment(w32, lengths, exact=False, **kw)[0]) and not torch.equal(d32, e32)
    assert float((d32.double() - d64).abs().max()) < BOUND * float(wave.abs().max())
    for half in (torch.float16, torch.bfloat16):
        out, _ = speed_segment(wave.to(half), lengths, **kw)
        ref, _ = speed_segment(wave.to(half).float(), lengths, **kw)
        assert out.dtype == half and torch.equal(out, ref.to(half))


def test_tabulated_contract():
    """Lengths, zero padding, dtype, batched == single, no in-place change on the table path
    (segments long enough for tables), float32 default and float64 exact=False."""
    for dtype, kw in ((torch.float32, {}), (torch.float64, {"exact": False})):
        wave, lengths = mixed_batch(B=3, T=4000, C=2, dtype=dtype, seed=6)
        out, out_len = check_op(speed_segment, wave, lengths, start=torch.tensor([300, 0, 1000]),
                                length=torch.tensor([2000, 4000, 1200]),
                                factor=torch.tensor([1.25, 0.6, 1.7], dtype=torch.float64), backend="numba", **kw)
        for b in range(3):  # each clip's table depends on its own cutoff only: batched == single bit for bit
            L = int(lengths[b])
            one, _ = speed_segment(wave[b:b + 1, :, :L], lengths[b:b + 1], start=[300, 0, 1000][b],
                                   length=[2000, 4000, 1200][b], factor=[1.25, 0.6, 1.7][b], backend="numba", **kw)
            assert torch.equal(one[0], out[b, :, :int(out_len[b])])


def test_table_memory_groups_give_the_same_result(monkeypatch):
    """Batches whose tables would exceed segment_warp._TABLE_BYTES run in groups of clips (here
    one clip per group): the same output bit for bit."""
    wave, lengths = mixed_batch(B=4, T=4000, dtype=torch.float32, seed=11)
    kw = dict(start=torch.tensor([0, 500, 1000, 200]), length=torch.tensor([3000, 2000, 2500, 4000]),
              factor=torch.tensor([1.25, 0.55, 1.8, 1.1], dtype=torch.float64), backend="numba")
    whole, _ = speed_segment(wave, lengths, **kw)
    monkeypatch.setattr(sw, "_TABLE_BYTES", 1)
    assert len(sw._table_groups(torch.tensor([3000] * 4), torch.tensor([2400] * 4), 24, 0.945, 4)) == 4
    assert torch.equal(speed_segment(wave, lengths, **kw)[0], whole)


def test_short_segments_run_exact_and_phases_checked():
    """Segments of fewer than TABLE_MIN_SAMPLES output samples x channels use the exact kernel
    (a table would cost more than it saves); K must be a power of 2."""
    wave, lengths = mixed_batch(B=2, T=3000, dtype=torch.float32, seed=3)
    start, length = torch.tensor([100, 200]), torch.tensor([400, 2000])
    factor = torch.tensor([1.25, 1.25], dtype=torch.float64)  # m = 320 (exact) and 1600 (table)
    tab, _, _ = run_kernel(wave, lengths, start, length, factor, exact=False)
    ex, _, _ = run_kernel(wave, lengths, start, length, factor, exact=True)
    assert torch.equal(tab[0], ex[0]) and not torch.equal(tab[1], ex[1])
    with pytest.raises(ValueError, match="power of 2"):
        run_kernel(wave, lengths, start, length, factor, exact=False, phases=500)


def test_tabulated_unit_impulse_at_cutoff_one():
    """rolloff 1 and factor 0.5: cutoff 1, every other position an integer; there the table
    path copies the input sample bit for bit (as the exact kernel's unit impulse)."""
    wave, lengths = mixed_batch(B=1, T=3000, dtype=torch.float32, seed=5)
    s, n = 500, 1000
    out, _, (_, _, m) = run_kernel(wave, lengths, torch.tensor([s]), torch.tensor([n]),
                                   torch.tensor([0.5], dtype=torch.float64), exact=False, rolloff=1.0)
    assert int(m[0]) == 2 * n
    assert torch.equal(out[0, 0, s:s + 2 * n:2], wave[0, s:s + n])
    ex, _, _ = run_kernel(wave, lengths, torch.tensor([s]), torch.tensor([n]),
                          torch.tensor([0.5], dtype=torch.float64), exact=True, rolloff=1.0)
    assert torch.equal(out[0, 0, s:s + 2 * n:2], ex[0, 0, s:s + 2 * n:2])


@settings(max_examples=40, deadline=None)
@given(L=st.integers(0, 200), start=st.integers(0, 220), length=st.integers(0, 220),
       factor=st.floats(0.5, 2.0), pad=st.integers(0, 30))
def test_tabulated_edge_cases_match_torch(L, start, length, factor, pad):
    """The edge cases of test_fused_edge_cases_match_torch on the table path (tables forced
    for every segment): empty and 1-sample clips, segments at both clip ends and past them,
    segments that shrink to 0 samples; within the bound of torch's exact result."""
    wave, lengths, kw = _edge_case(L, start, length, factor, pad)
    ref, ref_len = speed_segment(wave, lengths, backend="torch", **kw)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(sw, "TABLE_MIN_SAMPLES", 0)
        out, out_len = speed_segment(wave.float(), lengths, backend="numba", **kw)
    assert torch.equal(out_len, ref_len) and out.shape == ref.shape and out.dtype == torch.float32
    peak = float(wave.abs().max()) if wave.numel() else 0.0
    torch.testing.assert_close(out.double(), ref, atol=BOUND * peak + 1e-12, rtol=0)


def test_exact_factor_segments_share_one_table_on_its_phases():
    """Segments of multiples of 5 samples sped up 1.25x (what SpeedSegment draws): slope exactly
    5/4, so every clip shares one cutoff (one table) and every position falls on a tabulated phase
    (the row read alone, no interpolation); still within the stated bound of the exact kernel."""
    g = torch.Generator().manual_seed(3)
    B, T = 12, 8000
    lengths = torch.randint(6000, T + 1, (B,), generator=g)
    wave = (torch.rand(B, T, generator=g, dtype=torch.float64) * 2 - 1) * (torch.arange(T) < lengths[:, None])
    length = torch.randint(200, 500, (B,), generator=g) * 5
    start = (torch.rand(B, generator=g) * (lengths - length)).long()
    factor = torch.full((B,), 1.25, dtype=torch.float64)
    n = length
    m = torch.round(n.double() / factor).long()
    assert torch.equal(m * 5, n * 4)  # exactly 5:4
    table_of, half, cutoffs = sw._plan_tables(n, m, 1, 24, DEFAULT_ROLLOFF, False)
    assert len(cutoffs) == 1 and bool((torch.as_tensor(table_of) == 0).all())
    db = worst_error_db(wave, lengths, start, length, factor)[0]
    assert db < sw.TABLE_ERROR_DB, db
    phases = ((torch.arange(400)[None] * n[:, None].double() / m[:, None].double()) % 1.0) * sw.TABLE_PHASES
    assert bool((phases == phases.round()).all())  # on tabulated phases: the kernel's no-interpolation branch


def test_speed_segment_transform_plays_segments_exactly_factor_faster():
    """SpeedSegment rounds the segment to a multiple of p for a factor p / q (1.25 = 5 / 4): new
    length L - n + 4 n / 5 exactly; other factors keep round(fraction * L)."""
    from gpuaug.transforms import Pipeline, SpeedSegment
    from gpuaug.transforms.timing import exact_segment_lengths

    L = torch.tensor([32000, 128000, 7, 3, 100, 50])
    f = torch.tensor([1.25, 1.25, 1.25, 1.1, 1.0725, 1.25], dtype=torch.float64)
    got = exact_segment_lengths(torch.tensor([6400.4, 22222.7, 6.9, 2.2, 12.6, 49.9], dtype=torch.float64), f, L)
    assert got.tolist() == [6400, 22225, 5, 0, 13, 50]  # nearest multiple of 5 / 11 / 1, never above L
    wave = torch.randn(4, 16000) * 0.1
    lengths = torch.tensor([16000, 15000, 9001, 12345])
    res = Pipeline([SpeedSegment()])(wave, lengths, seed=5)
    seg = torch.tensor([r[0]["length"] for r in res.record])
    assert bool((seg % 5 == 0).all()) and bool((seg > 0).all())
    assert torch.equal(res.lengths, lengths - seg + seg * 4 // 5)
