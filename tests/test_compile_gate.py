"""The compile gate (:mod:`gpuaug.kernels._compile_gate`): every GPU kernel compiles for real
GPUs (NVVM, ptxas / nvJitLink, nvcc, NVRTC) without spills, every kernel has a gate entry,
and the entries' signatures are those the torch wrappers launch the kernels with.

The gate itself runs in a subprocess without the CUDA simulator (the test session has it on
when there is no GPU); coverage and the launch signatures are checked in-process.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numba
import numpy as np
import pytest
import torch
from numba.core import sigutils

import gpuaug.kernels._compile_gate as gate
from gpuaug.kernels import _numba_glue as glue

ROOT = Path(__file__).resolve().parents[1]
REAL_ENV = {**os.environ, "NUMBA_ENABLE_CUDASIM": "0"}


def _real(script: str, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(script)], env=REAL_ENV, capture_output=True,
                          text=True, timeout=timeout, cwd=ROOT)


@pytest.fixture(scope="module")
def gate_result(tmp_path_factory):
    """The gate's JSON for cc 9.0 and 8.0 (one subprocess for the module)."""
    out = tmp_path_factory.mktemp("gate") / "gate.json"
    res = subprocess.run([sys.executable, "-m", "gpuaug.kernels._compile_gate", "--cc", "9.0", "8.0", "--quiet",
                          "--json", str(out)], env=REAL_ENV, capture_output=True, text=True, timeout=900, cwd=ROOT)
    if not out.exists():
        pytest.fail(f"the gate wrote no results (rc {res.returncode}):\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}")
    result = json.loads(out.read_text())
    return res, result


def test_gate_compiles_every_kernel_without_spills(gate_result):
    res, result = gate_result
    if any("NVVM" in s for s in result["skipped"]):
        pytest.skip(f"no NVVM here: {result['skipped']}")
    assert res.returncode == 0 and result["ok"], "\n".join(result["failures"]) + res.stdout[-2000:]
    compiled = {(r["kernel"], r["signature"], r["cc"]) for r in result["numba"] if "registers" in r or "compile_s" in r}
    for _, name, _, entry in glue.cuda_kernel_entries():
        for kernel in [r for r in result["coverage"]["numba"] if r.endswith("." + name)]:
            for sig in entry.signatures:
                for cc in ("9.0", "8.0"):
                    assert (kernel, sig, cc) in compiled
    if result["versions"].get("nvcc"):
        assert {r["kernel"] for r in result["cuda_c"] if r["compiler"] == "nvcc" and "registers" in r} == \
            set(result["coverage"]["cuda_c"])
    if result["numba"] and any("assembler" in r for r in result["numba"]):
        assert all(r["registers"] > 0 and r["spill_stores"] == 0 for r in result["numba"])


def test_gate_fails_on_the_segment_kernel_before_its_fix():
    """The gate catches what the simulator hides: the segment kernel as it was before it
    called the CUDA device function (plain-Python ``_warp_point`` from a device function)."""
    res = _real("""
        import math, sys
        import numba
        from numba import cuda
        from numba.cuda.cudadrv import nvvm
        try:
            nvvm.NVVM()
        except Exception as e:
            print("SKIP", e); sys.exit(0)
        import gpuaug.kernels._compile_gate as gate
        import gpuaug.kernels.segment_warp as sw
        from gpuaug.kernels._numba_glue import CudaEntry
        from gpuaug.kernels.warp_sinc import _warp_point

        def _segment_sample(x, b, c, j, L, s, n, m, zeros, rolloff):  # the body before the fix
            if j < s:
                src = j
            elif j >= s + m:
                src = j - m + n
            else:
                slope = n / max(m, 1.0)
                p = s + (j - s) * slope
                f = rolloff * min(1.0 / slope, 1.0)
                return _warp_point(x, b, c, L, p, f, zeros, math.sin(math.pi * f), math.cos(math.pi * f),
                                   math.sin(math.pi * f / zeros), math.cos(math.pi * f / zeros))
            if src < L:
                return numba.float64(x[b, c, src])
            return 0.0

        sw._sample_cuda = cuda.jit(device=True)(_segment_sample)  # the kernel's global
        sig = sw.CUDA_KERNELS["_segment_cuda"].signatures[0]
        gate.kernel_modules = lambda: [sw]
        import gpuaug.kernels._numba_glue as glue
        glue.cuda_kernel_entries = lambda op=None: [("seg", "_segment_cuda", sw._segment_cuda,
                                                     CudaEntry("warp", 128, (sig,)))]
        rows, failures = gate.gate_numba([(9, 0)], [(9, 0)], None, None, print)
        print("FAILURES:", *failures, sep="\\n")
    """)
    if res.stdout.startswith("SKIP"):
        pytest.skip(res.stdout.strip())
    assert res.returncode == 0, res.stderr[-3000:]
    assert "Untyped global name '_warp_point'" in res.stdout, res.stdout[-3000:]


