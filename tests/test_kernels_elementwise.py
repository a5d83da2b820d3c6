"""Kernels of gain and fade (gpuaug.kernels.elementwise) vs the torch reference.

``gain`` / ``fade`` with ``backend="numba"`` (CPU ``@njit``) against ``backend="torch"``
(bit-identical except the exponential fade's ``pow``), the op contract on the kernel path,
the shared overflow check (padding and float16 included), the ``@cuda.jit`` kernels on the
CUDA simulator (tiny inputs, launched directly with numpy arrays) and the transforms' records.
"""
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st

import gpuaug.kernels.elementwise as ew
from gpuaug import backend as gb
from gpuaug.functional.fade import fade
from gpuaug.functional.gain import gain
from gpuaug.transforms import Fade, Gain, Pipeline
from harness import check_op, mixed_batch
from strategies import edge_signal

GAIN_DB = torch.tensor([-12.0, 0.0, 7.5, -60.0])
RATES = torch.tensor([0.02, 0.5, 1.0, 0.3], dtype=torch.float64)
DIRECTIONS = torch.tensor([1, -1, 1, 0])


def noisy_padding(wave, lengths, seed=0):
    """``wave`` with random (finite) values in its padding: the kernels must still write zeros."""
    g = torch.Generator().manual_seed(seed)
    pad = torch.arange(wave.shape[-1]) >= lengths[:, None]
    if wave.dim() == 3:
        pad = pad[:, None, :].expand_as(wave)
    return torch.where(pad, torch.randn(wave.shape, generator=g, dtype=wave.dtype), wave)


def fade_kwargs(shape, rates=RATES):
    return dict(sample_rate=16000.0, rate_per_s=rates, direction=DIRECTIONS, shape=shape)


# ---------------------------------------------------------------- CPU (njit) vs torch


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("C", [None, 2])
def test_gain_numba_is_bit_identical(dtype, C):
    wave, lengths = mixed_batch(B=4, T=1500, C=C, dtype=dtype, seed=1)
    lengths[1] = 1
    wave = noisy_padding(wave, lengths)
    ref, _ = gain(wave, lengths, gain_db=GAIN_DB, backend="torch")
    out, out_len = gain(wave, lengths, gain_db=GAIN_DB, backend="numba")
    assert torch.equal(out_len, lengths) and out.dtype == dtype and out.shape == wave.shape
    assert torch.equal(out, ref)
    assert torch.equal(gain(wave, lengths, gain_db=-3.0, backend="numba")[0],
                       gain(wave, lengths, gain_db=-3.0, backend="torch")[0])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("C", [None, 2])
@pytest.mark.parametrize("shape", ["linear", "exponential"])
def test_fade_numba_matches_torch(dtype, C, shape):
    wave, lengths = mixed_batch(B=4, T=1500, C=C, dtype=dtype, seed=2)
    lengths[2] = 1
    wave = noisy_padding(wave, lengths, seed=3)
    rates = RATES if shape == "exponential" else torch.tensor([0.02, 20.0, 0.0, 3.0], dtype=torch.float64)
    ref, _ = fade(wave, lengths, **fade_kwargs(shape, rates), backend="torch")
    out, out_len = fade(wave, lengths, **fade_kwargs(shape, rates), backend="numba")
    assert torch.equal(out_len, lengths) and out.dtype == dtype
    if shape == "linear":  # same float64 operations, same cast
        assert torch.equal(out, ref)
    else:  # libm pow vs torch's vectorised pow: at most an ulp apart before the cast
        torch.testing.assert_close(out, ref, atol=0, rtol=1e-15 if dtype == torch.float64 else 1.2e-7)
    assert torch.equal(out[3], torch.where(torch.arange(1500) < lengths[3], wave[3], 0.0))  # direction 0


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("C", [None, 2])
def test_numba_contract(dtype, C):
    wave, lengths = mixed_batch(B=3, T=1200, C=C, dtype=dtype, seed=4)
    check_op(gain, wave, lengths, gain_db=GAIN_DB[:3], backend="numba", atol=0, rtol=0)
    for shape in ("linear", "exponential"):
        check_op(fade, wave, lengths, sample_rate=16000, rate_per_s=RATES[:3], direction=DIRECTIONS[:3],
                 shape=shape, backend="numba", atol=0, rtol=0)


