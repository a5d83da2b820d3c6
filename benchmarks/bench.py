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
the same clips for every row, ratios from the same run. Repeats are interleaved: every row
(library x pipeline x batch shape) is set up and warmed up first, then each round times one
repeat of every row in turn (--interleave all; ``shape``: rounds over the rows of one batch
shape at a time, fewer live DataLoader workers; ``none``: each row's repeats back to back), so
a burst of load from other programs hits all rows alike. torch_audiomentations runs its own
repeats in its subprocess and is not interleaved.

CPU time per repeat, beside the wall time: ``time.process_time()`` of this process plus the
user + system time of its child processes (DataLoader workers: live ones read from
``/proc/<pid>/stat``, ended ones through ``resource.getrusage(RUSAGE_CHILDREN)``); reported as
``cpu_s`` (per repeat), ``median_cpu_s``, ``cpu_ms_per_clip`` and ``gpuaug_cpu_speedup`` (the
row's CPU per clip over gpuaug[auto]'s).
"""
from __future__ import annotations

import argparse
import datetime as dt
import gc
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

import peer_audiomentations as pam  # noqa: E402
from common import (  # noqa: E402
    DEFAULT_DATA, DEFAULT_PIPELINES, PIPELINES, REPO, SR, STEP_PARAMS, FileDataset, ItemDataset, LoadMonitor, backend_env, command_line,
    gpuaug_pipeline, load_banks, machine_info, resolved_backends, single_thread_worker, speech_clips, summarize, sync,
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
    p.add_argument("--interleave", choices=("all", "shape", "none"), default="all",
                   help="rounds of one repeat per row over all rows (default), over the rows of one batch "
                        "shape at a time, or each row's repeats back to back")
    args = p.parse_args(argv)
    if args.repeats < 3:
        p.error("--repeats must be >= 3 (the median of at least three runs is reported)")
    loader_rows = set(args.peers) & {"audiomentations", "offline"} or "loader" in args.gpuaug
    if loader_rows and args.workers > 0 and args.batches_per_repeat % args.workers:
        p.error(f"--batches-per-repeat ({args.batches_per_repeat}) must be a multiple of --workers "
                f"({args.workers}): a repeat of the DataLoader rows is one epoch, and with fewer batches "
                "than workers some workers idle, which understates those rows")
    return args


# ---- CPU time ---------------------------------------------------------------------------
CPU_TIME_METHOD = ("time.process_time() of the benchmark process + user+system time of its child processes "
                   "(live: /proc/<pid>/stat utime+stime; ended: resource.getrusage(RUSAGE_CHILDREN))")
_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _children(pid: int) -> list[int]:
    """Live descendants of ``pid`` (``/proc/<pid>/task/*/children``; empty where unavailable)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        try:
            tasks = os.listdir(f"/proc/{p}/task")
        except OSError:
            continue
        for t in tasks:
            try:
                kids = [int(k) for k in Path(f"/proc/{p}/task/{t}/children").read_text().split()]
            except (OSError, ValueError):
                continue
            out.extend(kids)
            todo.extend(kids)
    return out


def _proc_cpu(pid: int) -> float | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        fields = stat[stat.rindex(")") + 2:].split()
        return (int(fields[11]) + int(fields[12])) / _TICK  # utime, stime
    except (OSError, ValueError, IndexError):
        return None


class CpuClock:
    """CPU seconds of this process and of its children between :meth:`start` and :meth:`stop`."""

    def start(self) -> "CpuClock":
        self._kids = {p: c for p in _children(os.getpid()) if (c := _proc_cpu(p)) is not None}
        ru = resource.getrusage(resource.RUSAGE_CHILDREN)
        self._ended = ru.ru_utime + ru.ru_stime
        self._main = time.process_time()
        return self

    def stop(self) -> tuple[float, float]:
        """``(own_cpu_s, children_cpu_s)`` since :meth:`start`."""
        main = time.process_time() - self._main
        ru = resource.getrusage(resource.RUSAGE_CHILDREN)
        kids = ru.ru_utime + ru.ru_stime - self._ended  # children that ended (and were waited for)
        now = {p: c for p in _children(os.getpid()) if (c := _proc_cpu(p)) is not None}
        for p, c in now.items():
            kids += c - self._kids.get(p, 0.0)
        for p, c in self._kids.items():
            if p not in now:  # ended in between: getrusage counted its whole life
                kids -= c
        return main, max(0.0, kids)


def timed(run, i: int, device: torch.device) -> tuple[float, float, float]:
    """``(wall_s, own_cpu_s, children_cpu_s)`` of ``run(i)`` (device synchronised around it)."""
    sync(device)
    clock = CpuClock().start()
    t0 = time.perf_counter()
    run(i)
    sync(device)
    wall = time.perf_counter() - t0
    return (wall, *clock.stop())


def summarize_cpu(times, cpu_own, cpu_children, clips: int) -> dict:
    """The CPU-time fields of a row (added to :func:`common.summarize`'s wall-time ones)."""
    cpu = [a + b for a, b in zip(cpu_own, cpu_children)]
    med = statistics.median(cpu)
    return {"cpu_s": cpu, "cpu_main_s": list(cpu_own), "cpu_children_s": list(cpu_children), "median_cpu_s": med,
            "cpu_ms_per_clip": 1000.0 * med / clips, "cpu_per_wall": med / statistics.median(times)}


class Job:
    """One row to time: ``run(i)`` is one repeat of ``clips`` clips holding ``audio_s`` seconds."""

    def __init__(self, row: dict, run, clips: int, audio_s: float, device: torch.device, close=None, env="keep",
                 extra: dict | None = None, shared: dict | None = None, key=None):
        self.row, self.run, self.clips, self.audio_s, self.device = row, run, clips, audio_s, device
        self.close, self.env, self.extra = close, env, extra or {}
        self.shared, self.key = shared, key  # offline: one measurement per shape, shared by the pipelines
        self.walls: list[float] = []
        self.cpu_own: list[float] = []
        self.cpu_children: list[float] = []
        self.error: str | None = None

    def once(self, i: int, record: bool) -> None:
        if self.error is not None:
            return
        try:
            ctx = backend_env(self.env) if self.env != "keep" else _nullcontext()
            with ctx, torch.no_grad():
                wall, own, kids = timed(self.run, i, self.device)
        except Exception as e:  # report and go on with the other rows
            self.error = f"{type(e).__name__}: {e}"
            return
        if record:
            self.walls.append(wall)
            self.cpu_own.append(own)
            self.cpu_children.append(kids)

    def result(self) -> dict:
        if self.error is not None:
            return {"status": "error", "reason": self.error}
        out = summarize(self.walls, self.clips, self.audio_s)
        out.update(summarize_cpu(self.walls, self.cpu_own, self.cpu_children, self.clips))
        out.update(self.extra)
        return out

    def finish(self) -> None:
        if self.close is not None:
            try:
                self.close()
            except Exception:  # pragma: no cover - teardown of a failed row
                pass
            self.close = None


class _nullcontext:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False


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
    def _meta(self, peer, name, B, secs, ops) -> dict:
        return {"pipeline": name, "batch_size": B, "seconds": secs, "peer": peer, "ops": ops,
                "repeats": self.args.repeats, "warmup": self.args.warmup, "batches_per_repeat": self.n}

    def _fixed(self, peer, name, B, secs, ops, result: dict) -> dict:
        """A row that is not timed here (n/a, unavailable, a failed set-up, the peers' subprocess)."""
        row = self._meta(peer, name, B, secs, ops)
        row.update(result)
        row.setdefault("status", "ok")
        row["interleaved"] = False
        self.rows.append(row)
        _print_row(row)
        return row

    def _job(self, peer, name, B, secs, ops, make, **kw):
        """``make()`` -> ``(run, close)`` (or a dict: a fixed row); errors become an ``error`` row."""
        try:
            made = make()
        except Exception as e:
            return self._fixed(peer, name, B, secs, ops, {"status": "error", "reason": f"{type(e).__name__}: {e}"})
        if isinstance(made, dict):
            return self._fixed(peer, name, B, secs, ops, made)
        run, close = made
        row = self._meta(peer, name, B, secs, ops)
        return Job(row, run, kw.pop("clips", B * self.n), kw.pop("audio_s", B * self.n * secs), kw.pop("device", self.device),
                   close=close, **kw)

    # ---- rows (each returns a Job to time, or a finished row dict) ----------------------------
    def gpuaug_direct(self, name, clips, secs, variant):
        B = clips.shape[0]

        def make():
            pipe = gpuaug_pipeline(name, self.banks)
            wave = torch.from_numpy(clips).to(self.device)
            lengths = torch.full((B,), clips.shape[1], dtype=torch.int64, device=self.device)

            def run(i):
                for k in range(self.n):
                    pipe(wave, lengths, seed=0, epoch=1000 + i * self.n + k)

            return run, None

        return self._job(f"gpuaug[{variant}]", name, B, secs, {s: "gpuaug" for s in PIPELINES[name]}, make,
                         env="torch" if variant == "torch" else None)

    def gpuaug_loader(self, name, clips, secs):
        from gpuaug.data import AugmentCollate, DeviceLoader

        B = clips.shape[0]

        def make():
            pipe = gpuaug_pipeline(name, self.banks)
            collate = AugmentCollate(pipe, ratio=1.0, seed=0, device=self.device)
            # spawn on CPU: Numba's OpenMP pool in this process is not fork-safe; on CUDA the
            # workers only pad and draw parameters (no CUDA, no Numba), so fork is fine.
            ctx = "spawn" if self.device.type == "cpu" else "fork"
            dl = torch.utils.data.DataLoader(ItemDataset(clips, B * self.n), batch_size=B, num_workers=self.args.workers,
                                             collate_fn=collate, persistent_workers=self.args.workers > 0,
                                             multiprocessing_context=ctx if self.args.workers else None,
                                             worker_init_fn=single_thread_worker)
            holder = {"it": DeviceLoader(dl, collate, self.device), "dl": dl}

            def run(_i):
                last = None
                for batch in holder["it"]:
                    last = batch
                if last is not None:
                    last.wave.sum().item()  # wait for the device work of the last batch

            return run, holder.clear

        return self._job("gpuaug[loader]", name, B, secs, {s: "gpuaug" for s in PIPELINES[name]}, make, env=None)

    def audiomentations(self, name, clips, secs):
        B = clips.shape[0]
        try:
            compose, ops = pam.build(PIPELINES[name], secs, self.banks.noise_files, self.banks.rir_files)
        except ImportError as e:  # not installed here (pip install -e .[bench])
            return self._fixed("audiomentations", name, B, secs, {}, {"status": "unavailable", "reason": str(e)})

        def make():
            if not compose.transforms:
                return {"status": "n/a", "reason": "no step of this pipeline exists in audiomentations"}
            holder = {"dl": pam.loader(pam.ClipDataset(clips, B * self.n, compose), B, self.args.workers)}
            return (lambda _i: pam.epoch(holder["dl"])), holder.clear

        return self._job("audiomentations", name, B, secs, ops, make, device=torch.device("cpu"))

    def offline(self, name, clips, secs, cache: dict):
        """Precomputed copies are the same files whatever the pipeline: measured once per shape
        (the first pipeline's job times them; the others copy its result)."""
        B = clips.shape[0]
        key = (B, secs)
        ops = {s: "precomputed (read from disk)" for s in PIPELINES[name]}
        if key in cache:
            return self._job("offline", name, B, secs, ops, lambda: (None, None), shared=cache, key=key)

        def make():
            dl = self._offline_loader(clips, secs)
            holder = {"dl": dl}
            return (lambda _i: pam.epoch(holder["dl"])), holder.clear

        note = "16-bit wav copies (page cache warm); one measurement per batch shape, shared by all pipelines"
        job = self._job("offline", name, B, secs, ops, make, device=torch.device("cpu"), extra={"note": note})
        cache[key] = job
        return job

    def _offline_loader(self, clips, secs):
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
        return torch.utils.data.DataLoader(FileDataset(files), batch_size=B, num_workers=self.args.workers,
                                           collate_fn=pam.pad_collate, persistent_workers=self.args.workers > 0)

    def torch_audiomentations(self, name, clips, secs):
        """Runs its own (not interleaved) repeats in the peers' interpreter; wall time only."""
        B = clips.shape[0]
        devices = [str(self.device)] if self.device.type == "cpu" else [str(self.device), "cpu"]
        py = self.args.peers_python
        if not py.exists():
            for d in devices:
                self._fixed(f"torch_audiomentations[{d}]", name, B, secs, {},
                            {"status": "unavailable", "reason": f"no peers interpreter at {py} (run benchmarks/setup_peers.sh)"})
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
                self._fixed(f"torch_audiomentations[{d}]", name, B, secs, {},
                            {"status": "error", "reason": f"peer process failed: {reason}"})
            return
        res = json.loads(out_path.read_text())
        self.peer_env["torch_audiomentations"] = {"python": str(py), "versions": res["versions"],
                                                  "torch_threads": res["torch_threads"], "io_patch": res["io_patch"]}
        for m in res["measurements"]:
            d = m.pop("device")
            m.setdefault("cpu_note", "not measured: the peer times itself in its own process")
            self._fixed(f"torch_audiomentations[{d}]", name, B, secs, res["ops"], m)

    # ---- the run ------------------------------------------------------------------------
    def _jobs_of_shape(self, B, secs, offline_cache) -> list:
        clips = speech_clips(self.data, B, secs)
        jobs = []
        for name in self.args.pipelines:
            for v in self.args.gpuaug:
                jobs.append(self.gpuaug_loader(name, clips, secs) if v == "loader"
                            else self.gpuaug_direct(name, clips, secs, v))
            for peer in self.args.peers:
                if peer == "offline":
                    jobs.append(self.offline(name, clips, secs, offline_cache))
                else:
                    jobs.append(getattr(self, peer)(name, clips, secs))
        return [j for j in jobs if isinstance(j, Job)]

    def _time(self, jobs: list) -> None:
        """Warm up every job, then ``--repeats`` rounds of one repeat per job (or back to back)."""
        timed_jobs = [j for j in jobs if j.shared is None]
        load = LoadMonitor().start()
        groups = [timed_jobs] if self.args.interleave != "none" else [[j] for j in timed_jobs]
        for group in groups:
            for w in range(self.args.warmup):
                for j in group:
                    j.once(-1 - w, record=False)
            for i in range(self.args.repeats):
                for j in group:
                    j.once(i, record=True)
        for j in timed_jobs:
            j.finish()
        gc.collect()  # joins finished DataLoader workers
        # after the workers are joined: their CPU time is this process's children's, not other programs'
        other = load.stop().get("other_busy")
        for j in jobs:
            src = j.shared[j.key] if j.shared is not None else j
            row = dict(j.row)
            row.update(src.result())
            row.setdefault("status", "ok")
            row["interleaved"] = self.args.interleave != "none" and len(timed_jobs) > 1
            row["other_busy"] = other  # of the whole timing block (rows are interleaved in it)
            self.rows.append(row)
            _print_row(row)

    def run(self):
        offline_cache: dict = {}
        shapes = [(B, secs) for B in self.args.batch_sizes for secs in self.args.seconds]
        if self.args.interleave == "all":
            jobs = [j for B, secs in shapes for j in self._jobs_of_shape(B, secs, offline_cache)]
            self._time(jobs)
        else:
            for B, secs in shapes:
                self._time(self._jobs_of_shape(B, secs, offline_cache))
        add_ratios(self.rows)


def add_ratios(rows: list[dict]) -> None:
    """``gpuaug_speedup``: gpuaug[auto] clips/s over the row's clips/s, same pipeline and shape;
    ``gpuaug_cpu_speedup``: the row's CPU ms per clip over gpuaug[auto]'s (> 1: gpuaug uses less CPU)."""
    refs = {(r["pipeline"], r["batch_size"], r["seconds"]): r
            for r in rows if r["peer"] == REFERENCE and r.get("status") == "ok"}
    for r in rows:
        ref = refs.get((r["pipeline"], r["batch_size"], r["seconds"]))
        if r.get("status") == "ok" and ref is not None:
            r["gpuaug_speedup"] = ref["clips_per_s"] / r["clips_per_s"]
            if ref.get("cpu_ms_per_clip") and r.get("cpu_ms_per_clip"):
                r["gpuaug_cpu_speedup"] = r["cpu_ms_per_clip"] / ref["cpu_ms_per_clip"]


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
        speed = f"{r['clips_per_s']:10.1f} {r['x_realtime']:10.1f} {_cpu_cell(r)}"
    else:
        speed = f"{r.get('status', '?'):>32}"
    print(f"{r['pipeline']:<10} {r['batch_size']:>4} {r['seconds']:>5g} {r['peer']:<30} {speed}  {_missing(r)}"
          + (f"  [{r['reason']}]" if r.get("reason") else ""), flush=True)


def _cpu_cell(r) -> str:
    """CPU ms per clip (``-`` where not measured, e.g. the torch_audiomentations subprocess)."""
    return f"{r['cpu_ms_per_clip']:10.2f}" if r.get("cpu_ms_per_clip") is not None else f"{'-':>10}"


def print_table(rows) -> None:
    print(f"\n{'pipeline':<10} {'B':>4} {'sec':>5} {'peer':<30} {'clips/s':>10} {'x realtime':>10} "
          f"{'cpu ms/clip':>11} {'gpuaug x':>9} {'cpu x':>7}  steps the peer lacks / approximates")
    for r in rows:
        if r.get("status") == "ok":
            ratio = f"{r['gpuaug_speedup']:9.2f}" if "gpuaug_speedup" in r else f"{'-':>9}"
            cpu_ratio = f"{r['gpuaug_cpu_speedup']:7.2f}" if "gpuaug_cpu_speedup" in r else f"{'-':>7}"
            vals = f"{r['clips_per_s']:10.1f} {r['x_realtime']:10.1f} {_cpu_cell(r):>11} {ratio} {cpu_ratio}"
        else:
            vals = f"{r.get('status', '?'):>51}"
        print(f"{r['pipeline']:<10} {r['batch_size']:>4} {r['seconds']:>5g} {r['peer']:<30} {vals}  {_missing(r)}")
    print("gpuaug x = clips/s of gpuaug[auto] / clips/s of the row; cpu x = CPU ms per clip of the row / of "
          "gpuaug[auto] (same pipeline, batch size and length; > 1: gpuaug is faster / uses less CPU). CPU time = "
          "this process + its DataLoader workers.")


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


def _thread_budget() -> int | None:
    """Threads gpuaug's Numba CPU kernels run on in this process (None: gpuaug too old)."""
    try:
        from gpuaug import backend

        return backend.get_num_threads()
    except Exception:
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
        "reference": REFERENCE,
        "timing": {"interleave": args.interleave, "cpu_time": CPU_TIME_METHOD,
                   "gpuaug_threads": _thread_budget()},
        "measurements": bench.rows,
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
