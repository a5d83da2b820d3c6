"""Perception policy: the study table (data), label handling, and presets.

``presets`` imports the transforms, which import this package's table, so the preset
functions are loaded lazily on first access.
"""
from .labels import ACTIONS, LabelAction, LabelPolicy
from .table import ALTERING, CLEAN, RETAINING, UNVERIFIED, StudyRow, lookup, study_rows

_PRESETS = ("perception_retaining", "all_noises", "seed000_table1", "seed002_noise_levels",
            "seed003_attacks", "seed004_perturbations", "STUDY_SNRS_DB", "SEED002_SNRS_DB",
            "PRESET_NAMES", "build_preset")

__all__ = ["ACTIONS", "LabelAction", "LabelPolicy", "ALTERING", "CLEAN", "RETAINING", "UNVERIFIED",
           "StudyRow", "lookup", "study_rows", *_PRESETS]


def __getattr__(name):
    if name in _PRESETS:
        from . import presets

        return getattr(presets, name)
    raise AttributeError(f"module 'gpuaug.policy' has no attribute {name!r}")
