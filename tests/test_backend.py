"""Backend dispatch: resolution order, fallbacks and errors."""
import os

import pytest

from gpuaug import backend


@pytest.fixture
def clean_env(monkeypatch):
    """No ``GPUAUG_BACKEND*`` variable set (restored afterwards)."""
    for key in [k for k in os.environ if k.startswith("GPUAUG_BACKEND")]:
        monkeypatch.delenv(key)
    return monkeypatch


@pytest.fixture
def registry(clean_env):
    """A private copy of the kernel registry (fakes and replacements do not leak), no env override."""
    backend._load_kernels()
    clean_env.setattr(backend, "_KERNELS", dict(backend._KERNELS))
    clean_env.setattr(backend, "_PROBES", dict(backend._PROBES))
    return clean_env


def fake_kernel(*tensors, **params):
    return tensors


def test_torch_always_available(monkeypatch):
    monkeypatch.delenv("GPUAUG_BACKEND", raising=False)
    assert backend.resolve("gain", "cpu", "torch") == "torch"
    assert backend.resolve("warp", "cpu", "torch") == "torch"


def test_env_override_and_errors(registry):
    monkeypatch = registry
    monkeypatch.setenv("GPUAUG_BACKEND", "torch")
    backend.register_kernel("demo_op", "numba", "cpu")(fake_kernel)
    assert backend.resolve("demo_op", "cpu") == "torch"
    monkeypatch.setenv("GPUAUG_BACKEND_DEMO_OP", "numba")
    assert backend.resolve("demo_op", "cpu") == "numba"
    monkeypatch.delenv("GPUAUG_BACKEND")
    monkeypatch.delenv("GPUAUG_BACKEND_DEMO_OP")
    assert backend.resolve("demo_op", "cpu") == "numba"  # auto picks the registered kernel
    assert backend.kernel_for("demo_op", "cpu") == ("numba", fake_kernel)
    with pytest.raises(ValueError, match="backend must be"):
        backend.resolve("demo_op", "cpu", "opencl")
    with pytest.raises(ValueError, match="no 'cupy' kernel"):
        backend.resolve("demo_op", "cpu", "cupy")


def test_auto_never_picks_unranked(registry):
    registry.delenv("GPUAUG_BACKEND", raising=False)
    backend.register_kernel("slow_op", "numba", "cpu", auto_rank=None)(fake_kernel)
    assert backend.resolve("slow_op", "cpu") == "torch"
    assert backend.kernel_for("slow_op", "cpu") == ("torch", None)
    assert backend.kernel_for("slow_op", "cpu", "numba") == ("numba", fake_kernel)


def test_unknown_op_raises_instead_of_running_torch():
    from gpuaug.backend import kernel_for, resolve

    for backend in (None, "auto", "torch", "numba"):
        with pytest.raises(ValueError, match="unknown op 'mix_nosie'"):
            resolve("mix_nosie", "cpu", backend)
        with pytest.raises(ValueError, match="unknown op 'mix_nosie'"):
            kernel_for("mix_nosie", "cpu", backend, shared=True)
    assert resolve("mix_noise", "cpu", "torch") == "torch"


def test_resolve_is_the_name_of_kernel_for(clean_env):
    for op in backend.OPS:
        for requested in (None, "auto", "torch", "numba"):
            name, fn = backend.kernel_for(op, "cpu", requested)
            assert backend.resolve(op, "cpu", requested) == name
            assert (fn is None) == (name == "torch")


def test_shared_backend_runs_torch_for_an_op_without_that_kernel(registry):
    """A shared request (the one backend= of a function running two ops, or GPUAUG_BACKEND) means
    torch for an op without such a kernel; the op's own variable or a plain request raises."""
    registry.delenv("GPUAUG_BACKEND", raising=False)
    registry.delenv("GPUAUG_BACKEND_PHASE_LOCK", raising=False)
    assert backend.kernel_for("phase_lock", "cpu", "cupy", shared=True) == ("torch", None)
    with pytest.raises(ValueError, match="no 'cupy' kernel for op 'phase_lock' on cpu"):
        backend.kernel_for("phase_lock", "cpu", "cupy")
    registry.setenv("GPUAUG_BACKEND", "cupy")
    assert backend.kernel_for("phase_lock", "cpu", shared=True) == ("torch", None)
    registry.setenv("GPUAUG_BACKEND_PHASE_LOCK", "cupy")  # names this op: raises even when shared
    with pytest.raises(ValueError, match="no 'cupy' kernel for op 'phase_lock'"):
        backend.kernel_for("phase_lock", "cpu", shared=True)
    with pytest.raises(ValueError, match="backend must be"):
        backend.kernel_for("phase_lock", "cpu", "opencl", shared=True)
