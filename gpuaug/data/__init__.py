"""Data side: padding, datasets, the augmenting collate and the device stage.

Layering (each imports only those before it): ``_sync`` / ``random`` / ``audio_io`` /
``banks`` / ``functional`` -> ``policy`` -> ``transforms`` -> ``presets`` -> ``data`` -> ``train`` -> ``cli``.
"""
from ..audio_io import read_audio
from ..banks import Bank, MissingBankItem
from .batch import Batch
from .collate import AugmentCollate
from .datasets import ManifestDataset, SyntheticSERDataset
from .device_stage import DeviceLoader
from .emodb import EmoDBDataset
from .iemocap import IEMOCAPDataset
from .layouts import insert_bank_from_folder, noise_bank_from_folder, rir_bank_from_folder
from .padding import pad_batch
from .selection import Selector

__all__ = ["Bank", "MissingBankItem", "pad_batch", "AugmentCollate", "Batch", "DeviceLoader", "Selector",
           "ManifestDataset", "SyntheticSERDataset", "IEMOCAPDataset", "EmoDBDataset", "noise_bank_from_folder",
           "rir_bank_from_folder", "insert_bank_from_folder", "read_audio"]
