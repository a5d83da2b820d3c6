"""Ready-made pipelines: the seeds' recommended set and the papers' experimental conditions.

All presets take the banks they need (see :class:`gpuaug.banks.Bank`) and return
:class:`gpuaug.transforms.Pipeline` objects (or a dict of them, one per condition).
"""
from __future__ import annotations

import math

from .banks import Bank
from .transforms import (
    VTLN, AddNoise, DropSegments, Fade, InsertClip, McAdams, ModulationSmoothing, Pipeline, PitchShift, Reverb,
    Speed, SpeedSegment, WhiteNoise,
)
from .transforms.noise import STUDY_NOISE_CATEGORIES, is_vocal_burst
from .transforms.voice import SEED003_GRIDS
from .policy.labels import LabelPolicy

__all__ = [
    "STUDY_SNRS_DB", "SEED002_SNRS_DB", "perception_retaining", "all_noises", "seed000_table1",
    "seed002_noise_levels", "seed003_attacks", "seed003_grid", "SEED003_ATTACKS", "seed004_perturbations",
    "PRESET_NAMES", "build_preset", "study_noise",
]

#: SNRs of the perception study's continuous-noise conditions (seeds 000/001).
STUDY_SNRS_DB = (0.0, 10.0, 20.0)
#: Seed 002's noise levels (babble, music, transportation).
SEED002_SNRS_DB = (-10.0, -5.0, 0.0, 5.0)


def _study_categories(bank: Bank) -> list[str]:
    cats = [c for c in bank.categories() if c in STUDY_NOISE_CATEGORIES]
    if not cats:
        raise ValueError(f"noise bank has none of the study's categories {STUDY_NOISE_CATEGORIES}; has {bank.categories()}")
    return cats


def study_noise(bank: Bank) -> Bank:
    """The bank's items of the study's categories, without emotional vocal bursts (files whose
    name says laughter, crying, ...: :func:`~gpuaug.transforms.noise.is_vocal_burst`), which are
    not rated as noise and are the bursts the seeds advise against."""
    cats = set(_study_categories(bank))
    rows = [i for i, (n, c) in enumerate(zip(bank.names, bank.category_ids.tolist()))
            if bank.category_names[c] in cats and not is_vocal_burst(n)]
    if not rows:
        raise ValueError(f"noise bank {bank.describe()} has only vocal bursts in the study's categories")
    if len(rows) == len(bank):
        return bank
    return bank.subset(rows, name=f"{bank.name or 'bank'} (study categories, no vocal bursts)")


def perception_retaining(noise_bank: Bank, rir_bank: Bank | None = None, *, sample_rate: int = 16000,
                         p_noise: float = 0.8, p_other: float = 0.25) -> Pipeline:
    """The seeds' recommended perception-retaining set (seed 001 8.6, seed 000 6).

    Environmental noise of the study's categories at 20/10/0 dB, at the start fading out
    or continuous (``p_noise``; files that are emotional vocal bursts, e.g. laughter in a
    "human" folder, are left out); reverberation (``rir_bank``, else synthetic rooms: see
    ``describe()``), a fade in/out at 2 %/s, a 1.25x speed-up of <= 25 % of the clip, and
    whole-utterance speed within +-5 % (``p_other`` each). Built with ``require="retaining"``.
    Letter dropping is not in it: the papers dropped letters by phonological rules, and
    random segments are unverified; word dropping needs a transcript
    (``DropSegments(mode="word")``).
    """
    return Pipeline(
        [
            AddNoise(study_noise(noise_bank), snr_db_choices=STUDY_SNRS_DB, placements=("continuous", "start"),
                     p=p_noise),
            Reverb(rir_bank, p=p_other),
            Fade(p=p_other),
            SpeedSegment(p=p_other),
            Speed(min_factor=0.95, max_factor=1.05, p=p_other),
        ],
        sample_rate=sample_rate, require="retaining",
    )


