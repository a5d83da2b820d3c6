"""Results of a training run: summary statistics, files (JSON, CSV, EmoBox, PNG), progress bars.

:func:`summarise` turns the per-(repetition, fold) results into

* ``pooled[condition]``: per repetition, UAR / WA / macro-F1 over all folds' test clips
  together (the confusion matrices summed), then mean and sample std over repetitions;
* ``per_fold[condition]``: mean and std of the per-fold scores over every (repetition, fold);
* ``breakdown[condition][clip condition]``: the scores of the clips that got one realised
  augmentation (``clean``, ``noise:interior@10dB``, ``reverb``, ...; from each clip's record),
  pooled over folds and repetitions;
* ``significance``: paired t-tests of the per-(repetition, fold) UAR of every test condition
  against the first one, Bonferroni-corrected (:func:`gpuaug.train.stats.paired_ttests`);
* ``timing``: training clips per second and the augmentation's share of the training time;
* ``protocol``: the folds, and whether every one is speaker-independent.

EmoBox format (``emobox/repeat<r>/fold_<k>/<condition>/``): ``predictions.jsonl`` (``{"key",
"pred", "prediction"}`` per clip), ``labels.jsonl`` (``{"key", "label"}``) and ``score.txt``
(the lines EmoBox's ``WriteScore`` writes: overall UA, WA, micro-F1, macro-F1), so the
per-fold UA / WA / F1 read as EmoBox's published tables. Keys are ``<corpus>-<utterance>``
(``emodb-03a01Fa``, as EmoBox spells them).
"""
from __future__ import annotations

import csv
import json
import math
import platform
from collections import defaultdict
from pathlib import Path

import torch

from .metrics import mean_std, scores
from .stats import paired_ttests

__all__ = ["Progress", "summarise", "write_all", "write_json", "versions"]


class Progress:
    """tqdm bars: one over (repetition, fold) pairs, one over the epochs of the current fold."""

    def __init__(self, total: int, enabled: bool = True):
        self.enabled = enabled
        self.outer = self.inner = None
        if enabled:
            from tqdm.auto import tqdm

            self._tqdm = tqdm
            self.outer = tqdm(total=total, desc="folds", unit="fold", position=0)

    def fold_start(self, name: str, epochs: int) -> None:
        if self.enabled:
            self.inner = self._tqdm(total=epochs, desc=name, unit="epoch", position=1, leave=False)

    def epoch(self, row: dict) -> None:
        if self.inner is not None:
            self.inner.set_postfix(train=f"{row['train_loss']:.3f}", valid=f"{row['valid_loss']:.3f}")
            self.inner.update(1)

    def fold_done(self, name: str) -> None:
        if self.inner is not None:
            self.inner.close()
            self.inner = None
        if self.outer is not None:
            self.outer.set_postfix_str(name)
            self.outer.update(1)

    def close(self) -> None:
        if self.outer is not None:
            self.outer.close()


def versions() -> dict:
    """Versions of what produced the results."""
    import numpy

    import gpuaug

    return {"gpuaug": getattr(gpuaug, "__version__", "?"), "python": platform.python_version(),
            "torch": torch.__version__, "numpy": numpy.__version__, "platform": platform.platform()}


def write_json(path: Path, obj) -> None:
    """Write JSON atomically (a temporary file renamed into place)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=1))
    tmp.replace(path)


def _scores_of(labels, preds, n_classes) -> dict:
    s = scores(labels, preds, n_classes)
    return {"uar": s["uar"], "wa": s["wa"], "macro_f1": s["macro_f1"], "n": len(labels)}


def _ms(values) -> dict:
    m, s = mean_std(values)
    return {"mean": m, "std": s, "n": len(values)}


def summarise(config, corpus, folds, fold_results: list[dict]) -> dict:
    """The run's results dict (module docstring)."""
    n_classes = len(corpus.classes)
    conditions = list(config.test_conditions)
    pooled, per_fold, breakdown, uar_pairs = {}, {}, {}, {}
    for cond in conditions:
        reps = defaultdict(lambda: ([], []))
        clips = defaultdict(lambda: ([], []))
        fold_scores = {"uar": [], "wa": [], "macro_f1": []}
        for r in sorted(fold_results, key=lambda r: (r["repeat"], r["fold"])):
            c = r["conditions"][cond]
            reps[r["repeat"]][0].extend(c["label"])
            reps[r["repeat"]][1].extend(c["pred"])
            for k in fold_scores:
                fold_scores[k].append(c[k])
            for lab, pr, name in zip(c["label"], c["pred"], c["condition"]):
                clips[name][0].append(lab)
                clips[name][1].append(pr)
        per_rep = [_scores_of(*reps[k], n_classes) for k in sorted(reps)]
        pooled[cond] = {"per_repeat": per_rep, **{k: _ms([p[k] for p in per_rep]) for k in ("uar", "wa", "macro_f1")},
                        "confusion": scores(sum((reps[k][0] for k in reps), []), sum((reps[k][1] for k in reps), []),
                                            n_classes)["confusion"].tolist()}
        per_fold[cond] = {k: _ms(v) for k, v in fold_scores.items()}
        breakdown[cond] = {name: _scores_of(lab, pr, n_classes) for name, (lab, pr) in sorted(clips.items())}
        uar_pairs[cond] = fold_scores["uar"]
    significance = []
    if len(conditions) > 1 and len(uar_pairs[conditions[0]]) >= 2:
        significance = paired_ttests(uar_pairs, baseline=conditions[0])
    train_clips = sum(row["clips"] for r in fold_results for row in r["history"])
    wall = sum(row["wall_s"] for r in fold_results for row in r["history"])
    cpu = sum(row["cpu_s"] for r in fold_results for row in r["history"])
    aug_wall = sum(row["augment_wall_s"] for r in fold_results for row in r["history"])
    aug_cpu = sum(row["augment_cpu_s"] for r in fold_results for row in r["history"])
    independent = all(r["speaker_independent"] for r in fold_results)
    return {
        "config": config.to_json(), "digest": config.digest(), "versions": versions(),
        "corpus": {"spec": config.data, "name": corpus.name, "items": len(corpus.dataset),
                   "classes": list(corpus.classes), "speakers": sorted({str(s) for s in corpus.speakers})},
        "protocol": {"folds": config.folds, "n_folds": len(folds), "repeats": config.repeats,
                     "speaker_independent": independent,
                     "note": None if independent else "some test speakers also appear in training: speaker-dependent"},
        "pooled": pooled, "per_fold": per_fold, "breakdown": breakdown, "significance": significance,
        "timing": {"train_clips": train_clips, "train_wall_s": wall, "train_cpu_s": cpu,
                   "clips_per_s": train_clips / wall if wall > 0 else None,
                   "augment_wall_s": aug_wall, "augment_cpu_s": aug_cpu,
                   "augment_share_wall": aug_wall / wall if wall > 0 else None,
                   "augment_share_cpu": aug_cpu / cpu if cpu > 0 else None},
        "folds": [{k: v for k, v in r.items() if k not in ("conditions", "history")} |
                  {"conditions": {c: {k: v for k, v in r["conditions"][c].items()
                                      if k not in ("index", "label", "pred", "condition")} for c in r["conditions"]}}
                  for r in fold_results],
    }


