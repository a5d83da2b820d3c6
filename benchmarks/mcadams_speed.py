"""Batched CPU McAdams vs the per-frame numpy reference (issue 4 target: >= 20x on 2 cores).

    python benchmarks/mcadams_speed.py [--clips 8] [--seconds 4] [--runs 7]

Input: ``--clips`` synthetic speech-like clips (jittered glottal pulses through three formant
resonators plus a noise floor) of ``--seconds`` s at 16 kHz, alpha 0.8, float32.

* numpy reference: ``tests/reference/mcadams_ref.py`` (per frame: Burg in Python/numpy,
  ``np.roots``, ``scipy.signal.lfilter``), one clip at a time, each clip timed once.
* numba: ``mcadams(..., backend="numba")`` (whole batch: the op's torch pre/post-processing
  plus the ``@njit(parallel=True)`` frame and overlap-add kernels), after a warm-up call
  (compilation, or loading the on-disk cache), median of ``--runs`` calls.
* torch: ``mcadams(..., backend="torch")``, the same way.

The reference stops at the last complete frame (399 frames for 4 s) where the op also
processes the zero-padded tail frame (400); the time is not normalised for that.
Prints a summary and writes ``benchmarks/results/mcadams_cpu.json``. The machine is shared,
so the 1-minute load average before and after is recorded with the times.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import statistics
import sys
import time
from pathlib import Path

import numba
import numpy as np
import scipy
import scipy.signal
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from gpuaug.functional.mcadams import mcadams  # noqa: E402
from reference.mcadams_ref import mcadams_ref  # noqa: E402
from reference.signals import speech_like  # noqa: E402

FS = 16000




def run_times(fn, runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--alpha", type=float, default=0.8)
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "mcadams_cpu.json")
    args = parser.parse_args()

    threads = min(2, os.cpu_count() or 1)
    torch.set_num_threads(threads)
    numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    n = int(args.seconds * FS)
    clips = np.stack([speech_like(n, seed) for seed in range(args.clips)]).astype(np.float32)
    wave = torch.from_numpy(clips)
    lengths = torch.full((args.clips,), n, dtype=torch.int64)
    load_before = os.getloadavg()[0]

    t0 = time.perf_counter()
    for clip in clips:
        mcadams_ref(clip.astype(np.float64), args.alpha)
    t_ref = time.perf_counter() - t0

    results = {}
    for backend in ("numba", "torch"):
        t0 = time.perf_counter()
        mcadams(wave, lengths, alpha=args.alpha, level="none", backend=backend)
        first = time.perf_counter() - t0
        times = run_times(lambda: mcadams(wave, lengths, alpha=args.alpha, level="none", backend=backend), args.runs)
        results[backend] = {"median_s": statistics.median(times), "first_call_s": first, "runs_s": times}

    report = {
        "benchmark": f"McAdams (alpha {args.alpha:.2f}), {args.clips} clips x {args.seconds:.1f} s at 16 kHz, float32",
        "command": "python " + " ".join(shlex.quote(a) for a in [os.path.relpath(__file__, REPO), *sys.argv[1:]]),
        "machine": {
            "cpu_cores": os.cpu_count(),
            "threads_used": threads,
            "processor": platform.processor() or platform.machine(),
            "python": platform.python_version(),
            "numpy": np.__version__,
            "scipy": scipy.__version__,
            "numba": numba.__version__,
            "numba_threading_layer": numba.threading_layer(),
            "torch": torch.__version__,
            "load_avg_1min_before_after": [load_before, os.getloadavg()[0]],
        },
        "numpy_reference_s": t_ref,
        "numpy_reference_note": "tests/reference/mcadams_ref.py, one clip at a time, each timed once",
        "numba_s": results["numba"]["median_s"],
        "numba_first_call_s": results["numba"]["first_call_s"],
        "numba_runs_s": results["numba"]["runs_s"],
        "torch_s": results["torch"]["median_s"],
        "torch_runs_s": results["torch"]["runs_s"],
        "speedup_numba_vs_numpy_reference": t_ref / results["numba"]["median_s"],
        "speedup_torch_vs_numpy_reference": t_ref / results["torch"]["median_s"],
        "speedup_numba_vs_torch": results["torch"]["median_s"] / results["numba"]["median_s"],
        "target": "numba >= 20x numpy reference (issue 4)",
        "runs": args.runs,
    }
    report["target_met"] = report["speedup_numba_vs_numpy_reference"] >= 20.0
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"numpy reference: {t_ref * 1e3:8.1f} ms")
    for backend in ("numba", "torch"):
        r = results[backend]
        print(f"{backend:>15}: {r['median_s'] * 1e3:8.1f} ms (median of {args.runs}; first call "
              f"{r['first_call_s']:.2f} s)  {t_ref / r['median_s']:6.1f}x the reference")
    print(f"numba vs torch: {report['speedup_numba_vs_torch']:.1f}x; wrote {os.path.relpath(args.out, REPO)}")


if __name__ == "__main__":
    main()
