"""Throughput of gpuaug against its peers on the same pipelines, batches and files.

    python benchmarks/bench.py --device cpu --batch-sizes 8 32 --seconds 2 8 \\
        --pipelines retaining mcadams pitch full \\
        --peers audiomentations torch_audiomentations offline \\
        --out benchmarks/results/cpu-2core-bench.json

Prints a table (clips/s, x realtime, how many times faster gpuaug is), writes the JSON
(machine, versions, exact command, every measurement) and a PNG plot next to it
(matplotlib; skipped with a message when it is not installed).

Rows ("peer" column):
    gpuaug[torch]      the plain-torch ops (``GPUAUG_BACKEND=torch``), whole batch on --device.
    gpuaug[auto]       the default dispatch (``GPUAUG_BACKEND`` unset: kernels where registered).
    gpuaug[loader]     as a training script runs it: AugmentCollate in a DataLoader with
                       --workers workers (CPU: augmentation inside the workers; CUDA: the
                       workers pad and draw, DeviceLoader augments on the GPU).
    audiomentations    numpy, one clip at a time in __getitem__, DataLoader with --workers workers.
    torch_audiomentations[<dev>]  whole batches, in the peers' environment (subprocess).
    offline            the seeds' offline way: precomputed augmented copies (16-bit wav,
                       written once, untimed) read back with soundfile in a DataLoader.
Steps a peer lacks are listed as ``n/a`` in the JSON (``ops``) and the table's last column;
the peer then does less work than gpuaug on that pipeline.

Timing: warm-up excluded, median of --repeats, each repeat = --batches-per-repeat batches
(one DataLoader epoch for the loader rows), ``torch.cuda.synchronize`` around GPU timings,
the same clips for every row, ratios from the same run.
"""
from __future__ import annotations

import argparse
import datetime as dt
import gc
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

import peer_audiomentations as pam  # noqa: E402
from common import (  # noqa: E402
    DEFAULT_DATA, DEFAULT_PIPELINES, PIPELINES, REPO, SR, STEP_PARAMS, FileDataset, ItemDataset, LoadMonitor, backend_env, command_line,
    gpuaug_pipeline, load_banks, machine_info, resolved_backends, single_thread_worker, speech_clips, summarize,
    time_repeats,
)

PEERS = ("audiomentations", "torch_audiomentations", "offline")
GPUAUG_VARIANTS = ("torch", "auto", "loader")
REFERENCE = "gpuaug[auto]"
DEFAULT_PEERS_PYTHON = REPO / ".venv-peers" / "bin" / "python"


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N (gpuaug and torch-audiomentations)")
    p.add_argument("--batch-sizes", type=int, nargs="+", default=[8, 32])
    p.add_argument("--seconds", type=float, nargs="+", default=[2.0, 8.0], help="clip lengths (s, 16 kHz)")
    p.add_argument("--pipelines", nargs="+", default=list(DEFAULT_PIPELINES), choices=list(PIPELINES))
    p.add_argument("--peers", nargs="*", default=list(PEERS), choices=list(PEERS))
    p.add_argument("--gpuaug", nargs="+", default=list(GPUAUG_VARIANTS), choices=list(GPUAUG_VARIANTS),
                   help="gpuaug rows to measure")
    p.add_argument("--repeats", type=int, default=3, help="timed repeats (median reported; >= 3)")
    p.add_argument("--warmup", type=int, default=1, help="untimed repeats first")
    p.add_argument("--batches-per-repeat", type=int, default=4)
    p.add_argument("--workers", type=int, default=2, help="DataLoader workers of the loader rows")
    p.add_argument("--data", type=Path, default=DEFAULT_DATA, help="shared recordings (noise/, rir/, speech/)")
    p.add_argument("--synthetic", action="store_true", help="use the synthetic banks and speech")
    p.add_argument("--peers-python", type=Path,
                   default=Path(os.environ.get("GPUAUG_BENCH_PEERS_PYTHON", DEFAULT_PEERS_PYTHON)),
                   help="interpreter with torch-audiomentations (see setup_peers.sh)")
    p.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "bench.json")
    p.add_argument("--no-plot", action="store_true")
    args = p.parse_args(argv)
    if args.repeats < 3:
        p.error("--repeats must be >= 3 (the median of at least three runs is reported)")
    loader_rows = set(args.peers) & {"audiomentations", "offline"} or "loader" in args.gpuaug
    if loader_rows and args.workers > 0 and args.batches_per_repeat % args.workers:
        p.error(f"--batches-per-repeat ({args.batches_per_repeat}) must be a multiple of --workers "
                f"({args.workers}): a repeat of the DataLoader rows is one epoch, and with fewer batches "
                "than workers some workers idle, which understates those rows")
    return args


