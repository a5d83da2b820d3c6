"""One command for a lent GPU: CUDA tests, kernel accuracy and cost, benchmarks, memory.

    bash benchmarks/gpu_check.sh                 # on the GPU machine (installs, then runs this)
    python benchmarks/gpu_check.py --dry-run     # the same stages on the CPU, tiny sizes (CI)

Stages, each with its own time budget (the whole run is sized for <= 8 min on an H200), each
writing its JSON as it goes, so a stage killed at its limit keeps what it measured:

``pytest``    every CUDA test (``tests/test_*cuda*.py``, the device stage, the compile gate,
              and the CUDA / probe cases of ``test_kernels_*.py``, ``test_syncs.py`` and
              ``test_backend_fallback.py``): ``pytest.json`` (updated after every test) and
              ``pytest-junit.xml``.
``kernels``   every public op (:data:`OP_CASES`) on ``--device`` with every backend registered
              for it there (numba, cupy) and torch, float32, against the torch float64
              reference on the CPU, on real recordings (``GPUAUG_SHARED_DATA`` or
              ``../shared/data``) or synthetic speech: max abs error, NaN, zero padding,
              lengths, run-to-run equality, side stream, strided input, host syncs per call,
              CUDA-event ms vs torch; plus the device stage's prefetch hazard check.
              ``kernels.json`` (rewritten after every op).
``overhead``  ``overhead.py`` with a wav2vec2-base-sized model at 32 x 6 s: ``overhead.json``.
``bench``     ``bench.py`` on a small grid, one pipeline per call, merged into ``bench.json``.
``memory``    ``memory.py``: 10,000 batches (or as many as its budget allows), GPU memory and
              RSS flat: ``memory.json``.

``summary.json`` (environment, and per stage: status, wall time, budget, headline numbers) is
rewritten after every stage. The output folder is ``--out``, else ``$OUT``, else
``benchmarks/results/gpu-check/``; it holds at most 8 files (the device tool's limit), the
log of ``gpu_check.sh`` included. ``--dry-run`` runs every stage on the CPU with tiny sizes
(seconds), for ``tests/test_gpu_check.py``.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import statistics
import subprocess
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from common import DEFAULT_DATA, REPO, SR, machine_info  # noqa: E402

STAGES = ("pytest", "kernels", "overhead", "bench", "memory")
#: Nominal seconds per stage on the GPU and in a dry run; the last stage (memory) gets what is left
#: of ``--budget`` (default 420 s, so that install + run stay under 8 min).
BUDGET_GPU = {"pytest": 110, "kernels": 75, "overhead": 45, "bench": 75, "memory": 100}
BUDGET_DRY = {"pytest": 60, "kernels": 60, "overhead": 70, "bench": 40, "memory": 30}
#: Seconds kept back at the end of the run (summary, process exit).
RESERVE_S = 8
STAGE_FILES = {"pytest": "pytest.json", "kernels": "kernels.json", "overhead": "overhead.json", "bench": "bench.json",
               "memory": "memory.json"}
JUNIT = "pytest-junit.xml"
#: What the pytest stage runs: CUDA test files, plus the CUDA cases of the kernel tests.
PYTEST_FILES_GPU = ["tests/test_cuda_ops.py", "tests/test_device_stage_cuda.py", "tests/test_*cuda*.py",
                    "tests/test_device_stage.py", "tests/test_kernels_*.py", "tests/test_syncs.py",
                    "tests/test_*compile*.py", "tests/test_backend_fallback.py"]
PYTEST_FILES_DRY = ["tests/test_*cuda*.py", "tests/test_device_stage.py"]
PYTEST_K = "cuda or device_stage or compile or probe"


# =============================================================================== op cases
#: Keys of a case's extras that are audio on the wave's device (cast to the wave's dtype).
SIGNAL_KEYS = ("noise", "bank_audio", "rir", "clip")


@dataclass(frozen=True)
class OpCase:
    """One public op on one parameter set.

    ``extras(lengths, T, banks)`` gives the op's other inputs as CPU tensors (signals under
    :data:`SIGNAL_KEYS`, the rest per-clip parameters); ``call(wave, lengths, ex, backend)``
    runs the op. ``tol``: allowed ``max |out - ref| / max |ref|`` between a float32 result on
    the GPU and the same op's float32 result on the CPU (and the float64 reference), with
    ``why`` its reason.
    """

    name: str
    backend_op: str | None
    call: Callable
    extras: Callable
    tol: float
    why: str
    public: str = ""  # the gpuaug.functional op it calls, when not ``name``

    @property
    def op(self) -> str:
        return self.public or self.name


def _cyc(values, B, dtype=torch.float64):
    return torch.tensor([values[b % len(values)] for b in range(B)], dtype=dtype)


def _per_clip(lengths, make, dtype=torch.int64):
    """``(B,)`` tensor of ``make(b, L_b)`` over the clips (parameters relative to each clip's length)."""
    return torch.tensor([make(b, L) for b, L in enumerate(lengths.tolist())], dtype=dtype)


def _rows(bank_pair, B):
    """Rows ``b % N`` of a bank ``(audio (N, T), lengths)`` for ``B`` clips."""
    audio, lengths = bank_pair
    idx = torch.arange(B) % audio.shape[0]
    return audio[idx].contiguous(), lengths[idx]


def _placement(lengths):
    """Noise placements: continuous, a faded-out span, a span from 3000, half the clip from its start."""
    B = lengths.shape[0]
    return dict(snr_db=_cyc([0.0, 10.0, 20.0, 5.0], B), noise_offset=_cyc([0, 1000, 37, 5000], B, torch.int64),
                span_start=_cyc([0, -200, 3000, 0], B, torch.int64),
                span_length=_per_clip(lengths, lambda b, L: [L, 8000, 4000, L // 2][b % 4]),
                fade_out=_cyc([0, 800, 0, 1600], B, torch.int64))


def _op_cases() -> list[OpCase]:
    from gpuaug import functional as F

    B = lambda lengths: lengths.shape[0]  # noqa: E731
    fp32_ew = "one float32 rounding of the product; FMA contraction on the GPU moves it by <= 1 ulp"
    return [
        OpCase("gain", "gain", lambda w, l, ex, be: F.gain(w, l, **ex, backend=be),
               lambda l, T, bk: {"gain_db": _cyc([-12.0, -3.0, 0.0, 6.5], B(l))}, 1e-6, fp32_ew),
        OpCase("fade", "fade",
               lambda w, l, ex, be: F.fade(w, l, sample_rate=SR, shape="linear", **ex, backend=be),
               lambda l, T, bk: {"rate_per_s": _cyc([0.02, 0.5, 1.0, 0.3], B(l)),
                                 "direction": _cyc([1, -1, 1, -1], B(l), torch.int64)}, 1e-6,
               "float64 gain cast to float32 (<= 1 ulp) times the sample (<= 1 ulp)"),
        OpCase("fade_exponential", "fade",
               lambda w, l, ex, be: F.fade(w, l, sample_rate=SR, shape="exponential", **ex, backend=be),
               lambda l, T, bk: {"rate_per_s": _cyc([0.02, 0.5, 0.9, 0.3], B(l)),
                                 "direction": _cyc([1, -1, 1, -1], B(l), torch.int64)}, 1e-6,
               "libdevice pow <= 2 ulp in float64, then the float32 cast and product", public="fade"),
        OpCase("mix_noise", "mix_noise",
               lambda w, l, ex, be: F.mix_noise(w, l, ex["noise"], ex["noise_lengths"],
                                                **{k: v for k, v in ex.items() if k not in ("noise", "noise_lengths")},
                                                backend=be),
               lambda l, T, bk: dict(zip(("noise", "noise_lengths"), _rows(bk["noise"], B(l))), **_placement(l)),
               2e-6, "float64 powers and gain; one float32 rounding of the sum (noise up to 10x the signal)"),
        OpCase("mix_noise_from_bank", "mix_noise",
               lambda w, l, ex, be: F.mix_noise_from_bank(
                   w, l, ex["bank_audio"], ex["bank_lengths"], ex["index"],
                   **{k: v for k, v in ex.items() if k not in ("bank_audio", "bank_lengths", "index")}, backend=be),
               lambda l, T, bk: dict(bank_audio=bk["noise"][0], bank_lengths=bk["noise"][1],
                                     index=(torch.arange(B(l)) * 3 + 1) % bk["noise"][0].shape[0], **_placement(l)),
               2e-6, "as mix_noise"),
        OpCase("white_noise", None,
               lambda w, l, ex, be: F.white_noise(w, l, **ex),
               lambda l, T, bk: {"seed": _cyc([1, 2, 3, 4], B(l), torch.int64),
                                 "snr_db": _cyc([10.0, 20.0, 0.0, 30.0], B(l))}, 2e-6,
               "counter-based RNG in float64 (Box-Muller: libdevice log/sin/cos <= 2 ulp), one float32 rounding"),
        OpCase("reverb", None,
               lambda w, l, ex, be: F.reverb(w, l, ex["rir"], ex["rir_lengths"], normalize="energy"),
               lambda l, T, bk: dict(zip(("rir", "rir_lengths"), _rows(bk["rir"], B(l)))), 2e-5,
               "float32 FFT convolution: cuFFT vs pocketFFT rounding ~ log2(n_fft) eps relative to the energy"),
        OpCase("insert_clip", "insert_clip",
               lambda w, l, ex, be: F.insert_clip(w, l, ex["clip"], ex["clip_lengths"],
                                                  **{k: v for k, v in ex.items() if k not in ("clip", "clip_lengths")},
                                                  backend=be),
               lambda l, T, bk: dict(zip(("clip", "clip_lengths"), _rows(bk["insert"], B(l))),
                                     position=_per_clip(l, lambda b, L: [0, L // 2, L, 1234][b % 4]),
                                     silence_before=_cyc([0, 160, 0, 80], B(l), torch.int64),
                                     silence_after=_cyc([80, 0, 0, 160], B(l), torch.int64),
                                     edge_fade=_cyc([0, 48, 32, 0], B(l), torch.int64)), 1e-6,
               "copies, plus the raised-cosine edge ramp (libdevice sin <= 2 ulp) times the sample"),
        OpCase("drop_segments", "drop_segments",
               lambda w, l, ex, be: F.drop_segments(w, l, **ex, backend=be),
               lambda l, T, bk: {"intervals": torch.stack([torch.stack([l // 4, l // 4 + 800], 1),
                                                           torch.stack([l // 2, l // 2 + 320], 1)], 1),
                                 "crossfade": _cyc([0, 80, 40, 0], B(l), torch.int64)}, 1e-6,
               "copies, plus linear crossfades (one FMA each)"),
        OpCase("speed", "warp", lambda w, l, ex, be: F.speed(w, l, **ex, backend=be),
               lambda l, T, bk: {"factor": _cyc([0.9, 1.0, 1.1, 1.05], B(l))}, 2e-5,
               "windowed sinc over ~2 x 24 / cutoff taps in float64 (libdevice sin/cos <= 2 ulp, sin/cos "
               "recurrence ~1e-16 per tap), one float32 rounding; the numba CPU kernel is within 2e-5 of torch"),
        OpCase("speed_segment", "warp", lambda w, l, ex, be: F.speed_segment(w, l, **ex, backend=be),
               lambda l, T, bk: {"start": l // 4, "length": l // 4, "factor": _cyc([1.25, 0.8, 1.25, 1.0], B(l))},
               2e-5, "as speed"),
        OpCase("tempo_segment", "warp", lambda w, l, ex, be: F.tempo_segment(w, l, sample_rate=SR, **ex, backend=be),
               lambda l, T, bk: {"start": l // 4, "length": l // 4, "factor": _cyc([1.25, 0.8, 1.25, 1.0], B(l))},
               2e-3, "as pitch_shift: float32 STFT (cuFFT vs pocketFFT) feeds the phase-locking peak search"),
        OpCase("resample", "warp", lambda w, l, ex, be: F.resample(w, l, **ex, backend=be),
               lambda l, T, bk: {"ratio": _cyc([0.5, 2.0, 1.0, 0.75], B(l))}, 2e-5, "as speed"),
        OpCase("pitch_shift", "warp", lambda w, l, ex, be: F.pitch_shift(w, l, sample_rate=SR, **ex, backend=be),
               lambda l, T, bk: {"semitones": _cyc([-2.0, 1.0, 3.5, 0.0], B(l))}, 2e-3,
               "float32 STFT (cuFFT vs pocketFFT) feeds the phase-locking peak search, which can pick the "
               "other of two bins equal to rounding; then the sinc warp as speed"),
        OpCase("mcadams", "mcadams", lambda w, l, ex, be: F.mcadams(w, l, sample_rate=SR, **ex, backend=be),
               lambda l, T, bk: {"alpha": _cyc([0.8, 1.2, 0.9, 1.0], B(l))}, 1e-4,
               "float64 Burg LPC, root finding (Aberth on the kernels, eigvals on torch) and all-pole "
               "synthesis: the poles' conditioning amplifies rounding; float32 in and out"),
        OpCase("vtln", None, lambda w, l, ex, be: F.vtln(w, l, **ex),
               lambda l, T, bk: {"alpha": _cyc([0.1, -0.15, 0.2, 0.0], B(l))}, 1e-4,
               "float32 STFT / ISTFT (cuFFT vs pocketFFT) around a float64 envelope warp"),
        OpCase("modulation_smoothing", None, lambda w, l, ex, be: F.modulation_smoothing(w, l, **ex),
               lambda l, T, bk: {"alpha": _cyc([0.05, 0.1, 0.3, 0.2], B(l))}, 1e-4,
               "float32 STFT / ISTFT, log-magnitude IIR low-pass, energy renormalisation"),
    ]


OP_CASES = _op_cases()
#: The public wave -> wave ops of gpuaug.functional covered by :data:`OP_CASES` (and why others are not).
NOT_WAVE_OPS = {"burg_lpc": "returns LPC coefficients, covered inside mcadams",
                "valid_power": "a reduction helper, covered inside mix_noise",
                "synthetic_rir": "an RIR generator (no input wave)",
                "factor_to_semitones": "a number conversion",
                "warp": "the core of speed / speed_segment / resample / pitch_shift (covered through them)"}


def case(name: str) -> OpCase:
    return next(c for c in OP_CASES if c.name == name)


def backends_for(c: OpCase, device_type: str) -> list[str]:
    """torch plus every backend registered for the case's op on ``device_type`` that can run here."""
    from gpuaug import backend as gb

    out = ["torch"]
    if c.backend_op is not None:
        out += sorted(b for (b, d) in gb.kernels_for(c.backend_op) if d == device_type and gb.available(b, device_type))
    return out


def speech_batch(data: Path | None, B: int, seconds: float, seed: int = 0):
    """``(wave (B, T) float32, lengths (B,), source)`` on the CPU: real speech when present, else synthetic.

    Mixed lengths: clip ``b`` keeps ``(0.55 + 0.45 * b / (B - 1))`` of ``T``, the last is full.
    """
    from gpuaug.data import pad_batch

    n = int(round(seconds * SR))
    clips, source = [], "synthetic"
    if data is not None and (data / "emotion").is_dir():
        try:
            from gpuaug.audio_io import load_resampled

            files = sorted((data / "emotion").glob("*.wav")) + sorted((data / "speech").glob("*.wav"))
            clips = [load_resampled(f, SR) for f in files[:B]]
            source = f"shared-data:{data}"
        except Exception as e:  # soundfile / julius missing: fall back, say so
            clips, source = [], f"synthetic (real recordings unreadable: {type(e).__name__}: {e})"
    if not clips:
        from gpuaug.data.synthetic import synthetic_speech

        clips = [it.wave for it in synthetic_speech(B, sample_rate=SR, min_s=seconds, max_s=seconds, seed=seed)]
    out = []
    for b in range(B):
        c = clips[b % len(clips)]
        c = torch.cat([c] * math.ceil(n / c.numel()))[:n]
        keep = n if B == 1 else int(n * (0.55 + 0.45 * b / (B - 1)))
        out.append(c[:keep])
    wave, lengths = pad_batch(out)
    return wave.float().contiguous(), lengths, source


def case_banks(data: Path | None, seconds: float) -> tuple[dict, str]:
    """Noise, RIR and insert clips (CPU, float32, 16 kHz) as ``(audio (N, T), lengths)`` pairs."""
    from gpuaug.data.synthetic import synthetic_insert_bank, synthetic_noise_bank, synthetic_rir_bank

    source = "synthetic"
    noise = rir = None
    if data is not None and (data / "noise").is_dir() and (data / "rir").is_dir():
        try:
            from gpuaug.data.layouts import noise_bank_from_folder, rir_bank_from_folder

            noise = noise_bank_from_folder(data / "noise", SR, layout="prefix", max_seconds=max(2 * seconds, 4.0))
            rir = rir_bank_from_folder(data / "rir", SR, max_seconds=1.0)
            source = f"shared-data:{data}"
        except Exception as e:
            noise = rir = None
            source = f"synthetic (real banks unreadable: {type(e).__name__}: {e})"
    noise = noise or synthetic_noise_bank(sample_rate=SR, seconds=max(2 * seconds, 1.0))
    rir = rir or synthetic_rir_bank(sample_rate=SR)
    ins = synthetic_insert_bank(sample_rate=SR)
    # the banks' items zero-padded to the longest, (N, T_max), as the cases' padded inputs
    pair = lambda bank: (bank.gather(torch.arange(len(bank)), "cpu")[0].contiguous(), bank.lengths.cpu())  # noqa: E731
    return {"noise": pair(noise), "rir": pair(rir), "insert": pair(ins)}, source


def to_device(ex: dict, device, dtype, params_on_device: bool = False) -> dict:
    """The case's extras on ``device``: signals cast to ``dtype``; parameters stay on the host
    (as the Pipeline hands them over) unless ``params_on_device``."""
    out = {}
    for k, v in ex.items():
        if k in SIGNAL_KEYS:
            out[k] = v.to(device=device, dtype=dtype)
        elif params_on_device and isinstance(v, torch.Tensor):
            out[k] = v.to(device)
        else:
            out[k] = v
    return out


def device_lengths(lengths: torch.Tensor, device) -> torch.Tensor:
    """``lengths`` on ``device`` with its host mirror (no sync to read it)."""
    from gpuaug._sync import mirrored

    return mirrored(lengths, torch.device(device))


def run_case(c: OpCase, wave, lengths, ex, backend, *, device, dtype=torch.float32, params_on_device=False):
    """``c`` on ``device`` (CPU inputs moved there); returns ``(out, out_lengths)`` as given by the op."""
    w = wave.to(device=device, dtype=dtype)
    return c.call(w, device_lengths(lengths, device), to_device(ex, device, dtype, params_on_device), backend)


def reference(c: OpCase, wave, lengths, ex):
    """The torch float64 reference on the CPU."""
    return c.call(wave.double(), lengths, to_device(ex, "cpu", torch.float64), "torch")


def padding_is_zero(out: torch.Tensor, out_lengths: torch.Tensor) -> bool:
    t = torch.arange(out.shape[-1], device=out.device)
    pad = t >= out_lengths.to(out.device)[:, None]
    if out.dim() == 3:
        pad = pad[:, None, :].expand_as(out)
    return bool((out[pad] == 0).all())


def rel_error(out: torch.Tensor, ref: torch.Tensor) -> tuple[float, float]:
    """``(max |out - ref|, max |ref|)`` in float64 over the common samples."""
    Tm = min(out.shape[-1], ref.shape[-1])
    diff = (out[..., :Tm].double().cpu() - ref[..., :Tm].double().cpu()).abs()
    err = float(diff.max()) if diff.numel() else 0.0
    if out.shape[-1] != ref.shape[-1]:  # the longer one's extra samples count as errors against zero
        extra = (out if out.shape[-1] > ref.shape[-1] else ref)[..., Tm:].double().cpu().abs()
        err = max(err, float(extra.max()) if extra.numel() else 0.0)
    peak = float(ref.double().abs().max()) if ref.numel() else 0.0
    return err, peak


# =============================================================================== helpers
def now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def write_json(path: Path, obj) -> None:
    """Write ``obj`` atomically (a temporary name in the same folder, then a rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(obj, indent=1, default=str))
    os.replace(tmp, path)


def default_out() -> Path:
    env = os.environ.get("OUT")
    return Path(env) if env else REPO / "benchmarks" / "results" / "gpu-check"


def sync_counter(device: torch.device):
    """``(name, context manager factory)`` counting host syncs on ``device`` (torch's sync debug
    mode plus gpuaug's sanctioned ``to_host`` reads), or ``(None, None)`` on the CPU, where
    nothing blocks."""
    if device.type != "cuda":
        return None, None
    from gpuaug.sync_count import count_syncs

    return "gpuaug.sync_count.count_syncs", lambda: count_syncs(device)


def timed_ms(fn, device: torch.device, repeats: int, warmup: int) -> list[float]:
    """Per-call milliseconds of ``fn()``: CUDA events on CUDA (on the current stream), else wall clock."""
    for _ in range(warmup):
        fn()
    times = []
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        for _ in range(repeats):
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            end.synchronize()
            times.append(start.elapsed_time(end))
    else:
        for _ in range(repeats):
            t0 = time.perf_counter()
            fn()
            times.append((time.perf_counter() - t0) * 1e3)
    return times


# =============================================================================== stage: kernels
def _equal(a, b) -> bool:
    return a[0].shape == b[0].shape and bool(torch.equal(a[0], b[0])) and bool(torch.equal(a[1].cpu(), b[1].cpu()))


def side_stream_check(c, wave, lengths, ex, backend, device, want) -> dict:
    """The op on a side stream whose input is written there after a sleep: a kernel launched
    on another stream (not torch's current one) reads the NaN placeholder."""
    side = torch.cuda.Stream(device)
    x = torch.full_like(wave, float("nan"), device=device)
    src = wave.to(device)
    lens = device_lengths(lengths, device)
    exd = to_device(ex, device, torch.float32)
    side.wait_stream(torch.cuda.current_stream(device))
    with torch.cuda.stream(side):
        torch.cuda._sleep(20_000_000)
        x.copy_(src)
        got = c.call(x, lens, exd, backend)
    torch.cuda.current_stream(device).wait_stream(side)
    for t in got:
        if t.is_cuda:
            t.record_stream(torch.cuda.current_stream(device))
    torch.cuda.synchronize(device)
    return {"side_stream_equal": _equal(got, want), "side_stream_nan": bool(torch.isnan(got[0]).any())}


def strided_check(c, wave, lengths, ex, backend, device, want) -> dict:
    """The op on a non-contiguous view (every other sample of a wider buffer)."""
    base = torch.zeros(wave.shape[0], wave.shape[1], 2, device=device)
    base[..., 0] = wave.to(device)
    x = base[..., 0]
    assert not x.is_contiguous()
    got = c.call(x, device_lengths(lengths, device), to_device(ex, device, torch.float32), backend)
    err, _ = rel_error(got[0], want[0])
    return {"strided_equal": _equal(got, want), "strided_max_abs_diff": err}


def kernels_stage(args, out_path: Path) -> dict:
    device = torch.device(args.device)
    data = None if args.synthetic or not Path(args.data).is_dir() else Path(args.data)
    B, secs = (2, 0.3) if args.dry_run else (8, 3.0)
    repeats, warmup = (2, 0) if args.dry_run else (10, 2)
    wave, lengths, wave_source = speech_batch(data, B, secs)
    banks, bank_source = case_banks(data, secs)
    counter_name, counter = sync_counter(device)
    result = {"stage": "kernels", "started_utc": now(), "device": str(device), "dry_run": args.dry_run,
              "speech": wave_source, "banks": bank_source, "batch_size": B, "seconds": secs,
              "lengths": lengths.tolist(), "dtype": "float32", "reference": "torch float64 on the CPU",
              "cpu_twin": "the same op, backend torch, float32 on the CPU", "sync_counter": counter_name,
              "timing": ("CUDA events, median" if device.type == "cuda" else "wall clock, median")
              + f" of {repeats} calls after {warmup}", "not_covered": NOT_WAVE_OPS, "cases": [], "complete": False}
    write_json(out_path, result)
    deadline = time.monotonic() + args.stage_budget
    if device.type == "cuda":  # first: the prefetch hazard matters more than any one op's numbers
        result["device_stage"] = device_stage_check()
        print(f"device stage: {result['device_stage']}", flush=True)
        write_json(out_path, result)
    for c in OP_CASES:
        if time.monotonic() > deadline - 2:
            result["stopped"] = f"stage budget reached before {c.name}"
            break
        ex = c.extras(lengths, wave.shape[-1], banks)
        try:
            ref = reference(c, wave, lengths, ex)
            twin = run_case(c, wave, lengths, ex, "torch", device="cpu")
        except Exception as e:
            result["cases"].append({"op": c.name, "error": f"reference failed: {type(e).__name__}: {e}"})
            write_json(out_path, result)
            continue
        torch_ms = None
        for be in backends_for(c, device.type):
            rec = {"op": c.name, "backend": be, "backend_op": c.backend_op, "tol": c.tol, "why": c.why}
            try:
                rec.update(_measure_case(c, wave, lengths, ex, be, device, ref, twin, counter, repeats, warmup))
                if be == "torch":
                    torch_ms = rec["ms_median"]
                elif torch_ms:
                    rec["speedup_vs_torch"] = torch_ms / rec["ms_median"]
            except Exception as e:
                rec.update(error=f"{type(e).__name__}: {e}", traceback=traceback.format_exc(limit=4)[-1500:])
            result["cases"].append(rec)
            write_json(out_path, result)
            _print_case(rec)
    result["complete"] = "stopped" not in result
    result["failed"] = [f"{r['op']}[{r.get('backend', '-')}]" for r in result["cases"] if not r.get("ok")]
    result["finished_utc"] = now()
    write_json(out_path, result)
    return {"cases": len(result["cases"]), "failed": result["failed"], "complete": result["complete"],
            "device_stage": result.get("device_stage")}


def _measure_case(c, wave, lengths, ex, be, device, ref, twin, counter, repeats, warmup) -> dict:
    out, out_len = run_case(c, wave, lengths, ex, be, device=device)
    again = run_case(c, wave, lengths, ex, be, device=device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    err, peak = rel_error(out, ref[0])
    twin_err, _ = rel_error(out, twin[0])
    rec = {
        "dtype_kept": out.dtype == torch.float32, "device_kept": out.device.type == device.type,
        "lengths_equal": bool(torch.equal(out_len.cpu(), ref[1].cpu())), "shape": list(out.shape),
        "nan": bool(torch.isnan(out).any()), "finite": bool(torch.isfinite(out).all()),
        "padding_zero": padding_is_zero(out, out_len), "run_to_run_equal": _equal((out, out_len), again),
        "max_abs_err_vs_f64": err, "ref_peak": peak, "rel_err_vs_f64": err / max(peak, 1e-30),
        "max_abs_diff_vs_cpu_f32": twin_err, "rel_diff_vs_cpu_f32": twin_err / max(peak, 1e-30),
    }
    if device.type == "cuda":
        rec.update(side_stream_check(c, wave, lengths, ex, be, device, (out, out_len)))
        rec.update(strided_check(c, wave, lengths, ex, be, device, (out, out_len)))
    else:
        rec.update(strided_check(c, wave, lengths, ex, be, device, (out, out_len)))
    if counter is not None:
        for label, on_dev in (("syncs_per_call", False), ("syncs_per_call_device_params", True)):
            w = wave.to(device)
            lens = device_lengths(lengths, device)
            exd = to_device(ex, device, torch.float32, params_on_device=on_dev)
            torch.cuda.synchronize(device)
            try:
                with counter() as sc:
                    c.call(w, lens, exd, be)
                rec[label] = sc.count
                if not on_dev:
                    rec["sync_sites"] = list(dict.fromkeys(sc.sites))[:8]
            except Exception as e:
                rec[label] = f"error: {type(e).__name__}: {e}"
    w, lens, exd = wave.to(device), device_lengths(lengths, device), to_device(ex, device, torch.float32)
    times = timed_ms(lambda: c.call(w, lens, exd, be), device, repeats, warmup)
    rec["ms_median"], rec["ms"] = statistics.median(times), times
    rec["ok"] = bool(rec["lengths_equal"] and rec["finite"] and rec["padding_zero"] and rec["run_to_run_equal"]
                     and rec["dtype_kept"] and rec["device_kept"] and rec["rel_err_vs_f64"] <= c.tol
                     and rec["rel_diff_vs_cpu_f32"] <= c.tol and rec.get("side_stream_equal", True)
                     and rec["strided_max_abs_diff"] <= c.tol * max(peak, 1e-30))
    return rec


def _print_case(r) -> None:
    if "error" in r:
        print(f"{r['op']:<22} {r.get('backend', '-'):<6} ERROR {r['error']}", flush=True)
        return
    print(f"{r['op']:<22} {r['backend']:<6} {'ok ' if r['ok'] else 'BAD'} rel err {r['rel_err_vs_f64']:.2e} "
          f"(vs cpu f32 {r['rel_diff_vs_cpu_f32']:.2e}, tol {r['tol']:.0e})  {r['ms_median']:8.3f} ms"
          + (f"  x{r['speedup_vs_torch']:.2f} vs torch" if "speedup_vs_torch" in r else "")
          + (f"  syncs {r['syncs_per_call']}" if "syncs_per_call" in r else "")
          + ("" if r.get("side_stream_equal", True) else "  SIDE-STREAM MISMATCH")
          + ("" if r["strided_equal"] else f"  strided diff {r['strided_max_abs_diff']:.1e}"), flush=True)


def device_stage_check() -> dict:
    """DeviceLoader with a lagging consumer vs without prefetch, with and without record_stream.

    ``safe_equal`` must be True; ``unsafe_equal`` False shows the check would catch the hazard
    (True means this GPU did not reuse the memory in time: the check proves less there).
    """
    sys.path.insert(0, str(REPO / "tests"))
    import gpuaug.data.device_stage as ds
    import test_device_stage_cuda as t

    from gpuaug.data import DeviceLoader

    out = {}
    try:
        collate, items = t._collate(), t._items()
        want = t._consume(DeviceLoader(t._pending_batches(collate, items), collate, "cuda", prefetch=False), lag=False)

        def same(got):
            try:
                t._assert_same(got, want)
                return True
            except AssertionError:
                return False

        t0 = time.perf_counter()
        loader = DeviceLoader(t._pending_batches(collate, items), collate, "cuda")
        out["safe_equal"] = same(t._consume(loader, lag=True))
        out["safe_s"] = time.perf_counter() - t0
        real = ds.record_stream
        ds.record_stream = lambda obj, stream: []
        try:
            out["unsafe_equal"] = same(t._consume(DeviceLoader(t._pending_batches(collate, items), collate, "cuda"),
                                                  lag=True))
        finally:
            ds.record_stream = real
    except Exception as e:
        out["error"] = f"{type(e).__name__}: {e}"
    return out


# =============================================================================== stage: pytest
class ProgressPlugin:
    """pytest plugin: rewrite the stage JSON after every test (a killed run keeps its results)."""

    def __init__(self, path: Path, files: list[str]):
        self.path = path
        self.doc = {"stage": "pytest", "started_utc": now(), "files": files, "k": PYTEST_K, "tests": [],
                    "counts": {}, "complete": False}
        write_json(path, self.doc)

    def pytest_runtest_logreport(self, report):
        if report.when == "call" or (report.when == "setup" and report.outcome != "passed") or \
                (report.when == "teardown" and report.outcome == "failed"):
            entry = {"id": report.nodeid, "when": report.when, "outcome": report.outcome,
                     "seconds": round(report.duration, 3)}
            if report.outcome == "failed":
                entry["message"] = str(report.longrepr)[-2000:]
            elif report.outcome == "skipped" and isinstance(report.longrepr, tuple):
                entry["reason"] = str(report.longrepr[-1])[:200]
            self.doc["tests"].append(entry)
            counts = self.doc["counts"]
            counts[report.outcome] = counts.get(report.outcome, 0) + 1
            write_json(self.path, self.doc)

    def pytest_sessionfinish(self, session, exitstatus):
        self.doc.update(complete=True, exit_status=int(exitstatus), finished_utc=now(),
                        failed=[t["id"] for t in self.doc["tests"] if t["outcome"] == "failed"])
        write_json(self.path, self.doc)


def pytest_entry(out_dir: str, dry_run: bool) -> int:
    """Run inside the pytest subprocess (``python -P -c``)."""
    import glob

    import pytest

    os.chdir(REPO)
    # in the patterns' order (the most telling first: a stage cut at its limit loses the last)
    files = list(dict.fromkeys(f for pat in (PYTEST_FILES_DRY if dry_run else PYTEST_FILES_GPU)
                               for f in sorted(glob.glob(pat))))
    out = Path(out_dir)
    plugin = ProgressPlugin(out / STAGE_FILES["pytest"], files)
    return pytest.main(["-q", "-rfE", "-p", "no:cacheprovider", f"--junitxml={out / JUNIT}", "-k", PYTEST_K, *files],
                       plugins=[plugin])


# =============================================================================== orchestration
def run_sub(cmd: list[str], timeout: float, env=None) -> dict:
    """Run ``cmd`` (output to ours) with a timeout; returns rc, wall_s, timed_out."""
    t0 = time.perf_counter()
    print(f"$ {' '.join(cmd)}  (budget {timeout:.0f} s)", flush=True)
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, start_new_session=True)
    try:
        rc = proc.wait(timeout=max(1.0, timeout))
        timed_out = False
    except subprocess.TimeoutExpired:
        timed_out = True
        os.killpg(proc.pid, 15)
        try:
            rc = proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
            rc = proc.wait()
    return {"rc": rc, "wall_s": round(time.perf_counter() - t0, 1), "timed_out": timed_out}


def _read(path: Path):
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def env_info(device: torch.device) -> dict:
    info = machine_info(device)
    from gpuaug import backend as gb

    info["backends_available"] = {b: gb.available(b, device.type) for b in ("numba", "cupy")}
    for mod in ("cupy", "numba_cuda", "transformers", "pytest"):
        info["versions"].setdefault(mod, _version(mod))
    if device.type == "cuda":
        p = torch.cuda.get_device_properties(device)
        info.update(gpu_memory_bytes=p.total_memory, gpu_sm_count=p.multi_processor_count)
        try:
            smi = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version,clocks.max.sm",
                                  "--format=csv,noheader"], capture_output=True, text=True, timeout=20)
            info["nvidia_smi"] = smi.stdout.strip()
        except (OSError, subprocess.TimeoutExpired):
            info["nvidia_smi"] = None
    return info


def _version(mod):
    from common import _version as v

    return v(mod)


def stage_commands(stage: str, args, out: Path, budget: float) -> list[list[str]]:
    py = sys.executable
    dev = args.device
    data = ["--synthetic"] if args.synthetic else ["--data", str(args.data)]
    if args.dry_run and stage in ("overhead", "bench", "memory"):
        data = ["--synthetic"]  # the dry run reads the real recordings in the kernels stage only (speed)
    if stage == "pytest":
        code = (f"import sys; sys.path.insert(0, {str(HERE)!r}); import gpu_check; "
                f"sys.exit(gpu_check.pytest_entry({str(out)!r}, {args.dry_run!r}))")
        return [[py, "-P", "-c", code]]
    if stage == "kernels":
        return [[py, str(HERE / "gpu_check.py"), "--stage", "kernels", "--out", str(out), "--device", dev,
                 "--stage-budget", str(int(budget)), *data] + (["--dry-run"] if args.dry_run else [])]
    if stage == "overhead":
        size = ["--batch-size", "2", "--seconds", "0.3", "--repeats", "3", "--warmup", "0", "--model",
                "wav2vec2-tiny"] if args.dry_run else ["--batch-size", "32", "--seconds", "6", "--repeats", "5",
                                                        "--warmup", "2", "--model", "wav2vec2-base"]
        return [[py, str(HERE / "overhead.py"), "--device", dev, *size, *data, "--out", str(out / STAGE_FILES[stage])]]
    if stage == "bench":
        timing = ["--repeats", "3", "--warmup", "1", "--batches-per-repeat", "2", "--workers", "2"]
        if args.dry_run:
            plan = {"retaining": ["--batch-sizes", "2", "--seconds", "0.3", "--repeats", "3", "--warmup", "0",
                                  "--batches-per-repeat", "1", "--workers", "0", "--gpuaug", "torch", "auto"]}
        else:  # the most telling pipelines first; McAdams' torch path (eigvals) is the slow one
            plan = {"retaining": ["--batch-sizes", "8", "32", "--seconds", "2", "8", *timing],
                    "pitch": ["--batch-sizes", "8", "32", "--seconds", "2", "8", *timing],
                    "mcadams": ["--batch-sizes", "8", "32", "--seconds", "2", *timing],
                    "full": ["--batch-sizes", "32", "--seconds", "8", "--gpuaug", "auto", "loader", *timing]}
        return [[py, str(HERE / "bench.py"), "--device", dev, "--pipelines", p, "--peers", *grid, *data, "--no-plot",
                 "--out", f"/tmp/gpu-check-bench-{os.getpid()}-{p}.json"] for p, grid in plan.items()]
    if stage == "memory":
        size = (["--batches", "20", "--every", "5", "--batch-size", "2", "--seconds", "0.3"] if args.dry_run else
                ["--batches", "10000", "--every", "500"])
        return [[py, str(HERE / "memory.py"), "--device", dev, *size, *data, "--max-seconds",
                 str(max(5, int(budget) - 15)), "--out", str(out / STAGE_FILES[stage])]]
    raise ValueError(stage)


def headline(stage: str, out: Path) -> dict:
    doc = _read(out / STAGE_FILES[stage])
    if doc is None:
        return {"file": None}
    h: dict = {"file": STAGE_FILES[stage]}
    if stage == "pytest":
        h.update(counts=doc.get("counts"), failed=doc.get("failed", [t["id"] for t in doc.get("tests", [])
                                                                     if t["outcome"] == "failed"]),
                 complete=doc.get("complete"))
    elif stage == "kernels":
        h.update(cases=len(doc.get("cases", [])), failed=doc.get("failed"), complete=doc.get("complete"),
                 device_stage=doc.get("device_stage"))
    elif stage == "overhead":
        h.update(model=doc.get("model", {}).get("name"), overhead_percent=doc.get("overhead_percent"),
                 train_step_ms=1e3 * doc.get("train_step", {}).get("median_s", float("nan")),
                 skipped=doc.get("model", {}).get("skipped"))
    elif stage == "bench":
        h.update(pipelines=doc.get("pipelines_done"), rows=len(doc.get("measurements", [])),
                 errors=[f"{r['pipeline']} {r['peer']} B={r['batch_size']} {r['seconds']}s: {r.get('reason')}"
                         for r in doc.get("measurements", []) if r.get("status") == "error"])
    elif stage == "memory":
        h.update(flat=doc.get("flat"), batches_done=doc.get("batches_done", doc.get("batches")),
                 verdict={k: round(v["growth"], 4) for k, v in doc.get("verdict", {}).items()})
    return h


def merge_bench(parts: list[Path], target: Path, done: list[str]) -> None:
    docs = [d for d in (_read(p) for p in parts) if d is not None]
    if not docs:
        return
    merged = dict(docs[0])
    merged["measurements"] = [m for d in docs for m in d.get("measurements", [])]
    merged["pipelines"] = {k: v for d in docs for k, v in d.get("pipelines", {}).items()}
    merged["commands"] = [d.get("command") for d in docs]
    merged["pipelines_done"] = done
    merged["finished_utc"] = docs[-1].get("finished_utc")
    write_json(target, merged)


def orchestrate(args) -> int:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    device = torch.device(args.device)
    t_start = time.monotonic()
    total = args.budget
    nominal = BUDGET_DRY if args.dry_run else BUDGET_GPU
    stages = [s for s in STAGES if s not in args.skip and (args.only is None or s in args.only)]
    summary = {"gpu_check": "gpuaug", "started_utc": now(), "dry_run": args.dry_run, "device": str(device),
               "budget_s": total, "out": str(out), "stages": {}, "env": None}
    summary_path = out / "summary.json"
    try:
        summary["env"] = env_info(device)
    except Exception as e:
        summary["env"] = {"error": f"{type(e).__name__}: {e}"}
    write_json(summary_path, summary)
    print(f"gpu_check: device {summary['env'].get('device_name')}, stages {stages}, budget {total} s, out {out}",
          flush=True)
    for i, stage in enumerate(stages):
        elapsed = time.monotonic() - t_start
        left = total - elapsed - RESERVE_S
        need = sum(nominal[s] for s in stages[i:])  # short of time: every stage left gets its share
        budget = left if stage == stages[-1] else nominal[stage] * min(1.0, left / need)
        if budget < 5:
            summary["stages"][stage] = {"status": "skipped", "reason": f"no time left ({left:.0f} s)"}
            write_json(summary_path, summary)
            continue
        entry = {"status": "running", "budget_s": round(budget), "started_utc": now()}
        summary["stages"][stage] = entry
        write_json(summary_path, summary)
        t0 = time.monotonic()
        cmds = stage_commands(stage, args, out, budget)
        runs, done = [], []
        for cmd in cmds:
            remaining = budget - (time.monotonic() - t0)
            if remaining < 5:
                break
            runs.append(run_sub(cmd, remaining))
            if stage == "bench":
                if runs[-1]["rc"] == 0:
                    done.append(cmd[cmd.index("--pipelines") + 1])
                merge_bench([Path(c[-1]) for c in cmds], out / STAGE_FILES["bench"], done)
        entry.update(wall_s=round(time.monotonic() - t0, 1), runs=runs,
                     rc=max((r["rc"] for r in runs), default=None),
                     timed_out=any(r["timed_out"] for r in runs))
        if stage == "bench":
            entry["pipelines_done"] = done
            entry["pipelines_skipped"] = [c[c.index("--pipelines") + 1] for c in cmds[len(runs):]]
        entry.update(headline(stage, out))
        entry["status"] = ("timeout" if entry["timed_out"] else "ok" if entry["rc"] == 0 else "failed")
        summary["stages"][stage] = entry
        write_json(summary_path, summary)
        print(f"== {stage}: {entry['status']} in {entry['wall_s']} s", flush=True)
    for p in Path("/tmp").glob(f"gpu-check-bench-{os.getpid()}-*.json"):
        p.unlink(missing_ok=True)
    summary["finished_utc"] = now()
    summary["wall_s"] = round(time.monotonic() - t_start, 1)
    summary["ok"] = all(s.get("status") == "ok" for s in summary["stages"].values())
    write_json(summary_path, summary)
    print(json.dumps({k: {kk: vv for kk, vv in v.items() if kk not in ("runs",)} for k, v in summary["stages"].items()},
                     indent=1, default=str))
    print(f"gpu_check: {'all stages ok' if summary['ok'] else 'NOT all stages ok'} in {summary['wall_s']} s; {out}")
    return 0 if summary["ok"] else 1


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=None,
                   help="output folder (default $OUT, else benchmarks/results/gpu-check)")
    p.add_argument("--dry-run", action="store_true", help="every stage on the CPU with tiny sizes")
    p.add_argument("--device", default=None, help="default cuda (cpu with --dry-run)")
    p.add_argument("--budget", type=float, default=None, help="seconds for the whole run (default 420; dry run 260)")
    p.add_argument("--only", nargs="+", choices=STAGES, default=None)
    p.add_argument("--skip", nargs="+", choices=STAGES, default=[])
    p.add_argument("--data", type=Path, default=DEFAULT_DATA, help="real recordings (default GPUAUG_SHARED_DATA)")
    p.add_argument("--synthetic", action="store_true", help="synthetic speech and banks even where data exists")
    p.add_argument("--stage", choices=["kernels"], default=None, help=argparse.SUPPRESS)
    p.add_argument("--stage-budget", type=float, default=60.0, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    args.out = args.out or default_out()
    args.device = args.device or ("cpu" if args.dry_run else "cuda")
    args.budget = args.budget or (260.0 if args.dry_run else 420.0)
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.stage == "kernels":
        res = kernels_stage(args, Path(args.out) / STAGE_FILES["kernels"])
        ds = res.get("device_stage") or {}
        return 1 if res["failed"] or ds.get("safe_equal") is False or "error" in ds else 0
    if torch.device(args.device).type == "cuda" and not torch.cuda.is_available():
        print("gpu_check: no CUDA device here (use --dry-run on a machine without a GPU)", file=sys.stderr)
        return 2
    return orchestrate(args)


if __name__ == "__main__":
    sys.exit(main())
