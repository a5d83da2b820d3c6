"""Issue 10 A13: each transform's ranges are declared once, as data, and read by the validation,
the sampler, the record and the policy."""
import pytest
import torch

from gpuaug.data.synthetic import synthetic_insert_bank, synthetic_noise_bank
from gpuaug.transforms import (VTLN, AddNoise, DropSegments, Fade, Gain, InsertClip, McAdams, ModulationSmoothing,
                               Pipeline, PitchShift, Reverb, Speed, SpeedSegment, WhiteNoise)
from gpuaug.transforms.space import Choice, Fixed, Uniform


@pytest.mark.parametrize("build, message", [
    (lambda: Speed(factor_choices=(0.01,)), r"Speed: factor_choices=\(0\.01,\) has \[0\.01\] outside \[0\.5, 2\]"),
    (lambda: SpeedSegment(factor=100), r"SpeedSegment: factor=100 outside \[0\.5, 2\]"),
    (lambda: PitchShift(semitone_choices=(48,)), r"PitchShift: semitone_choices=.*48.* outside \[-24, 24\]"),
    (lambda: Reverb(normalize="bogus"), r"Reverb: normalize='bogus' is not one of \('energy', 'peak', 'none'\)"),
    (lambda: Fade(shape="bogus"), r"Fade: shape='bogus' is not one of \('linear', 'exponential'\)"),
    (lambda: Reverb(min_drr_db=10, max_drr_db=0), r"Reverb: \(min_drr_db, max_drr_db\) must have min <= max"),
    (lambda: WhiteNoise(min_snr_db=30, max_snr_db=10), r"WhiteNoise: \(min_snr_db, max_snr_db\) must have min <= max"),
    (lambda: Speed(min_factor=1.2, max_factor=1.1), r"Speed: \(min_factor, max_factor\) must have min <= max"),
    (lambda: Gain(min_gain_db=0, max_gain_db=float("nan")), r"Gain: .*nan.* outside"),
    (lambda: Fade(directions=("sideways",)), r"Fade: directions=.*sideways.* outside one of \('in', 'out'\)"),
    (lambda: McAdams(min_alpha=0.2, max_alpha=1.0), r"McAdams: \(min_alpha, max_alpha\).*outside \[0\.5, 1\.5\]"),
    (lambda: VTLN(alpha_choices=(0.5,)), r"VTLN: alpha_choices.*outside \[-0\.2, 0\.2\]"),
    (lambda: ModulationSmoothing(alpha_choices=()), r"ModulationSmoothing: alpha_choices must not be empty"),
    (lambda: DropSegments(min_ms=50, max_ms=10), r"DropSegments: \(min_ms, max_ms\) must have min <= max"),
    (lambda: DropSegments(mode="syllables"), r"DropSegments: mode='syllables' is not one of"),
    (lambda: SpeedSegment(mode="stretch"), r"SpeedSegment: mode='stretch' is not one of \('resample', 'tempo'\)"),
    (lambda: AddNoise(synthetic_noise_bank(seconds=0.5), placements=("middle",)), r"AddNoise: placements=.*middle"),
    (lambda: AddNoise(synthetic_noise_bank(seconds=0.5), span_lengths=("long",)), r"AddNoise: span_lengths="),
    (lambda: AddNoise(synthetic_noise_bank(seconds=0.5), snr_db_choices=(500,)), r"AddNoise: snr_db_choices=.*outside"),
    (lambda: InsertClip(synthetic_insert_bank(), silence_before_s=(-1,)), r"InsertClip: silence_before_s=.*outside"),
    (lambda: InsertClip(synthetic_insert_bank(), positions=("inside",)), r"InsertClip: positions=.*inside"),
])
def test_bad_ranges_are_refused_at_construction(build, message):
    """Before: each of these was accepted and failed later (or never)."""
    with pytest.raises(ValueError, match=message):
        build()


def _transforms():
    nb, ib = synthetic_noise_bank(seconds=0.5), synthetic_insert_bank()
    return [
        Speed(min_factor=0.9, max_factor=1.1), Speed(factor_choices=(0.75, 1.25)), PitchShift(semitone_choices=(-1, 2)),
        Gain(min_gain_db=-3, max_gain_db=2), Fade(directions=("out",)), WhiteNoise(sigma=0.05), WhiteNoise(),
        Reverb(min_rt60_s=0.3, max_rt60_s=0.4), SpeedSegment(min_fraction=0.2, max_fraction=0.25),
        McAdams(alpha_choices=(0.8, 0.9)), VTLN(min_alpha=-0.1, max_alpha=0.05), ModulationSmoothing(),
        AddNoise(nb, snr_db_choices=(0, 10), placements=("start", "span"), span_lengths=("short", "complete")),
        InsertClip(ib, positions=("start", "end"), silence_before_s=(0.0, 0.5)),
    ]


@pytest.mark.parametrize("t", _transforms(), ids=lambda t: type(t).__name__)
def test_the_sampler_draws_what_is_declared(t):
    pipe = Pipeline([t])
    params = pipe.sample(300, seed=3)[t.slot]
    for name, d in t.space.items():
        v = params[name].double()
        if isinstance(d, Uniform):
            assert float(v.min()) >= d.lo and float(v.max()) <= d.hi, name
            assert float(v.max() - v.min()) > 0.5 * (d.hi - d.lo), name  # the range is actually used
        elif isinstance(d, Choice):
            assert set(v.tolist()) == set(d.values), name  # every choice, nothing else
        else:
            assert isinstance(d, Fixed) and set(v.tolist()) == {d.value}, name
    for name in t.space:  # describe() prints the declaration
        assert name in t.describe()


def test_the_record_names_categorical_values():
    nb = synthetic_noise_bank(seconds=0.5)
    pipe = Pipeline([AddNoise(nb, placements=("start", "continuous")), Fade(directions=("in", "out"))], sample_rate=16000)
    out = pipe(torch.randn(8, 4000) * 0.1, seed=1)
    for rec in out.record:
        noise, fade = rec[0], rec[1]
        assert noise["placement_name"] in ("start", "continuous")
        assert fade["direction_name"] == ("in", "out")[fade["direction"]]


def test_the_policy_reads_the_declaration():
    """The range evaluation follows the declared space: the same transform class changes its
    possible tags with its declared ranges only."""
    assert Speed(min_factor=0.97, max_factor=1.03).possible_tags() == {"retaining"}
    assert Speed(min_factor=0.97, max_factor=1.2).possible_tags() == {"retaining", "altering"}
    assert Speed(factor_choices=(1.25,)).possible_tags() == {"altering"}
    assert PitchShift(min_semitones=-1, max_semitones=1).possible_tags() == {"unverified"}
    assert PitchShift(min_semitones=-1, max_semitones=3).possible_tags() == {"unverified", "altering"}
