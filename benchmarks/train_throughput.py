"""Training throughput of the CNN-GRU trainer with and without on-the-fly augmentation.

    python benchmarks/train_throughput.py [--data emodb:../shared/data/emodb] [--noise-dir ../shared/data/noise]
        [--rir-dir ../shared/data/rir] [--epochs 3] [--repeats 3] [--threads 2] [--workers 0]
        [--out benchmarks/results/...json]

One fold of ``--data`` (leave one speaker out, the first fold), the trainer of
:mod:`gpuaug.train.loop` with the default CNN-GRU, ``--epochs`` epochs without early stopping,
for each augmentation of ``--augment`` (default: ``none`` and ``retaining`` at ratio 1.0),
interleaved over ``--repeats`` (the machine is shared: rows of one repeat run minutes apart
at most). Per row: training clips per second (wall), process CPU ms per clip, and the
augmentation's share of the training loop (wall and CPU: the collate's pipeline call, timed
inside the collate, over the epoch's loop time; the first epoch, which decodes and caches the
corpus, is left out), and the augmentation's cost to the training time, ``1 - clips/s with /
clips/s without`` per repeat (``augment_cost_wall``). ``--workers N``: the collate (and the
augmentation) runs in N DataLoader worker processes of one thread each (the corpus is decoded
into the cache before they fork, so they inherit it); the collate's own timer then lives in the
workers, so only ``augment_cost_wall`` measures the augmentation, and the CPU columns count this
process only. Writes a JSON with the device, versions, command and every repeat.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import statistics
import sys
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_data = f"emodb:{SHARED / 'emodb'}" if (SHARED / "emodb").is_dir() else "synthetic"
    p.add_argument("--data", default=default_data)
    p.add_argument("--noise-dir", default=str(SHARED / "noise") if (SHARED / "noise").is_dir() else None)
    p.add_argument("--rir-dir", default=str(SHARED / "rir") if (SHARED / "rir").is_dir() else None)
    p.add_argument("--augment", nargs="+", default=["none", "retaining"])
    p.add_argument("--ratio", type=float, default=1.0)
    p.add_argument("--epochs", type=int, default=3, help="measured epochs (one more, uncounted, fills the cache)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--threads", type=int, default=torch.get_num_threads())
    p.add_argument("--workers", type=int, default=0, help="DataLoader workers (0: augment in this process)")
    p.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "cpu-2core-train-throughput.json"))
    return p.parse_args(argv)


def one_row(args, corpus, dataset, fold, banks, augment: str) -> dict:
    from gpuaug.train.conditions import augment_pipeline
    from gpuaug.train.loop import FoldData, FoldTrainer, TrainConfig
    from gpuaug.train.model import DEFAULT_CONFIG, CNNGRUConfig
    from gpuaug.train.run import _aux_table

    config = TrainConfig(epochs=args.epochs + 1, patience=10 ** 6, batch_size=args.batch_size, ratio=args.ratio,
                         num_workers=args.workers)
    data = FoldData(dataset, list(fold.train), list(fold.valid), list(fold.test), len(corpus.classes), corpus.labels,
                    _aux_table(corpus))
    model = CNNGRUConfig.from_dict({**DEFAULT_CONFIG.to_dict(), "n_classes": len(corpus.classes),
                                    "aux_heads": corpus.aux})
    trainer = FoldTrainer(data, model, config, pipeline=augment_pipeline(augment, banks, config.sample_rate), seed=0,
                          device=torch.device("cpu"))
    history = trainer.train()[1:]  # epoch 0 reads and caches the audio
    clips = sum(h["clips"] for h in history)
    wall, cpu = sum(h["wall_s"] for h in history), sum(h["cpu_s"] for h in history)
    aug_wall, aug_cpu = sum(h["augment_wall_s"] for h in history), sum(h["augment_cpu_s"] for h in history)
    return {"augment": augment, "clips": clips, "clips_per_s": clips / wall, "cpu_ms_per_clip": 1e3 * cpu / clips,
            "augment_cpu_ms_per_clip": 1e3 * aug_cpu / clips, "step_cpu_ms_per_clip":
            1e3 * sum(h["step_cpu_s"] for h in history) / clips,
            "augment_share_wall": aug_wall / wall, "augment_share_cpu": aug_cpu / cpu}


def main(argv=None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    from gpuaug.train.cache import MemoryCache
    from gpuaug.train.corpora import open_corpus
    from gpuaug.train.folds import make_folds
    from gpuaug.train.run import RunConfig, _banks

    corpus = open_corpus(args.data)
    fold = make_folds(corpus, "speaker")[0]
    banks = _banks(RunConfig(noise_dir=args.noise_dir, rir_dir=args.rir_dir), 16000)
    dataset = MemoryCache(corpus.dataset, 16000)
    for i in fold.train:  # decoded once here: forked DataLoader workers inherit the filled cache
        dataset[i]
    runs = []
    for r in range(args.repeats):
        for augment in args.augment:  # interleaved: every augmentation once per repeat
            row = one_row(args, corpus, dataset, fold, banks, augment)
            row["repeat"] = r
            runs.append(row)
            print(f"repeat {r} {augment:>10}: {row['clips_per_s']:7.1f} clips/s, {row['cpu_ms_per_clip']:6.2f} CPU ms/clip "
                  f"(augmentation {row['augment_cpu_ms_per_clip']:5.2f}, step {row['step_cpu_ms_per_clip']:5.2f}); "
                  f"augmentation share {100 * row['augment_share_wall']:.1f} % wall, "
                  f"{100 * row['augment_share_cpu']:.1f} % CPU", flush=True)
    summary = {}
    for augment in args.augment:
        rows = [x for x in runs if x["augment"] == augment]
        summary[augment] = {k: statistics.median(x[k] for x in rows) for k in
                            ("clips_per_s", "cpu_ms_per_clip", "augment_cpu_ms_per_clip", "step_cpu_ms_per_clip",
                             "augment_share_wall", "augment_share_cpu")}
        if "none" in args.augment and augment != "none":  # the slowdown against the same repeat's plain row
            base = {x["repeat"]: x["clips_per_s"] for x in runs if x["augment"] == "none"}
            summary[augment]["augment_cost_wall"] = statistics.median(
                1.0 - x["clips_per_s"] / base[x["repeat"]] for x in rows)
    import numba

    import gpuaug

    result = {"command": "python " + " ".join(shlex.quote(a) for a in [os.path.relpath(__file__, REPO), *sys.argv[1:]]),
              "device": f"{platform.processor() or platform.machine()} ({os.cpu_count()} CPU cores, {args.threads} torch "
                        "threads)", "load_avg": os.getloadavg(),
              "versions": {"gpuaug": gpuaug.__version__, "torch": torch.__version__, "numba": numba.__version__,
                           "python": platform.python_version()},
              "data": args.data, "fold": fold.name, "train_items": len(fold.train), "epochs_measured": args.epochs,
              "batch_size": args.batch_size, "ratio": args.ratio, "workers": args.workers,
              "summary_median": summary, "runs": runs}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1))
    for augment, s in summary.items():
        cost = f", costs {100 * s['augment_cost_wall']:.1f} % of the training time" if "augment_cost_wall" in s else ""
        print(f"median {augment:>10}: {s['clips_per_s']:.1f} clips/s, {s['cpu_ms_per_clip']:.2f} CPU ms/clip, "
              f"augmentation {100 * s['augment_share_wall']:.1f} % of wall, {100 * s['augment_share_cpu']:.1f} % of CPU"
              f"{cost}")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
