"""What every benchmark script shares: the data, the pipelines (as op lists), timing, machine info.

The pipelines are defined once as lists of *steps* (:data:`PIPELINES`) with one parameter set
(:data:`STEP_PARAMS`); :func:`gpuaug_pipeline` builds the gpuaug version and the peer
modules (``peer_audiomentations.py``, ``peer_torch_audiomentations.py``) map the same steps
to their own transforms, or mark a step ``n/a``.

Every transform runs with ``p=1`` so that every peer does the same work on every clip.
"""
from __future__ import annotations

import math
import os
import platform
import statistics
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
SR = 16000
#: Real recordings (noise/, rir/, speech/, emotion/); the synthetic banks are used when absent.
DEFAULT_DATA = Path(os.environ.get("GPUAUG_SHARED_DATA", REPO.parent / "shared" / "data"))
#: Noise categories of the perception study present in the shared data (domestic -> interior).
STUDY_CATEGORIES = ("natural", "human", "interior")
#: Bank clips are cut to this many seconds (bounds the padded bank; the peers get the same cut files).
BANK_MAX_SECONDS = 20.0

#: Steps of each benchmarked pipeline, in the order they are applied.
PIPELINES = {
    # the perception-retaining default: noise + reverb + fade + segment speed-up
    "retaining": ["noise", "reverb", "fade", "speed_segment"],
    "mcadams": ["mcadams"],
    "pitch": ["pitch"],
    # voice modifications on the clean voice first, then timing, room, noise, level
    "full": ["mcadams", "pitch", "speed_segment", "speed", "drop", "reverb", "noise", "fade", "gain"],
    # the steps all three libraries have with the same semantics (like for like)
    "noise_reverb": ["reverb", "noise"],
}
#: Pipelines bench.py runs unless told otherwise (the issue's four).
DEFAULT_PIPELINES = ("retaining", "mcadams", "pitch", "full")

#: One parameter set per step, shared by every peer (peers map them as closely as they can).
STEP_PARAMS = {
    "noise": {"snr_db_choices": [0.0, 10.0, 20.0], "categories": list(STUDY_CATEGORIES), "placement": "continuous"},
    "reverb": {"normalize": "energy"},
    "fade": {"rate_per_s": 0.02, "directions": ["in", "out"], "shape": "linear"},
    "speed_segment": {"factor": 1.25, "min_fraction": 0.1, "max_fraction": 0.25},
    "pitch": {"semitones": 1.0},
    "speed": {"min_factor": 0.95, "max_factor": 1.05},
    "gain": {"min_gain_db": -6.0, "max_gain_db": 6.0},
    "drop": {"min_segments": 1, "max_segments": 3, "min_ms": 20.0, "max_ms": 60.0},
    "mcadams": {"alpha": 0.8},
}


@dataclass
class Banks:
    """The noise and RIR banks and the 16 kHz mono files they were built from (for the peers)."""

    noise: "object"  # gpuaug.data.Bank
    rir: "object"
    noise_files: list[str]
    rir_files: list[str]
    source: str  # "shared-data:<path>" or "synthetic"


def _write_bank(bank, folder: Path) -> list[str]:
    import soundfile as sf

    folder.mkdir(parents=True, exist_ok=True)
    files = []
    for i, name in enumerate(bank.names):
        path = folder / f"{i:03d}_{bank.category_names[int(bank.category_ids[i])]}_{Path(name).name}.wav"
        sf.write(str(path), bank.clip(i).cpu().numpy(), bank.sample_rate, subtype="FLOAT")
        files.append(str(path))
    return files


def load_banks(data: Path | None, workdir: Path) -> Banks:
    """Noise (study categories) and RIR banks at 16 kHz, plus the same clips written as wav files.

    With ``data`` (the shared recordings) present the real files are used; else gpuaug's
    synthetic banks. The peers read the wav files written under ``workdir``: the very
    samples the gpuaug banks hold (16 kHz mono, first RIR channel, cut to
    :data:`BANK_MAX_SECONDS`), so no peer pays for resampling 44.1 kHz files.
    """
    from gpuaug.data.layouts import noise_bank_from_folder, rir_bank_from_folder
    from gpuaug.presets import study_noise

    if data is not None and (data / "noise").is_dir() and (data / "rir").is_dir():
        noise = noise_bank_from_folder(data / "noise", SR, layout="prefix", max_seconds=BANK_MAX_SECONDS)
        noise = study_noise(noise)  # the study's categories, without vocal-burst files (laughs: unverified)
        rir = rir_bank_from_folder(data / "rir", SR, max_seconds=BANK_MAX_SECONDS)
        source = f"shared-data:{data}"
    else:
        from gpuaug.data.synthetic import synthetic_noise_bank, synthetic_rir_bank

        noise, rir = synthetic_noise_bank(sample_rate=SR), synthetic_rir_bank(sample_rate=SR)
        source = "synthetic"
    return Banks(noise, rir, _write_bank(noise, workdir / "noise"), _write_bank(rir, workdir / "rir"), source)


