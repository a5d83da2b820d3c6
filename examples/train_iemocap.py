"""Train the seeds' CNN-GRU on IEMOCAP with seed 001's leave-one-session-out protocol.

    python examples/train_iemocap.py --iemocap /data/IEMOCAP_full_release [--noise NOISE_DIR]
                                     [--augment retaining] [--ratio 0.3] [--repeats 5] [--out runs/iemocap]

Five folds: train on 3 sessions, validate on the next, test on the remaining one (rotated);
4 classes (happy + excited merged, as the IEMOCAP reader does by default), activation and
valence heads on the binned 1..5 ratings (multi-task). IEMOCAP is not shipped here: point
``--iemocap`` at your copy of the release.
"""
import argparse
from pathlib import Path

from gpuaug.cli.train import _print_summary
from gpuaug.train.conditions import NOISE_TEST_GRID
from gpuaug.train.run import RunConfig, run

p = argparse.ArgumentParser()
p.add_argument("--iemocap", required=True)
p.add_argument("--noise", default=None, help="noise folder (default: the built-in synthetic noises)")
p.add_argument("--augment", default="none")
p.add_argument("--ratio", type=float, default=1.0)
p.add_argument("--repeats", type=int, default=5)
p.add_argument("--out", default="runs/iemocap")
args = p.parse_args()

config = RunConfig(data=f"iemocap:{args.iemocap}", folds="session", augment=args.augment, ratio=args.ratio,
                   repeats=args.repeats, noise_dir=args.noise, test_conditions=("clean", *NOISE_TEST_GRID),
                   train={"max_seconds": 7.5})
results = run(config, args.out)
_print_summary(results, Path(args.out))
