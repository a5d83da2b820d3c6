"""Backend dispatch: resolution order, fallbacks and errors."""
import pytest

from gpuaug import backend


def test_torch_always_available(monkeypatch):
    monkeypatch.delenv("GPUAUG_BACKEND", raising=False)
    assert backend.resolve("gain", "cpu", "torch") == "torch"
    assert backend.resolve("warp", "cpu", "torch") == "torch"


def test_env_override_and_errors(monkeypatch):
    monkeypatch.setenv("GPUAUG_BACKEND", "torch")
    backend.register("demo_op", "numba", "cpu")
    assert backend.resolve("demo_op", "cpu") == "torch"
    monkeypatch.setenv("GPUAUG_BACKEND_DEMO_OP", "numba")
    assert backend.resolve("demo_op", "cpu") == "numba"
    monkeypatch.delenv("GPUAUG_BACKEND")
    monkeypatch.delenv("GPUAUG_BACKEND_DEMO_OP")
    assert backend.resolve("demo_op", "cpu") == "numba"  # auto picks the registered kernel
    with pytest.raises(ValueError, match="backend must be"):
        backend.resolve("demo_op", "cpu", "opencl")
    with pytest.raises(ValueError, match="no 'cupy' kernel"):
        backend.resolve("demo_op", "cpu", "cupy")


def test_auto_never_picks_unranked(monkeypatch):
    monkeypatch.delenv("GPUAUG_BACKEND", raising=False)
    backend.register("slow_op", "numba", "cpu", auto_rank=None)
    assert backend.resolve("slow_op", "cpu") == "torch"
    assert backend.resolve("slow_op", "cpu", "numba") == "numba"


def test_unknown_op_raises_instead_of_running_torch():
    from gpuaug.backend import resolve

    for backend in (None, "auto", "torch", "numba"):
        with pytest.raises(ValueError, match="unknown op 'mix_nosie'"):
            resolve("mix_nosie", "cpu", backend)
    assert resolve("mix_noise", "cpu", "torch") == "torch"