def speech_clips(data: Path | None, batch: int, seconds: float) -> np.ndarray:
    """``(batch, seconds * 16000)`` float32 clean speech, identical for every peer.

    Real recordings (speech/ and emotion/ of the shared data, resampled to 16 kHz, looped to
    the length) when present, else gpuaug's synthetic emotional speech.
    """
    n = int(round(seconds * SR))
    sources: list[np.ndarray] = []
    if data is not None and (data / "speech").is_dir():
        from gpuaug.audio_io import load_resampled

        files = sorted((data / "speech").glob("*.wav")) + sorted((data / "emotion").glob("*.wav"))
        sources = [load_resampled(f, SR).numpy() for f in files[: max(batch, 1)]]
    if not sources:
        from gpuaug.data.synthetic import synthetic_speech

        sources = [it.wave.numpy() for it in synthetic_speech(min(batch, 16), sample_rate=SR, min_s=3.0, max_s=6.0)]
    out = np.zeros((batch, n), dtype=np.float32)
    for b in range(batch):
        src = sources[b % len(sources)]
        reps = math.ceil(n / src.size)
        out[b] = np.tile(src, reps)[:n]
    return out


def gpuaug_pipeline(name: str, banks: Banks):
    """The gpuaug :class:`~gpuaug.transforms.Pipeline` of :data:`PIPELINES` ``[name]`` (all ``p=1``)."""
    from gpuaug.transforms import (
        AddNoise, DropSegments, Fade, Gain, McAdams, Pipeline, PitchShift, Reverb, Speed, SpeedSegment,
    )

    P = STEP_PARAMS
    make = {
        "noise": lambda: AddNoise(banks.noise, categories=P["noise"]["categories"],
                                  snr_db_choices=P["noise"]["snr_db_choices"], placements=("continuous",), p=1.0),
        "reverb": lambda: Reverb(banks.rir, normalize=P["reverb"]["normalize"], p=1.0),
        "fade": lambda: Fade(rate_per_s=P["fade"]["rate_per_s"], directions=tuple(P["fade"]["directions"]), p=1.0),
        "speed_segment": lambda: SpeedSegment(**P["speed_segment"], p=1.0),
        "pitch": lambda: PitchShift(semitone_choices=(P["pitch"]["semitones"],), p=1.0),
        "speed": lambda: Speed(**P["speed"], p=1.0),
        "gain": lambda: Gain(**P["gain"], p=1.0),
        "drop": lambda: DropSegments(mode="letters", **P["drop"], p=1.0),
        "mcadams": lambda: McAdams(min_alpha=P["mcadams"]["alpha"], max_alpha=P["mcadams"]["alpha"], p=1.0),
    }
    require = "retaining" if name == "retaining" else None
    return Pipeline([make[s]() for s in PIPELINES[name]], sample_rate=SR, require=require)


class ItemDataset(torch.utils.data.Dataset):
    """gpuaug-style items ``{"wave", "sample_rate", "index"}``: item ``i`` is clip ``i % B``."""

    def __init__(self, clips: np.ndarray, n_items: int):
        self.clips, self.n_items = clips, n_items

    def __len__(self) -> int:
        return self.n_items

    def __getitem__(self, i: int) -> dict:
        return {"wave": self.clips[i % self.clips.shape[0]], "sample_rate": SR, "index": i}


class FileDataset(torch.utils.data.Dataset):
    """Reads precomputed augmented copies with soundfile (the seeds' offline way)."""

    def __init__(self, files: list[str]):
        self.files = files

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> np.ndarray:
        import soundfile as sf

        return sf.read(self.files[i], dtype="float32")[0]


def single_thread_worker(_worker_id: int) -> None:
    """DataLoader ``worker_init_fn``: one torch and one Numba thread per worker (no oversubscription)."""
    torch.set_num_threads(1)
    try:
        import numba

        numba.set_num_threads(1)
    except Exception:  # numba absent or its threading layer not started yet
        pass


# ---- timing ------------------------------------------------------------------------------
def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_repeats(run, *, repeats: int, warmup: int, device: torch.device) -> list[float]:
    """Wall seconds of ``repeats`` calls of ``run(i)`` after ``warmup`` untimed calls."""
    for i in range(warmup):
        run(-1 - i)
        sync(device)
    times = []
    for i in range(repeats):
        sync(device)
        t0 = time.perf_counter()
        run(i)
        sync(device)
        times.append(time.perf_counter() - t0)
    return times


