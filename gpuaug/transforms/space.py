"""Parameter declarations: each transform's ranges, declared once, as data (kornia style).

A transform declares, per drawn parameter, what it may take at all (:class:`Limit`: bounds
and unit, or the allowed names of a categorical parameter) and builds from its constructor
arguments what it draws (:class:`Uniform`, :class:`Choice`, :class:`Fixed`). That one
declaration is read by

* the validation (:func:`declare`: a value outside the limits raises ``ValueError`` naming
  the transform, the argument and the limits, at construction);
* the sampler (:func:`draw_space`: one counter-based stream per parameter);
* the record (categorical values are numbers in ``params``; :func:`annotate_space` adds
  their names, ``{name}_name``);
* the policy (:func:`gpuaug.policy.rules.possible` evaluates the perception rules on the
  declared ranges, :func:`gpuaug.policy.rules.evaluate` on each clip's values).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Union

import torch
from torch import Tensor

__all__ = ["Limit", "Uniform", "Choice", "Fixed", "Space", "declare", "draw_space", "annotate_space",
           "describe_space"]


@dataclass(frozen=True)
class Limit:
    """What one parameter may take.

    Numeric: ``lo <= value <= hi`` (``lo_open`` / ``hi_open`` exclude the bound), in ``unit``.
    Categorical: ``names`` (the value drawn is the index into ``names``).
    """

    lo: float = -math.inf
    hi: float = math.inf
    unit: str = ""
    doc: str = ""
    lo_open: bool = False
    hi_open: bool = False
    names: tuple[str, ...] | None = None

    def admits(self, v) -> bool:
        if self.names is not None:
            return v in self.names
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(float(v)):
            return False
        lo_ok = v > self.lo if self.lo_open else v >= self.lo
        hi_ok = v < self.hi if self.hi_open else v <= self.hi
        return lo_ok and hi_ok

    def text(self) -> str:
        if self.names is not None:
            return f"one of {self.names}"
        lb = "(" if self.lo_open else "["
        rb = ")" if self.hi_open else "]"
        return f"{lb}{self.lo:g}, {self.hi:g}{rb}{' ' + self.unit if self.unit else ''}"


@dataclass(frozen=True)
class Uniform:
    """Drawn uniformly in ``[lo, hi]`` (float64)."""

    lo: float
    hi: float
    stream: str

    @property
    def values(self) -> tuple[float, ...]:
        return (self.lo, self.hi)


@dataclass(frozen=True)
class Choice:
    """One of ``values`` per clip, uniformly; categorical when ``names`` is set (``values`` are
    then the indices of the chosen names in the limit's ``names``)."""

    values: tuple
    stream: str
    names: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Fixed:
    """The same value for every clip (not drawn)."""

    value: float

    @property
    def values(self) -> tuple[float, ...]:
        return (self.value,)


Space = dict[str, Union[Uniform, Choice, Fixed]]


def declare(owner: str, limits: dict[str, Limit], name: str, *, lo=None, hi=None, choices=None, value=None,
            stream: str | None = None, args: str | None = None):
    """The draw of parameter ``name`` of transform ``owner`` from its constructor arguments,
    checked against ``limits[name]``.

    Exactly one of: ``lo`` and ``hi`` (uniform), ``choices`` (a non-empty sequence), ``value``
    (fixed). ``args`` names the constructor argument(s) in messages (default ``name``).

    Raises:
        ValueError: ``lo > hi``, an empty or non-finite choice, or a value outside the limit,
        naming ``owner``, the argument and the limit.
    """
    lim = limits[name]
    args = args or name
    stream = stream or name
    if choices is not None:
        vals = (choices,) if isinstance(choices, (str, int, float)) else tuple(choices)
        if not vals:
            raise ValueError(f"{owner}: {args} must not be empty")
        bad = [v for v in vals if not lim.admits(v if lim.names is not None else _num(v))]
        if bad:
            raise ValueError(f"{owner}: {args}={vals!r} has {bad!r} outside {lim.text()}"
                             + (f" ({lim.doc})" if lim.doc else ""))
        if lim.names is not None:
            return Choice(tuple(float(lim.names.index(v)) for v in vals), stream, tuple(vals))
        return Choice(tuple(float(v) for v in vals), stream)
    if value is not None:
        if not lim.admits(_num(value)):
            raise ValueError(f"{owner}: {args}={value!r} outside {lim.text()}" + (f" ({lim.doc})" if lim.doc else ""))
        return Fixed(float(value))
    lo, hi = _num(lo), _num(hi)
    bad = [v for v in (lo, hi) if not lim.admits(v)]
    if bad:
        raise ValueError(f"{owner}: {args}=({lo!r}, {hi!r}) has {bad!r} outside {lim.text()}"
                         + (f" ({lim.doc})" if lim.doc else ""))
    if lo > hi:
        raise ValueError(f"{owner}: {args} must have min <= max, got ({lo:g}, {hi:g})")
    return Uniform(float(lo), float(hi), stream)


def _num(v):
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return v
    return float(v)


def draw_space(space: Space, draw: Callable[[str], Tensor], batch: int) -> dict[str, Tensor]:
    """``{name: (B,) float64}`` drawn from ``space`` (categorical choices: int64 indices)."""
    out = {}
    for name, d in space.items():
        if isinstance(d, Fixed):
            out[name] = torch.full((batch,), d.value, dtype=torch.float64)
        elif isinstance(d, Uniform):
            out[name] = d.lo + (d.hi - d.lo) * draw(d.stream)
        else:
            v = torch.as_tensor(d.values, dtype=torch.float64)
            i = torch.clamp((draw(d.stream) * v.numel()).long(), max=v.numel() - 1)
            out[name] = v[i].long() if d.names is not None else v[i]
    return out


def annotate_space(space: Space, limits: dict[str, Limit], entry: dict) -> dict:
    """Add ``{name}_name`` to a record entry for every categorical parameter of ``space``."""
    for name, d in space.items():
        if isinstance(d, Choice) and d.names is not None and name in entry:
            entry[f"{name}_name"] = limits[name].names[int(entry[name])]
    return entry


def describe_space(space: Space) -> str:
    """``factor=U(0.95, 1.05), snr_db={0, 10, 20}`` for :meth:`Transform.describe`."""
    parts = []
    for name, d in space.items():
        if isinstance(d, Fixed):
            parts.append(f"{name}={d.value:g}")
        elif isinstance(d, Uniform):
            parts.append(f"{name}=U({d.lo:g}, {d.hi:g})")
        elif d.names is not None:
            parts.append(f"{name}={{{', '.join(d.names)}}}")
        else:
            parts.append(f"{name}={{{', '.join(f'{v:g}' for v in d.values)}}}")
    return ", ".join(parts)