def test_half_precision_waves():
    """float16 / bfloat16 run in float32: gain stays exact, fade within one ulp of the dtype."""
    wave, lengths = mixed_batch(B=4, T=600, dtype=torch.float64, seed=5)
    for dtype in (torch.float16, torch.bfloat16):
        w = wave.to(dtype)
        out = gain(w, lengths, gain_db=GAIN_DB, backend="numba")[0]
        assert out.dtype == dtype and torch.equal(out, gain(w, lengths, gain_db=GAIN_DB, backend="torch")[0])
        out = fade(w, lengths, **fade_kwargs("linear"), backend="numba")[0]
        ref = fade(w, lengths, **fade_kwargs("linear"), backend="torch")[0]
        assert out.dtype == dtype
        torch.testing.assert_close(out.float(), ref.float(), atol=0, rtol=torch.finfo(dtype).eps)


# ---------------------------------------------------------------- overflow check (shared)


def _raises(backend, *args, **kwargs) -> bool:
    try:
        gain(*args, **kwargs, backend=backend)
    except ValueError as e:
        assert "overflows" in str(e)
        return True
    return False


def test_gain_overflow_same_as_torch():
    wave = torch.full((2, 8), 0.5)
    wave[1, 6] = 3e38  # in the padding of clip 1 when its length is 5
    for lengths in (torch.tensor([8, 8]), torch.tensor([8, 5])):
        for db in (0.0, 6.0):
            assert _raises("numba", wave, lengths, gain_db=db) == _raises("torch", wave, lengths, gain_db=db) == (db > 0)
    zeros = torch.zeros(1, 4)  # an Inf factor times 0 is NaN: raises on both paths
    assert _raises("numba", zeros, torch.tensor([4]), gain_db=1e4) and _raises("torch", zeros, torch.tensor([4]), gain_db=1e4)
    empty = torch.zeros(1, 0)  # no sample, nothing to overflow
    assert not _raises("numba", empty, torch.tensor([0]), gain_db=1e4)
    assert not _raises("torch", empty, torch.tensor([0]), gain_db=1e4)


def test_overflow_limit_is_the_rounding_boundary():
    for dtype in (torch.float32, torch.float64):
        assert ew.overflow_limit(dtype) == math.inf
    for dtype in (torch.float16, torch.bfloat16):
        limit = torch.tensor(ew.overflow_limit(dtype), dtype=torch.float64)
        assert torch.isinf(limit.to(dtype)) and torch.isinf(limit.float().to(dtype))
        below = torch.nextafter(limit.float(), torch.tensor(0.0))
        assert bool(torch.isfinite(below.to(dtype)))
    assert ew.overflow_limit(torch.float16) == 65520.0


def test_float16_overflow_near_the_boundary():
    """Products just below / above float16's rounding boundary: both paths agree, both cases occur."""
    g = torch.Generator().manual_seed(6)
    outcomes = set()
    for w in (1.5, 1.25, 1.75, 1.125, 1.0625):
        u = torch.rand(8, generator=g, dtype=torch.float64) * 2e-3 - 1e-3
        f = (65520.0 / w * (1 + u)).half()
        for db in (20 * torch.log10(f.double())).tolist():
            wave = torch.full((1, 3), w, dtype=torch.float16)
            r = _raises("numba", wave, torch.tensor([3]), gain_db=db)
            assert r == _raises("torch", wave, torch.tensor([3]), gain_db=db), (w, db)
            outcomes.add(r)
    assert outcomes == {True, False}


# ---------------------------------------------------------------- edge cases


