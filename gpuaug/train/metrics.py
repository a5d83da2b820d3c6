"""Classification scores of speech emotion recognition: UAR (= UA), WA, macro-F1, confusion.

Conventions (all on integer class ids in ``[0, n_classes)``):

* ``confusion[i, j]``: clips of true class ``i`` predicted as ``j`` (rows: truth).
* **UAR** (unweighted average recall, the "UA" of SER papers): mean over the classes
  **present in y_true** of ``confusion[i, i] / sum_j confusion[i, j]`` (a class without test
  clips has no recall; it is left out, not counted as 0).
* **WA** (weighted accuracy): plain accuracy ``trace / total``.
* **macro-F1**: mean over the classes present in **y_true or y_pred** of
  ``2 tp / (2 tp + fp + fn)``, which is sklearn's ``f1_score(y_true, y_pred, average="macro")``
  with its default ``labels`` (the sorted union of both label sets). A class only ever
  predicted (never true) counts with F1 0; a class neither true nor predicted is left out.
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import Tensor

__all__ = ["confusion_matrix", "uar", "wa", "macro_f1", "scores", "scores_from_confusion", "mean_std"]


def _labels(y, name: str) -> Tensor:
    t = torch.as_tensor(y).detach().cpu()
    if t.is_floating_point():
        if bool((t != t.round()).any()):
            raise ValueError(f"{name} must hold integer class ids")
    return t.flatten().long()


def confusion_matrix(y_true, y_pred, n_classes: int) -> Tensor:
    """int64 ``(n_classes, n_classes)`` counts, rows true class, columns predicted class.

    Raises:
        ValueError: different lengths, no clip, or an id outside ``[0, n_classes)``.
    """
    t, p = _labels(y_true, "y_true"), _labels(y_pred, "y_pred")
    if t.numel() != p.numel():
        raise ValueError(f"y_true has {t.numel()} labels, y_pred {p.numel()}")
    if t.numel() == 0:
        raise ValueError("no labels to score")
    for name, v in (("y_true", t), ("y_pred", p)):
        if bool(((v < 0) | (v >= n_classes)).any()):
            raise ValueError(f"{name} ids must lie in [0, {n_classes}), got {sorted(set(v.tolist()))[:10]}")
    return torch.bincount(t * n_classes + p, minlength=n_classes * n_classes).reshape(n_classes, n_classes)


def _check_confusion(c) -> Tensor:
    c = torch.as_tensor(c).detach().cpu().double()
    if c.dim() != 2 or c.shape[0] != c.shape[1]:
        raise ValueError(f"confusion must be square (K, K), got {tuple(c.shape)}")
    if float(c.sum()) <= 0:
        raise ValueError("empty confusion matrix")
    return c


def _uar(c: Tensor) -> float:
    support = c.sum(dim=1)
    present = support > 0
    return float((c.diagonal()[present] / support[present]).mean())


def _wa(c: Tensor) -> float:
    return float(c.diagonal().sum() / c.sum())


def _macro_f1(c: Tensor) -> float:
    tp = c.diagonal()
    true, pred = c.sum(dim=1), c.sum(dim=0)
    present = (true > 0) | (pred > 0)
    f1 = 2 * tp[present] / (true[present] + pred[present])  # 2tp + fp + fn = true + pred
    return float(f1.mean())


def uar(y_true, y_pred, n_classes: int | None = None) -> float:
    """Unweighted average recall over the classes present in ``y_true`` (module docstring).
    ``n_classes`` defaults to ``1 + max`` id."""
    return _uar(confusion_matrix(y_true, y_pred, n_classes or _n(y_true, y_pred)).double())


def wa(y_true, y_pred, n_classes: int | None = None) -> float:
    """Accuracy (weighted accuracy of SER papers)."""
    return _wa(confusion_matrix(y_true, y_pred, n_classes or _n(y_true, y_pred)).double())


def macro_f1(y_true, y_pred, n_classes: int | None = None) -> float:
    """Mean F1 over the classes present in ``y_true`` or ``y_pred`` (sklearn's default macro)."""
    return _macro_f1(confusion_matrix(y_true, y_pred, n_classes or _n(y_true, y_pred)).double())


def _n(y_true, y_pred) -> int:
    t, p = _labels(y_true, "y_true"), _labels(y_pred, "y_pred")
    if t.numel() == 0 or p.numel() == 0:
        raise ValueError("no labels to score")
    return int(max(t.max(), p.max())) + 1


def scores_from_confusion(confusion) -> dict:
    """``{"uar", "wa", "macro_f1", "confusion"}`` of a ``(K, K)`` confusion matrix (rows truth):
    Python floats and the matrix as an int64 CPU tensor (``.tolist()`` for JSON)."""
    c = _check_confusion(confusion)
    return {"uar": _uar(c), "wa": _wa(c), "macro_f1": _macro_f1(c), "confusion": c.round().long()}


def scores(y_true, y_pred, n_classes: int) -> dict:
    """``{"uar", "wa", "macro_f1", "confusion"}``: floats and the int64 ``(n_classes,
    n_classes)`` confusion tensor (rows truth; ``.tolist()`` for JSON)."""
    return scores_from_confusion(confusion_matrix(y_true, y_pred, n_classes))


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """``(mean, sample std)`` with ``ddof=1``; a single value has std 0.

    Raises:
        ValueError: no values, or a NaN among them.
    """
    v = [float(x) for x in (values.tolist() if isinstance(values, Tensor) else values)]
    if not v:
        raise ValueError("mean_std needs at least one value")
    if any(math.isnan(x) for x in v):
        raise ValueError("mean_std got NaN values")
    m = math.fsum(v) / len(v)
    if len(v) == 1:
        return m, 0.0
    return m, math.sqrt(math.fsum((x - m) ** 2 for x in v) / (len(v) - 1))
