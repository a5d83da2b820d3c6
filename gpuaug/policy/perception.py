"""Per-clip perception of a pipeline call: the rules each applied leaf met, combined.

:class:`Perception` is what :class:`~gpuaug.policy.labels.LabelPolicy` reads; it is built by
:func:`combine` from the rule index (:func:`gpuaug.policy.evaluate.evaluate`) of every leaf on
the clips it was applied to. All tensors are on the host.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from .evaluate import NO_RULE, columns
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
    leaf did not run) into one :class:`Perception`. Loops over leaves, not clips; the host
    values are combined in numpy (a few small array ops per leaf, far fewer calls than torch's)."""
    col = columns()
    sev_c, delta_c, flip_c = col.severity.numpy(), col.delta.numpy(), col.flip_rate.numpy()
    disputed_c, unrated_c = col.disputed.numpy(), col.unrated_altering.numpy()
    none_row = sev_c.shape[0] - 1  # the column row of NO_RULE
    severity = np.full(batch, SEVERITY[CLEAN], dtype=np.int64)
    delta, expected = np.zeros((batch, 2)), np.zeros((batch, 2))
    disputed, unrated = np.zeros(batch, dtype=bool), np.zeros(batch, dtype=bool)
    for idx in rules.values():
        idx = idx.numpy()
        applied = idx != NOT_APPLIED
        if not applied.any():
            continue
        row = np.where(applied & (idx != NO_RULE), idx, none_row)
        sev = np.where(applied, sev_c[row], SEVERITY[CLEAN])
        severity = np.maximum(severity, sev)
        alt = applied & (sev == SEVERITY[ALTERING])
        delta = delta + np.where(alt[:, None], delta_c[row], 0.0)
        expected = expected + np.where(alt[:, None], delta_c[row] * flip_c[row][:, None], 0.0)
        disputed |= alt & disputed_c[row]
        unrated |= applied & unrated_c[row]
    return Perception(torch.from_numpy(severity), dict(rules), torch.from_numpy(delta), torch.from_numpy(expected),
                      torch.from_numpy(disputed), torch.from_numpy(unrated))
