"""Kernels of the windowed-sinc resampler (gpuaug.kernels.warp_sinc) vs the torch reference.

CPU ``@njit`` through the functional ops (``backend="numba"``), the ``@cuda.jit`` kernel on
the CUDA simulator (tiny inputs, launched directly with numpy arrays), the CUDA C source
(compiled with nvcc; its math run on the host with the C++ compiler) and the transforms'
backend records.
"""
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st

import gpuaug.kernels.warp_sinc as ws
from gpuaug import backend as gb
from gpuaug.functional.pitch import pitch_shift
from gpuaug.functional.resample import MIN_CUTOFF, resample, warp
from gpuaug.functional.speed import speed, speed_segment
from gpuaug.transforms import Pipeline, PitchShift, Speed, SpeedSegment
from harness import check_op, mixed_batch
from reference.resample_ref import warp_ref

CU_SOURCE = Path(ws.__file__).with_name("warp_sinc.cu")
TOL = {torch.float32: dict(atol=2e-5, rtol=1e-5), torch.float64: dict(atol=1e-11, rtol=1e-11)}


def random_warp_inputs(B=3, T=900, C=None, dtype=torch.float64, seed=0):
    """Mixed-length batch, non-monotonic positions (some outside the clip), per-sample cutoffs."""
    wave, lengths = mixed_batch(B=B, T=T, C=C, dtype=dtype, seed=seed)
    g = torch.Generator().manual_seed(seed + 1)
    t_out = T + 100
    new_lengths = torch.randint(0, t_out + 1, (B,), generator=g)
    new_lengths[-1] = t_out
    positions = torch.rand(B, t_out, generator=g, dtype=torch.float64) * (lengths[:, None].double() + 80) - 40
    cutoff = 0.2 + 0.8 * torch.rand(B, t_out, generator=g, dtype=torch.float64)
    return wave, lengths, positions, new_lengths, cutoff


# ---------------------------------------------------------------- CPU (njit) vs torch


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("C", [None, 2])
def test_warp_numba_matches_torch(dtype, C):
    wave, lengths, pos, new_lengths, cutoff = random_warp_inputs(C=C, dtype=dtype)
    ref, ref_len = warp(wave, lengths, pos, new_lengths, cutoff, backend="torch")
    out, out_len = warp(wave, lengths, pos, new_lengths, cutoff, backend="numba")
    assert torch.equal(out_len, ref_len) and out.dtype == dtype and out.shape == ref.shape
    torch.testing.assert_close(out, ref, **TOL[dtype])
    # per-clip (B, T') cutoff tables, a (B,) cutoff and a scalar go through the same kernel
    for fc in (cutoff[:, 0], 0.5):
        torch.testing.assert_close(warp(wave, lengths, pos, new_lengths, fc, backend="numba")[0],
                                   warp(wave, lengths, pos, new_lengths, fc, backend="torch")[0], **TOL[dtype])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_warp_numba_contract(dtype):
    wave, lengths, pos, new_lengths, cutoff = random_warp_inputs(B=3, T=600, C=2, dtype=dtype, seed=5)
    check_op(warp, wave, lengths, positions=pos, new_lengths=new_lengths, cutoff=cutoff, backend="numba")


def test_warp_numba_vs_float64_reference():
    """One clip at a time against the direct-sum numpy reference (incl. the smallest cutoff)."""
    wave, lengths, pos, new_lengths, cutoff = random_warp_inputs(B=2, T=500, C=2, seed=7)
    cutoff[1, :50] = MIN_CUTOFF
    out, _ = warp(wave, lengths, pos, new_lengths, cutoff, backend="numba")
    for b in range(2):
        L, n = int(lengths[b]), int(new_lengths[b])
        ref = warp_ref(wave[b, :, :L].numpy(), pos[b, :n].numpy(), cutoff[b, :n].numpy())
        np.testing.assert_allclose(out[b, :, :n].numpy(), ref, atol=1e-11)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_speed_family_numba_matches_torch(dtype):
    wave, lengths = mixed_batch(B=3, T=3000, dtype=dtype, seed=3)
    cases = [
        (speed, dict(factor=torch.tensor([0.7, 1.0, 1.6], dtype=torch.float64))),
        (speed_segment, dict(start=torch.tensor([100, 0, 2500]), length=torch.tensor([800, 0, 900]),
                             factor=torch.tensor([1.25, 1.1, 0.6], dtype=torch.float64))),
        (resample, dict(ratio=torch.tensor([16000 / 22050, 1.0, 1.5], dtype=torch.float64))),
        (pitch_shift, dict(semitones=torch.tensor([3.0, 0.0, -5.0], dtype=torch.float64))),
    ]
    for op, kw in cases:
        ref, ref_len = op(wave, lengths, backend="torch", **kw)
        out, out_len = op(wave, lengths, backend="numba", **kw)
        assert torch.equal(out_len, ref_len), op.__name__
        torch.testing.assert_close(out, ref, **TOL[dtype], msg=op.__name__)


