"""The perception table: what the human-perception study says about each augmentation.

One row per (augmentation, variant) of ``perception_study.csv`` (shipped as package data,
source in ``SOURCE.md``). The decisions (which clip gets which tag) are the rules of
:mod:`gpuaug.policy.rules`, which point at these rows for flip rates and deltas.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

RETAINING = "retaining"
ALTERING = "altering"
UNVERIFIED = "unverified"
CLEAN = "clean"  # clip not augmented at all

#: Severity order used to combine the tags of several transforms applied to one clip.
SEVERITY = {CLEAN: 0, RETAINING: 1, UNVERIFIED: 2, ALTERING: 3}

__all__ = [
    "RETAINING", "ALTERING", "UNVERIFIED", "CLEAN", "SEVERITY",
    "StudyRow", "study_rows", "lookup", "DELTA_DISPUTES", "disputed_rows",
]

#: Where the seeds disagree on the direction of a row's deltas. ``perception_study.csv`` carries
#: seed 001 8.1's numbers; :class:`~gpuaug.policy.labels.LabelPolicy` masks clips whose
#: relabelling would rest on a disputed row unless told to use seed 001's reading.
DELTA_DISPUTES = {
    ("cry", ""): "seed 000 5.2 says crying raises activation; seed 001 8.1 gives -.43",
    ("speed_utterance", "1.25x"): "seed 000 5.2 says faster speech raises activation; seed 001 8.1 puts the "
                                  "speed deltas on valence (the table's signs were lost in extraction)",
    ("speed_utterance", "0.75x"): "seed 001 8.1 puts the speed deltas on valence; the table gives both axes "
                                  "(signs lost in extraction, prose says decreases)",
}


@dataclass(frozen=True)
class StudyRow:
    """One measured condition of the perception study."""

    augmentation: str
    variant: str
    family: str
    perception: str
    frac_changed_1: float
    frac_changed_2: float
    delta_valence: float | None
    delta_activation: float | None
    source: str

    @property
    def flip_rate(self) -> float:
        """Share of clips whose perceived emotion changed (max of the two columns)."""
        return max(self.frac_changed_1, self.frac_changed_2)


def _opt(x: str) -> float | None:
    return float(x) if x.strip() else None


@lru_cache(maxsize=1)
def study_rows() -> tuple[StudyRow, ...]:
    """All rows of the shipped ``perception_study.csv``."""
    text = resources.files("gpuaug.policy").joinpath("perception_study.csv").read_text("utf-8")
    rows = []
    for r in csv.DictReader(text.splitlines()):
        rows.append(
            StudyRow(
                augmentation=r["augmentation"], variant=r["variant"], family=r["family"],
                perception=r["perception"], frac_changed_1=float(r["frac_changed_1"]),
                frac_changed_2=float(r["frac_changed_2"]),
                delta_valence=_opt(r["delta_valence"]), delta_activation=_opt(r["delta_activation"]),
                source=r["source"],
            )
        )
    return tuple(rows)


def lookup(augmentation: str, variant: str = "") -> StudyRow:
    """The study row of ``(augmentation, variant)``; KeyError lists the known variants."""
    for row in study_rows():
        if row.augmentation == augmentation and row.variant == variant:
            return row
    known = sorted({(r.augmentation, r.variant) for r in study_rows()})
    raise KeyError(f"no perception-study row for ({augmentation!r}, {variant!r}); known: {known}")


def disputed_rows() -> set[tuple[str, str]]:
    """``(augmentation, variant)`` of the rows in :data:`DELTA_DISPUTES`."""
    return set(DELTA_DISPUTES)
