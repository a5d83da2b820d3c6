"""gpuaug._allocator: glibc's thresholds raised by the first CPU op, opt-outs respected, and freed
batch-sized buffers reused instead of faulted in again (each case in a fresh process)."""
import os
import platform
import subprocess
import sys
import textwrap

import pytest

glibc = pytest.mark.skipif(not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc",
                           reason="glibc's mallopt only")

PROBE = textwrap.dedent("""
    import resource, torch
    from gpuaug import _allocator
    from gpuaug.functional import gain
    assert _allocator.applied is None  # importing gpuaug changes nothing
    gain(torch.zeros(2, 100), torch.tensor([100, 50]), gain_db=0.0)  # the first CPU op

    def batch():  # two live 40 MB buffers: above the 32 MiB cap of glibc's dynamic mmap threshold
        bufs = [torch.empty(10 << 20).fill_(1.0) for _ in range(2)]
        del bufs

    for _ in range(5):  # the heap grows to fit the batch (more than once where it is fragmented)
        batch()
    r0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(20):
        batch()
    print(_allocator.applied, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - r0)
""")


def _probe(**env) -> tuple[bool, int]:
    full = {k: v for k, v in os.environ.items() if k not in ("GPUAUG_RETAIN_MEMORY", "MALLOC_MMAP_THRESHOLD_",
                                                             "MALLOC_TRIM_THRESHOLD_")}
    out = subprocess.run([sys.executable, "-c", PROBE], env={**full, **env}, capture_output=True, text=True,
                         check=True).stdout.split()
    return out[0] == "True", int(out[1])


@glibc
def test_first_cpu_op_keeps_freed_buffers():
    applied, faults = _probe()
    off, faults_off = _probe(GPUAUG_RETAIN_MEMORY="0")
    assert applied and not off
    pages = (2 * (40 << 20)) // 4096  # one batch's buffers
    assert faults_off > 10 * pages  # glibc's default: a fresh mmap per buffer, faulted in again
    assert faults < 2 * pages  # kept: 20 batches fault at most a late growth of the heap


@glibc
def test_user_settings_of_glibc_win():
    applied, _ = _probe(MALLOC_TRIM_THRESHOLD_="1000000")
    assert not applied

