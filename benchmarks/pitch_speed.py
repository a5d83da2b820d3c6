"""Per-clip CPU cost of ``pitch_shift`` on one thread: torch vs numba exact vs numba tabulated + fused vocoder vs audiomentations.

    python benchmarks/pitch_speed.py [--clips 32] [--seconds 2 8] [--repeats 3] [--semitones 1]

Input: ``--clips`` speech-like float32 clips (``tests/reference/signals.speech_like``) of each
``--seconds`` at 16 kHz, all shifted by ``--semitones`` (the bench's pitch step: +1). Variants
(after a warm-up call each; 1 thread for torch, numba and the peer):

* ``torch``: ``pitch_shift(backend="torch")`` (torch vocoder, torch prefix-scan phase lock, torch warp);
* ``numba_exact``: the previous CPU default: torch vocoder with the Numba phase-lock kernel
  (``GPUAUG_BACKEND_PHASE_VOCODER=torch``) and the exact float64 sinc (``exact=True``);
* ``numba_fused_exact``: the fused Numba vocoder (op ``phase_vocoder``) with the exact sinc;
* ``numba_tabulated_fused``: the new CPU default (fused vocoder, tabulated sinc);

(the ``numba_*`` variants run with ``backend=None``, i.e. ``auto``: the Numba kernels on CPU,
so that the per-op environment variable applies);
* ``audiomentations``: ``audiomentations.PitchShift`` (signalsmith stretch) on the same clips,
  one call per clip (numpy), if importable.

The variants are interleaved within each repeat (the machine is shared); the process CPU time
(``time.process_time``) and the wall time of every repeat are recorded; the summary is the
median per clip. Also records the worst difference of the new default from ``torch`` (dB of
the batch's peak). Writes ``benchmarks/results/cpu-2core-pitch-speed.json``.
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
from contextlib import contextmanager
from pathlib import Path

import numba
import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from gpuaug.functional.pitch import pitch_shift  # noqa: E402
from reference.signals import speech_like  # noqa: E402

sys.path.insert(0, str(REPO / "benchmarks"))
from common import cpu_model  # noqa: E402

FS = 16000


def timed(fn) -> tuple[float, float]:
    """``(cpu_s, wall_s)`` of one call."""
    c0, w0 = time.process_time(), time.perf_counter()
    fn()
    return time.process_time() - c0, time.perf_counter() - w0


@contextmanager
def env(name: str, value: str):
    old = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if old is None:
            del os.environ[name]
        else:
            os.environ[name] = old


def torch_vocoder(fn):
    with env("GPUAUG_BACKEND_PHASE_VOCODER", "torch"):
        return fn()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=32)
    parser.add_argument("--seconds", type=float, nargs="+", default=[2.0, 8.0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--semitones", type=float, default=1.0)
    parser.add_argument("--no-torch", action="store_true", help="skip the (slow) torch backend")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "cpu-2core-pitch-speed.json")
    args = parser.parse_args()

    torch.set_num_threads(1)
    numba.set_num_threads(1)
    try:
        import audiomentations as A

        peer = A.PitchShift(min_semitones=args.semitones, max_semitones=args.semitones, p=1.0)
        peer_version = A.__version__
    except ImportError:
        peer, peer_version = None, None
    B, st = args.clips, args.semitones
    variants, errors = {}, {}
    for seconds in args.seconds:
        T = int(seconds * FS)
        wave = torch.from_numpy(np.stack([speech_like(T, seed) for seed in range(B)]).astype(np.float32))
        lengths = torch.full((B,), T, dtype=torch.int64)
        v = {
            "numba_tabulated_fused": lambda w=wave, n=lengths: pitch_shift(w, n, semitones=st),
            "numba_fused_exact": lambda w=wave, n=lengths: pitch_shift(w, n, semitones=st, exact=True),
            "numba_exact": lambda w=wave, n=lengths: torch_vocoder(
                lambda: pitch_shift(w, n, semitones=st, exact=True)),
        }
        if not args.no_torch:
            v["torch"] = lambda w=wave, n=lengths: pitch_shift(w, n, semitones=st, backend="torch")
        if peer is not None:
            clips = [c.numpy() for c in wave]

            def run_peer(clips=clips):
                for c in clips:
                    peer(samples=c, sample_rate=FS)

            v["audiomentations"] = run_peer
        for fn in v.values():  # warm-up: compilation or the on-disk cache
            fn()
        new, _ = pitch_shift(wave, lengths, semitones=st)
        ref, _ = (pitch_shift(wave, lengths, semitones=st, backend="torch") if not args.no_torch else
                  torch_vocoder(lambda: pitch_shift(wave, lengths, semitones=st, exact=True)))
        err = float((new.double() - ref.double()).abs().max() / ref.abs().max())
        errors[f"{seconds:g}s"] = {"worst_abs_diff_default_vs_reference_over_peak_db":
                                   20 * math.log10(err) if err > 0 else None,
                                   "reference": "torch" if not args.no_torch else "numba_exact"}
        variants[f"{seconds:g}s"] = v

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
        per = {key: {"cpu_ms_per_clip": statistics.median(t["cpu_s"]) / B * 1e3,
                     "wall_ms_per_clip": statistics.median(t["wall_s"]) / B * 1e3} for key, t in r.items()}
        new = per["numba_tabulated_fused"]["cpu_ms_per_clip"]
        for key in list(per):
            if key != "numba_tabulated_fused":
                per[f"ratio_cpu_{key}_over_new_default"] = per[key]["cpu_ms_per_clip"] / new
        per.update(errors[name])
        summary[name] = per

    report = {
        "benchmark": (f"pitch_shift {st:+g} semitones, {B} float32 speech-like clips x {args.seconds} s at 16 kHz, "
                      f"1 thread (torch, numba, audiomentations)"),
        "command": "python " + " ".join(shlex.quote(a) for a in [os.path.relpath(__file__, REPO), *sys.argv[1:]]),
        "device": "cpu",
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
            "audiomentations": peer_version,
            "load_avg_1min_before_after": [load_before, load_after],
        },
        "repeats": args.repeats,
        "note": ("medians per clip over interleaved repeats; cpu = time.process_time of this process (the machine "
                 "is a shared 2-core VM: wall time swings with the other load). Each gpuaug call includes the "
                 "input NaN scan and argument checks of pitch_shift."),
        "summary": summary,
        "runs": runs,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    for name, per in summary.items():
        print(f"{name} (default vs {per['reference']}: worst "
              f"{per['worst_abs_diff_default_vs_reference_over_peak_db']:.1f} dB of peak):")
        for key in variants[name]:
            print(f"  {key:>22}: cpu {per[key]['cpu_ms_per_clip']:8.3f} ms/clip   wall "
                  f"{per[key]['wall_ms_per_clip']:8.3f} ms/clip")
    print(f"wrote {os.path.relpath(args.out, REPO)}")


if __name__ == "__main__":
    main()
