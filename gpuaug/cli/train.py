"""``gpuaug train``: train and evaluate a SER model from gpuaug batches (needs the ``train`` extra).

    python -m gpuaug train --model cnn-gru --data emodb:../shared/data/emodb --folds speaker \\
        --augment retaining --ratio 0.3 --test-condition clean --test-condition noise:interior@10 --out runs/x

Without arguments it trains on the built-in synthetic corpus (speaker folds, 2 of them, a
few epochs), which is also what the tests run. ``torchrun --nproc-per-node N -m gpuaug train
...`` trains with DDP (same parameters as one process). See :mod:`gpuaug.train.run`.
"""
from __future__ import annotations

import sys
from pathlib import Path

from .errors import UsageError

MODEL_FLAGS = ("channels", "pool", "gru_layers", "gru_units", "dense_layers", "dense_units")


def add_arguments(parser) -> None:
    parser.add_argument("--model", default="cnn-gru", choices=("cnn-gru",))
    parser.add_argument("--data", default="synthetic",
                        help="emodb:PATH | iemocap:PATH | manifest:CSV | synthetic[:N] (default: synthetic)")
    parser.add_argument("--folds", default="speaker",
                        help="speaker (leave one speaker out) | speaker-kfold:K | session (leave one session out) "
                             "| file:PATH (EmoBox fold folder or utterance,fold,split CSV)")
    parser.add_argument("--augment", default="none", help="none | a preset name (retaining, ...) | noise:<cat>@<snr>")
    parser.add_argument("--ratio", type=float, default=1.0, help="share of training items augmented")
    parser.add_argument("--ratio-mode", default="bernoulli", choices=("bernoulli", "fixed_subset"))
    parser.add_argument("--test-condition", action="append", dest="test_conditions",
                        help="clean | noise:<category>@<snr_db> | preset:<name> (repeatable; default clean)")
    parser.add_argument("--repeats", type=int, default=1, help="repetitions with seeds seed..seed+N-1")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--grid", action="store_true", help="grid search over Table 1 on the validation fold")
    parser.add_argument("--epochs", type=int, default=50)
    parser.add_argument("--patience", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--aux-weight", type=float, default=1.0, help="weight of the activation/valence heads")
    parser.add_argument("--norm", default="global", choices=("global", "speaker"))
    parser.add_argument("--max-seconds", type=float, default=None, help="crop training/test clips to this length")
    parser.add_argument("--workers", type=int, default=0, help="DataLoader workers (0: augment in this process)")
    parser.add_argument("--max-folds", type=int, default=None, help="run only the first N folds (quick runs)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--noise-dir", help="noise folder (default: the built-in synthetic noises)")
    parser.add_argument("--rir-dir", help="room impulse responses (default: synthetic rooms)")
    parser.add_argument("--insert-dir", help="insert clips (default: synthetic)")
    for flag in MODEL_FLAGS:
        parser.add_argument(f"--{flag.replace('_', '-')}", type=int, default=None, help="model hyper-parameter")
    parser.add_argument("--out", default="runs/train", help="output folder (resumes a run of the same configuration)")
    parser.add_argument("--no-progress", action="store_true")


def _config(args):
    from ..train.run import RunConfig

    quick = args.data == "synthetic" and args.max_folds is None
    model = {f: getattr(args, f) for f in MODEL_FLAGS if getattr(args, f) is not None}
    train = {"epochs": args.epochs, "patience": args.patience, "batch_size": args.batch_size, "lr": args.lr,
             "aux_weight": args.aux_weight, "norm": args.norm, "max_seconds": args.max_seconds,
             "num_workers": args.workers}
    return RunConfig(data=args.data, folds=args.folds, model=args.model, augment=args.augment, ratio=args.ratio,
                     ratio_mode=args.ratio_mode, test_conditions=tuple(args.test_conditions or ("clean",)),
                     repeats=args.repeats, seed=args.seed, grid=args.grid, model_config=model, train=train,
                     noise_dir=args.noise_dir, rir_dir=args.rir_dir, insert_dir=args.insert_dir,
                     max_folds=2 if quick else args.max_folds, device=args.device)


def _print_summary(results: dict, out: Path) -> None:
    p = results["protocol"]
    print(f"corpus {results['corpus']['spec']}: {results['corpus']['items']} items, "
          f"{len(results['corpus']['classes'])} classes; {p['n_folds']} folds ({p['folds']}) x {p['repeats']} "
          f"repetition(s); {'speaker-independent' if p['speaker_independent'] else 'SPEAKER-DEPENDENT folds'}")
    print(f"{'test condition':<28} {'UAR':>15} {'WA':>15} {'macro-F1':>15}")
    for cond, s in results["pooled"].items():
        cells = [f"{s[k]['mean']:.3f} +- {s[k]['std']:.3f}" for k in ("uar", "wa", "macro_f1")]
        print(f"{cond:<28} {cells[0]:>15} {cells[1]:>15} {cells[2]:>15}")
    for t in results["significance"]:
        print(f"  {t['a']} vs {t['b']}: mean UAR difference {t['mean_diff']:+.3f}, p = {t['p']:.3g}, "
              f"Bonferroni p = {t['p_bonferroni']:.3g}{' (significant)' if t['significant'] else ''}")
    tm = results["timing"]
    if tm["clips_per_s"] is not None:
        print(f"training: {tm['clips_per_s']:.1f} clips/s; augmentation {100 * (tm['augment_share_wall'] or 0):.1f} % "
              f"of the training wall time, {100 * (tm['augment_share_cpu'] or 0):.1f} % of its CPU time")
    print(f"results: {out / 'results.json'} (and results.csv, conditions.csv, emobox/, learning_curves.png)")


def run(args) -> int:
    try:
        from ..train.run import run as run_training
    except ImportError as e:
        raise UsageError(f"gpuaug train needs the train extra (pip install 'gpuaug[train]'): {e}") from None
    try:
        config = _config(args)
        results = run_training(config, args.out, progress=not args.no_progress and sys.stderr.isatty())
    except (ValueError, FileNotFoundError, KeyError) as e:
        raise UsageError(str(e.args[0] if e.args else e)) from None
    if results is not None:
        _print_summary(results, Path(args.out))
    return 0
