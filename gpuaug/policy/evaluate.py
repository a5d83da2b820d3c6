"""Evaluating the perception rules (:mod:`gpuaug.policy.rules`): per clip and on declared ranges.

:func:`evaluate` decides each clip from its policy values; :func:`possible` decides a
transform's declared ranges by calling :func:`evaluate` on a finite set of representative
values: every rule condition is an interval or a set of names, so the rules are constant on
each cell between consecutive interval ends; the ends, the midpoints between them, each
choice and each name visit every cell, and the set of tags found is exact.
"""
from __future__ import annotations

import functools
import itertools
import math
from dataclasses import dataclass
from typing import Union

import numpy as np
import torch
from torch import Tensor

from .rules import RULES, Interval, Rule
from .table import ALTERING, SEVERITY, UNVERIFIED, lookup

__all__ = ["Cat", "Value", "evaluate", "possible", "possible_rules", "NO_RULE", "rule_of", "TOLERANCE"]

#: Absolute tolerance of interval ends (so 12*log2(1.25) semitones or a 1.25 factor computed
#: in float64 match the rated point).
TOLERANCE = 1e-9
#: Rule index of clips no rule matched (``unverified``, not rated).
NO_RULE = -1


@dataclass(frozen=True)
class Cat:
    """A categorical policy value: ``(B,)`` int64 ``codes`` into ``names``."""

    codes: Tensor
    names: tuple[str, ...]


Value = Union[Tensor, Cat]


def _host(t: Tensor) -> np.ndarray:
    """A policy value (a host tensor) as a numpy array (no copy for a plain CPU tensor)."""
    return t.detach().cpu().numpy()


def _in(cond, v, batch: int) -> np.ndarray:
    """Where the numpy value ``v`` (float64 array, or a :class:`Cat` of numpy codes) meets ``cond``."""
    if isinstance(cond, Interval):
        if isinstance(v, Cat):
            return np.zeros(batch, dtype=bool)
        x = v
        lo = x > cond.lo + TOLERANCE if cond.lo_open else x >= cond.lo - TOLERANCE
        hi = x < cond.hi - TOLERANCE if cond.hi_open else x <= cond.hi + TOLERANCE
        m = lo & hi
        return m if m.shape == (batch,) else np.broadcast_to(m, (batch,))
    if not isinstance(v, Cat):
        return np.zeros(batch, dtype=bool)
    return _name_mask(cond, v.names)[v.codes]  # codes clipped to [0, len(names)] by evaluate (len: no such name)


@functools.lru_cache(maxsize=None)
def _name_mask(cond: frozenset, names: tuple) -> np.ndarray:
    """``(len(names) + 1,)`` bool: which of ``names`` the rule's name set ``cond`` holds (then False)."""
    return np.array([n in cond for n in names] + [False], dtype=bool)


@functools.lru_cache(maxsize=None)
def _rules_of(transform: str) -> tuple:
    """``transform``'s ``(index, rule)`` pairs, in :data:`RULES` order."""
    return tuple((i, r) for i, r in enumerate(RULES) if r.transform == transform)


def _matches(rule: Rule, view: dict, batch: int) -> np.ndarray:
    m = np.ones(batch, dtype=bool)
    for name, cond in rule.when.items():
        if name not in view:  # the transform has no such value: the rule cannot match
            return np.zeros(batch, dtype=bool)
        m &= _in(cond, view[name], batch)
    return m


def evaluate(transform: str, view: dict[str, Value], batch: int) -> Tensor:
    """``(B,)`` int64 index into :data:`RULES` of the first rule matching each clip of
    ``transform`` (:data:`NO_RULE` where none does). Loops over rules, not clips; the values
    are host tensors, compared in numpy (many small comparisons per pipeline call)."""
    out = np.full(batch, NO_RULE, dtype=np.int64)
    view = {k: Cat(np.clip(_host(v.codes), 0, len(v.names)), v.names) if isinstance(v, Cat)
            else _host(v).astype(np.float64, copy=False) for k, v in view.items()}  # converted once, compared per rule
    for i, rule in _rules_of(transform):
        undecided = out == NO_RULE
        if not undecided.any():
            break
        out[undecided & _matches(rule, view, batch)] = i
    return torch.from_numpy(out)


