"""Composition: sequence, weighted one-of, some-of (min/max count).

Containers draw their own choices per clip from their slot's streams and pass an
``active`` mask down; every leaf still runs once on the subset of clips it applies to.
"""
from __future__ import annotations

import torch
from torch import Tensor

from .base import Context, Draw, Transform, draw_index

__all__ = ["Compose", "OneOf", "SomeOf"]


class _Container(Transform):
    name = "container"

    def __init__(self, transforms, p: float = 1.0):
        super().__init__(p)
        self.transforms = list(transforms)
        if not self.transforms:
            raise ValueError(f"{type(self).__name__} needs at least one transform")
        for t in self.transforms:
            if not isinstance(t, Transform):
                raise TypeError(f"{type(self).__name__} takes Transform objects, got {type(t).__name__}")

    @property
    def changes_length(self) -> bool:  # type: ignore[override]
        return any(t.changes_length for t in self.transforms)

    def bind(self, slot: str) -> None:
        super().bind(slot)
        for i, t in enumerate(self.transforms):
            t.bind(f"{slot}/{i}.{t.name}")

    def leaves(self) -> list[Transform]:
        return [leaf for t in self.transforms for leaf in t.leaves()]

    def sample(self, keys: Tensor) -> dict:
        out = super().sample(keys)
        for t in self.transforms:
            out.update(t.sample(keys))
        return out

    def child_masks(self, own: dict, batch: int) -> list[Tensor]:
        raise NotImplementedError

    def run(self, wave, lengths, params, ctx: Context, active: Tensor):
        own = params[self.slot]
        on = active & own["apply"]  # host masks (no sync)
        own["apply"] = on
        B = wave.shape[0]
        masks = [torch.ones(B, dtype=torch.bool)] * len(self.transforms) if "replay" in own else self.child_masks(own, B)
        ts, i = self.transforms, 0
        while i < len(ts):  # a transform that fuses with its successor runs both (Transform.run's then=)
            if i + 1 < len(ts) and ts[i].fuses_with(ts[i + 1], wave.device):
                wave, lengths = ts[i].run(wave, lengths, params, ctx, on & masks[i], then=(ts[i + 1], on & masks[i + 1]))
                i += 2
            else:
                wave, lengths = ts[i].run(wave, lengths, params, ctx, on & masks[i])
                i += 1
        return wave, lengths

    def possible_tags(self) -> set[str]:
        return set().union(*(t.possible_tags() for t in self.transforms))

    def describe(self) -> str:
        inner = ", ".join(t.describe() for t in self.transforms)
        return f"{type(self).__name__}([{inner}], p={self.p})"


class Compose(_Container):
    """Apply the transforms in order (each with its own ``p``)."""

    name = "compose"

    def child_masks(self, own, batch):
        return [torch.ones(batch, dtype=torch.bool)] * len(self.transforms)


class OneOf(_Container):
    """Apply exactly one of the transforms per clip, chosen with ``weights``."""

    name = "one_of"

    def __init__(self, transforms, weights=None, p: float = 1.0):
        super().__init__(transforms, p)
        w = torch.ones(len(self.transforms), dtype=torch.float64) if weights is None else torch.as_tensor(weights, dtype=torch.float64)
        if w.shape != (len(self.transforms),) or bool((w < 0).any()) or float(w.sum()) <= 0:
            raise ValueError(f"OneOf: weights must be {len(self.transforms)} non-negative numbers with a positive sum")
        self.weights = w / w.sum()

    def draw_params(self, draw: Draw, batch: int):
        cdf = torch.cumsum(self.weights, 0)
        choice = torch.searchsorted(cdf, draw("choice"), right=True).clamp(max=len(self.transforms) - 1)
        return {"choice": choice}

    def child_masks(self, own, batch):
        return [own["choice"] == i for i in range(len(self.transforms))]


class SomeOf(_Container):
    """Apply a random subset of ``min_count..max_count`` transforms per clip (in order)."""

    name = "some_of"

    def __init__(self, transforms, min_count: int = 1, max_count: int | None = None, p: float = 1.0):
        super().__init__(transforms, p)
        n = len(self.transforms)
        max_count = n if max_count is None else max_count
        if not 0 <= min_count <= max_count <= n:
            raise ValueError(f"SomeOf: need 0 <= min_count <= max_count <= {n}, got {min_count}, {max_count}")
        self.min_count, self.max_count = min_count, max_count

    def draw_params(self, draw: Draw, batch: int):
        count = self.min_count + draw_index(draw, "count", self.max_count - self.min_count + 1)
        scores = torch.stack([draw(f"score{i}") for i in range(len(self.transforms))], dim=1)
        rank = scores.argsort(dim=1).argsort(dim=1)
        chosen = rank < count[:, None]
        return {"count": count, **{f"chosen{i}": chosen[:, i] for i in range(len(self.transforms))}}

    def child_masks(self, own, batch):
        return [own[f"chosen{i}"] for i in range(len(self.transforms))]