def test_unit_impulse_copies_bit_for_bit():
    """Cutoff 1 at integer positions copies the input exactly (the untouched parts of a
    segment speed-up), and positions outside the clip read zeros."""
    wave, lengths = mixed_batch(B=2, T=700, dtype=torch.float32, seed=9)
    pos = torch.arange(-30, 770, dtype=torch.float64).expand(2, -1)
    out, _ = warp(wave, lengths, pos, torch.full((2,), 800), 1.0, backend="numba")
    padded = torch.nn.functional.pad(wave, (30, 70))
    assert torch.equal(out, padded)
    seg, seg_len = speed_segment(wave, lengths, start=200, length=300, factor=1.25, backend="numba")
    m = round(300 / 1.25)
    assert torch.equal(seg[:, :200], wave[:, :200])
    for b in range(2):
        assert torch.equal(seg[b, 200 + m : int(seg_len[b])], wave[b, 500 : int(lengths[b])])


def test_speed_changes_tone_frequency():
    """A 1 kHz tone played 1.25x faster peaks at 1.25 kHz (numba path)."""
    sr, n = 16000, 8000
    x = (0.5 * torch.sin(2 * torch.pi * 1000 * torch.arange(n) / sr))[None]
    y, ly = speed(x, torch.tensor([n]), factor=1.25, backend="numba")
    spec = torch.fft.rfft(y[0, : int(ly[0])] * torch.hann_window(int(ly[0]), dtype=y.dtype)).abs()
    peak = float(spec.argmax()) * sr / int(ly[0])
    assert abs(peak - 1250) < 5
    assert int(ly[0]) == round(n / 1.25)


@settings(max_examples=15, deadline=None)
@given(
    L=st.integers(0, 40),
    n=st.integers(0, 60),
    fc=st.sampled_from([MIN_CUTOFF, 0.5, 0.945, 1.0]),
    shift=st.floats(-100, 100),
    scale=st.sampled_from([0.0, 1.0, 1e3]),
)
def test_warp_numba_edge_cases(L, n, fc, shift, scale):
    """Silence, full scale, 1-sample and empty clips, positions far outside."""
    g = torch.Generator().manual_seed(L * 100 + n)
    wave = torch.zeros(1, 40, dtype=torch.float64)
    wave[0, :L] = scale * torch.rand(L, generator=g, dtype=torch.float64).sign()
    pos = shift + torch.arange(max(n, 1), dtype=torch.float64)[None] * 0.7
    ref, _ = warp(wave, torch.tensor([L]), pos, torch.tensor([n]), fc, backend="torch")
    out, _ = warp(wave, torch.tensor([L]), pos, torch.tensor([n]), fc, backend="numba")
    torch.testing.assert_close(out, ref, atol=1e-11 * max(scale, 1.0), rtol=1e-11)


def test_warp_numba_rejects_bad_input():
    wave = torch.zeros(1, 10)
    with pytest.raises(ValueError):
        warp(wave, torch.tensor([10]), torch.full((1, 5), float("nan")), torch.tensor([5]), backend="numba")
    with pytest.raises(ValueError):
        warp(wave, torch.tensor([10]), torch.zeros(1, 5), torch.tensor([5]), 0.01, backend="numba")
    with pytest.raises(ValueError, match="backend"):
        warp(wave, torch.tensor([10]), torch.zeros(1, 5), torch.tensor([5]), backend="opencl")


@pytest.mark.real_data
def test_real_speech_numba_matches_torch(emodb_speech):
    clips = [c[:16000] for c in emodb_speech[:2]]
    lengths = torch.tensor([c.numel() for c in clips])
    wave = torch.nn.utils.rnn.pad_sequence(clips, batch_first=True)
    for kw in (dict(factor=torch.tensor([0.8, 1.2])),):
        ref, _ = speed(wave, lengths, backend="torch", **kw)
        out, _ = speed(wave, lengths, backend="numba", **kw)
        torch.testing.assert_close(out, ref, atol=2e-6, rtol=1e-5)
        assert float(out.abs().max()) > 0.05


