"""``auto`` on a GPU falls back to torch where a kernel cannot be compiled or loaded (probe),
records why, warns once; an explicit backend raises naming the op; CPU tensors are never
probed; verdicts are cached (see :mod:`gpuaug.backend`).

Without a GPU, CUDA is made "available" by monkeypatching and the probes are fakes, except
in :func:`test_real_numba_probe_without_nvvm`, which runs the real probe of an op's
``@cuda.jit`` kernels on the real CUDA target (no simulator) with NVVM made to fail.
"""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import pytest

from gpuaug import backend

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def fresh(monkeypatch):
    """Empty verdicts / reasons, a private registry copy, CUDA 'available', no env override."""
    backend._load_kernels()
    monkeypatch.setattr(backend, "_KERNELS", dict(backend._KERNELS))
    monkeypatch.setattr(backend, "_PROBES", dict(backend._PROBES))
    monkeypatch.setattr(backend, "_VERDICTS", {})
    monkeypatch.setattr(backend, "_REASONS", {})
    monkeypatch.setattr(backend, "available", lambda b, d: True)
    for key in list(os.environ):
        if key.startswith("GPUAUG_BACKEND"):
            monkeypatch.delenv(key)
    return monkeypatch


def fake_kernel(*tensors, **params):
    return tensors


def register(op, backend_name, device_type, auto_rank=0, probe=None):
    """Register :func:`fake_kernel` (the probes are what these tests exercise)."""
    backend.register_kernel(op, backend_name, device_type, auto_rank=auto_rank, probe=probe)(fake_kernel)


class Probe:
    def __init__(self, error: Exception | None = None):
        self.error, self.calls = error, []

    def __call__(self, device_index: int) -> None:
        self.calls.append(device_index)
        if self.error is not None:
            raise self.error


def test_auto_falls_back_to_torch_and_records_why(fresh):
    probe = Probe(RuntimeError("NVVM not found\nsecond line"))
    register("fb_op", "numba", "cuda", probe=probe)
    with pytest.warns(RuntimeWarning, match="'numba' kernels of op 'fb_op' cannot run on cuda:0"):
        assert backend.resolve("fb_op", "cuda:0") == "torch"
    assert backend.fallback_reasons() == {("fb_op", "numba", "cuda"): "RuntimeError: NVVM not found"}
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # once: no second warning, no second probe
        for _ in range(5):
            assert backend.resolve("fb_op", "cuda:0") == "torch"
    assert probe.calls == [0]


def test_auto_takes_the_next_kernel_that_runs(fresh):
    bad, good = Probe(OSError("cannot load module")), Probe()
    register("fb_two", "numba", "cuda", auto_rank=0, probe=bad)
    register("fb_two", "cupy", "cuda", auto_rank=1, probe=good)
    with pytest.warns(RuntimeWarning):
        assert backend.resolve("fb_two", "cuda:0") == "cupy"
    assert backend.resolve("fb_two", "cuda:0") == "cupy"
    assert bad.calls == [0] and good.calls == [0]
    assert list(backend.fallback_reasons()) == [("fb_two", "numba", "cuda")]


def test_explicit_backend_raises_naming_the_op(fresh):
    register("fb_explicit", "numba", "cuda", probe=Probe(RuntimeError("compile error in kernel")))
    with pytest.raises(RuntimeError, match=r"backend 'numba' cannot run op 'fb_explicit' on cuda:0.*compile error"):
        backend.resolve("fb_explicit", "cuda:0", "numba")
    fresh.setenv("GPUAUG_BACKEND_FB_EXPLICIT", "numba")
    with pytest.raises(RuntimeError, match="fb_explicit"):
        backend.resolve("fb_explicit", "cuda:0")
    assert backend.resolve("fb_explicit", "cuda:0", "torch") == "torch"


