"""The AddNoise step on the CPU: the fused noise kernel (issue 11 item 3) vs the previous path.

    python benchmarks/noise_speed.py [--clips 32] [--seconds 8] [--repeats 7] [--old-rev 065f858...]

Input: ``--clips`` float32 clips of ``--seconds`` s at 16 kHz (speech-like: noise with a
syllable-rate envelope, 10 % of the clips shorter, one silent), noises from
``/work/shared/data/noise`` via :func:`gpuaug.data.noise_bank_from_folder` (a ragged bank;
skipped when the folder is absent), AddNoise-like parameters (continuous / start / span
placements, random item, offset and SNR in [-5, 20] dB).

* old: ``gpuaug/functional/noise.py`` and ``kernels/snr_mix.py`` of ``--old-rev`` (default: the
  commit before the fusion), loaded from ``git show`` into a temporary folder; the step is what
  ``AddNoise.apply`` did there: ``valid_power(wave, lengths) == 0`` for the record, then
  ``mix_noise_from_bank`` (powers kernel, torch gain, mix kernel).
* new: ``mix_noise_from_bank(..., return_signal_power=True)`` (one fused kernel pass per
  clip) and ``p_signal == 0``.

One thread everywhere (``torch.set_num_threads(1)``, ``numba.set_num_threads(1)``); old and
new interleaved for ``--repeats`` rounds after a warm-up (compilation / cache load). Per
clip: CPU time (``time.process_time()``) and wall time, median and min over the rounds. The
machine is shared: the CPU times are the figures to compare. Also records the largest
difference old vs new (relative to each clip's peak) and whether the silent flags agree.
Writes ``benchmarks/results/cpu-2core-noise-speed.json``.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numba
import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
NOISE_DIR = Path("/work/shared/data/noise")
OLD_REV = "065f858d00b8bd11bdf228db2bab77efa4e258c0"  # HEAD before the fused kernel
OUT = REPO / "benchmarks" / "results" / "cpu-2core-noise-speed.json"


def load_old(rev: str, folder: Path):
    """The functional noise module of ``rev``, wired to the snr_mix kernels of ``rev``."""
    def show(path):
        return subprocess.run(["git", "-C", str(REPO), "show", f"{rev}:{path}"], capture_output=True, text=True,
                              check=True).stdout

    # the old kernels, without their registration (the registry now holds today's callables)
    kern = "\n".join(line for line in show("kernels/snr_mix.py").splitlines()
                     if not line.startswith(("register(", "from gpuaug.backend import register")))
    func = show("gpuaug/functional/noise.py")
    if "from gpuaug.kernels.snr_mix import clip_powers, mix" not in func:
        raise SystemExit(f"{rev}: gpuaug/functional/noise.py does not use the two-pass kernels")
    func = func.replace("from gpuaug.kernels.snr_mix import clip_powers, mix", "from _old_snr_mix import clip_powers, mix")
    (folder / "_old_snr_mix.py").write_text(kern)
    (folder / "_old_noise.py").write_text(func)
    sys.path.insert(0, str(folder))
    mods = {}
    for name in ("_old_snr_mix", "_old_noise"):
        spec = importlib.util.spec_from_file_location(name, folder / f"{name}.py")
        mods[name] = importlib.util.module_from_spec(spec)
        sys.modules[name] = mods[name]
        spec.loader.exec_module(mods[name])
    return mods["_old_noise"]


def batch(bank, clips: int, seconds: float, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    T = int(seconds * 16000)
    lengths = torch.full((clips,), T)
    lengths[: max(1, clips // 10)] = (T * 0.7)
    t = torch.arange(T) / 16000
    env = (0.55 + 0.45 * torch.sin(2 * torch.pi * 4.0 * t[None] + torch.rand(clips, 1, generator=g) * 6.28)) ** 2
    wave = (torch.randn(clips, T, generator=g) * 0.1 * env).float()
    wave[torch.arange(T) >= lengths[:, None]] = 0.0
    wave[-1] = 0.0  # a silent clip: passes through, recorded silent
    index = torch.randint(0, len(bank.names), (clips,), generator=g)
    noise_lengths = bank.lengths[index]
    placement = torch.randint(0, 3, (clips,), generator=g)  # 0 continuous, 1 start, 2 span (AddNoise)
    frac = torch.tensor([0.25, 0.5, 1.0])[torch.randint(0, 3, (clips,), generator=g)]
    covered = torch.where(placement == 0, lengths, (frac * lengths).round().long())
    kw = dict(snr_db=torch.rand(clips, generator=g, dtype=torch.float64) * 25 - 5,
              noise_offset=(torch.rand(clips, generator=g) * noise_lengths).long(),
              span_start=torch.where(placement == 2, (torch.rand(clips, generator=g) * (lengths - covered + 1)).long(), 0),
              span_length=covered, fade_out=torch.where(placement == 1, covered // 2, 0))
    return wave, lengths, index, kw


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--clips", type=int, default=32)
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--old-rev", default=OLD_REV)
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    if not NOISE_DIR.is_dir():
        print(f"skipped: {NOISE_DIR} is absent")
        return
    torch.set_num_threads(1)
    numba.set_num_threads(1)
    from gpuaug.data import noise_bank_from_folder
    from gpuaug.functional import noise as new

    bank = noise_bank_from_folder(NOISE_DIR, 16000)
    wave, lengths, index, kw = batch(bank, args.clips, args.seconds)
    bank_args = (bank.audio, bank.lengths, index)
    with tempfile.TemporaryDirectory() as tmp:
        old = load_old(args.old_rev, Path(tmp))

        def run_old():
            silent = old.valid_power(wave, lengths) == 0
            out, _ = old.mix_noise_from_bank(wave, lengths, *bank_args, bank_offsets=bank.offsets, backend="numba", **kw)
            return out, silent

        def run_new():
            out, _, p = new.mix_noise_from_bank(wave, lengths, *bank_args, bank_offsets=bank.offsets, backend="numba",
                                                return_signal_power=True, **kw)
            return out, p == 0

        runs = {"old": run_old, "new": run_new}
        results = {k: f() for k, f in runs.items()}  # warm-up: compile or load the caches
        times = {k: {"cpu_ms": [], "wall_ms": []} for k in runs}
        load_before = os.getloadavg()
        for _ in range(args.repeats):
            for k, f in runs.items():  # interleaved
                c0, w0 = time.process_time(), time.perf_counter()
                f()
                c1, w1 = time.process_time(), time.perf_counter()
                times[k]["cpu_ms"].append((c1 - c0) * 1e3 / args.clips)
                times[k]["wall_ms"].append((w1 - w0) * 1e3 / args.clips)
        load_after = os.getloadavg()

    (o_out, o_silent), (n_out, n_silent) = results["old"], results["new"]
    peak = o_out.abs().amax(dim=1).clamp_min(1e-30)
    diff = float(((n_out - o_out).abs().amax(dim=1) / peak).max())
    summary = {k: {f"{m}_per_clip_median": statistics.median(v[m]) for m in ("cpu_ms", "wall_ms")} |
               {f"{m}_per_clip_min": min(v[m]) for m in ("cpu_ms", "wall_ms")} | {"raw": v} for k, v in times.items()}
    speedup = summary["old"]["cpu_ms_per_clip_median"] / summary["new"]["cpu_ms_per_clip_median"]

    def version(m):
        try:
            from importlib import metadata
            return metadata.version(m)
        except Exception:
            return None

    rev = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    record = {
        "benchmark": "AddNoise step on the CPU: fused noise kernel vs the previous path (issue 11 item 3)",
        "command": "python " + " ".join([os.path.relpath(sys.argv[0], REPO), *sys.argv[1:]]),
        "input": {"clips": args.clips, "seconds": args.seconds, "sample_rate": 16000, "dtype": "float32",
                  "noise_folder": str(NOISE_DIR), "bank_items": len(bank.names),
                  "bank_seconds": float(bank.lengths.sum()) / 16000},
        "old": {"rev": args.old_rev, "what": "valid_power + mix_noise_from_bank (powers kernel, torch gain, mix kernel)"},
        "new": {"rev": rev, "working_tree_dirty": True,
                "what": "mix_noise_from_bank(return_signal_power=True): one fused kernel pass per clip"},
        "threads": {"torch": torch.get_num_threads(), "numba": numba.get_num_threads()},
        "repeats": args.repeats, "interleaved": True,
        "results": summary, "speedup_cpu_median": speedup,
        "max_abs_diff_over_peak": diff, "bit_identical": bool(torch.equal(n_out, o_out)),
        "silent_flags_equal": bool(torch.equal(n_silent, o_silent)),
        "loadavg_1min_before_after": [load_before[0], load_after[0]],
        "machine": {"cpu_count": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
        "versions": {m: version(m) for m in ("torch", "numba", "numpy", "llvmlite")},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=1) + "\n")
    for k in runs:
        s = summary[k]
        print(f"{k}: CPU {s['cpu_ms_per_clip_median']:.3f} ms/clip (min {s['cpu_ms_per_clip_min']:.3f}), "
              f"wall {s['wall_ms_per_clip_median']:.3f} ms/clip (min {s['wall_ms_per_clip_min']:.3f})")
    print(f"speed-up (CPU, median) {speedup:.2f}x; max |new - old| / peak {diff:.2e}; "
          f"silent flags equal: {record['silent_flags_equal']}; wrote {args.out.relative_to(REPO)}")


if __name__ == "__main__":
    main()
