"""Memory stays flat: process RSS (and CUDA memory) over many augmented batches.

    python benchmarks/memory.py --device cpu --out benchmarks/results/cpu-2core-memory.json

Runs ``--batches`` batches (default 10,000) of ``--batch-size`` x ``--seconds`` s clips
through :class:`gpuaug.data.AugmentCollate` with the ``retaining`` pipeline (p=1), the way
a training loop calls it (in this process, so its memory is the one measured). Item
indices keep growing, so every batch draws new parameters (noise, RIR, offsets, segment).
Every ``--every`` batches it samples the process RSS (``/proc/self/status`` VmRSS) and, on
CUDA, ``torch.cuda.memory_allocated`` / ``memory_reserved``.

Flat means: the largest sample of the second half exceeds the largest sample of the first
half by less than ``--tolerance`` (default 5 %). The JSON holds the series and the verdict;
the exit status is 1 when memory is not flat. ``--max-seconds`` stops early (at a sample
point, with at least two samples taken): ``batches_done`` then says how far it got, and the
JSON is also rewritten at every sample, so a killed run keeps its series.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (  # noqa: E402
    DEFAULT_DATA, REPO, SR, LoadMonitor, command_line, gpuaug_pipeline, load_banks, machine_info, resolved_backends,
    speech_clips,
)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="cpu")
    p.add_argument("--batches", type=int, default=10_000)
    p.add_argument("--every", type=int, default=500)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--seconds", type=float, default=2.0)
    p.add_argument("--pipeline", default="retaining")
    p.add_argument("--tolerance", type=float, default=0.05, help="allowed growth of the second half's max")
    p.add_argument("--data", type=Path, default=DEFAULT_DATA)
    p.add_argument("--synthetic", action="store_true")
    p.add_argument("--max-seconds", type=float, default=None, help="stop at the first sample point after this")
    p.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "memory.json")
    args = p.parse_args(argv)
    if args.batches < 2 * args.every:
        p.error("--batches must be at least 2 * --every (two halves to compare)")
    return args


def rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def flatness(series: list[int], tolerance: float) -> dict:
    """Compare the max of the second half of ``series`` with the max of the first half."""
    half = len(series) // 2
    first, last = max(series[:half]), max(series[half:])
    growth = (last - first) / max(first, 1)
    return {"first_half_max": first, "second_half_max": last, "growth": growth, "flat": growth < tolerance}


def main(argv=None):
    args = parse_args(argv)
    from gpuaug.data import AugmentCollate

    device = torch.device(args.device)
    started = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    info = machine_info(device)
    load = LoadMonitor().start()
    data = None if args.synthetic or not args.data.is_dir() else args.data
    with tempfile.TemporaryDirectory(prefix="gpuaug-memory-") as tmp:
        banks = load_banks(data, Path(tmp))
    banks.noise.to(device)
    banks.rir.to(device)
    collate = AugmentCollate(gpuaug_pipeline(args.pipeline, banks), ratio=1.0, seed=0, device=device)
    B = args.batch_size
    clips = speech_clips(data, 4 * B, args.seconds)  # a pool of clean clips, cycled
    samples = []
    t0 = time.perf_counter()
    base = {"benchmark": "memory", "command": command_line(), "started_utc": started, "machine": info,
            "banks": banks.source, "pipeline": args.pipeline, "batch_size": B, "seconds": args.seconds,
            "batches": args.batches, "every": args.every, "tolerance": args.tolerance, "max_seconds": args.max_seconds}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    batches_done = 0
    for i in range(args.batches):
        items = [{"wave": clips[(i * B + j) % clips.shape[0]], "sample_rate": SR, "index": i * B + j}
                 for j in range(B)]
        batch = collate(items)
        if (i + 1) % args.every == 0:
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            s = {"batch": i + 1, "elapsed_s": time.perf_counter() - t0, "rss_bytes": rss_bytes()}
            if device.type == "cuda":
                s["cuda_allocated_bytes"] = torch.cuda.memory_allocated(device)
                s["cuda_reserved_bytes"] = torch.cuda.memory_reserved(device)
            samples.append(s)
            print(f"batch {i + 1:>6}: RSS {s['rss_bytes'] / 2**20:8.1f} MiB"
                  + (f", CUDA allocated {s['cuda_allocated_bytes'] / 2**20:8.1f} MiB" if device.type == "cuda" else "")
                  + f"  ({s['elapsed_s']:.0f} s)", flush=True)
            args.out.write_text(json.dumps({**base, "samples": samples, "batches_done": i + 1, "complete": False},
                                           indent=1))
        del batch
        batches_done = i + 1
        if (args.max_seconds is not None and (i + 1) % args.every == 0 and len(samples) >= 2
                and time.perf_counter() - t0 > args.max_seconds):
            print(f"--max-seconds {args.max_seconds:g} reached after {i + 1} batches", flush=True)
            break
    verdict = {"rss": flatness([s["rss_bytes"] for s in samples], args.tolerance)}
    if device.type == "cuda":
        verdict["cuda_allocated"] = flatness([s["cuda_allocated_bytes"] for s in samples], args.tolerance)
        verdict["cuda_reserved"] = flatness([s["cuda_reserved_bytes"] for s in samples], args.tolerance)
    flat = all(v["flat"] for v in verdict.values())
    for k, v in verdict.items():
        print(f"{k}: first-half max {v['first_half_max'] / 2**20:.1f} MiB, second-half max "
              f"{v['second_half_max'] / 2**20:.1f} MiB, growth {100 * v['growth']:+.2f} % -> "
              f"{'flat' if v['flat'] else 'NOT flat'}")
    result = {
        **base, "finished_utc": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "cpu_load_during_run": load.stop(), "gpuaug_backends": resolved_backends(device), "samples": samples,
        "batches_done": batches_done, "complete": batches_done == args.batches, "verdict": verdict, "flat": flat,
    }
    args.out.write_text(json.dumps(result, indent=1))
    print(f"wrote {args.out}")
    return 0 if flat else 1


if __name__ == "__main__":
    sys.exit(main())