def all_noises(noise_bank: Bank, *, sample_rate: int = 16000, snr_db_choices=STUDY_SNRS_DB,
               label_policy: LabelPolicy | None = None, p: float = 1.0) -> Pipeline:
    """Every category of the bank, every placement and span length, at ``snr_db_choices``.

    Categories outside the study (babble, music, ...) come out ``unverified`` on the record.
    """
    return Pipeline(
        [AddNoise(noise_bank, snr_db_choices=snr_db_choices, placements=("continuous", "start", "span"),
                  span_lengths=("short", "medium", "complete"), p=p)],
        sample_rate=sample_rate, label_policy=label_policy,
    )


def seed000_table1(noise_bank: Bank, insert_bank: Bank | None = None, rir_bank: Bank | None = None, *,
                   sample_rate: int = 16000, label_policy: LabelPolicy | None = None) -> dict[str, Pipeline]:
    """One pipeline per condition of the perception study (seed 001 Table 2 / seed 000 5.1).

    Keys follow the table: ``NatSt``, ``NatCo_0dB`` ..., ``SpeedSeg``, ``FadeIn``, ``FadeOut``,
    ``DropLetters``, ``Reverb``, ``Speed_0.75x``, ``Speed_1.25x``, ``Pitch_0.75x``,
    ``Pitch_1.25x``, ``DropWord`` (one of the papers' function words: call it with
    ``alignments=`` and ``word_text=``) and, with an ``insert_bank`` having ``filler`` /
    ``laugh`` / ``cry`` categories, ``FillerS``, ``FillerL`` (0.5 s of silence on each side),
    ``Laugh``, ``Cry`` (appended at the end). ``DropLetters`` drops random 20-60 ms segments,
    not the papers' phonological rule: it is tagged ``unverified``; so are the fillers, whose
    speaker the bank does not record (the study used the speaker's own).
    """
    policy = label_policy or LabelPolicy()

    def pipe(t):
        return Pipeline([t], sample_rate=sample_rate, label_policy=policy)

    short = {"natural": "Nat", "human": "Hum", "interior": "Int", "domestic": "Int"}
    out: dict[str, Pipeline] = {}
    for cat in _study_categories(noise_bank):
        out[f"{short[cat]}St"] = pipe(AddNoise(noise_bank, categories=[cat], snr_db_choices=STUDY_SNRS_DB,
                                               placements=("start",)))
        for snr in STUDY_SNRS_DB:
            out[f"{short[cat]}Co_{snr:g}dB"] = pipe(AddNoise(noise_bank, categories=[cat], snr_db_choices=(snr,)))
    out["SpeedSeg"] = pipe(SpeedSegment(factor=1.25, min_fraction=0.25, max_fraction=0.25))
    out["FadeIn"] = pipe(Fade(directions=("in",)))
    out["FadeOut"] = pipe(Fade(directions=("out",)))
    out["DropLetters"] = pipe(DropSegments(mode="letters"))
    out["DropWord"] = pipe(DropSegments(mode="word", words="function"))
    out["Reverb"] = pipe(Reverb(rir_bank))
    for f in (0.75, 1.25):
        out[f"Speed_{f}x"] = pipe(Speed(factor_choices=(f,)))
        out[f"Pitch_{f}x"] = pipe(PitchShift(semitone_choices=(12 * math.log2(f),)))
    if insert_bank is not None:
        cats = set(insert_bank.categories())
        if "filler" in cats:
            out["FillerS"] = pipe(InsertClip(insert_bank, categories=["filler"]))
            out["FillerL"] = pipe(InsertClip(insert_bank, categories=["filler"], silence_before_s=(0.5,),
                                             silence_after_s=(0.5,)))
        for cat, key in (("laugh", "Laugh"), ("cry", "Cry")):
            if cat in cats:
                out[key] = pipe(InsertClip(insert_bank, categories=[cat], positions=("end",)))
    return out


