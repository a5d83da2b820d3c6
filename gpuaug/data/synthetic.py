"""A deterministic built-in corpus: synthetic emotional speech, noises, RIRs and insert clips.

Nothing is downloaded: every signal is generated from ``(seed, item index)`` with the
counter-based RNG, so the corpus is identical on every machine. Emotions differ in pitch
(f0), loudness and speaking rate the way acted speech does (anger/happiness: high f0,
loud, fast; sadness: low f0, soft, slow), so a model can learn them.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..functional.reverb import synthetic_rir
from ..random import item_keys, normal, uniform
from ..banks import Bank

__all__ = ["EMOTIONS", "EMOTION_DIMS", "SyntheticItem", "synthetic_item", "synthetic_speech", "synthetic_annotation",
           "synthetic_noise_bank", "synthetic_rir_bank", "synthetic_insert_bank"]

#: label -> (f0 Hz, level (linear), syllables per second)
EMOTIONS = {
    "neutral": (120.0, 0.10, 4.0),
    "happy": (210.0, 0.18, 5.0),
    "sad": (95.0, 0.05, 2.6),
    "angry": (170.0, 0.25, 5.5),
}
#: label -> (valence, activation, dominance) on the 1..5 scale of IEMOCAP-style ratings
EMOTION_DIMS = {
    "neutral": (3.0, 3.0, 3.0),
    "happy": (4.1, 3.8, 3.6),
    "sad": (1.8, 2.0, 2.2),
    "angry": (1.9, 4.1, 3.9),
}
_SPEECH_STREAM = 200
_VOWELS = "aiueo"  # the vowels of _VOWEL_FORMANTS' rows: /a/, /i/, /u/, /e/, /o/
_CONSONANTS = "kstnmlpbdg"
_VOWEL_FORMANTS = torch.tensor([[730.0, 1090.0, 2440.0], [270.0, 2290.0, 3010.0], [300.0, 870.0, 2240.0],
                                [530.0, 1840.0, 2480.0], [570.0, 840.0, 2410.0]])


@dataclass
class SyntheticItem:
    """One corpus item: ``wave`` (T,) float32, integer ``label`` and its name, ``speaker`` id."""

    wave: torch.Tensor
    label: int
    emotion: str
    speaker: int
    index: int


def _voice(key: torch.Tensor, n: int, sr: int, f0: float, level: float, rate: float, stream: int) -> torch.Tensor:
    """A vowel-like voiced signal: harmonics of a jittered f0, formant-weighted, syllable-gated."""
    t = torch.arange(n, dtype=torch.float64) / sr
    u = lambda k: float(uniform(key, stream + k))  # noqa: E731 - scalar draws for one item
    f0_t = f0 * (1 + 0.08 * torch.sin(2 * math.pi * (0.5 + u(1)) * t) + 0.02 * torch.sin(2 * math.pi * 5.5 * t))
    phase = 2 * math.pi * torch.cumsum(f0_t, 0) / sr
    syl = torch.floor(t * rate + u(2))
    vowel = _VOWEL_FORMANTS[(syl.long() + int(u(3) * 5)) % 5]  # (n, 3)
    out = torch.zeros(n, dtype=torch.float64)
    for h in range(1, 30):  # harmonics (not clips): a fixed small loop
        fh = h * f0_t
        gain = sum(1.0 / (1.0 + ((fh - vowel[:, i]) / (80.0 + 40 * i)) ** 2) for i in range(3))
        out += gain * torch.sin(h * phase) / h**0.5
    gate = torch.sin(math.pi * torch.frac(t * rate + u(2))).clamp_min(0) ** 1.5
    out = out * gate
    out = out / out.abs().max().clamp_min(1e-9) * level * 2.5
    breath = 0.01 * level * normal(key, stream + 9, torch.arange(n), dtype=torch.float64)
    return (out + breath).float()


def _plan(index: int, sample_rate: int, seed: int, min_s: float, max_s: float, n_speakers: int):
    """Everything an item's signal depends on, drawn from ``(seed, index)`` only."""
    names = list(EMOTIONS)
    key = item_keys(seed, 0, torch.tensor(int(index)))
    label = int(index) % len(names)
    f0, level, rate = EMOTIONS[names[label]]
    speaker = int(uniform(key, 101) * n_speakers)
    f0 = f0 * (0.8 + 0.4 * (speaker + 0.5) / n_speakers)
    n = int((min_s + (max_s - min_s) * float(uniform(key, 102))) * sample_rate)
    level = level * (0.8 + 0.4 * float(uniform(key, 103)))
    return key, label, names[label], speaker, f0, level, rate, n