def summarize(times: list[float], clips: int, audio_s: float) -> dict:
    """Median-based throughput of ``clips`` clips holding ``audio_s`` seconds per timed call."""
    med = statistics.median(times)
    return {"times_s": times, "median_s": med, "clips_per_s": clips / med, "x_realtime": audio_s / med}


@contextmanager
def backend_env(value: str | None):
    """Set (or, with ``None``, unset) ``GPUAUG_BACKEND`` for the block (ops read it per call)."""
    old = os.environ.get("GPUAUG_BACKEND")
    if value is None:
        os.environ.pop("GPUAUG_BACKEND", None)
    else:
        os.environ["GPUAUG_BACKEND"] = value
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("GPUAUG_BACKEND", None)
        else:
            os.environ["GPUAUG_BACKEND"] = old


def resolved_backends(device: torch.device) -> dict:
    """Every op with a registered kernel -> the backend ``auto`` and ``torch`` resolve to on ``device``."""
    from gpuaug import backend

    backend._load_kernels()
    ops = sorted({op for (op, _, _) in backend._KERNELS})
    out = {}
    for op in ops:
        with backend_env(None):
            auto = backend.resolve(op, device)
        out[op] = {"registered": {f"{b}/{d}": r for (b, d), r in backend.kernels_for(op).items()}, "auto": auto}
    return out


# ---- machine ------------------------------------------------------------------------------
def _version(module: str) -> str | None:
    """Installed version of ``module`` (distribution metadata, else ``__version__``), None if absent."""
    from importlib import metadata

    try:
        return metadata.version(module.replace("_", "-"))
    except metadata.PackageNotFoundError:
        try:
            return getattr(__import__(module), "__version__", "unknown")
        except Exception:  # not installed or fails to import
            return None


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info(device: torch.device) -> dict:
    """Device, CPU, versions, git revision and machine load (for the results JSON)."""
    try:
        rev = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
        dirty = bool(subprocess.run(["git", "-C", str(REPO), "status", "--porcelain"], capture_output=True,
                                    text=True).stdout.strip())
    except OSError:
        rev, dirty = None, None
    info = {
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_model(),
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "versions": {m: _version(m) for m in ("gpuaug", "torch", "numpy", "numba", "julius", "scipy", "soundfile",
                                             "audiomentations", "transformers", "matplotlib")},
        "cuda": torch.version.cuda if device.type == "cuda" else None,
        "git_commit": rev,
        "git_dirty": dirty,
        "loadavg_1_5_15": list(os.getloadavg()),
        "other_pytest_processes": _count_processes("pytest"),
    }
    if device.type == "cuda":
        info["cuda_device_capability"] = list(torch.cuda.get_device_capability(device))
    return info


class LoadMonitor:
    """How busy the machine's CPUs were between :meth:`start` and :meth:`stop`, and by whom.

    ``machine_busy``: fraction of all CPU time spent busy (``/proc/stat``); ``own_busy``: the
    part used by this process and its finished children (``os.times``); ``other_busy``: the
    rest, i.e. other programs competing for the cores (processes in other namespaces
    included, which ``ps`` does not show).
    """

    @staticmethod
    def _stat():
        try:
            vals = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
        except (OSError, ValueError):
            return None
        idle = vals[3] + (vals[4] if len(vals) > 4 else 0)
        return sum(vals[:8]), idle

    def start(self) -> "LoadMonitor":
        self._t0, self._s0, self._o0 = time.time(), self._stat(), os.times()
        return self

    def stop(self) -> dict:
        s1, o1 = self._stat(), os.times()
        wall = time.time() - self._t0
        own = max(0.0, o1.user + o1.system + o1.children_user + o1.children_system
               - self._o0.user - self._o0.system - self._o0.children_user - self._o0.children_system)
        out = {"wall_s": wall, "own_cpu_s": own}
        if self._s0 is not None and s1 is not None:
            total, idle = s1[0] - self._s0[0], s1[1] - self._s0[1]
            ticks = os.sysconf("SC_CLK_TCK")
            busy_s = (total - idle) / ticks
            cap = total / ticks
            out.update(machine_busy=(total - idle) / max(total, 1), own_busy=min(own, busy_s) / max(cap, 1e-9),
                       other_busy=max(0.0, busy_s - own) / max(cap, 1e-9))
        return out


def _count_processes(word: str) -> int:
    """Processes (other than this one) whose command line mentions ``word``."""
    n = 0
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            cmd = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if word in cmd and int(proc.name) != os.getpid():
            n += 1
    return n


def command_line() -> str:
    """The exact command, with the benchmark-relevant environment variables that were set."""
    env = " ".join(f"{k}={os.environ[k]}" for k in sorted(os.environ)
                   if k.startswith(("GPUAUG_", "NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "CUDA_VISIBLE")))
    return (env + " " if env else "") + "python " + " ".join([sys.argv[0], *sys.argv[1:]])
