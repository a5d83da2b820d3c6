"""The kernel registry of :mod:`gpuaug.backend`: callables per (op, backend, device), one calling
convention, registration errors, op names checked at class definition, and the ops that used
to hide behind ``warp`` (``segment_warp``, ``phase_lock``) resolving on their own."""
from __future__ import annotations

import inspect
import os

import pytest
import torch

import gpuaug.kernels.elementwise as ew
import gpuaug.kernels.mcadams_frames as km
import gpuaug.kernels.phase_lock as pl
import gpuaug.kernels.phase_vocoder as pv
import gpuaug.kernels.ragged as rg
import gpuaug.kernels.reverb_io as rv
import gpuaug.kernels.row_reduce as rr
from gpuaug.functional.level import output_level
import gpuaug.kernels.segment_warp as sw
import gpuaug.kernels.snr_mix as sm
import gpuaug.kernels.splice as sp
import gpuaug.kernels.uniform_warp as uw
import gpuaug.kernels.warp_sinc as ws
from gpuaug import backend as gb
from gpuaug import functional as F
from gpuaug.banks import gather_ragged
from gpuaug.transforms import Pipeline, SpeedSegment, Transform
from gpuaug.transforms.base import merge_rows
from harness import mixed_batch
from test_backend import clean_env, fake_kernel as fake, registry  # noqa: F401 (fixtures)

#: Every kernel gpuaug registers: (op, backend, device type) -> entry point.
EXPECTED = {
    (gb.GAIN, "numba", "cpu"): ew.gain_kernel, (gb.GAIN, "numba", "cuda"): ew.gain_kernel,
    (gb.FADE, "numba", "cpu"): ew.fade_kernel, (gb.FADE, "numba", "cuda"): ew.fade_kernel,
    (gb.MIX_NOISE, "numba", "cpu"): sm.mix_fused, (gb.MIX_NOISE, "numba", "cuda"): sm.mix_fused,
    (gb.INSERT_CLIP, "numba", "cpu"): sp.insert_kernel, (gb.INSERT_CLIP, "numba", "cuda"): sp.insert_kernel,
    (gb.DROP_SEGMENTS, "numba", "cpu"): sp.drop_kernel, (gb.DROP_SEGMENTS, "numba", "cuda"): sp.drop_kernel,
    (gb.WARP, "numba", "cpu"): ws.warp_kernel, (gb.WARP, "numba", "cuda"): ws.warp_kernel,
    (gb.WARP, "cupy", "cuda"): ws.warp_cupy,
    (gb.SEGMENT_WARP, "numba", "cpu"): sw.segment_warp_kernel,
    (gb.SEGMENT_WARP, "numba", "cuda"): sw.segment_warp_kernel,
    (gb.MCADAMS, "numba", "cpu"): km.mcadams_ola, (gb.MCADAMS, "numba", "cuda"): km.mcadams_ola,
    (gb.PHASE_LOCK, "numba", "cpu"): pl.phase_lock_kernel,
    (gb.UNIFORM_WARP, "numba", "cpu"): uw.uniform_warp_kernel,
    (gb.PHASE_VOCODER, "numba", "cpu"): pv.phase_vocoder_kernel,
    (gb.REVERB, "numba", "cpu"): rv.reverb_convolve,
    (gb.RAGGED_GATHER, "numba", "cpu"): rg.ragged_gather_kernel,
    (gb.ROW_PEAK, "numba", "cpu"): rr.row_peaks,
    (gb.ROW_SCATTER, "numba", "cpu"): rg.row_scatter_kernel,
}
#: Ops no transform names (they run inside speed / pitch / tempo, the banks' gather, the
#: pipeline's input scan and output level, or the merge of a transform's rows).
INNER = {gb.PHASE_LOCK, gb.UNIFORM_WARP, gb.PHASE_VOCODER, gb.RAGGED_GATHER, gb.ROW_PEAK, gb.ROW_SCATTER}
#: Ops with a CPU kernel only (torch on CUDA).
CPU_ONLY = INNER | {gb.REVERB}
#: Leading tensor arguments of each op's kernels (the rest is keyword-only).
TENSORS = {gb.GAIN: 3, gb.FADE: 4, gb.MIX_NOISE: 11, gb.INSERT_CLIP: 9, gb.DROP_SEGMENTS: 6, gb.WARP: 5,
           gb.SEGMENT_WARP: 6, gb.MCADAMS: 4, gb.PHASE_LOCK: 3,
           gb.UNIFORM_WARP: 5, gb.PHASE_VOCODER: 2, gb.REVERB: 4, gb.RAGGED_GATHER: 3, gb.ROW_PEAK: 1,
           gb.ROW_SCATTER: 3}