def synthetic_item(index: int, *, sample_rate: int = 16000, seed: int = 0, min_s: float = 1.5,
                   max_s: float = 4.0, n_speakers: int = 8) -> SyntheticItem:
    """Item ``index`` of the corpus of :func:`synthetic_speech` (same arguments), on its own.

    Depends only on ``(seed, index)`` and the arguments, so DataLoader workers can generate
    any item without generating the others.
    """
    key, label, emotion, speaker, f0, level, rate, n = _plan(index, sample_rate, seed, min_s, max_s, n_speakers)
    return SyntheticItem(_voice(key, n, sample_rate, f0, level, rate, _SPEECH_STREAM), label, emotion, speaker,
                         int(index))


def synthetic_speech(n_items: int, *, sample_rate: int = 16000, seed: int = 0, min_s: float = 1.5,
                     max_s: float = 4.0, n_speakers: int = 8) -> list[SyntheticItem]:
    """``n_items`` deterministic utterances, labels cycling over :data:`EMOTIONS`.

    Speakers shift f0 by up to +-20 %. Durations are uniform in ``[min_s, max_s]`` seconds.
    """
    return [synthetic_item(i, sample_rate=sample_rate, seed=seed, min_s=min_s, max_s=max_s, n_speakers=n_speakers)
            for i in range(n_items)]


def synthetic_annotation(index: int, *, sample_rate: int = 16000, seed: int = 0, min_s: float = 1.5,
                         max_s: float = 4.0, n_speakers: int = 8) -> dict:
    """The annotations of item ``index`` (same arguments as :func:`synthetic_item`), cheap.

    Returns a dict with:
        ``dims``: float32 ``(3,)`` valence, activation, dominance on the 1..5 scale:
            :data:`EMOTION_DIMS` of the item's emotion plus a deterministic jitter of at
            most +-0.2 (which never moves a value across the 2.75 / 3.25 bin boundaries).
        ``words``: float64 ``(K, 2)`` ``[start, end)`` word intervals in seconds. The
            signal is gated into syllables of ``1 / rate`` s with zero amplitude at the
            syllable boundaries; a word is 1 to 3 consecutive syllables. Syllables cut
            to less than half their duration by the clip's start or end are left out.
        ``word_list``: the ``K`` pseudo-words, one consonant + the synthesised vowel per
            syllable (``a i u e o`` follow the formant table), e.g. ``"kamu"``.
        ``text``: the words as a sentence.
        ``speaker``: the item's speaker id (int).
    """
    key, _, emotion, speaker, _, _, rate, n = _plan(index, sample_rate, seed, min_s, max_s, n_speakers)
    dims = torch.tensor(EMOTION_DIMS[emotion], dtype=torch.float64) + 0.4 * (uniform(key, 104, torch.arange(3)) - 0.5)
    duration = n / sample_rate
    phase = float(uniform(key, _SPEECH_STREAM + 2))  # the syllable phase _voice uses
    vowel0 = int(float(uniform(key, _SPEECH_STREAM + 3)) * 5)
    k = torch.arange(int(math.floor(duration * rate + phase)) + 1)
    start = ((k.double() - phase) / rate).clamp(0.0, duration)
    end = ((k.double() + 1 - phase) / rate).clamp(0.0, duration)
    keep = (end - start) >= 0.5 / rate
    k, start, end = k[keep], start[keep], end[keep]
    consonants = (uniform(key, 105, k) * len(_CONSONANTS)).long().tolist()
    syllables = [_CONSONANTS[c] + _VOWELS[(int(j) + vowel0) % 5] for c, j in zip(consonants, k.tolist())]
    sizes = (1 + uniform(key, 106, torch.arange(len(syllables))) * 3).long().tolist()
    words, word_list, i = [], [], 0
    for size in sizes:  # group syllables into words (annotation, not DSP)
        if i >= len(syllables):
            break
        j = min(i + size, len(syllables))
        words.append([float(start[i]), float(end[j - 1])])
        word_list.append("".join(syllables[i:j]))
        i = j
    text = " ".join(word_list).capitalize() + "." if word_list else ""
    return {"dims": dims.float(), "words": torch.tensor(words, dtype=torch.float64).reshape(-1, 2),
            "word_list": word_list, "text": text, "speaker": speaker}


