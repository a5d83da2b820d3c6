"""A training run: corpus -> folds x repetitions -> trained models -> metrics per test condition.

:func:`run` is what ``python -m gpuaug train`` calls. For each repetition ``r`` (seed
``seed + r``) and fold ``k`` it trains a model on the fold's training items (augmented on the
fly by ``augment`` at ``ratio``), stops early on the clean validation items, and evaluates the
test items under every ``test_conditions`` entry (augmented on the fly with a fixed seed:
replayable, never written to disk). With ``grid=True`` every Table 1 configuration is trained
and the one with the best validation UAR (ties: lower validation loss) is tested.

Outputs under ``out/`` (:mod:`gpuaug.train.report`): ``config.json``, one folder per
(repetition, fold) with ``result.json`` and ``best.safetensors`` (tensors only), then
``results.json`` / ``results.csv`` / ``conditions.csv`` (pooled metrics, mean +- std over
repetitions, per-condition breakdown, paired t-tests with Bonferroni correction), ``emobox/``
(per-fold predictions and scores in EmoBox's format) and ``learning_curves.png``.

Resuming: a (repetition, fold) whose ``result.json`` exists, was written by the same
configuration, and whose checkpoint still has its recorded SHA-256 is loaded instead of
retrained; every fold's training depends only on (seed, repetition, fold), so a resumed run
reports what an uninterrupted one does. An ``out/`` holding another configuration is refused.
"""
from __future__ import annotations

import hashlib
import json
import math
import sys
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import torch

from ..data.layouts import banks_or_synthetic
from .cache import MemoryCache
from .checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from .conditions import Banks, augment_pipeline, condition_pipeline, parse_condition
from .corpora import Corpus, open_corpus
from .distributed import DistContext, init_from_env
from .folds import Fold, make_folds
from .loop import FoldData, FoldTrainer, TrainConfig, predict
from .metrics import scores
from .model import DEFAULT_CONFIG, CNNGRUConfig, grid_configs

__all__ = ["RunConfig", "run", "TEST_SEED"]

#: Seed of the test conditions' augmentation (fixed: every run sees the same noisy test set).
TEST_SEED = 20_260_001


@dataclass(frozen=True)
class RunConfig:
    """Everything a run depends on (``config.json``; see ``python -m gpuaug train --help``).

    ``max_folds`` runs only the first folds (quick runs; the results say so); ``model`` is
    ``cnn-gru`` (the other models follow in a later issue).
    """

    data: str = "synthetic"
    folds: str = "speaker"
    model: str = "cnn-gru"
    augment: str = "none"
    ratio: float = 1.0
    ratio_mode: str = "bernoulli"
    test_conditions: tuple[str, ...] = ("clean",)
    repeats: int = 1
    seed: int = 0
    grid: bool = False
    model_config: dict = field(default_factory=dict)
    train: dict = field(default_factory=dict)
    noise_dir: str | None = None
    rir_dir: str | None = None
    insert_dir: str | None = None
    max_folds: int | None = None
    device: str = "cpu"

    def to_json(self) -> dict:
        d = asdict(self)
        d["test_conditions"] = list(self.test_conditions)
        return d

    def digest(self) -> str:
        """SHA-256 of the configuration (``device`` excluded: a run may resume elsewhere)."""
        d = {k: v for k, v in self.to_json().items() if k != "device"}
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]


def _banks(config: RunConfig, sample_rate: int) -> Banks:
    return Banks(*banks_or_synthetic(sample_rate, noise_dir=config.noise_dir, rir_dir=config.rir_dir,
                                     insert_dir=config.insert_dir))


def _aux_table(corpus: Corpus) -> torch.Tensor | None:
    """Per-class (activation, valence) bins for corpora without dimensional ratings."""
    if corpus.name != "emodb":
        return None
    from ..data.emodb import EMODB_AROUSAL_VALENCE

    return torch.tensor([EMODB_AROUSAL_VALENCE[c] for c in corpus.classes], dtype=torch.int64)


def _fold_dir(out: Path, repeat: int, fold: Fold) -> Path:
    return out / f"repeat{repeat}" / fold.name


def _check_out(out: Path, config: RunConfig) -> None:
    path = out / "config.json"
    if path.exists():
        old = json.loads(path.read_text())
        if old.get("digest") != config.digest():
            raise ValueError(f"{out} holds a run of another configuration (config.json digest {old.get('digest')}, "
                             f"this run {config.digest()}); use another --out or remove it")
    out.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"digest": config.digest(), "config": config.to_json()}, indent=2))


def _load_done(folder: Path, config: RunConfig) -> dict | None:
    """A finished fold's result (checkpoint verified), or None to (re)train it."""
    path = folder / "result.json"
    if not path.exists():
        return None
    result = json.loads(path.read_text())
    if result.get("digest") != config.digest():
        return None
    try:
        load_checkpoint(folder / "best.safetensors", result["sha256"])
    except CheckpointError as e:
        print(f"gpuaug train: retraining {folder.name}: {e}", file=sys.stderr)
        return None
    return result