def gpuaug_kernels() -> dict:
    gb._load_kernels()
    return {key: k for key, k in gb._KERNELS.items() if k.fn.__module__.startswith("gpuaug.kernels.")}


# ---------------------------------------------------------------- what is registered


def test_every_op_has_its_callables_and_nothing_else():
    got = {key: k.fn for key, k in gpuaug_kernels().items()}
    assert got == EXPECTED
    assert {op for op, _, _ in got} == set(gb.OPS)
    for (op, b, d), fn in got.items():
        assert callable(fn) and gb.kernels_for(op)[(b, d)] == gpuaug_kernels()[(op, b, d)].rank


def test_kernel_for_returns_the_callable_per_op_and_device(clean_env):
    for op in gb.OPS:
        assert gb.kernel_for(op, "cpu", "torch") == ("torch", None)
        assert gb.kernel_for(op, "cpu") == ("numba", EXPECTED[(op, "numba", "cpu")])  # auto on CPU
        assert gb.kernel_for(op, "cpu", "numba") == ("numba", EXPECTED[(op, "numba", "cpu")])
        assert gb.resolve(op, "cpu") == "numba"
        clean_env.setenv(f"GPUAUG_BACKEND_{op.upper()}", "torch")
        assert gb.kernel_for(op, "cpu") == ("torch", None)
        clean_env.delenv(f"GPUAUG_BACKEND_{op.upper()}")


def test_cuda_kernels_per_op_with_cuda_available(registry):
    """On a (faked) GPU whose probes pass, auto picks each op's rank-0 CUDA kernel; the phase
    lock has none (torch's scan)."""
    registry.setattr(gb, "available", lambda b, d: True)
    registry.setattr(gb, "_VERDICTS", {})
    registry.setattr(gb, "_default_probe", lambda op, b: (lambda index: None))
    registry.setitem(gb._PROBES, (gb.WARP, "cupy"), lambda index: None)
    for op in gb.OPS:
        name, fn = gb.kernel_for(op, "cuda:0")
        if op in CPU_ONLY:
            assert (name, fn) == ("torch", None)
        else:
            assert (name, fn) == ("numba", EXPECTED[(op, "numba", "cuda")])
    assert gb.kernel_for(gb.WARP, "cuda:0", "cupy") == ("cupy", ws.warp_cupy)
    assert gb.kernel_for(gb.PHASE_LOCK, "cuda:0", "numba", shared=True) == ("torch", None)
    with pytest.raises(ValueError, match="no 'numba' kernel for op 'phase_lock' on cuda"):
        gb.kernel_for(gb.PHASE_LOCK, "cuda:0", "numba")


def test_one_calling_convention():
    """``fn(*tensors, **params)``: the tensors positional, then keyword-only parameters; no
    backend argument, no ``*args`` / ``**kwargs``."""
    for (op, _, _), k in gpuaug_kernels().items():
        params = list(inspect.signature(k.fn).parameters.values())
        kinds = [p.kind for p in params]
        n = TENSORS[op]
        assert kinds[:n] == [inspect.Parameter.POSITIONAL_OR_KEYWORD] * n, (op, params)
        assert all(kind == inspect.Parameter.KEYWORD_ONLY for kind in kinds[n:]), (op, params)
        assert all(p.default is inspect.Parameter.empty for p in params[:n]), (op, params)
        assert "backend" not in [p.name for p in params], (op, params)


def test_unknown_op_raises(clean_env):
    for requested in (None, "auto", "torch", "numba"):
        with pytest.raises(ValueError, match="unknown op 'segment_wrap'"):
            gb.kernel_for("segment_wrap", "cpu", requested)
        with pytest.raises(ValueError, match="unknown op 'segment_wrap'"):
            gb.resolve("segment_wrap", "cpu", requested)


# ---------------------------------------------------------------- registration


def test_double_registration_raises(registry):
    assert gb.register_kernel("demo_twice", "numba", "cpu")(fake) is fake  # returns the callable
    gb.register_kernel("demo_twice", "numba", "cpu")(fake)  # the same callable again: a no-op
    with pytest.raises(ValueError, match="'demo_twice' already has a 'numba' kernel on cpu"):
        gb.register_kernel("demo_twice", "numba", "cpu")(lambda *t, **p: t)
    assert gb.kernel_for("demo_twice", "cpu") == ("numba", fake)
    with pytest.raises(ValueError, match="already has a 'numba' kernel on cpu .*gain_kernel"):
        gb.register_kernel(gb.GAIN, "numba", "cpu")(fake)
    assert gb.kernel_for(gb.GAIN, "cpu") == ("numba", ew.gain_kernel)