# ---------------------------------------------------------------- CUDA kernel (simulator)


@pytest.mark.parametrize("dtype,C", [(np.float32, 1), (np.float64, 2)])
def test_cuda_kernel_matches_torch(dtype, C):
    """``@cuda.jit`` kernel launched directly with host arrays (CUDA simulator without a GPU)."""
    wave, lengths = mixed_batch(B=2, T=40, C=C, dtype=torch.float64, seed=11)
    g = torch.Generator().manual_seed(12)
    t_out = 48 // C
    pos = torch.rand(2, t_out, generator=g, dtype=torch.float64) * 60 - 10
    pos[0, :4] = torch.arange(4.0)  # exact unit impulses
    fc = torch.where(torch.arange(t_out) < 4, 1.0, 0.4 + 0.6 * torch.rand(2, t_out, generator=g, dtype=torch.float64))
    new_lengths = torch.tensor([t_out - 5, t_out])
    x3 = wave.reshape(2, C, 40).to(torch.float32 if dtype == np.float32 else torch.float64)
    ref, _ = warp(x3, lengths, pos, new_lengths, fc, backend="torch")
    out = np.full((2, C, t_out), 7.0, dtype=dtype)  # every sample, padding included, is written
    ws.launch_cuda(x3.numpy(), lengths.numpy(), pos.numpy(), fc.numpy(), new_lengths.numpy(), out, 24)
    tol = TOL[torch.float32] if dtype == np.float32 else dict(atol=1e-11, rtol=1e-11)
    torch.testing.assert_close(torch.from_numpy(out), ref, **tol)
    assert np.array_equal(out[0, :, :4], x3.numpy()[0, :, :4])


# ---------------------------------------------------------------- CUDA C source


@pytest.mark.skipif(shutil.which("nvcc") is None, reason="nvcc not on PATH")
def test_cuda_c_source_compiles(tmp_path):
    ptx = tmp_path / "warp_sinc.ptx"
    subprocess.run(["nvcc", "--ptx", "-arch=sm_90", str(CU_SOURCE), "-o", str(ptx)], check=True,
                   capture_output=True, timeout=120)
    text = ptx.read_text()
    assert ".entry warp_sinc_f32" in text and ".entry warp_sinc_f64" in text


_HARNESS = r"""
#include "warp_sinc.cu"
#include <cstdio>
#include <vector>
int main() {
    long long L, n; int zeros;
    if (scanf("%lld %lld %d", &L, &n, &zeros) != 3) return 1;
    std::vector<double> x(L > 0 ? L : 1);
    for (long long i = 0; i < L; ++i) if (scanf("%lf", &x[i]) != 1) return 1;
    for (long long j = 0; j < n; ++j) {
        double p, f;
        if (scanf("%lf %lf", &p, &f) != 2) return 1;
        printf("%.17g\n", warp_point<double>(x.data(), L, p, f, zeros));
    }
    return 0;
}
"""


@pytest.mark.skipif(shutil.which("c++") is None, reason="no host C++ compiler")
def test_cuda_c_math_on_host_matches_torch(tmp_path):
    """The CUDA C per-sample function (``__host__ __device__``) compiled for the CPU."""
    src = tmp_path / "harness.cpp"
    src.write_text(_HARNESS)
    exe = tmp_path / "harness"
    subprocess.run(["c++", "-O1", "-I", str(CU_SOURCE.parent), str(src), "-o", str(exe)], check=True,
                   capture_output=True, timeout=120)
    wave, lengths, pos, new_lengths, cutoff = random_warp_inputs(B=1, T=300, seed=13)
    pos[0, :10] = torch.arange(10.0)
    cutoff[0, :10] = 1.0
    cutoff[0, 10:20] = MIN_CUTOFF
    L, n = int(lengths[0]), int(new_lengths[0])
    lines = [f"{L} {n} 24", " ".join(repr(float(v)) for v in wave[0, :L])]
    lines += [f"{float(p)!r} {float(f)!r}" for p, f in zip(pos[0, :n], cutoff[0, :n])]
    res = subprocess.run([str(exe)], input="\n".join(lines), capture_output=True, text=True, check=True, timeout=60)
    host = torch.tensor([float(v) for v in res.stdout.split()], dtype=torch.float64)
    ref, _ = warp(wave, lengths, pos, new_lengths, cutoff, backend="torch")
    torch.testing.assert_close(host, ref[0, :n], atol=1e-12, rtol=1e-12)
    assert torch.equal(host[:10], wave[0, :10])


