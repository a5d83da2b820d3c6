"""Transforms: per-clip parameter drawing (seeded per item) and thin wrappers over the ops."""
from .base import Context, Transform
from .containers import Compose, OneOf, SomeOf
from .editing import DropSegments, InsertClip
from .level import Fade, Gain
from .noise import AddNoise, WhiteNoise
from .pipeline import AugmentResult, PerceptionPolicyError, Pipeline
from .room import Reverb
from .timing import Speed, SpeedSegment
from .voice import VTLN, McAdams, ModulationSmoothing, PitchShift

__all__ = [
    "Context", "Transform", "Compose", "OneOf", "SomeOf", "Pipeline", "AugmentResult",
    "PerceptionPolicyError", "AddNoise", "WhiteNoise", "Reverb", "Fade", "Gain", "Speed",
    "SpeedSegment", "PitchShift", "McAdams", "VTLN", "ModulationSmoothing", "InsertClip",
    "DropSegments",
]
