"""Data side: banks, padding, datasets, the augmenting collate and the device stage.

The collate and datasets import the transforms (which import :mod:`gpuaug.data.banks`),
so they are loaded lazily on first access.
"""
from importlib import import_module

from .banks import Bank, MissingBankItem
from .padding import pad_batch

_LAZY = {
    "AugmentCollate": "collate", "Batch": "batch", "DeviceLoader": "device_stage", "Selector": "selection",
    "ManifestDataset": "datasets", "SyntheticSERDataset": "datasets", "IEMOCAPDataset": "iemocap",
    "noise_bank_from_folder": "layouts", "rir_bank_from_folder": "layouts", "insert_bank_from_folder": "layouts",
    "read_audio": "audio_io",
}

__all__ = ["Bank", "MissingBankItem", "pad_batch", *_LAZY]


def __getattr__(name):
    if name in _LAZY:
        return getattr(import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module 'gpuaug.data' has no attribute {name!r}")