class Bench:
    """One benchmark run: banks, peers and the list of measurements."""

    def __init__(self, args, workdir: Path):
        self.args = args
        self.device = torch.device(args.device)
        self.workdir = workdir
        self.data = None if args.synthetic or not args.data.is_dir() else args.data
        self.banks = load_banks(self.data, workdir / "banks")
        self.banks.noise.to(self.device)
        self.banks.rir.to(self.device)
        self.rows: list[dict] = []
        self.peer_env: dict = {}
        self.n = args.batches_per_repeat

    # ---- helpers ------------------------------------------------------------------------
    def _row(self, peer, name, B, secs, ops, measure) -> dict:
        row = {"pipeline": name, "batch_size": B, "seconds": secs, "peer": peer, "ops": ops,
               "repeats": self.args.repeats, "warmup": self.args.warmup, "batches_per_repeat": self.n}
        load = LoadMonitor().start()
        try:
            out = measure()
            row.update(out if out is not None else {"status": "n/a"})
            row.setdefault("status", "ok")
        except Exception as e:  # report and go on with the other rows
            row.update(status="error", reason=f"{type(e).__name__}: {e}")
        gc.collect()  # joins finished DataLoader workers, so their CPU time counts as ours
        row["other_busy"] = load.stop().get("other_busy")
        self.rows.append(row)
        _print_row(row)
        return row

    def _timed_epochs(self, dl, clips_per_epoch, audio_s):
        times = time_repeats(lambda _i: pam.epoch(dl), repeats=self.args.repeats, warmup=self.args.warmup,
                             device=torch.device("cpu"))
        return summarize(times, clips_per_epoch, audio_s)

    # ---- rows ---------------------------------------------------------------------------
    def gpuaug_direct(self, name, clips, secs, variant):
        B = clips.shape[0]
        pipe = gpuaug_pipeline(name, self.banks)
        wave = torch.from_numpy(clips).to(self.device)
        lengths = torch.full((B,), clips.shape[1], dtype=torch.int64, device=self.device)
        env = "torch" if variant == "torch" else None

        def run(i):
            for k in range(self.n):
                pipe(wave, lengths, seed=0, epoch=1000 + i * self.n + k)

        def measure():
            with backend_env(env), torch.no_grad():
                times = time_repeats(run, repeats=self.args.repeats, warmup=self.args.warmup, device=self.device)
            return summarize(times, B * self.n, B * self.n * secs)

        return self._row(f"gpuaug[{variant}]", name, B, secs, {s: "gpuaug" for s in PIPELINES[name]}, measure)

    def gpuaug_loader(self, name, clips, secs):
        from gpuaug.data import AugmentCollate, DeviceLoader

        B = clips.shape[0]
        pipe = gpuaug_pipeline(name, self.banks)

        def measure():
            collate = AugmentCollate(pipe, ratio=1.0, seed=0, device=self.device)
            # spawn on CPU: Numba's OpenMP pool in this process is not fork-safe; on CUDA the
            # workers only pad and draw parameters (no CUDA, no Numba), so fork is fine.
            ctx = "spawn" if self.device.type == "cpu" else "fork"
            dl = torch.utils.data.DataLoader(ItemDataset(clips, B * self.n), batch_size=B, num_workers=self.args.workers,
                                             collate_fn=collate, persistent_workers=self.args.workers > 0,
                                             multiprocessing_context=ctx if self.args.workers else None,
                                             worker_init_fn=single_thread_worker)
            it = DeviceLoader(dl, collate, self.device)

            def one_epoch():
                last = None
                for batch in it:
                    last = batch
                if last is not None:
                    last.wave.sum().item()  # wait for the device work of the last batch

            with backend_env(None):
                times = time_repeats(lambda _i: one_epoch(), repeats=self.args.repeats, warmup=self.args.warmup,
                                     device=self.device)
            del it, dl
            gc.collect()
            return summarize(times, B * self.n, B * self.n * secs)

        return self._row("gpuaug[loader]", name, B, secs, {s: "gpuaug" for s in PIPELINES[name]}, measure)

    def audiomentations(self, name, clips, secs):
        B = clips.shape[0]
        compose, ops = pam.build(PIPELINES[name], secs, self.banks.noise_files, self.banks.rir_files)

        def measure():
            if not compose.transforms:
                return {"status": "n/a", "reason": "no step of this pipeline exists in audiomentations"}
            dl = pam.loader(pam.ClipDataset(clips, B * self.n, compose), B, self.args.workers)
            out = self._timed_epochs(dl, B * self.n, B * self.n * secs)
            del dl
            gc.collect()
            return out

        return self._row("audiomentations", name, B, secs, ops, measure)

    def offline(self, name, clips, secs, cache: dict):
        """Precomputed copies are the same files whatever the pipeline: measured once per shape."""
        B = clips.shape[0]
        key = (B, secs)

        def measure():
            if key not in cache:
                cache[key] = self._offline_measure(clips, secs)
            return dict(cache[key])

        ops = {s: "precomputed (read from disk)" for s in PIPELINES[name]}
        return self._row("offline", name, B, secs, ops, measure)

    def _offline_measure(self, clips, secs):
        import soundfile as sf

        B = clips.shape[0]
        folder = self.workdir / f"offline_{B}x{secs:g}s"
        folder.mkdir(parents=True, exist_ok=True)
        pipe = gpuaug_pipeline("retaining", self.banks)
        wave = torch.from_numpy(clips)
        lengths = torch.full((B,), clips.shape[1], dtype=torch.int64)
        files = []
        for k in range(self.n):  # untimed: the offline copies are made once, before training
            out = pipe(wave.to(self.device), lengths.to(self.device), seed=0, epoch=k)
            w, ln = out.wave.cpu().numpy(), out.lengths.cpu().numpy()
            for b in range(B):
                path = folder / f"{k:03d}_{b:04d}.wav"
                sf.write(str(path), np.clip(w[b, : ln[b]], -1, 1), SR, subtype="PCM_16")
                files.append(str(path))
        dl = torch.utils.data.DataLoader(FileDataset(files), batch_size=B, num_workers=self.args.workers,
                                         collate_fn=pam.pad_collate, persistent_workers=self.args.workers > 0)
        out = self._timed_epochs(dl, B * self.n, B * self.n * secs)
        del dl
        gc.collect()
        out["note"] = "16-bit wav copies (page cache warm); one measurement per batch shape, shared by all pipelines"
        return out

    def torch_audiomentations(self, name, clips, secs):
        B = clips.shape[0]
        devices = [str(self.device)] if self.device.type == "cpu" else [str(self.device), "cpu"]
        py = self.args.peers_python
        if not py.exists():
            for d in devices:
                self._row(f"torch_audiomentations[{d}]", name, B, secs, {},
                          lambda: {"status": "unavailable",
                                   "reason": f"no peers interpreter at {py} (run benchmarks/setup_peers.sh)"})
            return
        npy = self.workdir / f"batch_{B}x{secs:g}s.npy"
        if not npy.exists():
            np.save(npy, clips)
        spec = {"steps": PIPELINES[name], "seconds": secs, "batch_npy": str(npy),
                "noise_files": self.banks.noise_files, "rir_files": self.banks.rir_files, "devices": devices,
                "repeats": self.args.repeats, "warmup": self.args.warmup, "batches_per_repeat": self.n}
        spec_path, out_path = self.workdir / "ta_spec.json", self.workdir / "ta_out.json"
        spec_path.write_text(json.dumps(spec))
        out_path.unlink(missing_ok=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
        proc = subprocess.run([str(py), str(Path(__file__).with_name("peer_torch_audiomentations.py")),
                               str(spec_path), str(out_path)], capture_output=True, text=True, env=env)
        if proc.returncode != 0 or not out_path.exists():
            reason = (proc.stderr.strip().splitlines() or ["no output"])[-1]
            for d in devices:
                self._row(f"torch_audiomentations[{d}]", name, B, secs, {},
                          lambda: {"status": "error", "reason": f"peer process failed: {reason}"})
            return
        res = json.loads(out_path.read_text())
        self.peer_env["torch_audiomentations"] = {"python": str(py), "versions": res["versions"],
                                                  "torch_threads": res["torch_threads"], "io_patch": res["io_patch"]}
        for m in res["measurements"]:
            d = m.pop("device")
            self._row(f"torch_audiomentations[{d}]", name, B, secs, res["ops"], lambda m=m: m)

    # ---- the run ------------------------------------------------------------------------
    def run(self):
        offline_cache: dict = {}
        for B in self.args.batch_sizes:
            for secs in self.args.seconds:
                clips = speech_clips(self.data, B, secs)
                for name in self.args.pipelines:
                    for v in self.args.gpuaug:
                        if v == "loader":
                            self.gpuaug_loader(name, clips, secs)
                        else:
                            self.gpuaug_direct(name, clips, secs, v)
                    for peer in self.args.peers:
                        if peer == "offline":
                            self.offline(name, clips, secs, offline_cache)
                        else:
                            getattr(self, peer)(name, clips, secs)
        add_ratios(self.rows)


def add_ratios(rows: list[dict]) -> None:
    """``gpuaug_speedup``: gpuaug[auto] clips/s over the row's clips/s, same pipeline and shape."""
    ref = {(r["pipeline"], r["batch_size"], r["seconds"]): r["clips_per_s"]
           for r in rows if r["peer"] == REFERENCE and r.get("status") == "ok"}
    for r in rows:
        k = (r["pipeline"], r["batch_size"], r["seconds"])
        if r.get("status") == "ok" and k in ref:
            r["gpuaug_speedup"] = ref[k] / r["clips_per_s"]


def _missing(row) -> str:
    ops = row.get("ops") or {}
    na = [s for s, v in ops.items() if v == "n/a"]
    approx = [s for s, v in ops.items() if str(v).startswith("approx")]
    parts = ([f"n/a: {','.join(na)}"] if na else []) + ([f"approx: {','.join(approx)}"] if approx else [])
    if (row.get("other_busy") or 0) > 0.05:
        parts.append(f"!other programs used {row['other_busy']:.0%} of the CPU")
    return "; ".join(parts)


def _print_row(r) -> None:
    if r.get("status") == "ok":
        speed = f"{r['clips_per_s']:10.1f} {r['x_realtime']:10.1f}"
    else:
        speed = f"{r.get('status', '?'):>21}"
    print(f"{r['pipeline']:<10} {r['batch_size']:>4} {r['seconds']:>5g} {r['peer']:<30} {speed}  {_missing(r)}"
          + (f"  [{r['reason']}]" if r.get("reason") else ""), flush=True)


def print_table(rows) -> None:
    print(f"\n{'pipeline':<10} {'B':>4} {'sec':>5} {'peer':<30} {'clips/s':>10} {'x realtime':>10} "
          f"{'gpuaug x':>9}  steps the peer lacks / approximates")
    for r in rows:
        if r.get("status") == "ok":
            ratio = f"{r['gpuaug_speedup']:9.2f}" if "gpuaug_speedup" in r else f"{'-':>9}"
            vals = f"{r['clips_per_s']:10.1f} {r['x_realtime']:10.1f} {ratio}"
        else:
            vals = f"{r.get('status', '?'):>31}"
        print(f"{r['pipeline']:<10} {r['batch_size']:>4} {r['seconds']:>5g} {r['peer']:<30} {vals}  {_missing(r)}")
    print("gpuaug x = clips/s of gpuaug[auto] / clips/s of the row (same pipeline, batch size and length).")


def plot(rows, path: Path, title: str) -> str | None:
    """A PNG of clips/s per pipeline, shape and peer; returns a message if it could not be drawn."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.patches
        import matplotlib.pyplot as plt
    except ImportError:
        return "matplotlib is not installed: no plot (pip install -e .[bench])"
    ok = [r for r in rows if r.get("status") == "ok"]
    pipes = list(dict.fromkeys(r["pipeline"] for r in ok))
    if not pipes:
        return "nothing measured: no plot"
    peers = list(dict.fromkeys(r["peer"] for r in ok))
    fig, axes = plt.subplots(len(pipes), 1, figsize=(11, 3.2 * len(pipes)), squeeze=False)
    width = 0.8 / max(1, len(peers))
    for ax, name in zip(axes[:, 0], pipes):
        shapes = list(dict.fromkeys((r["batch_size"], r["seconds"]) for r in ok if r["pipeline"] == name))
        for j, peer in enumerate(peers):
            vals = {(r["batch_size"], r["seconds"]): r["clips_per_s"] for r in ok
                    if r["pipeline"] == name and r["peer"] == peer}
            for i, s in enumerate(shapes):
                if s in vals:
                    ax.bar(i + j * width, vals[s], width, color=f"C{j % 10}")
                else:  # the peer lacks every step of this pipeline, or failed
                    ax.text(i + j * width, 0.02, "n/a", transform=ax.get_xaxis_transform(), ha="center",
                            fontsize=7, color=f"C{j % 10}")
        ax.set_xticks([i + 0.4 - width / 2 for i in range(len(shapes))])
        ax.set_xticklabels([f"B={b}, {s:g} s" for b, s in shapes])
        ax.set_yscale("log")
        ax.set_ylabel("clips / s")
        ax.set_title(f"pipeline: {name}")
        ax.grid(axis="y", alpha=0.3)
    handles = [matplotlib.patches.Patch(color=f"C{j % 10}", label=peer) for j, peer in enumerate(peers)]
    fig.legend(handles=handles, loc="upper center", ncol=min(4, len(peers)), fontsize=8, bbox_to_anchor=(0.5, 0.985))
    fig.suptitle(title, fontsize=10, y=0.995)
    fig.tight_layout(rect=(0, 0, 1, 0.95))
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return None


def main(argv=None):
    args = parse_args(argv)
    started = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    info = machine_info(torch.device(args.device))
    load = LoadMonitor().start()
    with tempfile.TemporaryDirectory(prefix="gpuaug-bench-") as tmp:
        bench = Bench(args, Path(tmp))
        print(f"device {info['device_name']} ({info['cpu_count']} CPU cores, {info['torch_threads']} torch threads), "
              f"banks: {bench.banks.source}, load avg {info['loadavg_1_5_15']}", flush=True)
        bench.run()
    print_table(bench.rows)
    result = {
        "benchmark": "throughput", "command": command_line(), "started_utc": started,
        "finished_utc": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": info, "loadavg_at_end": list(os.getloadavg()), "cpu_load_during_run": load.stop(),
        "banks": {"source": bench.banks.source, "noise_clips": len(bench.banks.noise_files),
                  "rir_clips": len(bench.banks.rir_files), "noise_categories": bench.banks.noise.categories()},
        "sample_rate": SR, "pipelines": {k: PIPELINES[k] for k in args.pipelines}, "step_params": STEP_PARAMS,
        "gpuaug_backends": resolved_backends(torch.device(args.device)), "peer_environments": bench.peer_env,
        "reference": REFERENCE, "measurements": bench.rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))
    print(f"wrote {args.out}")
    if not args.no_plot:
        msg = plot(bench.rows, args.out.with_suffix(".png"),
                   f"{info['device_name']} ({info['cpu_count']} cores) - gpuaug {info['versions']['gpuaug']}")
        print(msg or f"wrote {args.out.with_suffix('.png')}")


if __name__ == "__main__":
    main()
