"""Backend dispatch: resolution order, fallbacks and errors."""
import pytest

from gpuaug import backend


def test_torch_always_available(monkeypatch):
    monkeypatch.delenv("GPUAUG_BACKEND", raising=False)
    assert backend.resolve("no_such_op", "cpu") == "torch"
    assert backend.resolve("no_such_op", "cpu", "torch") == "torch"


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
