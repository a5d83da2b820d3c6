"""Per-clip perception of a pipeline call: the rules each applied leaf met, combined.

:class:`Perception` is what :class:`~gpuaug.policy.labels.LabelPolicy` reads; it is built by
:func:`combine` from the rule index (:func:`gpuaug.policy.evaluate.evaluate`) of every leaf on
the clips it was applied to. All tensors are on the host.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from .evaluate import NO_RULE, column_index, columns
from .table import ALTERING, CLEAN, SEVERITY

__all__ = ["Perception", "combine", "NOT_APPLIED"]

#: Rule index of clips a leaf was not applied to.
NOT_APPLIED = -2


@dataclass
class Perception:
    """Shapes ``(B,)`` unless noted; host tensors.

    Attributes:
        severity: int64 worst tag code over the applied leaves (:data:`~gpuaug.policy.table.SEVERITY`).
        rules: ``{slot: (B,) int64}`` index into :data:`~gpuaug.policy.rules.RULES` of the rule
            each leaf met (:data:`~gpuaug.policy.evaluate.NO_RULE` none, :data:`NOT_APPLIED`).
        delta: ``(B, 2)`` float64 sum of the study's (valence, activation) deltas of the altering
            leaves (seed 001 8.1's reading: mean change over the clips whose perception changed);
            NaN where an altering leaf has no measured delta (fillers).
        expected_delta: ``(B, 2)`` the same with each delta times its row's flip rate (the
            expected change over all clips, if unchanged clips did not move).
        disputed: bool, an altering leaf's row has a delta direction the seeds disagree on
            (:data:`~gpuaug.policy.table.DELTA_DISPUTES`).
        unrated_altering: bool, an unverified variant of an altering family was applied.
    """

    severity: Tensor
    rules: dict
    delta: Tensor
    expected_delta: Tensor
    disputed: Tensor
    unrated_altering: Tensor

    @classmethod
    def clean(cls, batch: int) -> "Perception":
        z = torch.zeros(batch, dtype=torch.bool)
        return cls(torch.full((batch,), SEVERITY[CLEAN], dtype=torch.int64), {},
                   torch.zeros(batch, 2, dtype=torch.float64), torch.zeros(batch, 2, dtype=torch.float64), z, z.clone())


def combine(rules: dict[str, Tensor], batch: int) -> Perception:
    """Combine the per-leaf rule indices ``{slot: (B,) int64}`` (:data:`NOT_APPLIED` where the
    leaf did not run) into one :class:`Perception`. Loops over leaves, not clips."""
    out = Perception.clean(batch)
    out.rules = dict(rules)
    col = columns()
    for idx in rules.values():
        applied = idx != NOT_APPLIED
        if not bool(applied.any()):
            continue
        row = column_index(torch.where(applied, idx, NO_RULE))
        sev = torch.where(applied, col.severity[row], SEVERITY[CLEAN])
        out.severity = torch.maximum(out.severity, sev)
        alt = (applied & (sev == SEVERITY[ALTERING]))[:, None]
        out.delta = out.delta + torch.where(alt, col.delta[row], 0.0)
        out.expected_delta = out.expected_delta + torch.where(alt, col.delta[row] * col.flip_rate[row][:, None], 0.0)
        out.disputed |= alt[:, 0] & col.disputed[row]
        out.unrated_altering |= applied & col.unrated_altering[row]
    return out
