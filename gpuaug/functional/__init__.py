"""Pure batched ops: ``op(wave, lengths, *, per-clip params) -> (wave, lengths)``.

No randomness, no state: every parameter is a per-clip tensor (or a scalar broadcast to
all clips). Conventions (shapes, padding, errors) are in :mod:`gpuaug.functional._batch`.
"""
from .drop import drop_segments
from .fade import fade
from .gain import gain
from .insert import insert_clip
from .lpc import burg_lpc
from .mcadams import mcadams
from .mss import modulation_smoothing
from .noise import mix_noise, mix_noise_from_bank, valid_power, white_noise
from .pitch import factor_to_semitones, pitch_shift
from .resample import resample, warp
from .reverb import reverb, synthetic_rir
from .speed import speed, speed_segment
from .tempo import tempo_segment
from .vtln import vtln

__all__ = [
    "drop_segments", "fade", "gain", "insert_clip", "burg_lpc", "mcadams", "modulation_smoothing",
    "mix_noise", "mix_noise_from_bank", "valid_power", "white_noise", "factor_to_semitones", "pitch_shift", "resample", "warp",
    "reverb", "synthetic_rir", "speed", "speed_segment", "tempo_segment", "vtln",
]
