"""One CPU thread budget for torch and Numba (gpuaug.kernels._numba_glue, gpuaug.backend).

Every CPU kernel launch (inside ``CPU_LOCK``) sets Numba's thread count of the launching
thread to ``torch.get_num_threads()``, or to the ``gpuaug.backend.set_num_threads`` override
of this process, clamped to ``numba.config.NUMBA_NUM_THREADS``. Each test first puts Numba on
a different count, so a launch that did not apply the budget fails the test.
"""
import numba
import pytest
import torch
from torch.utils.data import DataLoader, Dataset

import gpuaug.kernels.snr_mix  # noqa: F401  (a module that takes CPU_LOCK itself)
from gpuaug import backend as gb
from gpuaug.functional.gain import gain
from gpuaug.kernels._launch import run_numba
from gpuaug.kernels._numba_glue import CPU_LOCK

POOL = numba.config.NUMBA_NUM_THREADS
needs_two = pytest.mark.skipif(POOL < 2, reason="Numba's pool has one thread (NUMBA_NUM_THREADS=1)")


@numba.njit(parallel=True)  # no cache: numba.get_num_threads() in a kernel cannot be cached
def _threads_inside(out):
    """A tiny parallel kernel recording Numba's thread count as seen inside the launch."""
    for i in numba.prange(out.shape[0]):
        out[i] = numba.get_num_threads()


def launch_and_report() -> int:
    """Numba's thread count inside a ``run_numba`` CPU launch of :func:`_threads_inside`."""
    out = torch.zeros(4, dtype=torch.int64)
    run_numba(_threads_inside, None, [out])
    assert torch.all(out == out[0])
    return int(out[0])


@pytest.fixture(autouse=True)
def restore():
    torch_before, numba_before = torch.get_num_threads(), numba.get_num_threads()
    yield
    gb.set_num_threads(None)
    torch.set_num_threads(torch_before)
    numba.set_num_threads(numba_before)


@needs_two
@pytest.mark.parametrize("n", [1, 2])
def test_numba_follows_torch_at_launch(n):
    torch.set_num_threads(n)
    numba.set_num_threads(3 - n)  # the other count: only the launch can bring it back to n
    assert launch_and_report() == n
    assert numba.get_num_threads() == n  # and it stays set after the launch
    assert gb.get_num_threads() == n


@needs_two
def test_real_kernel_launch_applies_budget():
    """A gpuaug op on its Numba CPU kernel (gain) and a module taking CPU_LOCK directly."""
    wave, lengths = torch.randn(2, 800), torch.tensor([800, 500])
    torch.set_num_threads(1)
    numba.set_num_threads(2)
    gain(wave, lengths, gain_db=torch.tensor([3.0, -3.0]), backend="numba")
    assert numba.get_num_threads() == 1
    torch.set_num_threads(2)
    with CPU_LOCK:
        assert numba.get_num_threads() == 2


@needs_two
def test_override_wins_over_torch_and_resets():
    torch.set_num_threads(2)
    gb.set_num_threads(1)
    numba.set_num_threads(2)
    assert launch_and_report() == 1 and gb.get_num_threads() == 1
    torch.set_num_threads(1)
    gb.set_num_threads(2)
    assert launch_and_report() == 2
    gb.set_num_threads(None)  # back to following torch
    assert launch_and_report() == 1


def test_over_large_requests_are_clamped():
    gb.set_num_threads(POOL + 1000)
    numba.set_num_threads(1)
    assert launch_and_report() == POOL and gb.get_num_threads() == POOL
    gb.set_num_threads(None)
    torch.set_num_threads(POOL + 3)  # torch allows more threads than Numba's pool
    if POOL > 1:
        numba.set_num_threads(1)
    assert launch_and_report() == POOL


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "2"])
def test_override_rejects_bad_counts(bad):
    with pytest.raises((ValueError, TypeError)):
        gb.set_num_threads(bad)


class _Probe(Dataset):
    def __len__(self):
        return 2

    def __getitem__(self, i):
        return torch.tensor([launch_and_report(), torch.get_num_threads()])


@needs_two
def test_dataloader_workers_run_kernels_on_one_thread():
    """torch gives each worker one thread; the kernels follow, the parent's override is not inherited."""
    torch.set_num_threads(2)
    gb.set_num_threads(2)
    got = torch.cat(list(DataLoader(_Probe(), batch_size=1, num_workers=1,
                                    multiprocessing_context="fork")))
    assert got.tolist() == [[1, 1], [1, 1]]
    assert launch_and_report() == 2  # the parent keeps its budget


@needs_two
def test_one_thread_runs_the_serial_twin_with_the_same_result(monkeypatch):
    """A parallel kernel (jit_cpu(parallel=True): a ThreadedKernel) launched with a budget of one
    thread runs its serial twin (no hand-off to Numba's pool), two threads the parallel code; the
    outputs are equal bit for bit (gain, segment speed-up and the retaining pipeline: noise mix,
    reverb, fade, speed; independent rows)."""
    from gpuaug.data.synthetic import synthetic_noise_bank, synthetic_rir_bank
    from gpuaug.functional.speed import speed_segment
    from gpuaug.kernels import elementwise as ew
    from gpuaug.kernels._numba_glue import ThreadedKernel
    from gpuaug.presets import perception_retaining

    kernel = ew._gain_cpu
    assert isinstance(kernel, ThreadedKernel) and kernel.py_func is kernel.parallel.py_func
    calls = []
    for variant in ("serial", "parallel"):
        real = getattr(kernel, variant)
        monkeypatch.setattr(kernel, variant, lambda *a, real=real, variant=variant: calls.append(variant) or real(*a))
    g = torch.Generator().manual_seed(0)
    wave, lengths = torch.randn(6, 1, 9000, generator=g) * 0.1, torch.tensor([9000, 8000, 7000, 9000, 500, 6000])
    pipe = perception_retaining(synthetic_noise_bank(), synthetic_rir_bank(), p_other=0.6)
    outs = []
    for n in (1, 2):
        torch.set_num_threads(n)
        gained, _ = gain(wave, lengths, gain_db=torch.linspace(-3, 3, 6), backend="numba")
        seg, _ = speed_segment(wave, lengths, start=100, length=3000, factor=1.25, backend="numba")
        outs.append((gained, seg, pipe(wave, lengths, seed=4).wave))
    assert calls == ["serial", "parallel"]
    for a, b in zip(*outs):
        assert torch.equal(a, b)