def test_bad_registrations_raise(registry):
    with pytest.raises(ValueError, match="registered for one of"):
        gb.register_kernel("demo_bad", "torch", "cpu")
    with pytest.raises(ValueError, match="device_type"):
        gb.register_kernel("demo_bad", "numba", "tpu")
    with pytest.raises(ValueError, match="auto_rank"):
        gb.register_kernel("demo_bad", "numba", "cpu", auto_rank=-1)
    with pytest.raises(TypeError, match="callable"):
        gb.register_kernel("demo_bad", "numba", "cpu")("not a function")
    with pytest.raises(ValueError, match="unknown op 'demo_bad'"):  # nothing was registered
        gb.resolve("demo_bad", "cpu")


def test_misspelt_kernel_op_raises_when_the_class_is_defined():
    with pytest.raises(ValueError, match="Typo.kernel_op 'segmnt_warp' is not an op with kernels"):
        class Typo(Transform):  # noqa: F841
            kernel_op = "segmnt_warp"

    class NoKernels(Transform):
        kernel_op = None

    class Fine(Transform):
        kernel_op = gb.SEGMENT_WARP

    assert Fine().kernel_op == "segment_warp" and NoKernels().kernel_op is None


def test_every_transform_kernel_op_is_an_op():
    import gpuaug.transforms as T

    ops = {cls.kernel_op for cls in vars(T).values() if isinstance(cls, type) and issubclass(cls, Transform)}
    assert ops - {None} == set(gb.OPS) - INNER


# ---------------------------------------------------------------- the functional ops dispatch through it


def counting(registry, op):
    """Replace ``op``'s numba CPU kernel by a counting wrapper around it; returns the calls."""
    calls = []
    key = (op, "numba", "cpu")
    inner = gb._KERNELS[key].fn
    registry.setitem(gb._KERNELS, key, gb.Kernel(lambda *t, **p: calls.append(p) or inner(*t, **p), 0))
    return calls


def _wave():
    return mixed_batch(B=3, T=2400, seed=3)


CALLS = {
    gb.GAIN: lambda w, l: F.gain(w, l, gain_db=2.0),
    gb.FADE: lambda w, l: F.fade(w, l, sample_rate=16000, rate_per_s=0.5, direction=1),
    gb.MIX_NOISE: lambda w, l: F.mix_noise(w, l, torch.ones(3, 500), torch.tensor([500, 40, 1]), snr_db=5.0),
    gb.INSERT_CLIP: lambda w, l: F.insert_clip(w, l, torch.ones(3, 80), torch.tensor([80, 10, 0]), position=5),
    gb.DROP_SEGMENTS: lambda w, l: F.drop_segments(w, l, intervals=torch.tensor([[[10, 90]]] * 3)),
    gb.WARP: lambda w, l: F.warp(w, l, torch.arange(2000, dtype=torch.float64).expand(3, -1) * 1.1, 2000, 0.9),
    gb.UNIFORM_WARP: lambda w, l: F.speed(w, l, factor=1.1),
    gb.SEGMENT_WARP: lambda w, l: F.speed_segment(w, l, start=100, length=600, factor=1.25),
    gb.MCADAMS: lambda w, l: F.mcadams(w, l, alpha=0.8),
    gb.PHASE_LOCK: lambda w, l: _torch_vocoder(F.pitch_shift, w, l, semitones=1.0),
    gb.PHASE_VOCODER: lambda w, l: F.pitch_shift(w, l, semitones=1.0),
    gb.REVERB: lambda w, l: F.reverb(w, l, torch.tensor([[1.0, 0.5, 0.25]] * 3), torch.tensor([3, 2, 1]),
                                      bucket=False),
    gb.RAGGED_GATHER: lambda w, l: gather_ragged(w.reshape(-1).contiguous(), torch.tensor([0, 5, 9]),
                                                 torch.tensor([3, 2, 0]), 4),
    gb.ROW_PEAK: lambda w, l: output_level(w, "peak_limit", 0.5),
    gb.ROW_SCATTER: lambda w, l: merge_rows(w[:, None], l, torch.tensor([2, 0]), w[:2, None] * 0.5, l[:2]),
}


def _torch_vocoder(op, *args, **kwargs):
    """``op`` with the torch phase vocoder (whose phase lock is op ``phase_lock``)."""
    old = os.environ.get("GPUAUG_BACKEND_PHASE_VOCODER")
    os.environ["GPUAUG_BACKEND_PHASE_VOCODER"] = "torch"
    try:
        return op(*args, **kwargs)
    finally:
        if old is None:
            del os.environ["GPUAUG_BACKEND_PHASE_VOCODER"]
        else:
            os.environ["GPUAUG_BACKEND_PHASE_VOCODER"] = old


