"""What happens to a clip's label after augmentation, as data on the batch.

The perception study says some modulations change how humans perceive the emotion. A
training batch must never silently keep such a clip's label. :class:`LabelPolicy` turns
each clip's perception tag into a :class:`LabelAction`:

* ``keep``: label unchanged (retaining transforms, clean clips; unverified by default).
* ``drop``: the clip must be removed from the batch (``keep[b] = False``).
* ``mask``: the clip stays (its features still train the encoder) but its loss weight is 0.
* ``relabel``: dimensional targets (valence, activation) are shifted by the study's mean
  deltas (``-1..1`` scale, multiplied by ``delta_scale`` for the user's label scale, e.g.
  2.0 for IEMOCAP's 1..5 ratings). Categorical labels cannot be shifted: clips that would
  be relabelled get ``loss_weight`` 0 for categorical targets (``categorical_weight``), and
  clips whose altering transform has no measured delta (fillers) are masked.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from .table import ALTERING, SEVERITY, UNVERIFIED

ACTIONS = ("keep", "drop", "mask", "relabel")

__all__ = ["LabelPolicy", "LabelAction", "ACTIONS"]


@dataclass
class LabelAction:
    """Per-clip label handling (all tensors ``(B,)`` unless noted).

    Attributes:
        keep: bool, False for clips to drop from the batch.
        loss_weight: float, 0 masks the clip from the (categorical) loss.
        delta: ``(B, 2)`` float, shift of (valence, activation) targets in label units.
        dimensional_weight: float, 0 where dimensional targets must be masked.
        action: one of ``keep | drop | mask | relabel`` per clip (strings).
    """

    keep: Tensor
    loss_weight: Tensor
    delta: Tensor
    dimensional_weight: Tensor
    action: list[str]

    def to(self, device) -> "LabelAction":
        """The tensors on ``device``: host tensors in one pinned non-blocking upload (no sync)."""
        from .._sync import upload

        moved = [t if t.device == torch.device(device) else None for t in
                 (self.keep, self.loss_weight, self.delta, self.dimensional_weight)]
        if any(m is None for m in moved):
            moved = upload([self.keep, self.loss_weight, self.delta, self.dimensional_weight], device) \
                if all(t.device.type == "cpu" for t in (self.keep, self.loss_weight, self.delta, self.dimensional_weight)) \
                else [t.to(device) for t in (self.keep, self.loss_weight, self.delta, self.dimensional_weight)]
        return LabelAction(*moved, self.action)


@dataclass(frozen=True)
class LabelPolicy:
    """Label handling per perception tag.

    Args:
        on_altering: ``drop | mask | relabel`` (``keep`` is refused: it would silently keep
            a label the evidence says is wrong).
        on_unverified: ``keep | drop | mask`` (default ``keep``; the tag stays on the record).
        delta_scale: multiply the study's -1..1 deltas by this for ``relabel``.
    """

    on_altering: str = "mask"
    on_unverified: str = "keep"
    delta_scale: float = 1.0

    def __post_init__(self):
        if self.on_altering not in ("drop", "mask", "relabel"):
            raise ValueError(
                f"on_altering must be 'drop', 'mask' or 'relabel' (got {self.on_altering!r}); "
                "keeping the label of a perception-altering augmentation is not allowed"
            )
        if self.on_unverified not in ("keep", "drop", "mask"):
            raise ValueError(f"on_unverified must be 'keep', 'drop' or 'mask', got {self.on_unverified!r}")

    def actions(self, severity: Tensor, study_delta: Tensor) -> LabelAction:
        """Build the action from ``(B,)`` severity codes and ``(B, 2)`` study deltas (NaN = unknown)."""
        code = torch.zeros(severity.shape[0], dtype=torch.int64)  # index into ACTIONS
        altering = severity == SEVERITY[ALTERING]
        code[altering] = ACTIONS.index(self.on_altering)
        code[severity == SEVERITY[UNVERIFIED]] = ACTIONS.index(self.on_unverified)
        unknown = torch.isnan(study_delta).any(dim=1)
        code[altering & unknown & (code == ACTIONS.index("relabel"))] = ACTIONS.index("mask")
        drop, mask, relabel = (code == ACTIONS.index(a) for a in ("drop", "mask", "relabel"))
        keep = ~drop
        loss_weight = (~(drop | mask | relabel)).float()
        dim_weight = (~(drop | mask)).float()
        delta = torch.where(relabel[:, None], torch.nan_to_num(study_delta) * self.delta_scale, 0.0).float()
        return LabelAction(keep, loss_weight, delta, dim_weight, [ACTIONS[i] for i in code.tolist()])
