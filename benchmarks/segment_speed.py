"""Per-clip cost of ``speed_segment`` on one CPU thread: numba tabulated vs numba exact vs torch.

    python benchmarks/segment_speed.py [--clips 32] [--seconds 8] [--repeats 5]

Input: ``--clips`` speech-like float32 clips (``tests/reference/signals.speech_like``) of
``--seconds`` s at 16 kHz; one segment per clip of 25 % of the clip starting at 3/8 of it,
factor 1.25. Two batches:

* ``same_cutoff``: every segment has the same length, so the whole batch shares one table of
  the tabulated path (``n / m = 1.25`` exactly: the positions fall on table phases, which is what
  :class:`gpuaug.transforms.SpeedSegment` draws since issue 11's fourth round: segment lengths
  that are multiples of 5 samples for its 1.25x factor);
* ``distinct_cutoffs``: segment lengths ``25 % + b`` samples for clip ``b``, so every clip has
  its own cutoff ``0.945 * m / n``, builds its own table, and its positions sweep all phases
  (what ``SpeedSegment`` did before, and still does for a factor that is not a small fraction).

Variants (all through ``gpuaug.functional.speed_segment``, after a warm-up call):
``numba_tabulated`` (``backend="numba"``, float32 default), ``numba_exact`` (``exact=True``:
the float64 windowed sinc per output sample), ``torch`` (``backend="torch"``), plus
``numba_tabulated_no_scan`` (inside ``finite_checked()``, as a Pipeline calls it: without the
per-call NaN / Inf scan of the input), the ``segment_warp_kernel`` call alone (``kernel_*``)
and the table build alone (``tables_only``). 1 thread for torch and numba. The variants are
interleaved within each repeat (the machine is shared; wall time swings 2-5x), and both the
process CPU time (``time.process_time``) and the wall time are recorded per repeat; the
summary is the median per clip. Also records the worst tabulated-vs-exact error of each batch
(dB of the batch's peak). Writes ``benchmarks/results/cpu-2core-segment-speed.json``.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shlex
import statistics
import sys
import time
from pathlib import Path

import numba
import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from gpuaug.functional._batch import finite_checked  # noqa: E402
from gpuaug.functional.speed import speed_segment  # noqa: E402
from gpuaug.kernels import segment_warp as sw  # noqa: E402
from gpuaug.kernels._numba_glue import CPU_LOCK  # noqa: E402
from reference.signals import speech_like  # noqa: E402

sys.path.insert(0, str(REPO / "benchmarks"))
from common import cpu_model  # noqa: E402

FS = 16000
FACTOR = 1.25


def timed(fn) -> tuple[float, float]:
    """``(cpu_s, wall_s)`` of one call."""
    c0, w0 = time.process_time(), time.perf_counter()
    fn()
    return time.process_time() - c0, time.perf_counter() - w0


def trusted(fn):
    """``fn()`` without speed_segment's input NaN / Inf scan (as inside a Pipeline, which scans once)."""
    with finite_checked():
        return fn()


