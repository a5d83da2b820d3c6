"""Data side: banks of noises / RIRs / insert clips, padding, and the built-in synthetic corpus."""
from .banks import Bank
from .padding import pad_batch

__all__ = ["Bank", "pad_batch"]
