"""gpuaug: GPU-batched, perception-aware on-the-fly audio augmentation for SER.

Layers: :mod:`gpuaug.functional` (pure batched ops), :mod:`gpuaug.transforms` (seeded
parameter drawing, composition, replay), :mod:`gpuaug.policy` (perception table, label
handling, presets), :mod:`gpuaug.data` (banks, padding, built-in synthetic corpus).
"""
from . import functional
from .policy import LabelPolicy
from .transforms import Pipeline

__version__ = "0.1.0"
__all__ = ["functional", "Pipeline", "LabelPolicy", "__version__"]
