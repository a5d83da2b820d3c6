"""Every public op and every preset on CUDA tensors against the CPU (skipped without CUDA).

For each op of :data:`gpu_check.OP_CASES` (the table ``benchmarks/gpu_check.py`` also
measures) and each backend registered for it on CUDA that can run here (numba, cupy) plus
torch: the float32 GPU result on the same parameters as the float32 CPU torch result, within
the case's tolerance (``max |gpu - cpu| <= tol * max |cpu|``, each tolerance with its reason
in the table), equal lengths, exact zero padding, dtype and device kept, no NaN, and equal
results on a second run. Then every preset pipeline of :mod:`gpuaug.presets` on CUDA
vs CPU (same seed: same parameters, tags, label actions and records; audio within the
tolerance of its ops). The device stage with prefetch is in test_device_stage_cuda.py.

Without CUDA only the table checks run: it covers every public wave op, and every case runs
on the CPU (so the table cannot rot where CI has no GPU).
"""
import math
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import gpu_check as g  # noqa: E402

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
SECONDS = 1.5


@pytest.fixture(scope="module")
def inputs():
    data = g.DEFAULT_DATA if (g.DEFAULT_DATA / "MANIFEST.tsv").exists() else None
    wave, lengths, _ = g.speech_batch(data, 4, SECONDS)
    banks, _ = g.case_banks(data, SECONDS)
    return wave, lengths, banks


# ---------------------------------------------------------------- the table (CPU, always)


def test_cases_cover_every_public_wave_op():
    from gpuaug import functional as F

    covered = {c.op for c in g.OP_CASES}
    assert covered <= set(F.__all__)
    assert set(F.__all__) - covered == set(g.NOT_WAVE_OPS), "add a case to gpu_check.OP_CASES (or a reason)"
    for c in g.OP_CASES:
        assert c.tol > 0 and c.why


@pytest.fixture(scope="module")
def tiny():
    wave, lengths, _ = g.speech_batch(None, 2, 0.3)
    return wave, lengths, g.case_banks(None, 0.3)[0]


@pytest.mark.parametrize("name", [c.name for c in g.OP_CASES])
def test_every_case_runs_on_cpu(name, tiny):
    wave, lengths, banks = tiny
    c = g.case(name)
    ex = c.extras(lengths, wave.shape[-1], banks)
    out, out_len = g.run_case(c, wave, lengths, ex, "torch", device="cpu")
    ref, ref_len = g.reference(c, wave, lengths, ex)
    assert out.dtype == torch.float32 and torch.equal(out_len, ref_len)
    assert g.padding_is_zero(out, out_len) and bool(torch.isfinite(out).all())
    err, peak = g.rel_error(out, ref)
    assert err <= c.tol * peak


# ---------------------------------------------------------------- ops on CUDA


@needs_cuda
@pytest.mark.parametrize("backend", ["torch", "numba", "cupy"])
@pytest.mark.parametrize("name", [c.name for c in g.OP_CASES])
def test_op_on_cuda_matches_cpu(name, backend, inputs):
    wave, lengths, banks = inputs
    c = g.case(name)
    if backend not in g.backends_for(c, "cuda"):
        pytest.skip(f"no runnable {backend!r} kernel for {c.backend_op or c.name!r} on cuda here")
    ex = c.extras(lengths, wave.shape[-1], banks)
    out, out_len = g.run_case(c, wave, lengths, ex, backend, device="cuda")
    ref, ref_len = g.run_case(c, wave, lengths, ex, "torch", device="cpu")
    assert out.device.type == "cuda" and out.dtype == torch.float32
    assert out_len.dtype == torch.int64 and out_len.shape == lengths.shape
    assert torch.equal(out_len.cpu(), ref_len), f"lengths {out_len.tolist()} != {ref_len.tolist()}"
    assert out.shape == ref.shape
    assert bool(torch.isfinite(out).all()), "NaN / Inf on the GPU"
    assert g.padding_is_zero(out, out_len), "padding is not zero"
    err, peak = g.rel_error(out, ref)
    assert err <= c.tol * peak, f"max |gpu - cpu| = {err:.3e} > {c.tol:.0e} * peak {peak:.3f} ({c.why})"
    again, again_len = g.run_case(c, wave, lengths, ex, backend, device="cuda")
    assert torch.equal(again, out) and torch.equal(again_len, out_len), "two runs differ"


