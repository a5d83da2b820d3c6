"""Train the seeds' CNN-GRU on EmoDB, leave one speaker out, and test it clean and in noise.

    python examples/train_emodb.py [--emodb ../shared/data/emodb] [--noise ../shared/data/noise] [--rir ../shared/data/rir]
                                   [--augment retaining] [--ratio 1.0] [--repeats 3] [--out runs/emodb]

The same as ``python -m gpuaug train --data emodb:PATH --folds speaker --noise-dir NOISE
--rir-dir RIR --test-condition clean --test-condition noise:interior@0 ...``: 7 classes, 10 folds (8
training speakers, 1 validation, 1 test), test sets augmented on the fly with a fixed seed
(never written to disk). ``--folds file:PATH/emobox_folds`` runs EmoBox's published folds
instead (speaker-dependent: the results say so).
"""
import argparse
from pathlib import Path

from gpuaug.cli.train import _print_summary
from gpuaug.train.conditions import NOISE_TEST_GRID
from gpuaug.train.run import RunConfig, run

HERE = Path(__file__).resolve().parent
p = argparse.ArgumentParser()
p.add_argument("--emodb", default=str(HERE.parent.parent / "shared" / "data" / "emodb"))
p.add_argument("--noise", default=str(HERE.parent.parent / "shared" / "data" / "noise"))
p.add_argument("--rir", default=str(HERE.parent.parent / "shared" / "data" / "rir"))
p.add_argument("--folds", default="speaker")
p.add_argument("--augment", default="none")
p.add_argument("--ratio", type=float, default=1.0)
p.add_argument("--repeats", type=int, default=3)
p.add_argument("--epochs", type=int, default=50)
p.add_argument("--out", default="runs/emodb")
args = p.parse_args()

config = RunConfig(data=f"emodb:{args.emodb}", folds=args.folds, augment=args.augment, ratio=args.ratio,
                   repeats=args.repeats, noise_dir=args.noise, rir_dir=args.rir, test_conditions=("clean", *NOISE_TEST_GRID),
                   train={"epochs": args.epochs})
results = run(config, args.out)
_print_summary(results, Path(args.out))