# ---------------------------------------------------------------- coverage (no compiler needed)


def test_every_kernel_has_a_gate_entry():
    cov = gate.coverage()
    assert cov["missing"] == [] and cov["stale"] == [], cov
    assert len(cov["numba"]) >= 10 and "warp_sinc.cu:warp_sinc_f32" in cov["cuda_c"]
    assert "gpuaug.kernels.segment_warp._segment_cuda" in cov["numba"]


def test_coverage_flags_a_new_kernel_without_an_entry(monkeypatch, tmp_path):
    from numba import cuda

    import gpuaug.kernels.elementwise as ew

    def _new_cuda(x):
        x[0] = 1.0

    _new_cuda.__module__ = ew.__name__
    monkeypatch.setattr(ew, "_new_cuda", cuda.jit(_new_cuda), raising=False)
    monkeypatch.setitem(ew.CUDA_KERNELS, "_gone_cuda", ew.CUDA_KERNELS["_gain_cuda"])
    for p in gate.KERNELS_DIR.iterdir():  # a copy of the folder with one more .cu source
        if p.suffix in (".py", ".cu"):
            (tmp_path / p.name).write_bytes(p.read_bytes())
    (tmp_path / "extra.cu").write_text('extern "C" __global__ void extra_kernel(float* x) { x[0] = 1.0f; }\n'
                                       '// __global__ void commented_out(float* x)\n')
    monkeypatch.setattr(gate, "KERNELS_DIR", tmp_path)
    cov = gate.coverage()
    assert any(m.startswith("gpuaug.kernels.elementwise._new_cuda") for m in cov["missing"])
    assert any("extra.cu:extra_kernel" in m for m in cov["missing"])
    assert not any("commented_out" in m for m in cov["missing"])
    assert any("_gone_cuda" in s for s in cov["stale"])


def test_parse_ptxas_and_resource_checks():
    log = textwrap.dedent("""\
        ptxas info    : 0 bytes gmem
        ptxas info    : Compiling entry function '_Z3fooPf' for 'sm_90'
        ptxas info    : Function properties for _Z3fooPf
            24 bytes stack frame, 8 bytes spill stores, 12 bytes spill loads
        ptxas info    : Used 255 registers, used 0 barriers, 24 bytes cumulative stack size
        ptxas info    : Function properties for __internal_trig_reduction_slowpathd
        ptxas         .     0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
        info    : Function properties for '_Z3fooPf':
        info    : used 255 registers, used 5 barriers, 24 stack, 0 bytes smem, 880 bytes cmem[0], 0 bytes lmem
    """)
    row = {"kernel": "foo", "threads": 512, "cc": "9.0", **gate._summarise(gate.parse_ptxas(log))}
    assert (row["registers"], row["stack_frame"], row["spill_stores"], row["spill_loads"]) == (255, 24, 8, 12)
    failures = []
    gate._check_resources(row, failures)
    assert len(failures) == 2 and "spill" in failures[0] and "exceed" in failures[1]
    clean = {"kernel": "foo", "threads": 128, "cc": "9.0", "registers": 64, "spill_stores": 0, "spill_loads": 0}
    failures = []
    gate._check_resources(clean, failures)
    assert failures == []


# ---------------------------------------------------------------- the tables are the launches