def kernel_args(lengths, start, length):
    s = torch.minimum(start, lengths)
    n = torch.minimum(start + length, lengths) - s
    m = torch.round(n.to(torch.float64) / FACTOR).to(torch.int64)
    new_lengths = lengths - n + m
    return s, n, m, new_lengths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--no-torch", action="store_true", help="skip the (slow) torch backend")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "cpu-2core-segment-speed.json")
    args = parser.parse_args()

    torch.set_num_threads(1)
    numba.set_num_threads(1)
    B, T = args.clips, int(args.seconds * FS)
    wave = torch.from_numpy(np.stack([speech_like(T, seed) for seed in range(B)]).astype(np.float32))
    lengths = torch.full((B,), T, dtype=torch.int64)
    start = torch.full((B,), 3 * T // 8, dtype=torch.int64)
    batches = {"same_cutoff": torch.full((B,), T // 4, dtype=torch.int64),
               "distinct_cutoffs": T // 4 + torch.arange(B, dtype=torch.int64)}
    x3 = wave[:, None]

    variants = {}
    errors = {}
    for name, length in batches.items():
        kw = dict(start=start, length=length, factor=FACTOR)
        s, n, m, new_lengths = kernel_args(lengths, start, length)
        t_out = int(new_lengths.max())
        slope = n.double() / m.double()
        cutoffs = (0.945 * torch.clamp(1.0 / slope, max=1.0)).unique().numpy()
        half = np.array([math.ceil(24 / float(f)) for f in cutoffs], dtype=np.int64)
        tables = np.zeros((len(cutoffs), sw.TABLE_PHASES + 1, 2 * int(half.max())), dtype=np.float32)

        def build(cutoffs=cutoffs, half=half, tables=tables):
            with CPU_LOCK:
                sw._build_tables(cutoffs, half, 24, tables)

        v = {
            "numba_tabulated": lambda kw=kw: speed_segment(wave, lengths, backend="numba", **kw),
            "numba_exact": lambda kw=kw: speed_segment(wave, lengths, backend="numba", exact=True, **kw),
            "numba_tabulated_no_scan": lambda kw=kw: trusted(lambda: speed_segment(wave, lengths, backend="numba",
                                                                                   **kw)),
            "kernel_tabulated": lambda a=(s, n, m, new_lengths, t_out): sw.segment_warp_kernel(
                x3, lengths, *a[:4], zeros=24, rolloff=0.945, t_out=a[4], exact=False),
            "kernel_exact": lambda a=(s, n, m, new_lengths, t_out): sw.segment_warp_kernel(
                x3, lengths, *a[:4], zeros=24, rolloff=0.945, t_out=a[4], exact=True),
            "tables_only": build,
        }
        if not args.no_torch:
            v["torch"] = lambda kw=kw: speed_segment(wave, lengths, backend="torch", **kw)
        for fn in v.values():  # warm-up: compilation or the on-disk cache
            fn()
        tab, _ = speed_segment(wave, lengths, backend="numba", **kw)
        ex, _ = speed_segment(wave, lengths, backend="numba", exact=True, **kw)
        err = float((tab.double() - ex.double()).abs().max() / wave.abs().max())
        errors[name] = {"worst_abs_error_over_peak_db": 20 * math.log10(err) if err > 0 else None,
                        "tables": len(cutoffs)}
        variants[name] = v

    load_before = os.getloadavg()[0]
    runs = {name: {k: {"cpu_s": [], "wall_s": []} for k in v} for name, v in variants.items()}
    for _ in range(args.repeats):  # interleaved: every variant once per repeat
        for name, v in variants.items():
            for key, fn in v.items():
                cpu, wall = timed(fn)
                runs[name][key]["cpu_s"].append(cpu)
                runs[name][key]["wall_s"].append(wall)
    load_after = os.getloadavg()[0]

    summary = {}
    for name, r in runs.items():
        per = {}
        for key, t in r.items():
            per[key] = {"cpu_ms_per_clip": statistics.median(t["cpu_s"]) / B * 1e3,
                        "wall_ms_per_clip": statistics.median(t["wall_s"]) / B * 1e3}
        tab = per["numba_tabulated"]["cpu_ms_per_clip"]
        per["speedup_cpu_tabulated_vs_exact"] = per["numba_exact"]["cpu_ms_per_clip"] / tab
        per["speedup_cpu_kernel_tabulated_vs_exact"] = (per["kernel_exact"]["cpu_ms_per_clip"]
                                                        / per["kernel_tabulated"]["cpu_ms_per_clip"])
        if "torch" in per:
            per["speedup_cpu_tabulated_vs_torch"] = per["torch"]["cpu_ms_per_clip"] / tab
        per["tables_only_us_per_table"] = (statistics.median(r["tables_only"]["cpu_s"]) * 1e6
                                           / errors[name]["tables"])
        per.update(errors[name])
        summary[name] = per

    report = {
        "benchmark": (f"speed_segment, {B} clips x {args.seconds:g} s at 16 kHz, float32, segment 25 % "
                      f"(from 3/8 of the clip), factor {FACTOR}, 1 thread (torch and numba)"),
        "command": "python " + " ".join(shlex.quote(a) for a in [os.path.relpath(__file__, REPO), *sys.argv[1:]]),
        "machine": {
            "cpu": cpu_model(),
            "cpu_cores": os.cpu_count(),
            "threads_used": 1,
            "platform": platform.platform(),
            "python": platform.python_version(),
            "numpy": np.__version__,
            "numba": numba.__version__,
            "numba_threading_layer": numba.threading_layer(),
            "torch": torch.__version__,
            "load_avg_1min_before_after": [load_before, load_after],
        },
        "table": {"phases": sw.TABLE_PHASES, "dtype": "float32", "stated_error_bound_db": sw.TABLE_ERROR_DB,
                  "min_segment_samples": sw.TABLE_MIN_SAMPLES},
        "repeats": args.repeats,
        "note": ("medians per clip over interleaved repeats; cpu = time.process_time of this process (the "
                 "machine is a shared 2-core VM: wall time swings 2-5x with the other load). kernel_* = "
                 "segment_warp_kernel alone (no input NaN scan / argument checks of speed_segment); "
                 "numba_tabulated_no_scan = speed_segment inside finite_checked() (as in a Pipeline)."),
        "summary": summary,
        "runs": runs,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    for name, per in summary.items():
        print(f"{name} ({per['tables']} table(s), tabulated vs exact worst {per['worst_abs_error_over_peak_db']:.1f} "
              f"dB of peak):")
        for key in variants[name]:
            print(f"  {key:>23}: cpu {per[key]['cpu_ms_per_clip']:8.3f} ms/clip   wall "
                  f"{per[key]['wall_ms_per_clip']:8.3f} ms/clip")
        line = f"  tabulated vs exact {per['speedup_cpu_tabulated_vs_exact']:.1f}x (kernel alone " \
               f"{per['speedup_cpu_kernel_tabulated_vs_exact']:.1f}x)"
        if "speedup_cpu_tabulated_vs_torch" in per:
            line += f", vs torch {per['speedup_cpu_tabulated_vs_torch']:.0f}x"
        print(line + f" (cpu time); tables {per['tables_only_us_per_table']:.0f} us each")
    print(f"wrote {os.path.relpath(args.out, REPO)}")


if __name__ == "__main__":
    main()