@settings(max_examples=25, deadline=None)
@given(
    sig=edge_signal(max_len=40),
    pad=st.integers(0, 5),
    gain_db=st.floats(-80, 40),
    rate=st.floats(0, 1),
    direction=st.sampled_from([-1, 0, 1]),
    shape=st.sampled_from(["linear", "exponential"]),
    dtype=st.sampled_from([torch.float32, torch.float64]),
)
def test_numba_edge_cases(sig, pad, gain_db, rate, direction, shape, dtype):
    """Silence, 1 sample, full scale, extra padding, a zero-length clip next to it."""
    wave = torch.zeros(2, sig.size + pad, dtype=dtype)
    wave[0, : sig.size] = torch.from_numpy(sig).to(dtype)
    lengths = torch.tensor([sig.size, 0])
    assert torch.equal(gain(wave, lengths, gain_db=gain_db, backend="numba")[0],
                       gain(wave, lengths, gain_db=gain_db, backend="torch")[0])
    kw = dict(sample_rate=8000, rate_per_s=rate, direction=direction, shape=shape)
    out, ref = fade(wave, lengths, **kw, backend="numba")[0], fade(wave, lengths, **kw, backend="torch")[0]
    torch.testing.assert_close(out, ref, atol=0, rtol=1e-15 if dtype == torch.float64 else 1.2e-7)
    assert bool((out[1] == 0).all())


def test_bad_input_raises_on_the_kernel_path():
    wave, lengths = mixed_batch(B=2, T=100)
    bad = wave.clone()
    bad[1, 3] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        gain(bad, lengths, gain_db=0.0, backend="numba")
    with pytest.raises(ValueError, match="NaN"):
        fade(bad, lengths, sample_rate=16000, rate_per_s=0.1, direction=1, backend="numba")
    with pytest.raises(ValueError, match="rate_per_s"):
        fade(wave, lengths, sample_rate=16000, rate_per_s=1.5, direction=1, shape="exponential", backend="numba")
    with pytest.raises(ValueError, match="backend"):
        gain(wave, lengths, gain_db=0.0, backend="opencl")
    with pytest.raises(ValueError, match="no 'cupy' kernel"):
        fade(wave, lengths, sample_rate=16000, rate_per_s=0.1, direction=1, backend="cupy")


@pytest.mark.real_data
def test_real_speech_numba_matches_torch(emodb_batch):
    wave, lengths = emodb_batch
    db = torch.tensor([-6.0, 3.0, 0.0, 10.0])[: wave.shape[0]]
    assert torch.equal(gain(wave, lengths, gain_db=db, backend="numba")[0],
                       gain(wave, lengths, gain_db=db, backend="torch")[0])
    kw = dict(sample_rate=16000, rate_per_s=0.02, direction=torch.tensor([1, -1, 1, -1])[: wave.shape[0]])
    assert torch.equal(fade(wave, lengths, **kw, backend="numba")[0], fade(wave, lengths, **kw, backend="torch")[0])


# ---------------------------------------------------------------- CUDA kernels (simulator)


@pytest.mark.parametrize("dtype,C", [(torch.float32, 1), (torch.float64, 2)])
def test_cuda_kernels_match_torch(dtype, C):
    """Both ``@cuda.jit`` kernels launched with host arrays (CUDA simulator without a GPU)."""
    B, T = 2, 60 // C
    wave, lengths = mixed_batch(B=B, T=T, C=C, dtype=dtype, seed=7)
    lengths[0] = 7
    wave = noisy_padding(wave.reshape(B, C, T), lengths, seed=8)
    db, direc = torch.tensor([6.0, -3.0]), torch.tensor([1, -1])
    factor = torch.pow(10.0, db.double() / 20.0).to(dtype)
    out = np.full(wave.shape, 5.0, dtype=wave.numpy().dtype)  # every sample, padding included, is written
    over = np.zeros(B, dtype=np.uint8)
    ew.launch_gain_cuda(wave.numpy(), lengths.numpy(), factor.numpy(), out, over, math.inf)
    assert torch.equal(torch.from_numpy(out), gain(wave, lengths, gain_db=db, backend="torch")[0])
    assert not over.any()
    ew.launch_gain_cuda(wave.numpy(), lengths.numpy(), factor.numpy(), out, over, 1e-3)  # a low limit flags
    assert over.tolist() == [1, 1]
    rate = torch.tensor([0.5, 0.9], dtype=torch.float64)
    for shape, code in ew.FADE_SHAPE_CODES.items():
        out = np.full(wave.shape, 5.0, dtype=wave.numpy().dtype)
        ew.launch_fade_cuda(wave.numpy(), lengths.numpy(), rate.numpy(), direc.numpy(), out, 100.0, code)
        ref = fade(wave, lengths, sample_rate=100, rate_per_s=rate, direction=direc, shape=shape, backend="torch")[0]
        # float64: gains >= 0.4 here, so FMA in 1 - rate * s (<= 1 ulp of 1) and libdevice pow (<= 2 ulp)
        # stay within 1e-15 relative. float32: those float64 ulps can flip the gain's cast to float32
        # by 1 ulp, plus the product's rounding: 2 float32 eps on a real GPU (the simulator is exact).
        torch.testing.assert_close(torch.from_numpy(out), ref, atol=0,
                                   rtol=1e-15 if dtype == torch.float64 else 2 * torch.finfo(torch.float32).eps)