# ---------------------------------------------------------------- dispatch and records


def test_registration_and_auto(monkeypatch):
    monkeypatch.delenv("GPUAUG_BACKEND", raising=False)
    monkeypatch.delenv("GPUAUG_BACKEND_WARP", raising=False)
    assert gb.kernels_for("warp") == {("numba", "cpu"): 0, ("numba", "cuda"): 0, ("cupy", "cuda"): 1}
    assert gb.resolve("warp", "cpu") == "numba"
    monkeypatch.setenv("GPUAUG_BACKEND_WARP", "torch")
    assert gb.resolve("warp", "cpu") == "torch"
    with pytest.raises(ValueError, match="no 'cupy' kernel"):
        gb.resolve("warp", "cpu", "cupy")


@pytest.mark.parametrize("make", [lambda b: Speed(min_factor=0.9, max_factor=1.1, backend=b),
                                  lambda b: SpeedSegment(backend=b),
                                  lambda b: PitchShift(semitone_choices=(-1.0, 1.0), backend=b)])
def test_transform_records_backend(make, monkeypatch):
    monkeypatch.delenv("GPUAUG_BACKEND", raising=False)
    monkeypatch.delenv("GPUAUG_BACKEND_WARP", raising=False)
    wave, lengths = mixed_batch(B=2, T=2000, seed=14)
    outs = {}
    for requested, expected in ((None, "numba"), ("torch", "torch"), ("numba", "numba")):
        res = Pipeline([make(requested)])(wave, lengths, seed=3)
        entries = [e for clip in res.record for e in clip if e["transform"] != "output_level"]  # A4: not a kernel op
        assert entries and all(e["backend_name"] == expected for e in entries)
        assert all(e["backend"] == gb.BACKENDS.index(expected) for e in entries)
        outs[expected] = res.wave
    torch.testing.assert_close(outs["numba"], outs["torch"], atol=2e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="backend"):
        make("opencl")


# ---------------------------------------------------------------- constant speed (op uniform_warp, CPU)

import math  # noqa: E402

import gpuaug.kernels._sinc_table as st_  # noqa: E402
import gpuaug.kernels.uniform_warp as uw  # noqa: E402
from gpuaug.functional.resample import DEFAULT_ROLLOFF, uniform_warp  # noqa: E402

BOUND = 10.0 ** (st_.TABLE_ERROR_DB / 20)  # the stated bound as a fraction of the clip's peak


