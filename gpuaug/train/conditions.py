"""Training augmentations and test conditions by name, and the condition of a clip from its record.

Training (``--augment``): ``none``, any :data:`gpuaug.presets.PRESET_NAMES` name (``retaining``
is the seeds' perception-retaining set), ``seed000:<condition>``, or ``noise:<category>@<snr>``.

Test conditions (``--test-condition``), always applied to every test clip (ratio 1) with a
fixed seed, on the fly and replayable (never written to disk):

* ``clean``: the test audio as it is;
* ``noise:<category>@<snr_db>``: continuous noise of one bank category (``interior``,
  ``natural``, ``human``, ...) at one SNR, e.g. ``noise:interior@10``; the category may be
  ``all`` (every study category of the bank);
* ``preset:<name>``: a preset pipeline (e.g. ``preset:retaining``), each clip drawing its
  own transforms.

:func:`clip_condition` names what was done to one clip from its record (``clean``,
``noise:interior@10dB``, ``reverb``, ``noise:natural@0dB+speed``, ...), so one evaluation of a
mixed preset is broken down per condition.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from ..banks import Bank
from ..presets import PRESET_NAMES, build_preset, study_noise
from ..transforms import AddNoise, Pipeline

__all__ = ["Banks", "Condition", "parse_condition", "condition_pipeline", "augment_pipeline", "clip_condition",
           "NOISE_TEST_GRID"]

#: The noise test grid of issue 12's figures: ``noise:<category>@<snr>`` for the study's
#: categories at 0, 10 and 20 dB SNR.
NOISE_TEST_GRID = tuple(f"noise:{c}@{s}" for c in ("interior", "natural", "human") for s in (0, 10, 20))


@dataclass(frozen=True)
class Banks:
    """The noise, RIR and insert banks conditions draw from (at the model's sample rate)."""

    noise: Bank
    rir: Bank | None = None
    insert: Bank | None = None


@dataclass(frozen=True)
class Condition:
    """A parsed test condition: ``kind`` is ``clean`` | ``noise`` | ``preset``."""

    spec: str
    kind: str
    category: str | None = None
    snr_db: float | None = None
    preset: str | None = None


def _noise_spec(spec: str, what: str) -> tuple[str, float]:
    body = spec.split(":", 1)[1]
    if "@" not in body:
        raise ValueError(f"{what} {spec!r}: expected noise:<category>@<snr_db>, e.g. noise:interior@10")
    category, snr = body.rsplit("@", 1)
    snr = snr.removesuffix("dB").removesuffix("db")
    try:
        value = float(snr)
    except ValueError:
        raise ValueError(f"{what} {spec!r}: SNR {snr!r} is not a number of dB") from None
    if not category or not math.isfinite(value):
        raise ValueError(f"{what} {spec!r}: expected noise:<category>@<finite snr_db>")
    return category, value


def parse_condition(spec: str) -> Condition:
    """Parse a ``--test-condition`` (module docstring); a ``ValueError`` names a bad one."""
    if spec == "clean":
        return Condition(spec, "clean")
    if spec.startswith("noise:"):
        category, snr = _noise_spec(spec, "test condition")
        return Condition(spec, "noise", category=category, snr_db=snr)
    if spec.startswith("preset:"):
        name = spec.split(":", 1)[1]
        if name not in PRESET_NAMES and not name.startswith("seed000:"):
            raise ValueError(f"test condition {spec!r}: unknown preset {name!r}; available: {list(PRESET_NAMES)} "
                             "or seed000:<condition>")
        return Condition(spec, "preset", preset=name)
    raise ValueError(f"test condition {spec!r}: expected clean, noise:<category>@<snr_db> or preset:<name>")


def _noise_pipeline(banks: Banks, category: str, snr_db: float, sample_rate: int) -> Pipeline:
    bank = study_noise(banks.noise)
    categories = None if category == "all" else [category]
    return Pipeline([AddNoise(bank, categories=categories, snr_db_choices=(snr_db,), placements=("continuous",),
                              p=1.0)], sample_rate=sample_rate)


def condition_pipeline(condition: Condition, banks: Banks, sample_rate: int) -> Pipeline | None:
    """The pipeline of a test condition (``None`` for ``clean``)."""
    if condition.kind == "clean":
        return None
    if condition.kind == "noise":
        return _noise_pipeline(banks, condition.category, condition.snr_db, sample_rate)
    return build_preset(condition.preset, noise=banks.noise, rir=banks.rir, insert=banks.insert,
                        sample_rate=sample_rate)


def augment_pipeline(name: str, banks: Banks, sample_rate: int) -> Pipeline | None:
    """The training augmentation ``--augment name`` (``None`` for ``none``; module docstring)."""
    if name == "none":
        return None
    if name.startswith("noise:"):
        category, snr = _noise_spec(name, "augmentation")
        return _noise_pipeline(banks, category, snr, sample_rate)
    try:
        return build_preset(name, noise=banks.noise, rir=banks.rir, insert=banks.insert, sample_rate=sample_rate)
    except KeyError as e:
        raise ValueError(f"augmentation {name!r}: {e.args[0]}; or none, noise:<category>@<snr_db>") from None


def _entry_name(entry: dict) -> str | None:
    t = entry.get("transform")
    if t in (None, "crop", "output_level"):
        return None
    if t == "add_noise":
        return f"noise:{entry.get('noise_category_name', '?')}@{entry.get('snr_db', float('nan')):g}dB"
    return str(t)


def clip_condition(record: list[dict]) -> str:
    """What was done to one clip, from its record: the applied transforms joined by ``+``
    (noise as ``noise:<category>@<snr>dB``), or ``clean``."""
    names = [n for n in (_entry_name(e) for e in record) if n is not None]
    return "+".join(names) if names else "clean"