@pytest.mark.skipif(not numba.config.ENABLE_CUDASIM, reason="records launches on the CUDA simulator")
def test_signature_tables_match_the_wrappers_launches(monkeypatch):
    """Every CUDA launch of the torch wrappers (their CUDA branch, driven with CPU tensors on
    the simulator) has argument types and a block size of its kernel's table entry."""
    from numba.cuda.simulator.kernel import FakeCUDAKernel

    import gpuaug.kernels.elementwise as ew
    import gpuaug.kernels.mcadams_frames as km
    import gpuaug.kernels.segment_warp as sw
    import gpuaug.kernels.snr_mix as sm
    import gpuaug.kernels.splice as sp
    import gpuaug.kernels.warp_sinc as ws
    from gpuaug.functional.drop import drop_segments
    from gpuaug.functional.fade import fade
    from gpuaug.functional.gain import gain
    from gpuaug.functional.insert import insert_clip
    from gpuaug.functional.mcadams import mcadams
    from gpuaug.functional.noise import mix_noise, mix_noise_from_bank
    from gpuaug.functional.resample import warp
    from gpuaug.functional.speed import speed_segment

    launches = []

    def record(self, *args):  # the launch's types; the kernel is not run
        launches.append((self.fn, self.block_dim[0], tuple(numba.typeof(a) for a in args)))

    monkeypatch.setattr(FakeCUDAKernel, "__call__", record)

    def gpu_run(kernel_cpu, launch_cuda, tensors, *scalars):  # run_numba's CUDA branch
        launch_cuda(*[glue.kernel_array(t) for t in tensors], *scalars, stream=0)

    for mod in (ew, sp, sw):
        monkeypatch.setattr(mod, "run_numba", gpu_run)
    monkeypatch.setattr(sm, "_run", lambda kcpu, lgpu, tensors: lgpu(*[glue.kernel_array(t) for t in tensors],
                                                                      stream=0))
    monkeypatch.setattr(ws, "_warp_cpu", lambda *args: ws.launch_cuda(*args, stream=0))
    frames_args = {}

    def frames_cpu(xe, sig, m, alpha, win, hop, order, frames):
        frames_args.update(xe=xe, sig=sig, m=m, alpha=alpha, win=win, hop=hop, order=order, N=frames.shape[0])

    def ola_cpu(frames, offsets, n_frames, hop, out):  # mcadams_ola's CUDA branch, same arrays
        a = frames_args
        W = a["win"].shape[0]
        scratch = np.empty((km.scratch_len(W, a["order"]), max(1, min(a["N"], km.CUDA_CHUNK))))
        km.launch_cuda(a["xe"], a["sig"], a["m"], offsets, n_frames, a["alpha"], a["win"], hop, a["order"],
                       scratch, np.empty((W, a["N"])), out, 0)

    monkeypatch.setattr(km, "_frames_cpu", frames_cpu)
    monkeypatch.setattr(km, "_ola_cpu", ola_cpu)

    g = torch.Generator().manual_seed(0)
    from gpuaug._sync import deferred_reads

    with deferred_reads():  # the kernels are not run: their outputs' checks are collected, never read
        for dtype in (torch.float32, torch.float64, torch.float16):
            for C in (None, 2):
                shape = (3, 800) if C is None else (3, C, 800)
                wave = (torch.randn(shape, generator=g) * 0.1).to(dtype)
                lengths = torch.tensor([800, 500, 1])
                gain(wave, lengths, gain_db=torch.tensor([1.0, -2.0, 0.5]), backend="numba")
                for shape_name in ("linear", "exponential"):
                    fade(wave, lengths, sample_rate=16000, rate_per_s=0.5, direction=torch.tensor([1, -1, 0]),
                         shape=shape_name, backend="numba")
                for noise_dtype in (torch.float32, torch.float64, torch.float16):
                    noise = torch.randn(3, 300, generator=g).to(noise_dtype)
                    mix_noise(wave, lengths, noise, torch.tensor([300, 20, 1]), snr_db=5.0, fade_out=4, backend="numba")
                    mix_noise_from_bank(wave, lengths, noise, torch.tensor([300, 20, 1]), torch.tensor([2, 0, 0]),
                                        snr_db=5.0, backend="numba")
                clip = torch.randn((3, 50) if C is None else (3, C, 50), generator=g).to(dtype)
                insert_clip(wave, lengths, clip, torch.tensor([50, 10, 0]), position=torch.tensor([5, 600, 0]),
                            silence_before=3, silence_after=2, edge_fade=4, backend="numba")
                intervals = torch.tensor([[[100, 200], [300, 320]], [[0, 10], [0, 0]], [[0, 1], [0, 0]]])
                drop_segments(wave, lengths, intervals=intervals, crossfade=5, backend="numba")
                pos = torch.arange(700, dtype=torch.float64).expand(3, 700) * 1.1
                warp(wave, lengths, pos, torch.tensor([700, 400, 1]), 0.9, backend="numba")
                speed_segment(wave, lengths, start=torch.tensor([10, 100, 0]), length=200, factor=1.25,
                              backend="numba")
                if dtype != torch.float16:
                    mcadams(wave, lengths, alpha=torch.tensor([0.8, 1.2, 0.9]), level="none", backend="numba")

    tables = {}
    for _, name, kernel, entry in glue.cuda_kernel_entries():
        tables[kernel.fn] = (name, entry, {sigutils.normalize_signature(s)[0] for s in entry.signatures})
    seen = set()
    assert launches
    for fn, threads, types in launches:
        assert fn in tables, f"launch of {fn.__qualname__}, which has no CUDA_KERNELS entry"
        name, entry, sigs = tables[fn]
        assert types in sigs, f"{name} launched with {types}, not in its table {entry.signatures}"
        assert threads == entry.threads, f"{name} launched with {threads} threads, table says {entry.threads}"
        seen.add((name, types))
    for fn, (name, entry, sigs) in tables.items():  # every declared signature is a real launch
        assert {t for n, t in seen if n == name} == sigs, f"{name}: declared {sigs}, launched {seen}"
