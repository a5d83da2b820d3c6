"""Command line: ``python -m gpuaug demo`` (the README's main job) and ``python -m gpuaug policy``."""
from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter, defaultdict


def _demo(args) -> int:
    import torch

    from .data import pad_batch
    from .data.synthetic import synthetic_noise_bank, synthetic_rir_bank, synthetic_speech
    from .policy import perception_retaining

    torch.manual_seed(0)
    sr = 16000
    t0 = time.perf_counter()
    items = synthetic_speech(args.clips, sample_rate=sr, seed=args.seed)
    device = torch.device(args.device)
    noise, rirs = synthetic_noise_bank(sample_rate=sr).to(device), synthetic_rir_bank(sample_rate=sr).to(device)
    pipe = perception_retaining(noise, rirs, sample_rate=sr)
    print(f"built-in corpus: {len(items)} synthetic clips ({sum(i.wave.numel() for i in items) / sr:.1f} s) "
          f"in {time.perf_counter() - t0:.1f} s; device {device}")
    print(f"pipeline: {pipe.describe()}")

    applied: Counter = Counter()
    tags: Counter = Counter()
    values: dict[str, list] = defaultdict(list)
    audio_s, wall = 0.0, 0.0
    for epoch in range(args.epochs):
        for start in range(0, len(items), args.batch_size):
            batch = items[start : start + args.batch_size]
            wave, lengths = pad_batch([i.wave for i in batch])
            wave, lengths = wave.to(device), lengths.to(device)
            index = torch.tensor([i.index for i in batch])
            if device.type == "cuda":
                torch.cuda.synchronize()
            t = time.perf_counter()
            out = pipe(wave, lengths, seed=args.seed, epoch=epoch, index=index)
            if device.type == "cuda":
                torch.cuda.synchronize()
            wall += time.perf_counter() - t
            audio_s += float(lengths.sum()) / sr
            tags.update(out.tags)
            for rec in out.record:
                for entry in rec:
                    applied[entry["transform"]] += 1
                    for key in ("snr_db", "factor", "fraction"):
                        if key in entry:
                            values[f"{entry['transform']}.{key}"].append(entry[key])
    n = args.clips * args.epochs
    print(f"augmented {n} clips in {wall:.2f} s: {n / wall:.1f} clips/s, {audio_s / wall:.0f}x realtime")
    print("perception tags:", dict(sorted(tags.items())))
    print("transform            applied  share")
    for name, count in sorted(applied.items()):
        print(f"  {name:<20} {count:6d}  {count / n:5.0%}")
    for key, v in sorted(values.items()):
        print(f"  {key:<28} mean {sum(v) / len(v):8.3f}  min {min(v):8.3f}  max {max(v):8.3f}")
    if args.json:
        summary = {"clips": n, "seconds": wall, "clips_per_s": n / wall, "x_realtime": audio_s / wall,
                   "tags": dict(tags), "applied": dict(applied), "device": str(device)}
        with open(args.json, "w") as f:
            json.dump(summary, f, indent=2)
    return 0


def _policy(args) -> int:
    from .policy import study_rows

    print(f"{'augmentation':<20}{'variant':<18}{'tag':<11}{'flip':>6}  source")
    for r in study_rows():
        print(f"{r.augmentation:<20}{r.variant:<18}{r.perception:<11}{r.flip_rate:6.2f}  {r.source}")
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="gpuaug", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="augment the built-in synthetic corpus and print a summary")
    demo.add_argument("--clips", type=int, default=96)
    demo.add_argument("--batch-size", type=int, default=16)
    demo.add_argument("--epochs", type=int, default=2)
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--device", default="cuda" if _cuda() else "cpu")
    demo.add_argument("--json", help="also write the summary to this JSON file")
    demo.set_defaults(func=_demo)
    pol = sub.add_parser("policy", help="print the perception table")
    pol.set_defaults(func=_policy)
    args = parser.parse_args(argv)
    return args.func(args)


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


if __name__ == "__main__":
    sys.exit(main())
