"""Per-call set-up of the CPU FFTs: ``torch.fft.rfft`` (into a kept output) and ``scipy.fft.rfft`` on
1, 4 and 32 rows at the FFT sizes reverb uses for 2 s and 8 s clips, one thread, process CPU time,
median of interleaved repeats. The fixed part of a call is what
:data:`gpuaug.functional.reverb._FFT_CALL_ROWS` charges a length bucket.

    python benchmarks/fft_call_cost.py [--repeats 9] [--out benchmarks/results/cpu-1thread-fft-call-cost.json]
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
SIZES = (55296, 69120, 153600, 186624)
ROWS = (1, 4, 32)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=9)
    p.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "cpu-1thread-fft-call-cost.json"))
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    try:
        import scipy.fft as sfft
    except ImportError:
        sfft = None
    cases = {}
    for n in SIZES:
        for rows in ROWS:
            x = torch.randn(rows, n)
            spec = torch.fft.rfft(x)
            cases[(n, rows, "torch")] = lambda x=x, spec=spec: torch.fft.rfft(x, out=spec)
            if sfft is not None:
                cases[(n, rows, "scipy")] = lambda xn=x.numpy(): sfft.rfft(xn, workers=1)
    for f in cases.values():
        f()
    times = {k: [] for k in cases}
    for _ in range(args.repeats):
        for k, f in cases.items():
            t = time.process_time()
            f()
            times[k].append(time.process_time() - t)
    results = []
    for (n, rows, lib), v in times.items():
        ms = 1e3 * statistics.median(v)
        results.append({"n": n, "rows": rows, "library": lib, "cpu_ms_per_call": ms, "cpu_ms_per_row": ms / rows})
    fixed = {}
    for n in SIZES:  # per-call fixed cost from the 1- and 32-row calls: t(r) = a + b r
        for lib in ("torch", "scipy"):
            t = {r["rows"]: r["cpu_ms_per_call"] for r in results if r["n"] == n and r["library"] == lib}
            if t:
                b = (t[32] - t[1]) / 31
                fixed[f"{lib}/{n}"] = {"fixed_ms": t[1] - b, "ms_per_row": b, "fixed_in_rows": (t[1] - b) / b}
    report = {"command": "python " + " ".join([Path(__file__).relative_to(REPO).as_posix(), *sys.argv[1:]]),
              "torch": torch.__version__, "python": platform.python_version(), "threads": 1,
              "repeats": args.repeats, "results": results, "fixed_cost_fit": fixed}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=1))
    for k, v in fixed.items():
        print(f"{k:14s} fixed {v['fixed_ms']:.3f} ms + {v['ms_per_row']:.3f} ms/row ({v['fixed_in_rows']:.1f} rows)")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