# ---------------------------------------------------------------- dispatch and records


def test_registration_and_auto(monkeypatch):
    for var in ("GPUAUG_BACKEND", "GPUAUG_BACKEND_GAIN", "GPUAUG_BACKEND_FADE"):
        monkeypatch.delenv(var, raising=False)
    for op in ("gain", "fade"):
        assert gb.kernels_for(op) == {("numba", "cpu"): 0, ("numba", "cuda"): 0}
        assert gb.resolve(op, "cpu") == "numba"
    monkeypatch.setenv("GPUAUG_BACKEND_FADE", "torch")
    assert gb.resolve("fade", "cpu") == "torch" and gb.resolve("gain", "cpu") == "numba"


@pytest.mark.parametrize("make", [lambda be: Gain(backend=be), lambda be: Fade(rate_per_s=0.5, backend=be)])
def test_transforms_record_backend(monkeypatch, make):
    monkeypatch.delenv("GPUAUG_BACKEND", raising=False)
    for var in ("GPUAUG_BACKEND_GAIN", "GPUAUG_BACKEND_FADE"):
        monkeypatch.delenv(var, raising=False)
    wave, lengths = mixed_batch(B=3, T=1500, seed=9)
    results = {}
    for requested, expected in ((None, "numba"), ("torch", "torch"), ("numba", "numba")):
        res = Pipeline([make(requested)])(wave, lengths, seed=4)
        entries = [e for clip in res.record for e in clip if e["transform"] != "output_level"]  # A4: not a kernel op
        assert len(entries) == 3 and all(e["backend_name"] == expected for e in entries)
        results[requested] = res
    assert torch.equal(results[None].wave, results["torch"].wave)
    with pytest.raises(ValueError, match="backend"):
        make("opencl")


def test_fade_kernels_refuse_clips_they_cannot_count():
    """The fade gain counts samples in int32 (vectorised): the fade and reverb kernels refuse
    longer clips with an error naming the op, before reading anything (an expanded view here)."""
    ew.check_fade_samples(ew.FADE_MAX_SAMPLES, "fade")  # the longest countable clip passes
    huge = torch.zeros(1, 1, 1).expand(1, 1, ew.FADE_MAX_SAMPLES + 1)
    one = torch.ones(1, dtype=torch.float64)
    with pytest.raises(ValueError, match=r"fade: the fade kernels take clips of at most 2147483647 samples"):
        ew.fade_kernel(huge, torch.tensor([4]), one, torch.tensor([1]), sample_rate=16000.0, shape="linear")
    from gpuaug.kernels.reverb_io import reverb_convolve

    with pytest.raises(ValueError, match=r"reverb: the fade kernels take clips"):
        reverb_convolve(huge, torch.tensor([4]), torch.ones(1, 1, 3, dtype=torch.complex64), torch.tensor([0]),
                        n_fft=4, normalize="energy", fade=(one, torch.tensor([1]), 16000.0, "linear"))
