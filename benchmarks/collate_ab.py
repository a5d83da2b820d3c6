"""The training collate's augmentation CPU time, this checkout against another one, alternating.

    python benchmarks/collate_ab.py --other /tmp/old [--pairs 6] [--epochs 3] \
        [--out benchmarks/results/cpu-1thread-collate-ab.json]

``--other`` is a checkout of another commit (e.g. ``git worktree add /tmp/old da0fe74``). Each
pair runs one fresh process per checkout, in alternating order, one thread each. A process
builds the trainer of :mod:`benchmarks.train_throughput` (EmoDB's first leave-one-speaker-out
fold, the ``retaining`` preset at ratio 1.0 with the shared noises and RIRs). It then iterates
``--epochs`` + 1 epochs of the training loader, collate and augmentation only, with no training
step. The first epoch is left out: it decodes the corpus and loads the compiled kernels. Per
process, the augmentation's CPU ms per clip (the collate's timed ``apply``) per epoch. The JSON
keeps every process, each pair's ratio of medians (other / this: > 1 means this checkout uses
less CPU) and their median. The 2-core VM swings 2-5x between runs minutes apart, so only ratios
within a pair are compared.
"""
from __future__ import annotations

import argparse
import importlib.abc
import importlib.util
import json
import os
import platform
import statistics
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("GPUAUG_SHARED_DATA", REPO.parent / "shared" / "data"))


class _Checkout(importlib.abc.MetaPathFinder):
    """Imports ``gpuaug`` and ``gpuaug.kernels`` from the checkout ``root`` (``root/gpuaug``,
    ``root/kernels``): an editable install maps ``gpuaug.kernels`` to its own tree's
    ``kernels/`` whatever ``sys.path`` says, so without this the other checkout would run this
    checkout's kernels."""

    def __init__(self, root: Path):
        self.dirs = {"gpuaug": root / "gpuaug", "gpuaug.kernels": root / "kernels"}

    def find_spec(self, name, path=None, target=None):
        d = self.dirs.get(name)
        if d is None:
            return None
        return importlib.util.spec_from_file_location(name, d / "__init__.py", submodule_search_locations=[str(d)])


def child(root: Path, epochs: int) -> list[float]:
    """Augmentation CPU ms per clip of ``epochs`` epochs of the checkout ``root``'s training collate
    (its own ``gpuaug`` and kernels, :class:`_Checkout`)."""
    sys.meta_path.insert(0, _Checkout(root))
    sys.path[:0] = [str(root), str(root / "benchmarks")]
    import torch

    torch.set_num_threads(1)
    import train_throughput as tt
    from gpuaug.train.cache import MemoryCache
    from gpuaug.train.conditions import augment_pipeline
    from gpuaug.train.corpora import open_corpus
    from gpuaug.train.folds import make_folds
    from gpuaug.train.loop import FoldData, FoldTrainer, TrainConfig
    from gpuaug.train.model import DEFAULT_CONFIG, CNNGRUConfig
    from gpuaug.train.run import RunConfig, _aux_table, _banks

    args = tt.parse_args(["--data", f"emodb:{SHARED / 'emodb'}", "--noise-dir", str(SHARED / "noise"),
                          "--rir-dir", str(SHARED / "rir")])
    corpus = open_corpus(args.data)
    fold = make_folds(corpus, "speaker")[0]
    dataset = MemoryCache(corpus.dataset, 16000)
    config = TrainConfig(epochs=epochs + 1, patience=10 ** 6, batch_size=32, ratio=1.0)
    data = FoldData(dataset, list(fold.train), list(fold.valid), list(fold.test), len(corpus.classes), corpus.labels,
                    _aux_table(corpus))
    model = CNNGRUConfig.from_dict({**DEFAULT_CONFIG.to_dict(), "n_classes": len(corpus.classes),
                                    "aux_heads": corpus.aux})
    banks = _banks(RunConfig(noise_dir=args.noise_dir, rir_dir=args.rir_dir), 16000)
    trainer = FoldTrainer(data, model, config, pipeline=augment_pipeline("retaining", banks, 16000), seed=0,
                          device=torch.device("cpu"))
    import gpuaug.kernels
    if Path(gpuaug.kernels.__file__).resolve().parent != (root / "kernels").resolve():
        raise RuntimeError(f"{root}: its kernels did not load (got {gpuaug.kernels.__file__})")
    out = []
    for epoch in range(epochs + 1):
        trainer.train_collate.set_epoch(epoch)
        trainer.train_collate.reset()
        clips = sum(len(batch) for batch in trainer.train_loader)
        if epoch:
            out.append(1e3 * trainer.train_collate.cpu / clips)
    return out


def run_child(root: Path, epochs: int) -> list[float]:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, __file__, "--child", str(root), "--epochs", str(epochs)], env=env,
                          check=True, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--other", type=Path, help="the other checkout's root")
    p.add_argument("--pairs", type=int, default=6)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "cpu-1thread-collate-ab.json")
    args = p.parse_args(argv)
    if args.child is not None:
        print(json.dumps(child(args.child, args.epochs)))
        return 0
    if args.other is None or not (args.other / "gpuaug").is_dir():
        p.error("--other must be the root of another gpuaug checkout")
    if not (SHARED / "emodb").is_dir():
        print(f"skipped: EmoDB not found under {SHARED}")
        return 0
    rows = []
    for i in range(args.pairs):
        order = [("this", REPO), ("other", args.other)]
        runs = {name: run_child(root, args.epochs) for name, root in (order if i % 2 else order[::-1])}
        ratio = statistics.median(runs["other"]) / statistics.median(runs["this"])
        rows.append({"pair": i, **runs, "ratio_other_over_this": ratio})
        print(f"pair {i}: this {statistics.median(runs['this']):.3f}, other {statistics.median(runs['other']):.3f} "
              f"CPU ms per clip, other / this {ratio:.3f}", flush=True)

    def commit(root: Path) -> str:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True,
                              text=True).stdout.strip()

    result = {"command": " ".join(["python", os.path.relpath(__file__, REPO), *sys.argv[1:]]),
              "this": commit(REPO), "other": commit(args.other), "python": platform.python_version(),
              "epochs": args.epochs, "pairs": rows,
              "median_ratio_other_over_this": statistics.median(r["ratio_other_over_this"] for r in rows)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))
    print(f"median other / this: {result['median_ratio_other_over_this']:.3f}; wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