def _colored_noise(key, n: int, sr: int, cutoff_hz: float, stream: int) -> torch.Tensor:
    x = normal(key, stream, torch.arange(n), dtype=torch.float64)
    spec = torch.fft.rfft(x)
    f = torch.fft.rfftfreq(n, 1 / sr)
    spec = spec / (1 + (f / cutoff_hz) ** 2)
    return torch.fft.irfft(spec, n)


def synthetic_noise_bank(*, sample_rate: int = 16000, seconds: float = 4.0, seed: int = 0) -> Bank:
    """Noises in the study's categories: ``natural`` (rain, wind), ``human`` (babble, cough),
    ``interior`` (hum + ticks, fan). Two clips per category, peak about 0.5."""
    n = int(seconds * sample_rate)
    t = torch.arange(n, dtype=torch.float64) / sample_rate
    key = item_keys(seed, 0, torch.arange(6))
    rain = _colored_noise(key[0], n, sample_rate, 4000, 1) + 3 * (uniform(key[0], 2, torch.arange(n)) > 0.999) * normal(key[0], 3, torch.arange(n), dtype=torch.float64)
    wind = _colored_noise(key[1], n, sample_rate, 300, 1) * (1 + 0.8 * torch.sin(2 * math.pi * 0.3 * t))
    babble = sum(_voice(key[2], n, sample_rate, f0, 0.1, r, 300 + 20 * j).double()
                 for j, (f0, r) in enumerate([(110, 4.1), (190, 4.7), (140, 3.6), (230, 5.2)]))
    cough_env = (torch.frac(t * 0.7) < 0.12).double() * torch.exp(-torch.frac(t * 0.7) * 20)
    cough = _colored_noise(key[3], n, sample_rate, 1500, 1) * cough_env
    hum = sum(torch.sin(2 * math.pi * 50 * h * t) / h for h in range(1, 6)) + 4 * (torch.frac(t) < 0.002).double()
    fan = _colored_noise(key[5], n, sample_rate, 800, 1) + 0.3 * torch.sin(2 * math.pi * 120 * t)
    clips = [rain, wind, babble, cough, hum, fan]
    clips = [(0.5 * c / c.abs().max()).float() for c in clips]
    cats = ["natural", "natural", "human", "human", "interior", "interior"]
    return Bank(clips, cats, sample_rate, ["rain", "wind", "babble", "cough", "hum_ticks", "fan"])


def synthetic_rir_bank(*, sample_rate: int = 16000, seed: int = 0) -> Bank:
    """Four synthetic rooms (RT60 0.25-1.0 s), category ``room``."""
    rt60 = torch.tensor([0.25, 0.45, 0.7, 1.0], dtype=torch.float64)
    rir, lengths = synthetic_rir(item_keys(seed, 0, torch.arange(4)), rt60_s=rt60,
                                 drr_db=torch.tensor([8.0, 4.0, 2.0, 0.0], dtype=torch.float64),
                                 predelay_s=torch.tensor([0.003, 0.006, 0.01, 0.015], dtype=torch.float64),
                                 sample_rate=sample_rate)
    clips = [rir[i, : int(lengths[i])] for i in range(4)]
    return Bank(clips, ["room"] * 4, sample_rate, [f"room_rt60_{r:.2f}s" for r in rt60.tolist()])


def synthetic_insert_bank(*, sample_rate: int = 16000, seed: int = 0) -> Bank:
    """Insert clips: a filler ("uhm", 0.45 s), a laugh (high "ha-ha-ha", 0.9 s), a sob (0.8 s)."""
    key = item_keys(seed, 1, torch.arange(3))
    filler = _voice(key[0], int(0.45 * sample_rate), sample_rate, 115, 0.1, 1.0, 400)
    laugh = _voice(key[1], int(0.9 * sample_rate), sample_rate, 260, 0.2, 5.0, 500)
    cry = _voice(key[2], int(0.8 * sample_rate), sample_rate, 330, 0.12, 2.5, 600)
    return Bank([filler, laugh, cry], ["filler", "laugh", "cry"], sample_rate, ["uhm", "haha", "sob"])