def _write_csv(path: Path, header: list[str], rows: list[list]) -> None:
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)


def _emobox_key(corpus, index: int) -> str:
    return f"{corpus.name}-{corpus.utterances[index]}"


def _emobox_score(c: dict) -> str:
    n = c["n"]
    labels, preds = c["label"], c["pred"]
    micro = sum(int(a == b) for a, b in zip(labels, preds)) / max(n, 1)  # micro-F1 = accuracy (single label)
    lines = [f"Emotion RecognitionScoring -- Sample [{n}], Overall UA     {c['uar']:.4f}",
             f"Emotion RecognitionScoring -- Sample [{n}], Overall WA     {c['wa']:.4f}",
             f"Emotion RecognitionScoring -- Sample [{n}], Overall Micro-F1     {micro:.4f}",
             f"Emotion RecognitionScoring -- Sample [{n}], Overall Macro-F1     {c['macro_f1']:.4f}", "",
             f"confusion_matrix: \n {c['confusion']}"]
    return "\n".join(lines) + "\n"


def _write_emobox(out: Path, fold_results: list[dict], corpus) -> None:
    for r in fold_results:
        for cond, c in r["conditions"].items():
            folder = out / "emobox" / f"repeat{r['repeat']}" / r["fold"] / cond.replace(":", "_").replace("@", "_")
            folder.mkdir(parents=True, exist_ok=True)
            keys = [_emobox_key(corpus, i) for i in c["index"]]
            with open(folder / "predictions.jsonl", "w") as f:
                for k, p in zip(keys, c["pred"]):
                    f.write(json.dumps({"key": k, "pred": p, "prediction": p}) + "\n")
            with open(folder / "labels.jsonl", "w") as f:
                for k, lab in zip(keys, c["label"]):
                    f.write(json.dumps({"key": k, "label": lab}) + "\n")
            (folder / "score.txt").write_text(_emobox_score(c))


def _write_curves(path: Path, fold_results: list[dict]) -> bool:
    """Train / validation loss per epoch of every fold; False when matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.5), sharey=True)
    for r in fold_results:
        epochs = [h["epoch"] for h in r["history"]]
        label = f"r{r['repeat']} {r['fold']}"
        axes[0].plot(epochs, [h["train_loss"] for h in r["history"]], lw=1, label=label)
        axes[1].plot(epochs, [h["valid_loss"] for h in r["history"]], lw=1, label=label)
        axes[1].plot([r["best_epoch"]], [min(h["valid_loss"] for h in r["history"])], "k.", ms=4)
    axes[0].set_title("training loss (augmented)")
    axes[1].set_title("validation loss (clean; dot: restored epoch)")
    for ax in axes:
        ax.set_xlabel("epoch")
    axes[0].set_ylabel("weighted cross-entropy")
    if len(fold_results) <= 12:
        axes[1].legend(fontsize=6, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def write_all(out: Path, results: dict, fold_results: list[dict], corpus) -> None:
    """``results.json``, ``results.csv``, ``conditions.csv``, ``emobox/`` and the learning-curve PNG."""
    write_json(out / "results.json", results)
    _write_csv(out / "results.csv", ["repeat", "fold", "condition", "uar", "wa", "macro_f1", "n",
                                     "speaker_independent"],
               [[r["repeat"], r["fold"], cond, c["uar"], c["wa"], c["macro_f1"], c["n"], r["speaker_independent"]]
                for r in fold_results for cond, c in r["conditions"].items()])
    _write_csv(out / "conditions.csv", ["test_condition", "clip_condition", "uar", "wa", "macro_f1", "n"],
               [[cond, name, s["uar"], s["wa"], s["macro_f1"], s["n"]]
                for cond, table in results["breakdown"].items() for name, s in table.items()])
    _write_emobox(out, fold_results, corpus)
    results["learning_curves"] = "learning_curves.png" if _write_curves(out / "learning_curves.png", fold_results) \
        else None
    write_json(out / "results.json", results)
