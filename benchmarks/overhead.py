"""Augmentation overhead: the retaining pipeline's time as a % of one training step.

    python benchmarks/overhead.py --device cpu  --out benchmarks/results/cpu-2core-overhead.json
    python benchmarks/overhead.py --device cuda --out benchmarks/results/<gpu>-overhead.json

One batch of ``--batch-size`` x ``--seconds`` s clean speech (the shared recordings, or
synthetic speech). The training step is forward + backward + optimizer step (Adam) of:

* CPU: the CNN-GRU of :mod:`models` (``--model cnn_gru``, the default on CPU);
* CUDA: a wav2vec2-base-sized ``Wav2Vec2ForSequenceClassification`` with random weights
  (``--model wav2vec2`` or ``wav2vec2-base``, the default on CUDA; ``wav2vec2-tiny`` is a toy
  size of the same model for dry runs). Without ``transformers`` a wav2vec2 model falls back
  to the CNN-GRU and the JSON says so (``model.skipped``).

The augmentation time is one call of the ``retaining`` pipeline (noise + reverb + fade +
segment speed-up, p=1) on the same batch on the same device, with the default dispatch
(``auto``) and with plain torch ops (``GPUAUG_BACKEND=torch``). Both are medians of
``--repeats`` timed calls after ``--warmup`` untimed ones, with ``torch.cuda.synchronize``.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (  # noqa: E402
    DEFAULT_DATA, REPO, LoadMonitor, backend_env, command_line, gpuaug_pipeline, load_banks, machine_info,
    resolved_backends, speech_clips, summarize, time_repeats,
)
from models import CNNGRU, n_parameters, wav2vec2_base, wav2vec2_tiny  # noqa: E402

#: ``--model`` names: wav2vec2-base is an alias of wav2vec2; wav2vec2-tiny is the toy size for dry runs.
MODELS = {"cnn_gru": CNNGRU, "wav2vec2": wav2vec2_base, "wav2vec2-base": wav2vec2_base, "wav2vec2-tiny": wav2vec2_tiny}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="cpu")
    p.add_argument("--model", choices=["auto", *MODELS], default="auto",
                   help="auto: wav2vec2 on CUDA when transformers imports, else cnn_gru; a wav2vec2 model "
                        "without transformers falls back to cnn_gru (recorded as model.skipped)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--seconds", type=float, default=6.0)
    p.add_argument("--pipeline", default="retaining")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--data", type=Path, default=DEFAULT_DATA)
    p.add_argument("--synthetic", action="store_true")
    p.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "overhead.json")
    args = p.parse_args(argv)
    if args.repeats < 3:
        p.error("--repeats must be >= 3")
    return args


def pick_model(name: str, device: torch.device) -> tuple[str, torch.nn.Module, str | None]:
    """``(name, model, skipped)``: ``skipped`` says why the requested wav2vec2 model did not run."""
    if name == "auto":
        name = "wav2vec2" if device.type == "cuda" else "cnn_gru"
    if name.startswith("wav2vec2"):
        try:
            import transformers  # noqa: F401
        except ImportError:
            print(f"transformers is not installed: {name} skipped, using the CNN-GRU", file=sys.stderr)
            return "cnn_gru", CNNGRU(), f"{name} skipped: transformers missing"
    return name, MODELS[name](), None


def train_step_fn(model_name: str, model: torch.nn.Module, wave: torch.Tensor, labels: torch.Tensor):
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    model.train()

    def step(_i):
        opt.zero_grad(set_to_none=True)
        logits = model(wave).logits if model_name.startswith("wav2vec2") else model(wave)
        loss = torch.nn.functional.cross_entropy(logits, labels)
        loss.backward()
        opt.step()

    return step


def main(argv=None):
    args = parse_args(argv)
    device = torch.device(args.device)
    started = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    info = machine_info(device)
    load = LoadMonitor().start()
    data = None if args.synthetic or not args.data.is_dir() else args.data
    B, secs = args.batch_size, args.seconds
    clips = speech_clips(data, B, secs)
    wave = torch.from_numpy(clips).to(device)
    lengths = torch.full((B,), clips.shape[1], dtype=torch.int64, device=device)
    labels = torch.arange(B, device=device) % 4

    with tempfile.TemporaryDirectory(prefix="gpuaug-overhead-") as tmp:
        banks = load_banks(data, Path(tmp))
    banks.noise.to(device)
    banks.rir.to(device)
    pipe = gpuaug_pipeline(args.pipeline, banks)
    aug = {}
    for label, env in (("auto", None), ("torch", "torch")):
        with backend_env(env), torch.no_grad():
            times = time_repeats(lambda i: pipe(wave, lengths, seed=0, epoch=i + 10), repeats=args.repeats,
                                 warmup=args.warmup, device=device)
        aug[label] = summarize(times, B, B * secs)
        print(f"augmentation ({args.pipeline}, {label}): {aug[label]['median_s'] * 1e3:.1f} ms per batch", flush=True)

    model_name, model, skipped = pick_model(args.model, device)
    model.to(device)
    step = train_step_fn(model_name, model, wave, labels)
    step_times = time_repeats(step, repeats=args.repeats, warmup=args.warmup, device=device)
    train = summarize(step_times, B, B * secs)
    print(f"train step ({model_name}, {n_parameters(model) / 1e6:.1f} M parameters): {train['median_s'] * 1e3:.1f} ms",
          flush=True)
    overhead = {k: 100.0 * v["median_s"] / train["median_s"] for k, v in aug.items()}
    for k, v in overhead.items():
        print(f"overhead ({k}): {v:.2f} % of a training step")
    if device.type == "cuda":
        info["max_memory_allocated_bytes"] = torch.cuda.max_memory_allocated(device)
    result = {
        "benchmark": "overhead", "command": command_line(), "started_utc": started,
        "finished_utc": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"), "machine": info,
        "cpu_load_during_run": load.stop(), "banks": banks.source, "batch_size": B, "seconds": secs,
        "pipeline": args.pipeline, "repeats": args.repeats, "warmup": args.warmup,
        "gpuaug_backends": resolved_backends(device),
        "model": {"name": model_name, "requested": args.model, "skipped": skipped, "parameters": n_parameters(model),
                  "optimizer": "Adam", "step": "forward + cross-entropy + backward + optimizer step"},
        "augmentation": aug, "train_step": train, "overhead_percent": overhead,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
