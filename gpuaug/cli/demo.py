"""``gpuaug demo``: the README's main job on the built-in synthetic corpus.

Builds the default corpus, runs the augmenting collate over it in DataLoader workers (the
device stage finishes batches on the GPU when there is one), and prints throughput and a
per-augmentation summary, with the realised shares of items selected (``ratio``) and
augmented (at least one transform: lower, each transform has its own ``p``).
"""
from __future__ import annotations

import json
import time
from collections import Counter, defaultdict

import torch
from torch.utils.data import DataLoader

from ..data.collate import AugmentCollate
from ..data.datasets import SyntheticSERDataset
from ..data.device_stage import DeviceLoader
from ..presets import build_preset
from .banks import add_bank_arguments, load_banks
from .progress import progress

SUMMARY_KEYS = ("snr_db", "factor", "fraction", "rt60_s", "semitones", "alpha", "gain_db",
                "gain", "peak")  # gain / peak: the pipeline's output level (peak before, gain applied)


def add_arguments(parser) -> None:
    parser.add_argument("--clips", type=int, default=128, help="size of the built-in corpus")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--ratio", type=float, default=0.5)
    parser.add_argument("--mode", default="bernoulli", choices=("bernoulli", "fixed_subset", "append"))
    parser.add_argument("--preset", default="retaining")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--json", help="also write the summary to this JSON file")
    add_bank_arguments(parser)


def run(args) -> int:
    sr = 16000
    device = torch.device(args.device)
    t0 = time.perf_counter()
    dataset = SyntheticSERDataset(args.clips, sample_rate=sr, seed=args.seed)
    noise, rir, insert = (b.to(device) for b in load_banks(args, sr))
    pipe = build_preset(args.preset, noise=noise, rir=rir, insert=insert, sample_rate=sr)
    collate = AugmentCollate(pipe, ratio=args.ratio, mode=args.mode, seed=args.seed, dataset_size=len(dataset),
                             device=device)
    loader = DataLoader(dataset, batch_size=args.batch_size, shuffle=True, num_workers=args.workers,
                        collate_fn=collate, persistent_workers=args.workers > 0,
                        pin_memory=device.type == "cuda", generator=torch.Generator().manual_seed(args.seed))
    stage = DeviceLoader(loader, collate, device)
    print(f"corpus: built-in synthetic SER, {len(dataset)} clips, 4 emotions; device {device}; "
          f"{args.workers} workers; ratio {args.ratio} ({args.mode})")
    print(f"pipeline ({args.preset}): {pipe.describe()}")

    applied, tags, actions = Counter(), Counter(), Counter()
    values: dict[str, list] = defaultdict(list)
    clips, audio_s = 0, 0.0
    shares = Counter()  # items, selected, augmented (Batch.summary: host masks, no sync)
    start = time.perf_counter()
    for epoch in range(args.epochs):
        stage.set_epoch(epoch)
        for batch in progress(stage, desc=f"epoch {epoch}"):
            clips += len(batch)
            audio_s += float(batch.lengths.sum()) / sr
            tags.update(batch.tags)
            summary = batch.summary()
            shares.update({k: summary[k] for k in ("items", "selected", "augmented")})
            actions.update(batch.label_action.action)
            for rec in batch.record:
                for entry in rec:
                    applied[entry["transform"]] += 1
                    for key in SUMMARY_KEYS:
                        if key in entry:
                            values[f"{entry['transform']}.{key}"].append(entry[key])
    if device.type == "cuda":
        torch.cuda.synchronize()
    wall = time.perf_counter() - start
    print(f"\n{clips} clips ({audio_s:.0f} s of audio) in {wall:.2f} s: {clips / wall:.1f} clips/s, "
          f"{audio_s / wall:.0f}x realtime (loading + augmentation; setup {start - t0:.1f} s)")
    items = max(shares["items"], 1)
    print(f"selected for augmentation: {shares['selected'] / items:.1%} of {shares['items']} items "
          f"(ratio {args.ratio}); got at least one transform: {shares['augmented'] / items:.1%} "
          "(each transform applies to a selected clip with its own p)")
    print("perception tags:", dict(sorted(tags.items())), "  label actions:", dict(sorted(actions.items())))
    print(f"{'transform':<22}{'applied':>8}{'share':>8}")
    for name, count in sorted(applied.items()):
        print(f"  {name:<20}{count:8d}{count / clips:8.0%}")
    for key, v in sorted(values.items()):
        print(f"  {key:<30} mean {sum(v) / len(v):8.3f}   min {min(v):8.3f}   max {max(v):8.3f}")
    if args.json:
        summary = {"clips": clips, "audio_s": audio_s, "seconds": wall, "clips_per_s": clips / wall,
                   "x_realtime": audio_s / wall, "tags": dict(tags), "actions": dict(actions),
                   "applied": dict(applied), "device": str(device), "workers": args.workers,
                   "ratio": args.ratio, "items": shares["items"], "selected_share": shares["selected"] / items,
                   "augmented_share": shares["augmented"] / items}
        with open(args.json, "w") as f:
            json.dump(summary, f, indent=2)
    return 0
