"""gpuaug: GPU-batched, perception-aware on-the-fly audio augmentation for SER.

Layers, each importing only those above it in this list: :mod:`gpuaug.banks` (noise / RIR /
insert clips), :mod:`gpuaug.functional` (pure batched ops), :mod:`gpuaug.policy` (the
perception table and rules, label handling), :mod:`gpuaug.transforms` (seeded parameter
drawing, composition, replay), :mod:`gpuaug.presets` (the seeds' pipelines), :mod:`gpuaug.data`
(padding, datasets, the augmenting collate, the device stage). What a training script needs is
exported here, so one ``import gpuaug`` is enough.
"""
from . import functional
from .banks import Bank, MissingBankItem
from .data import (
    AugmentCollate, Batch, DeviceLoader, ManifestDataset, SyntheticSERDataset, insert_bank_from_folder,
    noise_bank_from_folder, pad_batch, rir_bank_from_folder,
)
from .policy import LabelPolicy
from .presets import (
    PRESET_NAMES, all_noises, build_preset, perception_retaining, seed000_table1, seed002_noise_levels,
    seed003_attacks, seed004_perturbations,
)
from .transforms import (
    VTLN, AddNoise, Compose, DropSegments, Fade, Gain, InsertClip, McAdams, ModulationSmoothing, OneOf,
    Pipeline, PitchShift, Reverb, SomeOf, Speed, SpeedSegment, WhiteNoise,
)

__version__ = "0.1.0"
__all__ = [
    "functional", "Bank", "MissingBankItem", "AugmentCollate", "Batch", "DeviceLoader", "ManifestDataset",
    "SyntheticSERDataset", "noise_bank_from_folder", "rir_bank_from_folder", "insert_bank_from_folder",
    "pad_batch", "LabelPolicy", "PRESET_NAMES", "all_noises", "build_preset", "perception_retaining",
    "seed000_table1", "seed002_noise_levels", "seed003_attacks", "seed004_perturbations", "Pipeline",
    "Compose", "OneOf", "SomeOf", "AddNoise", "WhiteNoise", "Reverb", "Fade", "Gain", "Speed", "SpeedSegment",
    "PitchShift", "McAdams", "VTLN", "ModulationSmoothing", "InsertClip", "DropSegments", "__version__",
]
