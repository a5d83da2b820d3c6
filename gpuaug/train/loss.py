"""The training loss: class-weighted cross-entropy that obeys the batch's label actions.

Per clip ``b`` the categorical term is ``w_b * CE(logits_b, y_b)`` with

    ``w_b = class_weight[y_b] * loss_weight_b * keep_b``

(``loss_weight`` and ``keep`` from the batch's :class:`~gpuaug.policy.labels.LabelAction`; 1
without one). The emotion loss is the **weighted mean** ``sum_b w_b CE_b / sum_b w_b``: a clip
with ``w_b = 0`` (masked, relabelled, dropped, or of a class with weight 0) is neither in the
numerator nor in the normaliser, and with no label action this equals
``F.cross_entropy(logits, y, weight=class_weight)`` (PyTorch's ``mean`` reduction). A batch in
which every clip has ``w_b = 0`` gives a loss of exactly 0 that still has a ``grad_fn`` (zero
gradients, never NaN).

The auxiliary activation / valence heads (when the outputs have them and ``aux_targets`` is
given) add ``aux_weight * (L_activation + L_valence)``, each the same weighted mean of
unweighted-class CE with ``w_b = dimensional_weight_b * keep_b * [target_b >= 0]``: a relabelled
clip (categorical weight 0, dimensional weight 1) trains them with its shifted targets; see
:func:`aux_targets_from_dims`.

In data-parallel training each rank divides by the *global* normalisers
(:func:`weight_sums` summed over ranks, passed as ``ser_loss(..., weight_sums=...)``), so the
ranks' losses add up to the single-process loss of the whole batch.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor
from torch.nn import functional as F

from ..data.iemocap import bin_dimension
from ..policy.labels import LabelAction

__all__ = ["class_weights", "ser_loss", "weight_sums", "aux_targets_from_dims"]

_TINY = 1e-12


def class_weights(labels, n_classes: int) -> Tensor:
    """Inverse-frequency class weights, float32 ``(n_classes,)``.

    sklearn's ``compute_class_weight("balanced")`` formula ``n / (k * count_c)`` with ``n``
    labels and ``k`` the number of classes **present** in ``labels`` (as sklearn, which takes the
    classes from the labels). A class absent from the (training) labels gets weight 0: it has
    no examples to weight, and a test clip of that class then contributes nothing to a weighted
    loss. (``k`` only scales every weight by a constant, which the weighted-mean loss cancels.)

    Args:
        labels: int labels in ``[0, n_classes)`` (sequence, array or tensor), typically the
            training fold's.
        n_classes: number of classes.

    Raises:
        ValueError: empty labels or a label out of range.
    """
    y = torch.as_tensor(labels).flatten().long().cpu()
    if y.numel() == 0:
        raise ValueError("class_weights needs at least one label")
    if bool(((y < 0) | (y >= n_classes)).any()):
        raise ValueError(f"labels must lie in [0, {n_classes}), got values {sorted(set(y.tolist()))[:10]}")
    counts = torch.bincount(y, minlength=n_classes).double()
    k = int((counts > 0).sum())
    w = torch.where(counts > 0, y.numel() / (k * counts.clamp_min(1)), torch.zeros_like(counts))
    return w.float()


def _weighted_mean(ce: Tensor, w: Tensor, denom: Tensor) -> Tensor:
    """``sum(w * ce) / denom`` (``denom = sum(w)`` unless given), exactly 0 (with a grad_fn)
    when every weight is 0."""
    num = torch.where(w > 0, w * ce, torch.zeros_like(ce)).sum()
    return num / denom.clamp_min(_TINY)


def _per_clip(name: str, t, B: int, device, dtype=torch.float32) -> Tensor:
    t = torch.as_tensor(t, device=device).to(dtype)
    if t.shape != (B,):
        raise ValueError(f"{name} must have shape ({B},), got {tuple(t.shape)}")
    return t


def _clip_weights(labels, label_action: LabelAction | None, class_weights: Tensor | None,
                  aux_targets: Sequence[Tensor] | None, B: int, C: int | None, device) -> dict:
    """Per-clip weights and safe targets: ``{"emotion": (w, y), "activation": (w, t), ...}``."""
    y = _per_clip("labels", labels, B, device, torch.int64)
    known = y >= 0
    y_safe = torch.where(known, y, torch.zeros_like(y))
    keep = torch.ones(B, device=device) if label_action is None else _per_clip("keep", label_action.keep, B, device)
    w = known.float() * keep
    if label_action is not None:
        w = w * _per_clip("loss_weight", label_action.loss_weight, B, device)
    if class_weights is not None:
        cw = torch.as_tensor(class_weights, device=device).float()
        if cw.dim() != 1 or (C is not None and cw.shape[0] != C):
            raise ValueError(f"class_weights must have shape ({C},), got {tuple(cw.shape)}")
        w = w * cw[y_safe]
    out = {"emotion": (w, y_safe)}
    if aux_targets is not None:
        if len(aux_targets) != 2:
            raise ValueError("aux_targets must be (activation_bin, valence_bin)")
        dim_w = keep if label_action is None else \
            keep * _per_clip("dimensional_weight", label_action.dimensional_weight, B, device)
        for name, target in zip(("activation", "valence"), aux_targets):
            t = _per_clip(f"{name} target", target, B, device, torch.int64)
            ok = t >= 0
            out[name] = (dim_w * ok.float(), torch.where(ok, t, torch.zeros_like(t)))
    return out


def weight_sums(labels, label_action: LabelAction | None = None, class_weights: Tensor | None = None,
                aux_targets: Sequence[Tensor] | None = None) -> dict[str, Tensor]:
    """The normalisers :func:`ser_loss` would use, as scalar tensors: ``{"emotion"}`` plus
    ``{"activation", "valence"}`` with ``aux_targets`` (arguments as :func:`ser_loss`).

    Data-parallel training sums them over ranks and passes the totals back as
    ``ser_loss(..., weight_sums=...)``, so every rank divides by the global batch's normaliser.
    """
    B = torch.as_tensor(labels).shape[0]
    device = labels.device if isinstance(labels, Tensor) else torch.device("cpu")
    return {k: w.sum() for k, (w, _) in _clip_weights(labels, label_action, class_weights, aux_targets, B, None,
                                                       device).items()}


def ser_loss(outputs, labels: Tensor, label_action: LabelAction | None = None, class_weights: Tensor | None = None,
             aux_targets: Sequence[Tensor] | None = None, aux_weight: float = 1.0,
             weight_sums: dict[str, Tensor] | None = None) -> tuple[Tensor, dict]:
    """Label-action-aware SER loss (module docstring for the formula).

    Args:
        outputs: :class:`~gpuaug.train.model.CNNGRU` output dict (``emotion`` ``(B, C)``
            logits, optionally ``activation`` / ``valence`` ``(B, 3)``) or a bare ``(B, C)``
            logits tensor.
        labels: ``(B,)`` int64 emotion labels; ``-1`` marks an unknown label (weight 0).
        label_action: the batch's label action (rows aligned with ``labels``; after
            ``Batch.kept()`` or not: ``keep`` False rows get weight 0 either way).
        class_weights: ``(C,)`` weights (e.g. :func:`class_weights` of the training fold);
            None: all 1.
        aux_targets: ``(activation_bin, valence_bin)``, each ``(B,)`` int64 in ``{0, 1, 2}`` or
            ``-1`` (unknown: skipped); requires the outputs' aux heads. None: no aux loss.
        aux_weight: factor of the summed aux losses.
        weight_sums: normalisers to divide by instead of this batch's own (the global batch's
            :func:`weight_sums` in data-parallel training); None: this batch's.

    Returns:
        ``(loss, parts)``: the scalar loss and detached scalar tensors ``parts["emotion"]``,
        ``parts["emotion_weight"]`` (the normaliser ``sum w_b`` used) and, with aux targets,
        ``parts["activation"]``, ``parts["valence"]`` (no host sync is made).
    """
    if isinstance(outputs, Tensor):
        outputs = {"emotion": outputs}
    logits = outputs["emotion"]
    if logits.dim() != 2:
        raise ValueError(f"emotion logits must be (B, C), got {tuple(logits.shape)}")
    B, C = logits.shape
    if aux_targets is not None:
        missing = [k for k in ("activation", "valence") if k not in outputs]
        if missing:
            raise ValueError(f"aux_targets given but the outputs lack the {missing} head(s) (aux_heads=False?)")
    clips = _clip_weights(labels, label_action, class_weights, aux_targets, B, C, logits.device)
    loss, parts = None, {}
    for name, (w, t) in clips.items():
        denom = w.sum() if weight_sums is None else torch.as_tensor(weight_sums[name], device=w.device).float()
        ce = F.cross_entropy(outputs[name].float(), t, reduction="none")
        term = _weighted_mean(ce, w, denom)
        parts[name] = term.detach()
        if name == "emotion":
            parts["emotion_weight"] = denom.detach()
            loss = term
        else:
            loss = loss + aux_weight * term
    return loss, parts


def aux_targets_from_dims(dims: Tensor) -> tuple[Tensor, Tensor]:
    """Bin dimensional targets for the aux heads.

    Args:
        dims: ``(B, 3)`` (valence, activation, dominance) on the 1..5 scale, e.g.
            ``Batch.dimensional_targets()`` (dims plus relabel deltas, so a relabel moves the
            bins). Values are clipped to ``[1, 5]`` first (a shift past the scale's end stays
            at the end bin); NaN (unknown) gives ``-1``.

    Returns:
        ``(activation_bin, valence_bin)``: int64 ``(B,)`` each in ``{-1, 0, 1, 2}`` (low / mid /
        high by :func:`gpuaug.data.iemocap.bin_dimension`), on ``dims``' device. (Binning runs
        on the host: one small copy per batch.)
    """
    if dims.dim() != 2 or dims.shape[1] < 2:
        raise ValueError(f"dims must be (B, 3) (valence, activation, dominance), got {tuple(dims.shape)}")
    x = dims[:, :2].detach().to("cpu", torch.float64)
    nan = torch.isnan(x)
    bins = bin_dimension(torch.where(nan, torch.full_like(x, 3.0), x.clamp(1.0, 5.0)))
    bins = torch.where(nan, torch.full_like(bins, -1), bins).to(dims.device)
    return bins[:, 1].contiguous(), bins[:, 0].contiguous()
