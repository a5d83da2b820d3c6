"""First batch of a fresh process: the ``perception_retaining`` pipeline, cold vs warm JIT cache.

    python benchmarks/first_batch.py --out benchmarks/results/cpu-2core-first-batch.json

Every Numba kernel compiles on its first call in a process (seconds for the whole
pipeline) unless Numba's on-disk cache holds it (:mod:`gpuaug.kernels._numba_glue`). Each
repeat starts two fresh processes, interleaved: **cold**, with an empty cache directory
(``NUMBA_CACHE_DIR`` = a new temporary folder: a first run on a machine, or the first run
after an edit of a kernel module), then **warm**, with the folder the cold run filled. A
process imports gpuaug, builds the synthetic noise and RIR banks and ``--batch-size`` x
``--seconds`` s synthetic speech, then times two calls of
``perception_retaining(noise, rir, p_noise=1, p_other=1)`` (every transform applied, so
every kernel the preset uses runs) on the CPU with the default dispatch (``auto``): wall
and process CPU time (all threads) of the first and the second call, and the wall time of
the whole process. The JSON keeps every repeat and the medians.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent


def child(batch: int, seconds: float) -> dict:
    """One fresh process's measurements (printed as JSON by ``--child``)."""
    t0 = time.perf_counter()
    c0 = time.process_time()
    import torch

    from gpuaug import backend
    from gpuaug.data import pad_batch
    from gpuaug.data.synthetic import synthetic_noise_bank, synthetic_rir_bank, synthetic_speech
    from gpuaug.presets import perception_retaining

    t_import = time.perf_counter() - t0
    noise, rir = synthetic_noise_bank(sample_rate=16000), synthetic_rir_bank(sample_rate=16000)
    wave, lengths = pad_batch([it.wave for it in synthetic_speech(batch, min_s=seconds, max_s=seconds)])
    pipe = perception_retaining(noise, rir, p_noise=1.0, p_other=1.0)
    t_setup = time.perf_counter() - t0
    calls = []
    for seed in (0, 1):
        w0, p0 = time.perf_counter(), time.process_time()
        out = pipe(wave, lengths, seed=seed)
        calls.append({"wall_s": time.perf_counter() - w0, "cpu_s": time.process_time() - p0})
    backend._load_kernels()
    ops = sorted({op for (op, _, d) in backend._KERNELS if d == "cpu"})
    hits = misses = 0  # on-disk cache loads / compiles of gpuaug's CPU kernels in this process
    for name, module in list(sys.modules.items()):
        if name.startswith("gpuaug.kernels."):
            for obj in vars(module).values():
                stats = getattr(obj, "stats", None) if hasattr(obj, "_cache") else None
                if stats is not None and hasattr(stats, "cache_hits"):
                    hits += sum(stats.cache_hits.values())
                    misses += sum(stats.cache_misses.values())
    return {
        "cache_loads": hits, "compiles": misses,
        "import_s": t_import, "setup_s": t_setup, "first": calls[0], "second": calls[1],
        "to_first_batch_done_s": t_setup + calls[0]["wall_s"], "process_cpu_s": time.process_time() - c0,
        "applied": sorted({e["transform"] for rec in out.record for e in rec}),
        "backends": {op: backend.resolve(op, "cpu") for op in ops},
        "torch_threads": torch.get_num_threads(),
    }


def run_child(cache_dir: Path, args) -> dict:
    env = {**os.environ, "NUMBA_CACHE_DIR": str(cache_dir), "PYTHONPATH": str(REPO)}
    env.pop("GPUAUG_BACKEND", None)
    t0 = time.perf_counter()
    res = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--child", "--batch-size", str(args.batch_size),
                          "--seconds", str(args.seconds)], env=env, capture_output=True, text=True, timeout=900)
    wall = time.perf_counter() - t0
    if res.returncode != 0:
        raise RuntimeError(f"child failed:\n{res.stderr[-4000:]}")
    out = json.loads(res.stdout.strip().splitlines()[-1])
    out["process_wall_s"] = wall
    files = [p for p in cache_dir.rglob("*") if p.is_file()]
    out["cache_files"] = len(files)
    out["cache_bytes"] = sum(p.stat().st_size for p in files)
    return out