def uniform_case(seed, B=16, T=6000, dtype=torch.float64, low=0.25, high=4.0):
    """White-noise clips (peaks 1e-3 .. 10), mixed lengths, steps log-uniform in [low, high] (pitch
    shifts of +-24 semitones resample by 0.25 .. 4), cutoff 0.945 * min(1, 1 / step)."""
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(T // 2, T + 1, (B,), generator=g)
    wave = torch.rand(B, T, generator=g, dtype=torch.float64) * 2 - 1
    wave = wave * 10.0 ** (torch.rand(B, 1, generator=g, dtype=torch.float64) * 4 - 3)
    wave = (wave * (torch.arange(T) < lengths[:, None])).to(dtype)
    step = torch.exp(math.log(low) + (math.log(high) - math.log(low)) * torch.rand(B, generator=g, dtype=torch.float64))
    new_lengths = torch.floor(lengths.double() / step).long().clamp(min=1)
    cutoff = DEFAULT_ROLLOFF * torch.clamp(1.0 / step, max=1.0)
    return wave, lengths, step, new_lengths, cutoff


def worst_uniform_error_db(wave, lengths, step, new_lengths, cutoff, *, phases=st_.TABLE_PHASES, dtype=torch.float32):
    """Worst |tabulated - exact| of each clip over its peak |x| (dB), exact in float64."""
    ref = uw.uniform_warp_kernel(wave[:, None].double(), lengths, step, cutoff, new_lengths, zeros=24, exact=True)
    out = uw.uniform_warp_kernel(wave[:, None].to(dtype), lengths, step, cutoff, new_lengths, zeros=24, exact=False,
                                 phases=phases)
    err = (out.double() - ref).abs().amax(dim=(1, 2)) / wave.double().abs().amax(dim=-1)
    return 20 * math.log10(float(err.max())), out, ref


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("C", [None, 2])
def test_uniform_exact_equals_general_kernel(dtype, C):
    """``exact=True`` (the float64 default) is the general warp kernel at positions j * step bit for bit."""
    wave, lengths = mixed_batch(B=3, T=2500, C=C, dtype=dtype, seed=12)
    step = torch.tensor([1.25, 0.5, 2 ** (-7 / 12)], dtype=torch.float64)
    new_lengths = torch.floor(lengths.double() / step).long()
    cutoff = DEFAULT_ROLLOFF * torch.clamp(1.0 / step, max=1.0)
    out, out_len = uniform_warp(wave, lengths, step, new_lengths, cutoff, zeros=24, backend="numba", exact=True)
    pos = torch.arange(int(new_lengths.max()), dtype=torch.float64)[None, :] * step[:, None]
    general, _ = warp(wave, lengths, pos, new_lengths, cutoff, backend="numba")
    assert torch.equal(out_len, new_lengths) and out.dtype == dtype
    assert torch.equal(out, general)
    if dtype == torch.float64:
        assert torch.equal(uniform_warp(wave, lengths, step, new_lengths, cutoff, zeros=24, backend="numba")[0], out)


def test_uniform_tabulated_error_bound():
    """float32 tabulated vs float64 exact over 3 x 16 random white-noise clips and steps in
    [0.25, 4] (cutoffs 0.236 .. 0.945): worst below TABLE_ERROR_DB (measured: about -110 dB);
    float64 tables too; a K = 4 table fails (the check can fail)."""
    worst = [worst_uniform_error_db(*uniform_case(seed))[0] for seed in range(3)]
    assert max(worst) < st_.TABLE_ERROR_DB, worst
    assert worst_uniform_error_db(*uniform_case(4), dtype=torch.float64)[0] < st_.TABLE_ERROR_DB
    assert worst_uniform_error_db(*uniform_case(0), phases=4)[0] > st_.TABLE_ERROR_DB
    # rolloff 1 (cutoff 1 for steps <= 1: the largest table error)
    wave, lengths, step, new_lengths, _ = uniform_case(5, low=0.5, high=1.0)
    assert worst_uniform_error_db(wave, lengths, step, new_lengths, torch.ones(16, dtype=torch.float64))[0] \
        < st_.TABLE_ERROR_DB


def test_uniform_worst_case_signal_reaches_the_weight_bound():
    """The sign pattern of the weight error at one output sample drives the error there to the
    L1 norm of the weight error: below the bound and within 8 dB of it (cutoff 0.945)."""
    T, a = 6000, 0.8
    f = DEFAULT_ROLLOFF
    K = st_.TABLE_PHASES
    table = st_.sinc_table(f, 24)
    js = np.arange(1000, 5000)
    frac = js * a - np.floor(js * a)
    j = int(js[np.argmin(np.abs(frac * K - np.floor(frac * K) - 0.5))])
    p = j * a
    centre, phi = int(math.floor(p)), p - math.floor(p)
    h = math.ceil(24 / f)
    t = np.arange(-h + 1, h + 1)
    from reference.resample_ref import kernel_ref

    w = kernel_ref((t - phi) * f, 24)
    exact = w / w.sum()
    row = min(int(phi * K), K - 1)
    al = phi * K - row
    tab = table[row].astype(np.float64) + al * (table[row + 1].astype(np.float64) - table[row].astype(np.float64))
    diff = tab - exact
    wave = torch.from_numpy(np.random.default_rng(2).uniform(-1, 1, (1, T)))
    wave[0, centre - h + 1:centre + h + 1] = torch.from_numpy(np.sign(diff))
    step, lengths, new_lengths = torch.tensor([a], dtype=torch.float64), torch.tensor([T]), torch.tensor([7000])
    cutoff = torch.tensor([f], dtype=torch.float64)
    ref = uw.uniform_warp_kernel(wave[:, None], lengths, step, cutoff, new_lengths, zeros=24, exact=True)
    out = uw.uniform_warp_kernel(wave[:, None].float(), lengths, step, cutoff, new_lengths, zeros=24, exact=False)
    at = float((out[0, 0, j].double() - ref[0, 0, j]).abs())
    assert at == pytest.approx(np.abs(diff).sum(), rel=0.1)
    assert st_.TABLE_ERROR_DB - 8 < 20 * math.log10(at) < st_.TABLE_ERROR_DB
    assert float((out.double() - ref).abs().max()) < BOUND


def test_uniform_defaults_dtypes_and_contract():
    """float32: tabulated by default (== exact=False, != exact, within the bound of float64);
    float16 / bfloat16 keep their dtype; check_op on speed / resample / pitch_shift."""
    wave, lengths = mixed_batch(B=3, T=4000, C=2, dtype=torch.float64, seed=8)
    factor = torch.tensor([1.25, 0.7, 1.9], dtype=torch.float64)
    d64, _ = speed(wave, lengths, factor=factor, backend="numba")
    w32 = wave.float()
    d32, _ = speed(w32, lengths, factor=factor, backend="numba")
    assert torch.equal(d32, speed(w32, lengths, factor=factor, backend="numba", exact=False)[0])
    assert not torch.equal(d32, speed(w32, lengths, factor=factor, backend="numba", exact=True)[0])
    assert float((d32.double() - d64).abs().max()) < BOUND * float(wave.abs().max())
    for half in (torch.float16, torch.bfloat16):
        out, _ = speed(wave.to(half), lengths, factor=factor, backend="numba")
        assert out.dtype == half and torch.equal(out, speed(wave.to(half).float(), lengths, factor=factor,
                                                            backend="numba")[0].to(half))
    for op, kw in ((speed, dict(factor=factor)), (resample, dict(ratio=torch.tensor([0.5, 1.0, 1.6]))),
                   (pitch_shift, dict(semitones=torch.tensor([3.0, 0.0, -12.0])))):
        out, out_len = check_op(op, w32, lengths, backend="numba", **kw)
        for b in range(3):  # each clip's table depends on its own cutoff only: batched == single
            L = int(lengths[b])
            one, _ = op(w32[b:b + 1, :, :L], lengths[b:b + 1], backend="numba",
                        **{k: v[b:b + 1] for k, v in kw.items()})
            assert torch.equal(one[0], out[b, :, :int(out_len[b])])


def test_uniform_unit_impulse_and_env(monkeypatch):
    """rolloff 1 and ratio 0.5 (step 2, cutoff 0.5) vs ratio 2 with rolloff 1: cutoff 1 at
    integer positions j * 1 copies bit for bit on the table path; GPUAUG_BACKEND_UNIFORM_WARP=torch
    runs the general warp (op warp, exact)."""
    wave, lengths = mixed_batch(B=2, T=3000, dtype=torch.float32, seed=5)
    step = torch.ones(2, dtype=torch.float64)
    out = uw.uniform_warp_kernel(wave[:, None], lengths, step, torch.ones(2, dtype=torch.float64), lengths, zeros=24,
                                 exact=False)
    assert torch.equal(out[:, 0], wave)
    monkeypatch.delenv("GPUAUG_BACKEND", raising=False)
    monkeypatch.setenv("GPUAUG_BACKEND_UNIFORM_WARP", "torch")
    env, _ = speed(wave, lengths, factor=1.3)
    pos = torch.arange(env.shape[-1], dtype=torch.float64)[None, :] * 1.3
    new_lengths = torch.round(lengths.double() / 1.3).long()
    ref, _ = warp(wave, lengths, pos.expand(2, -1), new_lengths, DEFAULT_ROLLOFF / 1.3, backend="numba")
    assert torch.equal(env, ref)
    monkeypatch.delenv("GPUAUG_BACKEND_UNIFORM_WARP")
    tab, _ = speed(wave, lengths, factor=1.3)
    assert not torch.equal(tab, env) and float((tab - env).abs().max()) < BOUND * float(wave.abs().max())
    with pytest.raises(ValueError, match="power of 2"):
        uw.uniform_warp_kernel(wave[:, None], lengths, step, step, lengths, zeros=24, exact=False, phases=500)


def test_uniform_table_groups_give_the_same_result(monkeypatch):
    wave, lengths, step, new_lengths, cutoff = uniform_case(3, B=4, dtype=torch.float32)
    whole = uw.uniform_warp_kernel(wave[:, None], lengths, step, cutoff, new_lengths, zeros=24)
    monkeypatch.setattr(uw, "TABLE_BYTES", 1)
    assert torch.equal(uw.uniform_warp_kernel(wave[:, None], lengths, step, cutoff, new_lengths, zeros=24), whole)
