"""audiomentations (numpy, one clip at a time) in DataLoader workers, as users run it.

Each benchmark step of :data:`common.PIPELINES` maps to an audiomentations transform with
the same parameters, an approximation (said so in :func:`step_map`), or ``n/a``.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from common import SR, STEP_PARAMS


def step_map(seconds: float) -> dict[str, str]:
    """How each step is done by audiomentations (``n/a`` where it has no such op)."""
    return {
        "noise": "AddBackgroundNoise(same 16 kHz files, SNR U[0, 20] dB; no cache since v0.43: reads a file per clip)",
        "reverb": "ApplyImpulseResponse(same 16 kHz RIR files, leave_length_unchanged)",
        "fade": f"approx: GainTransition({fade_gain_db(seconds):.2f} dB -> 0 dB over the whole clip)",
        "speed_segment": "n/a",
        "pitch": "PitchShift(+1 semitone, signalsmith_stretch)",
        "speed": "approx: Resample(15238-16842 Hz, read back at 16 kHz = speed 0.95-1.05)",
        "gain": "Gain(-6..6 dB)",
        "drop": "approx: TimeMask(one 20-60 ms segment silenced, not cut)",
        "mcadams": "n/a",
    }


def fade_gain_db(seconds: float) -> float:
    """Level change of gpuaug's 2 %/s linear fade over a clip of ``seconds`` (dB, <= 0)."""
    return 20 * math.log10(max(1e-3, 1 - STEP_PARAMS["fade"]["rate_per_s"] * seconds))


def build(steps: list[str], seconds: float, noise_files: list[str], rir_files: list[str]):
    """``(Compose, ops)``: the audiomentations pipeline of ``steps`` and the per-step mapping."""
    import audiomentations as A

    P = STEP_PARAMS
    snr = P["noise"]["snr_db_choices"]
    lo, hi = P["speed"]["min_factor"], P["speed"]["max_factor"]
    part = (P["drop"]["min_ms"] * 1e-3 / seconds, P["drop"]["max_ms"] * 1e-3 / seconds)
    make = {
        "noise": lambda: A.AddBackgroundNoise(sounds_path=noise_files, min_snr_db=min(snr), max_snr_db=max(snr),
                                              p=1.0),
        "reverb": lambda: A.ApplyImpulseResponse(ir_path=rir_files, p=1.0, lru_cache_size=len(rir_files),
                                                 leave_length_unchanged=True),
        "fade": lambda: A.GainTransition(min_gain_db=fade_gain_db(seconds), max_gain_db=0.0, min_duration=1.0,
                                         max_duration=1.0, duration_unit="fraction", p=1.0),
        "pitch": lambda: A.PitchShift(min_semitones=P["pitch"]["semitones"], max_semitones=P["pitch"]["semitones"],
                                      p=1.0),
        "speed": lambda: A.Resample(min_sample_rate=int(SR / hi), max_sample_rate=int(math.ceil(SR / lo)), p=1.0),
        "gain": lambda: A.Gain(min_gain_db=P["gain"]["min_gain_db"], max_gain_db=P["gain"]["max_gain_db"], p=1.0),
        "drop": lambda: A.TimeMask(min_band_part=part[0], max_band_part=part[1], p=1.0),
    }
    ops = step_map(seconds)
    return A.Compose([make[s]() for s in steps if s in make], p=1.0), {s: ops[s] for s in steps}


class ClipDataset(torch.utils.data.Dataset):
    """Item ``i`` is clip ``i % B`` of ``clips`` augmented by ``augment`` (numpy, per clip)."""

    def __init__(self, clips: np.ndarray, n_items: int, augment=None):
        self.clips, self.n_items, self.augment = clips, n_items, augment

    def __len__(self) -> int:
        return self.n_items

    def __getitem__(self, i: int) -> np.ndarray:
        x = self.clips[i % self.clips.shape[0]]
        return self.augment(samples=x, sample_rate=SR) if self.augment is not None else x


def pad_collate(items: list[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
    """Zero-pad numpy clips into ``(B, T_max)`` float32 plus ``(B,)`` lengths."""
    lengths = torch.tensor([x.shape[-1] for x in items], dtype=torch.int64)
    out = torch.zeros(len(items), int(lengths.max()))
    for i, x in enumerate(items):
        out[i, : x.shape[-1]] = torch.from_numpy(np.asarray(x, dtype=np.float32))
    return out, lengths


def loader(dataset, batch: int, workers: int) -> torch.utils.data.DataLoader:
    """A DataLoader as a training script would build it (persistent workers, default prefetch)."""
    return torch.utils.data.DataLoader(dataset, batch_size=batch, shuffle=False, num_workers=workers,
                                       collate_fn=pad_collate, persistent_workers=workers > 0)


def epoch(dl) -> int:
    """Iterate one epoch; returns the number of clips seen."""
    n = 0
    for wave, _ in dl:
        n += wave.shape[0]
    return n