def _median(rows: list[dict], *path: str) -> float:
    vals = []
    for r in rows:
        v = r
        for k in path:
            v = v[k]
        vals.append(v)
    return statistics.median(vals)


def summarize(runs: dict) -> dict:
    """Medians over the repeats of each kind; ``first_minus_second_*``: the one-time cost of the
    first batch (JIT compile or cache load, lazy imports) per process, paired per repeat."""
    out = {}
    for kind, rows in runs.items():
        out[kind] = {"first_batch_wall_s": _median(rows, "first", "wall_s"),
                     "first_batch_cpu_s": _median(rows, "first", "cpu_s"),
                     "second_batch_wall_s": _median(rows, "second", "wall_s"),
                     "first_minus_second_wall_s": statistics.median(r["first"]["wall_s"] - r["second"]["wall_s"]
                                                                    for r in rows),
                     "first_minus_second_cpu_s": statistics.median(r["first"]["cpu_s"] - r["second"]["cpu_s"]
                                                                   for r in rows),
                     "import_s": _median(rows, "import_s"), "setup_s": _median(rows, "setup_s"),
                     "process_wall_s": _median(rows, "process_wall_s"),
                     "compiles": _median(rows, "compiles"), "cache_loads": _median(rows, "cache_loads")}
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeats", type=int, default=3, help="cold / warm pairs (interleaved)")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--seconds", type=float, default=3.0)
    p.add_argument("--out", type=Path, default=HERE / "results" / "cpu-2core-first-batch.json")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.batch_size, args.seconds)))
        return 0

    sys.path.insert(0, str(HERE))
    import torch
    from common import LoadMonitor, command_line, machine_info

    started = dt.datetime.now(dt.timezone.utc)
    monitor = LoadMonitor().start()
    runs = {"cold": [], "warm": []}
    with tempfile.TemporaryDirectory(prefix="gpuaug-first-batch-") as tmp:
        for r in range(args.repeats):
            cache = Path(tmp) / f"cache{r}"
            cache.mkdir()
            for kind in ("cold", "warm"):
                res = run_child(cache, args)
                runs[kind].append(res)
                print(f"repeat {r} {kind}: first batch {res['first']['wall_s']:.2f} s wall "
                      f"({res['first']['cpu_s']:.2f} s CPU), second {res['second']['wall_s']:.2f} s, "
                      f"process {res['process_wall_s']:.2f} s, {res['compiles']} compiles, "
                      f"{res['cache_loads']} cache loads", flush=True)
                if kind == "warm" and res["compiles"]:
                    print("  warning: the warm run compiled (a kernel module changed during the run?)")
    summary = summarize(runs)
    result = {
        "benchmark": "first_batch",
        "command": command_line(),
        "started_utc": started.isoformat(timespec="seconds"),
        "finished_utc": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": machine_info(torch.device("cpu")),
        "cpu_load_during_run": monitor.stop(),
        "pipeline": "perception_retaining(noise, rir, p_noise=1, p_other=1), synthetic banks",
        "batch_size": args.batch_size, "seconds": args.seconds, "repeats": args.repeats,
        "method": "each repeat: a fresh process with an empty NUMBA_CACHE_DIR (cold), then a fresh process "
                  "with the directory it filled (warm); medians over repeats",
        "summary": summary,
        "runs": runs,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    for kind, s in summary.items():
        print(f"{kind}: first batch {s['first_batch_wall_s']:.2f} s wall / {s['first_batch_cpu_s']:.2f} s CPU "
              f"(first - second {s['first_minus_second_wall_s']:.2f} s wall / {s['first_minus_second_cpu_s']:.2f} s "
              f"CPU), second {s['second_batch_wall_s']:.2f} s, import {s['import_s']:.2f} s, "
              f"process {s['process_wall_s']:.2f} s")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