def _train_fold(config: RunConfig, corpus: Corpus, dataset, fold: Fold, repeat: int, banks: Banks,
                train_config: TrainConfig, device: torch.device, ctx: DistContext, progress) -> tuple[FoldTrainer, dict]:
    """Train (with ``grid``: every configuration) and return the chosen trainer and its summary."""
    data = FoldData(dataset, list(fold.train), list(fold.valid), list(fold.test), len(corpus.classes),
                    corpus.labels, _aux_table(corpus))
    base = CNNGRUConfig.from_dict({**DEFAULT_CONFIG.to_dict(), "n_classes": len(corpus.classes),
                                   "aux_heads": corpus.aux, **config.model_config})
    candidates = grid_configs(base) if config.grid else [base]
    pipeline = augment_pipeline(config.augment, banks, train_config.sample_rate)
    best = None
    grid_rows = []
    for model_config in candidates:
        trainer = FoldTrainer(data, model_config, train_config, pipeline=pipeline, seed=config.seed + repeat,
                              device=device, ctx=ctx)
        trainer.train(progress)
        valid = predict(trainer, trainer.eval_loader(data.valid))
        valid_uar = scores(valid.label, valid.pred, data.n_classes)["uar"]
        valid_loss = min(r["valid_loss"] for r in trainer.history)
        grid_rows.append({"model_config": model_config.to_dict(), "valid_uar": valid_uar, "valid_loss": valid_loss})
        key = (-valid_uar, valid_loss)
        if best is None or key < best[0]:
            best = (key, trainer, model_config)
    _, trainer, model_config = best
    summary = {"model_config": model_config.to_dict(), "best_epoch": trainer.best_epoch,
               "epochs_run": len(trainer.history), "history": trainer.history,
               "valid_uar": -best[0][0], "valid_loss": best[0][1]}
    if config.grid:
        summary["grid"] = grid_rows
    return trainer, summary


def _evaluate(trainer: FoldTrainer, corpus: Corpus, fold: Fold, banks: Banks, conditions, sample_rate: int) -> dict:
    out = {}
    for cond in conditions:
        pipeline = condition_pipeline(cond, banks, sample_rate)
        pred = predict(trainer, trainer.eval_loader(list(fold.test), pipeline, seed=TEST_SEED))
        s = scores(pred.label, pred.pred, len(corpus.classes))
        out[cond.spec] = {"uar": s["uar"], "wa": s["wa"], "macro_f1": s["macro_f1"], "n": len(pred.label),
                          "confusion": torch.as_tensor(s["confusion"]).tolist(),
                          "index": pred.index, "label": pred.label, "pred": pred.pred, "condition": pred.condition}
    return out


def run(config: RunConfig, out: str | Path, *, progress: bool = True) -> dict:
    """Run ``config``, writing under ``out`` (module docstring); returns the results dict."""
    from . import report

    out = Path(out)
    device = torch.device(config.device)
    ctx = init_from_env(device)
    conditions = [parse_condition(c) for c in config.test_conditions]
    if not conditions:
        raise ValueError("at least one test condition is needed (e.g. clean)")
    if config.model != "cnn-gru":
        raise ValueError(f"model {config.model!r}: only cnn-gru is implemented")
    if isinstance(config.repeats, bool) or config.repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {config.repeats!r}")
    train_config = TrainConfig(**{**asdict(TrainConfig()), **config.train, "ratio": config.ratio,
                                  "ratio_mode": config.ratio_mode})
    corpus = open_corpus(config.data)
    folds = make_folds(corpus, config.folds)
    if config.max_folds is not None:
        folds = folds[: config.max_folds]
    banks = _banks(config, train_config.sample_rate)
    dataset = MemoryCache(corpus.dataset, train_config.sample_rate)  # decoded once, reused by every fold
    if ctx.main:
        _check_out(out, config)
        if not all(f.speaker_independent for f in folds):
            print(f"gpuaug train: the folds of {config.folds!r} share speakers between training and test: "
                  "results are SPEAKER-DEPENDENT and labelled so", file=sys.stderr)
    ctx.barrier()
    fold_results = []
    bars = report.Progress(len(folds) * config.repeats, enabled=progress and ctx.main)
    for repeat in range(config.repeats):
        for fold in folds:
            folder = _fold_dir(out, repeat, fold)
            done = _load_done(folder, config)
            ctx.barrier()
            if done is not None:
                fold_results.append(done)
                bars.fold_done(f"{fold.name} (resumed)")
                continue
            bars.fold_start(f"repeat {repeat} {fold.name}", train_config.epochs)
            trainer, summary = _train_fold(config, corpus, dataset, fold, repeat, banks, train_config, device, ctx,
                                           bars.epoch)
            result = {"digest": config.digest(), "repeat": repeat, "fold": fold.name, "seed": config.seed + repeat,
                      "test_speakers": sorted({str(s) for s in fold.test_speakers}),
                      "speaker_independent": bool(fold.speaker_independent),
                      "train_items": len(fold.train), "valid_items": len(fold.valid), "test_items": len(fold.test),
                      **summary,
                      "conditions": _evaluate(trainer, corpus, fold, banks, conditions, train_config.sample_rate)}
            if ctx.main:
                result["sha256"] = save_checkpoint(folder / "best.safetensors", trainer.state_tensors(),
                                                   {"fold": fold.name, "repeat": repeat,
                                                    "model_config": summary["model_config"],
                                                    "best_epoch": summary["best_epoch"]})
                report.write_json(folder / "result.json", result)
            ctx.barrier()
            fold_results.append(result)
            bars.fold_done(fold.name)
    bars.close()
    results = report.summarise(config, corpus, folds, fold_results)
    if ctx.main:
        report.write_all(out, results, fold_results, corpus)
    return results