def rule_of(index: int) -> Rule | None:
    return None if index == NO_RULE else RULES[index]


def _points(values, transform: str, name: str) -> list:
    """Representative values of one declared dimension (see the module docstring)."""
    if isinstance(values, tuple) and values and isinstance(values[0], str):
        return list(values)
    if isinstance(values, Interval):  # a uniform range: its ends, the rules' ends inside, midpoints
        lo, hi = values.lo, values.hi
        ends = {lo, hi}
        for rule in RULES:
            c = rule.when.get(name) if rule.transform == transform else None
            if isinstance(c, Interval):
                ends |= {e for e in (c.lo, c.hi) if math.isfinite(e) and lo < e < hi}
        ends = sorted(ends)
        return ends + [(a + b) / 2 for a, b in zip(ends, ends[1:])]
    return [float(v) for v in values]


def possible_rules(transform: str, space: dict) -> set[int]:
    """Indices of the rules (or :data:`NO_RULE`) some clip drawn from ``space`` can meet.

    ``space``: ``{value name: Interval (uniform range) | tuple of numbers (choices) |
    tuple of names (categorical)}``, as :meth:`Transform.policy_space` declares it.
    """
    names = list(space)
    grids = [_points(space[n], transform, n) for n in names]
    combos = list(itertools.product(*grids)) or [()]
    B = len(combos)
    view: dict[str, Value] = {}
    for j, n in enumerate(names):
        col = [c[j] for c in combos]
        if grids[j] and isinstance(grids[j][0], str):
            domain = tuple(dict.fromkeys(grids[j]))
            view[n] = Cat(torch.tensor([domain.index(v) for v in col], dtype=torch.int64), domain)
        else:
            view[n] = torch.tensor(col, dtype=torch.float64)
    return set(evaluate(transform, view, B).tolist())


def possible(transform: str, space: dict) -> set[str]:
    """The tags some clip drawn from ``space`` can get (see :func:`possible_rules`)."""
    return {UNVERIFIED if i == NO_RULE else RULES[i].tag for i in possible_rules(transform, space)}


@dataclass(frozen=True)
class RuleColumns:
    """Per-rule lookup columns (index ``len(RULES)`` is :data:`NO_RULE`)."""

    severity: Tensor        # (R+1,) int64
    delta: Tensor           # (R+1, 2) float64 valence / activation (seed 001 reading), NaN = none
    flip_rate: Tensor       # (R+1,) float64, NaN = no row
    unrated_altering: Tensor  # (R+1,) bool: unverified variant of an altering family
    disputed: Tensor        # (R+1,) bool: the seeds disagree on the row's delta direction


def _columns() -> RuleColumns:
    from .table import disputed_rows

    sev, delta, flip, unrated, disp = [], [], [], [], []
    for rule in (*RULES, None):
        tag = UNVERIFIED if rule is None else rule.tag
        sev.append(SEVERITY[tag])
        row = None if rule is None or rule.row is None else lookup(*rule.row)
        has = row is not None and row.delta_valence is not None
        delta.append([row.delta_valence, row.delta_activation] if has else [math.nan, math.nan])
        flip.append(row.flip_rate if row is not None else math.nan)
        unrated.append(rule is not None and tag == UNVERIFIED and rule.family == ALTERING)
        disp.append(rule is not None and rule.row in disputed_rows())
    return RuleColumns(torch.tensor(sev), torch.tensor(delta, dtype=torch.float64),
                       torch.tensor(flip, dtype=torch.float64), torch.tensor(unrated), torch.tensor(disp))


_COLUMNS: RuleColumns | None = None


def columns() -> RuleColumns:
    """The lookup columns of :data:`RULES` (built once)."""
    global _COLUMNS
    if _COLUMNS is None:
        _COLUMNS = _columns()
    return _COLUMNS

