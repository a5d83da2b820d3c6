"""pytest-benchmark: each benchmark pipeline on one batch (8 clips x 4 s at 16 kHz).

    python -m pytest benchmarks/test_bench_pipelines.py --benchmark-enable

The pipelines and their parameters are those of bench.py (:data:`common.PIPELINES`, every
transform with p=1), on the real noises / RIRs / speech of ../shared/data when present
(else the synthetic ones), once with plain torch ops (``GPUAUG_BACKEND=torch``) and once
with the default dispatch (``auto``: kernels where registered). Each result carries
``x_realtime`` and the backends ``auto`` resolved to in ``extra_info``.
"""
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import DEFAULT_DATA, PIPELINES, SR, backend_env, gpuaug_pipeline, load_banks, speech_clips  # noqa: E402

DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")
BATCH, SECONDS = 8, 4.0


@pytest.fixture(scope="module")
def banks(tmp_path_factory):
    data = DEFAULT_DATA if DEFAULT_DATA.is_dir() else None
    b = load_banks(data, tmp_path_factory.mktemp("banks"))
    b.noise.to(DEVICE)
    b.rir.to(DEVICE)
    return b


@pytest.fixture(scope="module")
def batch():
    data = DEFAULT_DATA if DEFAULT_DATA.is_dir() else None
    wave = torch.from_numpy(speech_clips(data, BATCH, SECONDS)).to(DEVICE)
    return wave, torch.full((BATCH,), wave.shape[-1], dtype=torch.int64, device=DEVICE)


@pytest.mark.parametrize("backend", ["torch", "auto"])
@pytest.mark.parametrize("name", list(PIPELINES))
def test_pipeline(benchmark, banks, batch, name, backend):
    wave, lengths = batch
    pipe = gpuaug_pipeline(name, banks)
    calls = iter(range(10**9))  # a new epoch per call: new parameters every time

    def run():
        out = pipe(wave, lengths, seed=0, epoch=next(calls))
        if DEVICE.type == "cuda":
            torch.cuda.synchronize(DEVICE)
        return out

    with backend_env(None if backend == "auto" else backend), torch.no_grad():
        run()  # warm-up (Numba compiles on first use)
        out = benchmark(run)
    if benchmark.stats:
        benchmark.extra_info["x_realtime"] = BATCH * SECONDS / benchmark.stats["mean"]
    benchmark.extra_info["pipeline_steps"] = PIPELINES[name]
    assert bool(torch.isfinite(out.wave).all())
    assert out.lengths.shape == (BATCH,) and int(out.lengths.min()) > 0
    assert out.wave.shape[-1] == int(out.lengths.max())
    assert SR == pipe.sample_rate