def test_verdict_cached_per_device_and_probe_ok(fresh):
    probe = Probe()
    register("fb_ok", "numba", "cuda", probe=probe)
    for _ in range(3):
        assert backend.resolve("fb_ok", "cuda:0") == "numba"
        assert backend.resolve("fb_ok", "cuda:1", "numba") == "numba"
    assert probe.calls == [0, 1] and backend.fallback_reasons() == {}


def test_cpu_tensors_are_never_probed(fresh):
    probe = Probe(RuntimeError("must not run"))
    register("fb_cpu", "numba", "cpu", probe=probe)  # a CPU probe is ignored
    register("fb_cpu", "numba", "cuda", probe=probe)
    assert backend.resolve("fb_cpu", "cpu") == "numba"
    assert backend.resolve("fb_cpu", "cpu", "numba") == "numba"
    assert probe.calls == [] and backend._VERDICTS == {}


def test_default_numba_probe_is_the_ops_kernel_table(fresh):
    import gpuaug.kernels._numba_glue as glue

    seen = []

    def fake_probe_cuda_op(op, device_index):
        seen.append((op, device_index))
        raise ImportError("libNVVM cannot be found")

    fresh.setattr(glue, "probe_cuda_op", fake_probe_cuda_op)
    with pytest.warns(RuntimeWarning, match="mix_noise"):
        assert backend.resolve("mix_noise", "cuda:0") == "torch"
    assert seen == [("mix_noise", 0)]
    assert "libNVVM" in backend.fallback_reasons()[("mix_noise", "numba", "cuda")]


def test_every_numba_cuda_op_has_kernels_in_the_tables():
    """The probe of op X compiles the table entries of op X: both sides must agree."""
    from gpuaug.kernels._numba_glue import cuda_kernel_entries

    backend._load_kernels()
    registered = {op for (op, b, d) in backend._KERNELS if b == "numba" and d == "cuda" and op in backend.OPS}
    tabled = {entry.op for *_, entry in cuda_kernel_entries()}
    assert registered == tabled
    assert {name for _, name, _, _ in cuda_kernel_entries("warp")} == {"_warp_cuda"}
    assert {name for _, name, _, _ in cuda_kernel_entries("segment_warp")} == {"_segment_cuda"}  # its own op
    assert ("warp", "cupy") in backend._PROBES


def test_real_numba_probe_without_nvvm():
    """The real probe on the real CUDA target with NVVM failing as if absent: auto -> torch."""
    script = textwrap.dedent("""
        import warnings
        import numba.cuda.dispatcher as dispatcher
        from numba import cuda
        from numba.cuda.cudadrv import devices, nvvm
        from gpuaug import backend

        class Device:
            compute_capability = (9, 0)

        class Context:  # no driver here: a stand-in for the current CUDA context
            device = Device()
            device.id = 0

        class Gpus:  # ... and for cuda.gpus[index]
            def __getitem__(self, index):
                import contextlib
                return contextlib.nullcontext()

        def no_nvvm(*a, **k):
            raise nvvm.NvvmSupportError("libNVVM cannot be found. Do `conda install cuda-nvcc`")

        dispatcher.get_current_device = Device
        devices.get_context = Context
        cuda.gpus = Gpus()
        nvvm.NVVM.__new__ = no_nvvm
        backend.available = lambda b, d: True
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            assert backend.resolve("gain", "cuda:0") == "torch"
        assert any("gain" in str(w.message) for w in caught)
        reason = backend.fallback_reasons()[("gain", "numba", "cuda")]
        assert "NvvmSupportError" in reason and "libNVVM" in reason, reason
        try:
            backend.resolve("gain", "cuda:0", "numba")
        except RuntimeError as e:
            assert "op 'gain'" in str(e) and "libNVVM" in str(e), e
        else:
            raise AssertionError("explicit numba did not raise")
        print("OK", reason)
    """)
    env = {**os.environ, "NUMBA_ENABLE_CUDASIM": "0"}
    res = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300,
                         cwd=ROOT)
    assert res.returncode == 0 and res.stdout.startswith("OK"), res.stdout[-2000:] + res.stderr[-3000:]