def seed002_noise_levels(noise_bank: Bank, *, categories=None, sample_rate: int = 16000,
                         label_policy: LabelPolicy | None = None) -> Pipeline:
    """Seed 002: noise at -10 / -5 / 0 / 5 dB SNR (babble, music, transportation banks)."""
    return Pipeline([AddNoise(noise_bank, categories=categories, snr_db_choices=SEED002_SNRS_DB)],
                    sample_rate=sample_rate, label_policy=label_policy)


#: Seed 003's attacks: gpuaug transform and the preset name of each.
SEED003_ATTACKS = {"mcadams": McAdams, "vtln": VTLN, "mss": ModulationSmoothing}


def seed003_attacks(*, sample_rate: int = 16000) -> dict[str, dict[float, Pipeline]]:
    """Seed 003's voice-modification attacks as run: one pipeline per point of its fixed
    0.05-step alpha grid (:data:`~gpuaug.transforms.voice.SEED003_GRIDS`: McAdams 0.75..1.25,
    VTLN -0.2..0.2, MSS 0.05..0.3), ``{"mcadams": {0.75: Pipeline, ...}, "vtln": ..., "mss": ...}``."""
    return {name: {a: Pipeline([cls(alpha_choices=(a,))], sample_rate=sample_rate)
                   for a in SEED003_GRIDS[cls.name]} for name, cls in SEED003_ATTACKS.items()}


def seed003_grid(name: str, *, sample_rate: int = 16000) -> Pipeline:
    """One attack over its whole grid: a grid point drawn per clip (for training-time use)."""
    cls = SEED003_ATTACKS[name]
    return Pipeline([cls(alpha_choices=SEED003_GRIDS[cls.name])], sample_rate=sample_rate)


def seed004_perturbations(*, sample_rate: int = 16000) -> dict[str, Pipeline]:
    """Seed 004's two acoustic perturbations, separate conditions as in its Table 6:
    ``pitch`` (+-1 semitone, the sign chosen at random) and ``white_noise`` (sigma 0.1)."""
    return {"pitch": Pipeline([PitchShift(semitone_choices=(-1.0, 1.0))], sample_rate=sample_rate),
            "white_noise": Pipeline([WhiteNoise(sigma=0.1)], sample_rate=sample_rate)}


#: Names accepted by :func:`build_preset` (plus ``seed000:<condition>`` for each condition).
PRESET_NAMES = ("retaining", "all_noises", "seed002", "mcadams", "vtln", "mss", "seed004:pitch",
                "seed004:white_noise")


def build_preset(name: str, *, noise: Bank, rir: Bank | None = None, insert: Bank | None = None,
                 sample_rate: int = 16000, label_policy: LabelPolicy | None = None) -> Pipeline:
    """A preset pipeline by name (for command lines and configs); see :data:`PRESET_NAMES`."""
    if name.startswith("seed000:"):
        conds = seed000_table1(noise, insert, rir, sample_rate=sample_rate, label_policy=label_policy)
        cond = name.split(":", 1)[1]
        if cond not in conds:
            raise KeyError(f"unknown seed000 condition {cond!r}; available: {sorted(conds)}")
        return conds[cond]
    builders = {
        "retaining": lambda: perception_retaining(noise, rir, sample_rate=sample_rate),
        "all_noises": lambda: all_noises(noise, sample_rate=sample_rate, label_policy=label_policy),
        "seed002": lambda: seed002_noise_levels(noise, sample_rate=sample_rate, label_policy=label_policy),
        **{f"seed004:{k}": (lambda k=k: seed004_perturbations(sample_rate=sample_rate)[k])
           for k in ("pitch", "white_noise")},
        **{k: (lambda k=k: seed003_grid(k, sample_rate=sample_rate)) for k in SEED003_ATTACKS},
    }
    if name not in builders:
        raise KeyError(f"unknown preset {name!r}; available: {list(PRESET_NAMES)} or 'seed000:<condition>'")
    return builders[name]()