@needs_cuda
def test_cuda_float64_keeps_dtype(inputs):
    wave, lengths, banks = inputs
    for c in g.OP_CASES:
        ex = c.extras(lengths, wave.shape[-1], banks)
        for be in g.backends_for(c, "cuda"):
            out, out_len = g.run_case(c, wave, lengths, ex, be, device="cuda", dtype=torch.float64)
            assert out.dtype == torch.float64 and out.device.type == "cuda", (c.name, be)
            assert g.padding_is_zero(out, out_len), (c.name, be)


# ---------------------------------------------------------------- presets on CUDA

#: Presets (and some seed000 conditions) with the tolerance of their least exact op, x2 for chains.
PRESET_TOL = {
    "retaining": 5e-5, "all_noises": 1e-5, "seed002": 1e-5, "mcadams": 2e-4, "vtln": 2e-4, "mss": 2e-4,
    "seed004:pitch": 4e-3, "seed004:white_noise": 1e-5, "seed000:NatSt": 1e-5, "seed000:HumCo_10dB": 1e-5, "seed000:SpeedSeg": 5e-5,
    "seed000:FadeIn": 1e-5, "seed000:DropLetters": 1e-5, "seed000:Reverb": 5e-5, "seed000:Speed_0.75x": 5e-5,
    "seed000:Pitch_1.25x": 4e-3, "seed000:FillerS": 1e-5, "seed000:Laugh": 1e-5,
}
IGNORED_RECORD_KEYS = {"backend", "backend_name"}  # which kernel ran may differ between devices


def _banks(device):
    from gpuaug.data.synthetic import synthetic_insert_bank, synthetic_noise_bank, synthetic_rir_bank

    banks = {"noise": synthetic_noise_bank(), "rir": synthetic_rir_bank(), "insert": synthetic_insert_bank()}
    for b in banks.values():
        b.to(device)
    return banks


def _same_record(a, b) -> bool:
    if isinstance(a, dict) and isinstance(b, dict):
        keys = (a.keys() | b.keys()) - IGNORED_RECORD_KEYS
        return all(_same_record(a.get(k), b.get(k)) for k in keys)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same_record(x, y) for x, y in zip(a, b))
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-9) or (math.isnan(a) and math.isnan(b))
    return a == b


def test_preset_table_matches_presets():
    from gpuaug.presets import PRESET_NAMES

    assert set(PRESET_NAMES) <= set(PRESET_TOL)


@needs_cuda
@pytest.mark.parametrize("name", list(PRESET_TOL))
def test_preset_on_cuda_matches_cpu(name, inputs):
    from gpuaug.presets import build_preset

    wave, lengths, _ = inputs
    outs = {}
    for dev in ("cpu", "cuda"):
        bk = _banks(dev)
        pipe = build_preset(name, noise=bk["noise"], rir=bk["rir"], insert=bk["insert"])
        outs[dev] = pipe(wave.to(dev), lengths.to(dev), seed=5, epoch=2)
    cpu, gpu = outs["cpu"], outs["cuda"]
    assert gpu.wave.device.type == "cuda" and gpu.wave.dtype == torch.float32
    assert torch.equal(gpu.lengths.cpu(), cpu.lengths)
    assert gpu.tags == cpu.tags
    assert torch.equal(gpu.severity.cpu(), cpu.severity)
    for f in ("keep", "loss_weight", "delta", "dimensional_weight"):
        assert torch.equal(getattr(gpu.labels, f).cpu(), getattr(cpu.labels, f)), f
    assert gpu.labels.action == cpu.labels.action
    assert _same_record(gpu.record, cpu.record)
    assert g.padding_is_zero(gpu.wave, gpu.lengths) and bool(torch.isfinite(gpu.wave).all())
    err, peak = g.rel_error(gpu.wave, cpu.wave)
    assert err <= PRESET_TOL[name] * peak, f"max |gpu - cpu| = {err:.3e} (peak {peak:.3f})"
