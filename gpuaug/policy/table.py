"""The perception table: what the human-perception study says about each augmentation.

One row per (augmentation, variant) of ``perception_study.csv`` (shipped as package data,
source in ``SOURCE.md``), plus the families the study did not cover, which are tagged
``unverified``. Every perception decision in gpuaug is read from this table.
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
    "StudyRow", "study_rows", "lookup", "worst", "UNVERIFIED_FAMILIES",
]

#: Augmentations outside the study (seed 003 attacks, seed 004 perturbations, extras).
UNVERIFIED_FAMILIES = {
    "mcadams": "seed003 attack (McAdams alpha 0.75-1.25); not in the perception study",
    "vtln": "seed003 attack (VTLN alpha -0.2..0.2); not in the perception study",
    "modulation_smoothing": "seed003 attack (MSS alpha 0.05-0.3); not in the perception study",
    "pitch_small": "seed004 perturbation (+-1 semitone); not in the perception study",
    "white_noise": "seed004 perturbation (sigma 0.1); not in the perception study",
    "gain": "level change; loudness is an arousal cue; not in the perception study",
    "env_noise_other": "noise category or SNR outside the study's conditions",
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


def worst(tags) -> str:
    """The most severe of several tags (``clean`` for none)."""
    out = CLEAN
    for t in tags:
        if SEVERITY[t] > SEVERITY[out]:
            out = t
    return out