@pytest.mark.parametrize("op", gb.OPS)
def test_functional_ops_call_the_registered_kernel(op, registry):
    calls = counting(registry, op)
    CALLS[op](*_wave())
    assert len(calls) == 1
    registry.setenv(f"GPUAUG_BACKEND_{op.upper()}", "torch")
    CALLS[op](*_wave())
    assert len(calls) == 1


def test_mix_noise_from_bank_calls_the_registered_kernel(registry):
    calls = counting(registry, gb.MIX_NOISE)
    wave, lengths = _wave()
    F.mix_noise_from_bank(wave, lengths, torch.ones(900), torch.tensor([500, 400]), torch.tensor([0, 1, 1]),
                          snr_db=3.0)
    assert len(calls) == 1


# ---------------------------------------------------------------- segment_warp and phase_lock: their own ops


def test_segment_warp_resolves_on_its_own(registry):
    calls = counting(registry, gb.SEGMENT_WARP)
    warps = counting(registry, gb.WARP)
    wave, lengths = mixed_batch(B=3, T=4000, seed=8)
    kw = dict(start=torch.tensor([200, 0, 1500]), length=torch.tensor([1500, 900, 2000]),
              factor=torch.tensor([1.25, 0.8, 1.5], dtype=torch.float64))
    registry.setenv("GPUAUG_BACKEND_WARP", "torch")  # no longer switches the fused kernel off
    fused, _ = F.speed_segment(wave, lengths, **kw)
    assert (len(calls), len(warps)) == (1, 0)
    assert gb.resolve(gb.SEGMENT_WARP, "cpu") == "numba"
    registry.delenv("GPUAUG_BACKEND_WARP")
    registry.setenv("GPUAUG_BACKEND_SEGMENT_WARP", "torch")
    assert gb.resolve(gb.SEGMENT_WARP, "cpu") == "torch" and gb.resolve(gb.WARP, "cpu") == "numba"
    spliced, spliced_len = F.speed_segment(wave, lengths, **kw)  # the splice path, its warp core on numba
    assert (len(calls), len(warps)) == (1, 1)
    ref, ref_len = F.speed_segment(wave, lengths, backend="torch", **kw)
    assert (len(calls), len(warps)) == (1, 1)
    assert torch.equal(spliced_len, ref_len)
    torch.testing.assert_close(spliced, ref, atol=2e-5, rtol=1e-5)  # numba warp vs torch (test_kernels_warp TOL)
    peak = float(wave.abs().max())  # the fused float32 default is tabulated: within TABLE_ERROR_DB of the peak
    assert float((fused - ref).abs().max()) <= 10 ** (sw.TABLE_ERROR_DB / 20) * peak


def test_speed_segment_shares_its_backend_argument(clean_env):
    wave, lengths = mixed_batch(B=2, T=2000, seed=9)
    with pytest.raises(ValueError, match="no 'cupy' kernel for op 'warp' on cpu"):  # the splice path's warp
        F.speed_segment(wave, lengths, start=100, length=500, factor=1.25, backend="cupy")
    with pytest.raises(ValueError, match="backend must be"):
        F.speed_segment(wave, lengths, start=100, length=500, factor=1.25, backend="opencl")


def test_speed_segment_transform_records_segment_warp(clean_env):
    wave, lengths = mixed_batch(B=2, T=3000, seed=10)
    res = Pipeline([SpeedSegment()])(wave, lengths, seed=2)
    assert {e["backend_name"] for clip in res.record for e in clip if e["transform"] == "speed_segment"} == {"numba"}
    ref = Pipeline([SpeedSegment(backend="torch")])(wave, lengths, seed=2)
    clean_env.setenv("GPUAUG_BACKEND_SEGMENT_WARP", "torch")
    env = Pipeline([SpeedSegment()])(wave, lengths, seed=2)
    assert {e["backend_name"] for clip in env.record for e in clip if e["transform"] == "speed_segment"} == {"torch"}
    assert torch.equal(env.wave, ref.wave)


def test_phase_lock_resolves_on_its_own(clean_env):
    assert gb.kernel_for(gb.PHASE_LOCK, "cpu") == ("numba", pl.phase_lock_kernel)
    clean_env.setenv("GPUAUG_BACKEND_WARP", "torch")
    assert gb.kernel_for(gb.PHASE_LOCK, "cpu") == ("numba", pl.phase_lock_kernel)
    assert gb.kernel_for(gb.PHASE_LOCK, "cuda") == ("torch", None)  # auto on a GPU: torch's scan
    clean_env.delenv("GPUAUG_BACKEND_WARP")
    clean_env.setenv("GPUAUG_BACKEND_PHASE_LOCK", "torch")
    assert gb.kernel_for(gb.PHASE_LOCK, "cpu") == ("torch", None)
    assert gb.resolve(gb.WARP, "cpu") == "numba"
