"""The perception rules, as data: the only place a perception tag is decided.

Each :class:`Rule` says: for transform ``transform``, clips whose policy values (the
parameters the transform declares, see :mod:`gpuaug.transforms.space`, plus a few resolved
ones such as the noise item's category) fall inside ``when`` get ``tag``. Rules are read in
order; the first that matches a clip decides it; a clip no rule matches is ``unverified``
("not rated"). :func:`gpuaug.policy.evaluate.evaluate` applies them to each clip and
:func:`gpuaug.policy.evaluate.possible` to a transform's declared ranges, with the same code.
``python -m gpuaug policy`` prints them with their sources.

Vocabulary of a rule:

* ``when``: ``{value name: condition}``; a condition is :class:`Interval` (numbers, both
  ends inclusive unless ``open``, compared with a 1e-9 tolerance) or a ``frozenset`` of names
  (categorical values).
* ``tag``: ``retaining`` | ``altering`` | ``unverified``.
* ``family``: the perception of the rated family the variant belongs to (``retaining``,
  ``altering``, or ``none`` for augmentations outside the study). An ``unverified`` variant
  of an ``altering`` family (a filler from another speaker, a laugh mid-utterance) is masked
  by the default :class:`~gpuaug.policy.labels.LabelPolicy` (``on_unrated_altering``).
* ``row``: ``(augmentation, variant)`` of ``perception_study.csv`` whose flip rate and deltas
  apply (``None`` for unrated variants).
* ``evidence``: ``rated`` (a condition of the study), ``interpolated`` (between rated
  conditions), ``bounded`` (milder than a rated retaining condition), ``nearest`` (an
  unrated strength of a rated altering change: the deltas of the rated condition on the same
  side), ``recommendation`` (the papers' advice, not a rated condition), ``not rated``.
* ``source``: where the decision and its numbers come from.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property

from .table import ALTERING, RETAINING, UNVERIFIED

__all__ = ["Interval", "Rule", "RULES", "NOISE_LEVEL_ROWS", "DROP_WORDS", "VOCAL_BURST_PATTERN", "STUDY_NOISE",
           "LONG_PAUSE_S", "rules_for"]

INF = math.inf


@dataclass(frozen=True)
class Interval:
    """Numbers in ``[lo, hi]`` (``lo_open`` / ``hi_open`` exclude an end)."""

    lo: float = -INF
    hi: float = INF
    lo_open: bool = False
    hi_open: bool = False

    def text(self) -> str:
        if self.lo == self.hi:
            return f"= {self.lo:g}"
        lb, rb = ("(" if self.lo_open else "["), (")" if self.hi_open else "]")
        return f"{lb}{self.lo:g}, {self.hi:g}{rb}"


def at(v: float) -> Interval:
    return Interval(v, v)


@dataclass(frozen=True)
class Rule:
    transform: str
    when: dict = field(default_factory=dict)
    tag: str = UNVERIFIED
    family: str = "none"
    row: tuple[str, str] | None = None
    evidence: str = "not rated"
    source: str = ""

    @cached_property
    def id(self) -> str:
        """Stable name of the rule, ``transform:cond;cond`` (recorded per clip; built once: the
        rule is frozen)."""
        conds = "; ".join(f"{k} {_cond_text(c)}" for k, c in self.when.items())
        return f"{self.transform}: {conds or 'any'}"


def _cond_text(c) -> str:
    return ("in " + c.text()) if isinstance(c, Interval) and c.lo != c.hi else c.text() if isinstance(c, Interval) \
        else "in {" + ", ".join(sorted(c)) + "}"


#: The study's noise categories; ``domestic`` is ESC-50's name for ``interior``.
STUDY_NOISE = {"natural": "natural", "human": "human", "interior": "interior", "domestic": "interior"}
#: The perception table's continuous-noise rows and the SNRs gpuaug maps them to. The table
#: (seed 001 Table 2) names them by noise level "-10 dB / same / +10 dB", seed 001 Table 3 labels
#: the same conditions -5 / -10 / -20, and the shared study notes say "20/10/0 dB SNR". gpuaug
#: reads them in order of increasing noise (the flip rates rise that way for natural noise:
#: .01/.02/.03) and uses the notes' SNRs: "-10dB" = 20 dB SNR, "same" = 10 dB, "+10dB" = 0 dB.
NOISE_LEVEL_ROWS = {20.0: "continuous_-10dB", 10.0: "continuous_same", 0.0: "continuous_+10dB"}
#: Words the papers dropped (seed 001 5.2, seed 000 4.2): non-essential function words.
DROP_WORDS = frozenset({"a", "the", "an", "so", "like", "and"})
#: File-name tokens of emotional vocal bursts (laughter, crying, ...) in a noise bank: such
#: files are tagged per file, not by their folder's category (seed 001 5.1 lists laughs under
#: "Hum" noises, yet laughs and cries are the altering bursts of recommendation 3).
VOCAL_BURST_PATTERN = r"^(laugh\w*|giggl\w*|chuckl\w*|cry|crying|cries|cried|sob|sobs|sobbing|weep\w*|wail\w*|scream\w*)$"
#: A filler with at least this much silence around it (s, before + after) is read as the
#: study's "Filler L" (long pause); the papers' text we have gives no duration.
LONG_PAUSE_S = 0.3

_S = "seed001 Table 2"
_PITCH_UP = 12 * math.log2(1.25)   # +3.86 semitones
_PITCH_DOWN = 12 * math.log2(0.75)  # -4.98 semitones
_PITCH_SOURCE = ("seed001 Table 2 and 8.1; seed000 5.1. Two readings of the rated size: seed 000 writes "
                 "'+-3 half octaves' but reports the factors 0.75 / 1.25; gpuaug uses the factors "
                 "(12 log2 f = -4.98 / +3.86 semitones)")


def _noise_rules() -> list[Rule]:
    out = [
        Rule("add_noise", {"category": frozenset({"vocal_burst"})}, UNVERIFIED, ALTERING,
             source="laughter / crying files as noise: not rated; seed 001 8.6 rec. 3 advises against emotional "
                    "vocal bursts (tagged per file by name, VOCAL_BURST_PATTERN)"),
        Rule("add_noise", {"placement": frozenset({"span"})}, UNVERIFIED, RETAINING,
             source="noise over a span at a random offset: in no paper (the study rated start and continuous)"),
        Rule("add_noise", {"placement": frozenset({"start"}), "span_fraction": Interval(0, 1, hi_open=True)},
             UNVERIFIED, RETAINING,
             source="start noise over 25 % / 50 % of the clip: in no paper (the study's St covers the clip)"),
        Rule("add_noise", {"snr_db": Interval(-INF, 0, hi_open=True)}, UNVERIFIED, RETAINING,
             source="SNR below the study's lowest level (0 dB)"),
    ]
    for cat, key in (("natural", "Nat"), ("human", "Hum"), ("interior", "Int")):
        names = frozenset(n for n, c in STUDY_NOISE.items() if c == cat)
        aug = f"env_noise_{cat}"
        out.append(Rule("add_noise", {"category": names, "placement": frozenset({"start"})}, RETAINING, RETAINING,
                        (aug, "start"), "rated", f"{_S} ({key}St); the papers give no SNR for St"))
        for snr, variant in NOISE_LEVEL_ROWS.items():
            out.append(Rule("add_noise", {"category": names, "placement": frozenset({"continuous"}),
                                          "snr_db": at(snr)}, RETAINING, RETAINING, (aug, variant), "rated",
                            f"{_S} ({key}dB Co, row {variant}; read as {snr:g} dB SNR, see NOISE_LEVEL_ROWS)"))
        out.append(Rule("add_noise", {"category": names, "placement": frozenset({"continuous"}),
                                      "snr_db": Interval(0, 20, True, True)}, RETAINING, RETAINING, None,
                        "interpolated", f"{_S} ({key}dB Co): between the rated 0 / 10 / 20 dB (flip rates <= .04)"))
        out.append(Rule("add_noise", {"category": names, "placement": frozenset({"continuous"}),
                                      "snr_db": Interval(20, INF, lo_open=True)}, RETAINING, RETAINING, None,
                        "bounded", f"{_S} ({key}dB Co): less noise than the rated 20 dB"))
    return out


def _speed_rules() -> list[Rule]:
    src = "seed001 Table 2 and 8.1 (Speed); the speed change resamples, so pitch moves with tempo (the papers do not say how they changed speed)"
    return [
        Rule("speed", {"factor": Interval(0.95, 1.05)}, RETAINING, ALTERING, None, "recommendation",
             "seed001 8.6 rec. 3 / seed000 6: do not change the whole utterance's speed by more than 5 %"),
        Rule("speed", {"factor": at(1.25)}, ALTERING, ALTERING, ("speed_utterance", "1.25x"), "rated", src),
        Rule("speed", {"factor": at(0.75)}, ALTERING, ALTERING, ("speed_utterance", "0.75x"), "rated", src),
        Rule("speed", {"factor": Interval(1.05, INF, lo_open=True)}, ALTERING, ALTERING,
             ("speed_utterance", "1.25x"), "nearest", src + "; more than the recommended 5 %"),
        Rule("speed", {"factor": Interval(-INF, 0.95, hi_open=True)}, ALTERING, ALTERING,
             ("speed_utterance", "0.75x"), "nearest", src + "; more than the recommended 5 %"),
    ]


def _insert_rules() -> list[Rule]:
    return [
        Rule("insert_clip", {"category": frozenset({"laugh", "cry"}), "position_kind": frozenset({"start", "middle", "random"})},
             UNVERIFIED, ALTERING, source="laughs / cries placed inside or before the utterance: seed 000 4.2 appends them"),
        Rule("insert_clip", {"category": frozenset({"laugh"})}, ALTERING, ALTERING, ("laugh", ""), "rated",
             "seed001 Table 2 and 8.1; seed000 4.2 / 5.1 (appended)"),
        Rule("insert_clip", {"category": frozenset({"cry"})}, ALTERING, ALTERING, ("cry", ""), "rated",
             "seed001 Table 2 and 8.1; seed000 4.2 / 5.1 (appended)"),
        Rule("insert_clip", {"category": frozenset({"filler"}), "speaker": frozenset({"other", "unknown"})},
             UNVERIFIED, ALTERING, source="a filler from another (or an unknown) speaker: the study used the "
                                          "speaker's own fillers (seed 001 5.2)"),
        Rule("insert_clip", {"category": frozenset({"filler"}), "pause_s": at(0.0)}, ALTERING, ALTERING,
             ("filler", "short"), "rated", "seed001 Table 2 (Filler S); seed000 5.1"),
        Rule("insert_clip", {"category": frozenset({"filler"}), "pause_s": Interval(LONG_PAUSE_S, INF)}, ALTERING,
             ALTERING, ("filler", "long_pause"), "rated",
             f"seed001 Table 2 (Filler L); seed000 5.1; 'long pause' read as >= {LONG_PAUSE_S:g} s of silence"),
        Rule("insert_clip", {}, UNVERIFIED, ALTERING,
             source="other inserts (categories, pauses shorter than a long pause): not rated; seed 001 8.6 rec. 3 "
                    "advises against intentional pauses and vocal bursts"),
    ]


RULES: tuple[Rule, ...] = tuple(
    _noise_rules()
    + [Rule("white_noise", {}, UNVERIFIED, source="seed004 perturbation (sigma 0.1); not in the perception study")]
    + [
        Rule("reverb", {"source": frozenset({"bank"})}, RETAINING, RETAINING, ("reverb", ""), "rated",
             f"{_S} (Reverb). The seeds varied pysndfx reverberance and room size; measured RIRs are gpuaug's choice"),
        Rule("reverb", {"source": frozenset({"synthetic"})}, RETAINING, RETAINING, ("reverb", ""), "rated",
             f"{_S} (Reverb). The seeds varied pysndfx reverberance and room size; the synthetic rooms' RT60 "
             "0.2-0.8 s / DRR 0-10 dB are from no paper"),
        Rule("fade", {"shape": frozenset({"linear"}), "direction": frozenset({"in"}), "rate_per_s": Interval(0, 0.02)},
             RETAINING, RETAINING, ("fade", "in"), "rated", f"{_S} (Fade In), 2 % per second; slower fades bounded"),
        Rule("fade", {"shape": frozenset({"linear"}), "direction": frozenset({"out"}), "rate_per_s": Interval(0, 0.02)},
             RETAINING, RETAINING, ("fade", "out"), "rated", f"{_S} (Fade Out), 2 % per second; slower fades bounded"),
        Rule("fade", {}, UNVERIFIED, RETAINING,
             source="faster than 2 %/s or an exponential shape: not rated (the study's fades are 2 % per second)"),
        Rule("gain", {}, UNVERIFIED, source="level change; loudness is an arousal cue; not in the perception study"),
    ]
    + _speed_rules()
    + [
        Rule("speed_segment", {"mode": frozenset({"resample"}), "factor": at(1.25), "fraction": Interval(0, 0.25, True)},
             RETAINING, RETAINING, ("speed_segment", "1.25x"), "rated",
             f"{_S} (SpeedSeg 1.25x); seed001 8.6 rec. 2: no more than 25 % of the clip; resampled, so the "
             "segment's pitch rises by the factor too (the papers do not say)"),
        Rule("speed_segment", {"mode": frozenset({"resample"}), "factor": Interval(1, 1.25, True),
                               "fraction": Interval(0, 0.25, True)},
             RETAINING, RETAINING, ("speed_segment", "1.25x"), "bounded",
             f"{_S} (SpeedSeg 1.25x): a milder speed-up of no more than 25 % of the clip"),
        Rule("speed_segment", {}, UNVERIFIED, RETAINING,
             source="tempo-only (pitch kept), slow-downs, faster than 1.25x or over 25 % of the clip: not rated"),
        Rule("pitch_shift", {"semitones": Interval(-1, 1)}, UNVERIFIED, ALTERING,
             source="seed004 perturbation (+-1 semitone); not in the perception study"),
        Rule("pitch_shift", {"semitones": at(_PITCH_UP)}, ALTERING, ALTERING, ("pitch", "1.25x"), "rated", _PITCH_SOURCE),
        Rule("pitch_shift", {"semitones": at(_PITCH_DOWN)}, ALTERING, ALTERING, ("pitch", "0.75x"), "rated", _PITCH_SOURCE),
        Rule("pitch_shift", {"semitones": Interval(1, INF, lo_open=True)}, ALTERING, ALTERING, ("pitch", "1.25x"),
             "nearest", _PITCH_SOURCE + "; larger than seed 004's +-1 semitone: the flip rate grows with the shift"),
        Rule("pitch_shift", {"semitones": Interval(-INF, -1, hi_open=True)}, ALTERING, ALTERING, ("pitch", "0.75x"),
             "nearest", _PITCH_SOURCE + "; larger than seed 004's +-1 semitone: the flip rate grows with the shift"),
        Rule("mcadams", {}, UNVERIFIED, source="seed003 attack (McAdams alpha 0.75-1.25); not in the perception study"),
        Rule("vtln", {}, UNVERIFIED, source="seed003 attack (VTLN alpha -0.2..0.2); not in the perception study"),
        Rule("modulation_smoothing", {}, UNVERIFIED,
             source="seed003 attack (MSS alpha 0.05-0.3); not in the perception study"),
    ]
    + _insert_rules()
    + [
        Rule("drop_segments", {"mode": frozenset({"word"}), "word": frozenset({"function"})}, RETAINING, RETAINING,
             ("drop_word", ""), "rated", f"{_S} (DropWord): one of {sorted(DROP_WORDS)} (seed 001 5.2), "
                                         "with a transcript and word alignments"),
        Rule("drop_segments", {"mode": frozenset({"word"}), "word": frozenset({"none"})}, RETAINING, RETAINING,
             None, "bounded", "no word of the rated set in the clip: nothing was dropped"),
        Rule("drop_segments", {"mode": frozenset({"word"})}, UNVERIFIED, RETAINING,
             source=f"dropping another word, or a word of unknown text: the papers dropped only {sorted(DROP_WORDS)}"),
        Rule("drop_segments", {"mode": frozenset({"letters"})}, UNVERIFIED, RETAINING,
             source="random 20-60 ms segments: the papers dropped letters by phonological rules (DropLetters), "
                    "which gpuaug does not implement"),
    ]
)


def rules_for(transform: str) -> tuple[Rule, ...]:
    """The rules of one transform, in evaluation order."""
    return tuple(r for r in RULES if r.transform == transform)
