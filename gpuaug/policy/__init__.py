"""Perception policy: the study table and the rules (data), and label handling.

The presets, which combine transforms, live above the transforms in :mod:`gpuaug.presets`.
"""
from .labels import ACTIONS, LabelAction, LabelPolicy
from .table import ALTERING, CLEAN, RETAINING, UNVERIFIED, StudyRow, lookup, study_rows

__all__ = ["ACTIONS", "LabelAction", "LabelPolicy", "ALTERING", "CLEAN", "RETAINING", "UNVERIFIED",
           "StudyRow", "lookup", "study_rows"]
