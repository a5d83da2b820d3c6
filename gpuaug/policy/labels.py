"""What happens to a clip's label after augmentation, as data on the batch.

The perception study says some modulations change how humans perceive the emotion. A
training batch must never silently keep such a clip's label. :class:`LabelPolicy` turns
each clip's :class:`~gpuaug.policy.perception.Perception` into a :class:`LabelAction`:

* ``keep``: label unchanged (retaining transforms, clean clips; unverified by default).
* ``drop``: the clip must be removed from the batch (``keep[b] = False``).
* ``mask`` (**default for altering clips**): the clip stays (its features still train the
  encoder) but its loss weight is 0.
* ``relabel``: dimensional targets (valence, activation) are shifted, approximately:
  ``target + delta_scale * sum_k w_k * delta_k`` over the altering transforms ``k`` applied
  to the clip, with ``delta_k`` the study's mean rating change (-1..1 scale; seed 001 8.1)
  and ``w_k`` the row's flip rate (``delta_weighting="expected"``, default: the deltas
  appear to be averages over the 13-29 % of clips whose perception changed, so the expected
  change of a clip is ``flip_rate * delta``) or 1 (``"changed"``: assume the clip is one of
  those that changed). It is an approximation either way: the study gives one mean per
  condition, not per clip, emotion or speaker. Clips whose relabelling would rest on a row
  whose direction the seeds dispute (:data:`~gpuaug.policy.table.DELTA_DISPUTES`: crying,
  whole-utterance speed) are masked unless ``disputed="seed001"``; clips of an altering
  transform without a measured delta (fillers) are masked. Categorical labels cannot be
  shifted: relabelled clips get ``loss_weight`` 0 for categorical targets.

Unverified variants of an altering family (a filler from another speaker, a laugh
mid-utterance: the study rated the family altering, not this variant) follow
``on_unrated_altering`` (default ``mask``), other unverified clips ``on_unverified``
(default ``keep``; the tag stays on the record).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from .perception import Perception
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
    """Label handling per perception tag (see the module docstring for the formula).

    Args:
        on_altering: ``drop | mask | relabel`` (default ``mask``; ``keep`` is refused: it
            would silently keep a label the evidence says is wrong).
        on_unverified: ``keep | drop | mask`` (default ``keep``; the tag stays on the record).
        on_unrated_altering: ``keep | drop | mask`` for unverified variants of an altering
            family (default ``mask``).
        delta_scale: multiply the study's -1..1 deltas by this for ``relabel`` (e.g. 2.0 for
            IEMOCAP's 1..5 ratings).
        delta_weighting: ``expected`` (default: ``flip_rate * delta``) or ``changed`` (``delta``).
        disputed: ``mask`` (default) or ``seed001`` (relabel with seed 001 8.1's numbers).
    """

    on_altering: str = "mask"
    on_unverified: str = "keep"
    on_unrated_altering: str = "mask"
    delta_scale: float = 1.0
    delta_weighting: str = "expected"
    disputed: str = "mask"

    def __post_init__(self):
        if self.on_altering not in ("drop", "mask", "relabel"):
            raise ValueError(
                f"on_altering must be 'drop', 'mask' or 'relabel' (got {self.on_altering!r}); "
                "keeping the label of a perception-altering augmentation is not allowed"
            )
        for arg in ("on_unverified", "on_unrated_altering"):
            if getattr(self, arg) not in ("keep", "drop", "mask"):
                raise ValueError(f"{arg} must be 'keep', 'drop' or 'mask', got {getattr(self, arg)!r}")
        if self.delta_weighting not in ("expected", "changed"):
            raise ValueError(f"delta_weighting must be 'expected' or 'changed', got {self.delta_weighting!r}")
        if self.disputed not in ("mask", "seed001"):
            raise ValueError(f"disputed must be 'mask' or 'seed001', got {self.disputed!r}")

    def actions(self, perception: Perception) -> LabelAction:
        """Build the action of every clip from its :class:`Perception` (host tensors)."""
        severity = perception.severity
        study_delta = perception.expected_delta if self.delta_weighting == "expected" else perception.delta
        code = torch.zeros(severity.shape[0], dtype=torch.int64)  # index into ACTIONS
        altering = severity == SEVERITY[ALTERING]
        unverified = severity == SEVERITY[UNVERIFIED]
        code[altering] = ACTIONS.index(self.on_altering)
        code[unverified] = ACTIONS.index(self.on_unverified)
        code[unverified & perception.unrated_altering] = ACTIONS.index(self.on_unrated_altering)
        relabel = code == ACTIONS.index("relabel")
        unsure = torch.isnan(study_delta).any(dim=1)
        if self.disputed == "mask":
            unsure |= perception.disputed
        code[relabel & unsure] = ACTIONS.index("mask")
        drop, mask, relabel = (code == ACTIONS.index(a) for a in ("drop", "mask", "relabel"))
        keep = ~drop
        loss_weight = (~(drop | mask | relabel)).float()
        dim_weight = (~(drop | mask)).float()
        delta = torch.where(relabel[:, None], torch.nan_to_num(study_delta) * self.delta_scale, 0.0).float()
        return LabelAction(keep, loss_weight, delta, dim_weight, [ACTIONS[i] for i in code.tolist()])
