"""The perception policy: the study table, the rules as data (one function per clip and on
ranges), unrated variants, honest relabelling, and the presets as the papers ran them."""
import math
import subprocess
import sys

import pytest
import torch

from gpuaug import Bank
from gpuaug.data.synthetic import synthetic_insert_bank, synthetic_noise_bank
from gpuaug.policy import ALTERING, RETAINING, UNVERIFIED, LabelPolicy, lookup, study_rows
from gpuaug.policy.evaluate import NO_RULE, evaluate, possible, possible_rules
from gpuaug.policy.perception import NOT_APPLIED, combine
from gpuaug.policy.rules import DROP_WORDS, RULES, rules_for
from gpuaug.policy.table import DELTA_DISPUTES, SEVERITY
from gpuaug.presets import (perception_retaining, seed000_table1, seed003_attacks, seed003_grid,
                            seed004_perturbations)
from gpuaug.transforms import (AddNoise, DropSegments, Fade, InsertClip, PerceptionPolicyError, Pipeline, PitchShift,
                               Reverb, Speed, SpeedSegment)
from gpuaug.transforms.noise import is_vocal_burst
from gpuaug.transforms.voice import SEED003_GRIDS

from conftest import SHARED_DATA

SR = 16000


# ---- the table -------------------------------------------------------------------------
def test_table_is_the_shipped_study():
    rows = study_rows()
    assert len(rows) == 26
    assert {r.perception for r in rows} == {RETAINING, ALTERING}
    cry = lookup("cry")
    assert (cry.delta_valence, cry.delta_activation) == (-0.20, -0.43)
    assert cry.flip_rate == 0.22 and "seed001" in cry.source
    with pytest.raises(KeyError, match="known"):
        lookup("cry", "loud")


def test_table_copy_matches_shared_csv():
    shared = SHARED_DATA.parent / "perception_study.csv"
    if not shared.exists():
        pytest.skip("../shared not present")
    from importlib import resources

    ours = resources.files("gpuaug.policy").joinpath("perception_study.csv").read_text("utf-8")
    assert ours == shared.read_text("utf-8")


# ---- the rules are data, with sources ----------------------------------------------------
def test_every_rule_is_sourced_and_points_at_a_consistent_row():
    assert len({r.id for r in RULES}) == len(RULES)
    for r in RULES:
        assert r.source, r.id
        assert r.tag in (RETAINING, ALTERING, UNVERIFIED)
        if r.row is not None:
            row = lookup(*r.row)  # raises if the row does not exist
            assert row.perception == r.family, r.id
        if r.tag in (RETAINING, ALTERING) and r.evidence == "rated":
            assert r.row is not None and lookup(*r.row).perception == r.tag, r.id
        if r.tag == UNVERIFIED:
            assert r.row is None, r.id  # an unrated variant borrows no figure


def test_policy_command_prints_every_rule_with_its_source():
    out = subprocess.run([sys.executable, "-m", "gpuaug", "policy"], capture_output=True, text=True, check=True).stdout
    for r in RULES:
        assert r.id in out and r.source in out
    for (aug, _), why in DELTA_DISPUTES.items():
        assert why in out
    assert "continuous_-10dB = 20 dB" in out


def test_no_transform_decides_a_tag_itself():
    """The tags come only from gpuaug.policy.rules: no transform module names a tag constant."""
    import pathlib

    import gpuaug.transforms as T

    for f in pathlib.Path(T.__file__).parent.glob("*.py"):
        text = f.read_text()
        for tag in ("RETAINING", "ALTERING", "UNVERIFIED", "severity("):
            assert tag not in text or f.name == "pipeline.py", (f.name, tag)


# ---- one function per clip and on ranges ---------------------------------------------------
def _configs():
    nb, ib = synthetic_noise_bank(seconds=0.5), synthetic_insert_bank()
    return [
        Speed(min_factor=0.7, max_factor=1.3), Speed(factor_choices=(0.75, 1.0, 1.25)), Speed(),
        PitchShift(min_semitones=-6, max_semitones=6), PitchShift(semitone_choices=(-1, 1)),
        AddNoise(nb, min_snr_db=-5, max_snr_db=30, placements=("continuous", "start", "span"),
                 span_lengths=("short", "complete")),
        AddNoise(nb, snr_db_choices=(0, 10, 20), placements=("continuous", "start")),
        Fade(rate_per_s=0.02), Fade(rate_per_s=0.05), Fade(shape="exponential"),
        SpeedSegment(), SpeedSegment(min_fraction=0.1, max_fraction=0.5), SpeedSegment(factor=0.8),
        SpeedSegment(mode="tempo"), Reverb(), DropSegments(),
        InsertClip(ib, positions=("start", "middle", "end"), silence_before_s=(0.0, 0.1, 0.5)),
    ]


@pytest.mark.parametrize("t", _configs(), ids=lambda t: t.describe()[:60])
def test_per_clip_rules_agree_with_the_declared_ranges(t):
    """Every rule a drawn clip meets is one the range evaluation predicts, and (with many
    clips) every predicted tag is met: the two uses of the rules cannot disagree."""
    pipe = Pipeline([t], sample_rate=SR)
    params = pipe.sample(4000, seed=5)[t.slot]
    if t.name in ("add_noise", "insert_clip"):  # bank picks are resolved at run time
        params[{"add_noise": "noise_index", "insert_clip": "insert_index"}[t.name]] = t.bank.pick(
            params["u_category"], params["u_item"], t.categories)
    met = set(t.rules(params).tolist())
    predicted = possible_rules(t.name, t.policy_space())
    assert met <= predicted
    tags = {UNVERIFIED if i == NO_RULE else RULES[i].tag for i in met}
    assert tags == t.possible_tags()


def test_range_evaluation_is_exact_at_rule_boundaries():
    assert possible("speed", {"factor": (1.05,)}) == {RETAINING}
    assert possible("speed", {"factor": (1.0500001,)}) == {ALTERING}
    from gpuaug.policy.rules import Interval

    assert possible("speed", {"factor": Interval(1.0, 1.05)}) == {RETAINING}
    assert possible("speed", {"factor": Interval(1.0, 1.06)}) == {RETAINING, ALTERING}
    assert possible("add_noise", {"category": ("natural",), "placement": ("continuous",), "span_fraction": (1.0,),
                                  "snr_db": Interval(-0.5, 0.0)}) == {RETAINING, UNVERIFIED}


# ---- unrated variants are unverified -------------------------------------------------------
def _run(t, n=6):
    wave = torch.randn(n, 8000, generator=torch.Generator().manual_seed(0)) * 0.1
    return Pipeline([t], sample_rate=SR)(wave, seed=2)


def test_noise_span_placement_and_short_start_are_unverified():
    nb = synthetic_noise_bank(seconds=0.5)
    assert AddNoise(nb, placements=("span",)).possible_tags() == {UNVERIFIED}
    assert AddNoise(nb, placements=("start",), span_lengths=("short",)).possible_tags() == {UNVERIFIED}
    assert AddNoise(nb, placements=("start",)).possible_tags() == {RETAINING}
    out = _run(AddNoise(nb, placements=("span", "continuous"), snr_db_choices=(10,)), n=20)
    placement = out.params[next(iter(out.leaves))]["placement"]
    want = [UNVERIFIED if int(p) == 2 else RETAINING for p in placement]
    assert out.tags == want and set(want) == {RETAINING, UNVERIFIED}


def test_laughter_in_a_human_noise_folder_is_tagged_per_file():
    t = torch.linspace(0, 1, 8000)
    clips = [torch.sin(2 * math.pi * 200 * t) * 0.3, torch.sin(2 * math.pi * 300 * t) * 0.3,
             torch.sin(2 * math.pi * 400 * t) * 0.3]
    bank = Bank(clips, ["human", "human", "natural"], SR, ["human_laugh_evil_01", "human_cough_01", "natural_rain"])
    assert [is_vocal_burst(n) for n in bank.names] == [True, False, False]
    noise = AddNoise(bank, categories=["human"], snr_db_choices=(10,))
    assert noise.possible_tags() == {RETAINING, UNVERIFIED}
    with pytest.raises(PerceptionPolicyError):
        Pipeline([noise], require="retaining")
    out = _run(noise, n=24)
    names = [rec[0]["noise_name"] for rec in out.record]
    assert out.tags == [UNVERIFIED if n == "human_laugh_evil_01" else RETAINING for n in names]
    assert {UNVERIFIED, RETAINING} == set(out.tags)
    # bursts are an altering family: masked by default although unverified
    assert out.labels.loss_weight.tolist() == [0.0 if n == "human_laugh_evil_01" else 1.0 for n in names]


@pytest.mark.skipif(not (SHARED_DATA / "noise").exists(), reason="shared noise folder not present")
def test_real_noise_folder_laughs_are_left_out_of_the_retaining_preset():
    from gpuaug.data import noise_bank_from_folder

    bank = noise_bank_from_folder(SHARED_DATA / "noise", SR)
    laughs = [n for n in bank.names if is_vocal_burst(n)]
    assert len(laughs) == 3 and all("laugh" in n for n in laughs)
    pipe = perception_retaining(bank)  # require="retaining" passes: the laughs are not in its bank
    noise = pipe.leaves[0]
    assert not any(is_vocal_burst(n) for n in noise.bank.names)
    assert len(noise.bank) == len(bank) - 3
    assert "no vocal bursts" in pipe.describe()


def test_word_dropping_is_rated_only_for_the_papers_function_words():
    al = torch.tensor([[[0, 2000], [2000, 4000], [4000, 6000]]] * 3)
    text = [["I", "like", "dogs"], ["The", "cat", "sat"], ["dogs", "bark", "loudly"]]
    wave = torch.randn(3, 8000, generator=torch.Generator().manual_seed(0)) * 0.1
    out = Pipeline([DropSegments(mode="word")], sample_rate=SR)(wave, alignments=al, word_text=text, seed=0)
    assert out.tags == [RETAINING, RETAINING, RETAINING]
    cls = [rec[0]["word_class_name"] for rec in out.record]
    assert cls == ["function", "function", "none"]  # 'like', 'The'; the third has none: nothing dropped
    assert out.lengths.tolist()[2] == 8000 and out.lengths.tolist()[0] < 8000
    anyword = Pipeline([DropSegments(mode="word", words="any")], sample_rate=SR)
    out = anyword(wave, alignments=al, word_text=text, seed=0)
    want = [RETAINING if w[int(rec[0].get("u_word", 0) * 3)].lower() in DROP_WORDS else UNVERIFIED
            for w, rec in zip(text, out.record)]
    assert out.tags == want
    assert anyword(wave, alignments=al, seed=0).tags == [UNVERIFIED] * 3  # no transcript: unknown word
    with pytest.raises(ValueError, match="needs the transcript"):
        Pipeline([DropSegments(mode="word")], sample_rate=SR)(wave, alignments=al)


def test_random_letter_segments_are_unverified():
    assert DropSegments(mode="letters").possible_tags() == {UNVERIFIED}
    out = _run(DropSegments(mode="letters"))
    assert out.tags == [UNVERIFIED] * 6
    assert "phonological" in out.record[0][0]["rule"] or out.record[0][0]["tag"] == UNVERIFIED


@pytest.mark.parametrize("kw, tag", [
    (dict(categories=["laugh"], positions=("end",)), ALTERING),
    (dict(categories=["laugh"], positions=("middle",)), UNVERIFIED),
    (dict(categories=["cry"], positions=("start",)), UNVERIFIED),
    (dict(categories=["filler"]), UNVERIFIED),  # the bank records no speaker: not the study's own-speaker filler
])
def test_insert_variants(kw, tag):
    t = InsertClip(synthetic_insert_bank(), **kw)
    assert t.possible_tags() == {tag}
    out = _run(t, n=3)
    assert out.tags == [tag] * 3
    assert out.labels.loss_weight.tolist() == [0.0] * 3  # masked either way (altering family)


def test_tempo_only_segment_speed_up_is_unverified():
    assert SpeedSegment(mode="tempo").possible_tags() == {UNVERIFIED}
    assert SpeedSegment().possible_tags() == {RETAINING}


# ---- the retaining guardrail ---------------------------------------------------------------
@pytest.mark.parametrize("bad", [
    lambda nb, ib: Speed(min_factor=0.75, max_factor=1.25),
    lambda nb, ib: PitchShift(),
    lambda nb, ib: InsertClip(ib, categories=["laugh"]),
    lambda nb, ib: AddNoise(nb, snr_db_choices=(-5.0, 0.0)),
    lambda nb, ib: AddNoise(nb, placements=("span",)),
    lambda nb, ib: Fade(rate_per_s=0.2),
    lambda nb, ib: Fade(shape="exponential"),
    lambda nb, ib: SpeedSegment(max_fraction=0.5),
    lambda nb, ib: SpeedSegment(mode="tempo"),
    lambda nb, ib: DropSegments(mode="letters"),
])
def test_retaining_guardrail(bad):
    nb, ib = synthetic_noise_bank(seconds=1), synthetic_insert_bank()
    t = bad(nb, ib)
    with pytest.raises(PerceptionPolicyError, match="perception-retaining"):
        Pipeline([Fade(), t], require="retaining")
    Pipeline([Fade(), t], require="retaining", allow=[t.name])  # explicit opt-in works


def test_recommended_set_is_retaining():
    pipe = perception_retaining(synthetic_noise_bank(seconds=1))
    assert {t for leaf in pipe.leaves for t in leaf.possible_tags()} == {RETAINING}


# ---- honest relabelling ----------------------------------------------------------------------
def _rule(transform, **values):
    from gpuaug.policy.evaluate import Cat

    view = {k: (Cat(torch.tensor([0]), (v,)) if isinstance(v, str) else torch.tensor([float(v)]))
            for k, v in values.items()}
    return evaluate(transform, view, 1)


def _perception():
    """Clips: clean, retaining noise, white noise (unverified), laugh (altering, delta),
    filler (altering, no delta), cry (altering, disputed delta), filler of unknown speaker."""
    rules = [
        torch.tensor([NOT_APPLIED]),
        _rule("add_noise", category="natural", placement="continuous", span_fraction=1.0, snr_db=10),
        _rule("white_noise"),
        _rule("insert_clip", category="laugh", position_kind="end", pause_s=0, speaker="same"),
        _rule("insert_clip", category="filler", position_kind="end", pause_s=0, speaker="same"),
        _rule("insert_clip", category="cry", position_kind="end", pause_s=0, speaker="same"),
        _rule("insert_clip", category="filler", position_kind="end", pause_s=0, speaker="unknown"),
    ]
    B = len(rules)
    per_slot = {}
    for b, r in enumerate(rules):  # one slot per clip, applied to that clip only
        idx = torch.full((B,), NOT_APPLIED, dtype=torch.int64)
        idx[b] = r[0]
        per_slot[f"s{b}"] = idx
    return combine(per_slot, B)


def test_perception_combines_rules():
    p = _perception()
    tag = {v: k for k, v in SEVERITY.items()}
    assert [tag[int(c)] for c in p.severity] == ["clean", RETAINING, UNVERIFIED, ALTERING, ALTERING, ALTERING,
                                                  UNVERIFIED]
    assert p.disputed.tolist() == [False, False, False, False, False, True, False]
    assert p.unrated_altering.tolist() == [False] * 6 + [True]
    laugh = lookup("laugh")
    torch.testing.assert_close(p.delta[3], torch.tensor([0.11, 0.26], dtype=torch.float64))
    torch.testing.assert_close(p.expected_delta[3], torch.tensor([0.11, 0.26], dtype=torch.float64) * laugh.flip_rate)
    assert torch.isnan(p.delta[4]).all()  # fillers: no measured delta


def test_label_policy_refuses_keep_for_altering():
    with pytest.raises(ValueError, match="not allowed"):
        LabelPolicy(on_altering="keep")
    with pytest.raises(ValueError, match="delta_weighting"):
        LabelPolicy(delta_weighting="all")
    with pytest.raises(ValueError, match="disputed"):
        LabelPolicy(disputed="seed000")


def test_mask_is_the_default_for_altering_and_unrated_altering():
    act = LabelPolicy().actions(_perception())
    assert act.action == ["keep", "keep", "keep", "mask", "mask", "mask", "mask"]
    assert act.loss_weight.tolist() == [1, 1, 1, 0, 0, 0, 0]
    act = LabelPolicy(on_unrated_altering="keep").actions(_perception())
    assert act.action[6] == "keep"


def test_relabel_formula():
    laugh = lookup("laugh")
    act = LabelPolicy(on_altering="relabel", delta_scale=2.0).actions(_perception())
    assert act.action[3:6] == ["relabel", "mask", "mask"]  # no delta (filler), disputed (cry): masked
    torch.testing.assert_close(act.delta[3], torch.tensor([0.11, 0.26]) * 2.0 * laugh.flip_rate)
    assert act.loss_weight[3] == 0 and act.dimensional_weight[3] == 1  # categorical labels cannot shift
    act = LabelPolicy(on_altering="relabel", delta_weighting="changed", disputed="seed001").actions(_perception())
    assert act.action[3:6] == ["relabel", "mask", "relabel"]
    torch.testing.assert_close(act.delta[3], torch.tensor([0.11, 0.26]))
    torch.testing.assert_close(act.delta[5], torch.tensor([-0.20, -0.43]))


def test_drop_and_unverified_policies():
    act = LabelPolicy(on_altering="drop", on_unverified="mask").actions(_perception())
    assert act.keep.tolist() == [True, True, True, False, False, False, True]
    assert act.loss_weight.tolist()[2] == 0.0


def test_speed_tags_and_relabel_per_clip():
    pipe = Pipeline([Speed(factor_choices=(1.0, 1.25, 0.75))],
                    label_policy=LabelPolicy(on_altering="relabel", delta_weighting="changed", disputed="seed001"))
    wave = torch.randn(40, 1600) * 0.1
    out = pipe(wave, seed=1)
    f = out.params[pipe.leaves[0].slot]["factor"]
    for b in range(40):
        assert out.tags[b] == (RETAINING if f[b] == 1.0 else ALTERING)
        want = {1.0: (0, 0), 1.25: (-0.10, -0.13), 0.75: (-0.18, -0.23)}[float(f[b])]
        torch.testing.assert_close(out.labels.delta[b], torch.tensor(want, dtype=torch.float32))
        assert out.record[b][0]["evidence"] == ("recommendation" if f[b] == 1.0 else "rated")
    masked = Pipeline([Speed(factor_choices=(1.25,))], label_policy=LabelPolicy(on_altering="relabel"))(wave, seed=1)
    assert set(masked.labels.action) == {"mask"}  # the speed rows are disputed


# ---- presets as the papers ran them -----------------------------------------------------------
def test_seed000_conditions_match_the_table():
    conds = seed000_table1(synthetic_noise_bank(seconds=1), synthetic_insert_bank())
    want = {"NatSt": RETAINING, "HumCo_0dB": RETAINING, "IntCo_20dB": RETAINING, "SpeedSeg": RETAINING,
            "FadeIn": RETAINING, "FadeOut": RETAINING, "DropLetters": UNVERIFIED, "Reverb": RETAINING,
            "Speed_0.75x": ALTERING, "Speed_1.25x": ALTERING, "Pitch_0.75x": ALTERING, "Pitch_1.25x": ALTERING,
            "FillerS": UNVERIFIED, "FillerL": UNVERIFIED, "Laugh": ALTERING, "Cry": ALTERING}
    wave = torch.randn(2, 8000) * 0.1
    for name, tag in want.items():
        out = conds[name](wave, seed=0)
        assert out.tags == [tag, tag], name
        masked = tag == ALTERING or name.startswith("Filler")
        assert out.labels.loss_weight.tolist() == ([0.0, 0.0] if masked else [1.0, 1.0]), name
    al = torch.tensor([[[0, 3000], [3000, 8000]]] * 2)
    out = conds["DropWord"](wave, alignments=al, word_text=[["the", "cat"], ["a", "dog"]], seed=0)
    assert out.tags == [RETAINING, RETAINING]


def test_seed003_sweeps_are_fixed_grids():
    assert SEED003_GRIDS["mcadams"] == (0.75, 0.8, 0.85, 0.9, 0.95, 1.0, 1.05, 1.1, 1.15, 1.2, 1.25)
    assert SEED003_GRIDS["vtln"] == (-0.2, -0.15, -0.1, -0.05, 0.0, 0.05, 0.1, 0.15, 0.2)
    assert SEED003_GRIDS["modulation_smoothing"] == (0.05, 0.1, 0.15, 0.2, 0.25, 0.3)
    attacks = seed003_attacks()
    assert set(attacks) == {"mcadams", "vtln", "mss"}
    wave = torch.randn(2, 16000) * 0.1
    for name, grid in attacks.items():
        for alpha, pipe in grid.items():
            out = pipe.sample(50)
            assert set(next(v["alpha"] for k, v in out.items() if "alpha" in v).tolist()) == {alpha}
        assert grid[next(iter(grid))](wave).tags == [UNVERIFIED] * 2
    drawn = seed003_grid("vtln").sample(500)
    values = set(next(v["alpha"] for v in drawn.values() if "alpha" in v).tolist())
    assert values == set(SEED003_GRIDS["vtln"])  # grid points only, not uniform draws


def test_seed004_conditions_are_separate():
    conds = seed004_perturbations()
    assert set(conds) == {"pitch", "white_noise"}
    wave = torch.randn(4, 16000) * 0.1
    for name, pipe in conds.items():
        assert len(pipe.leaves) == 1
        out = pipe(wave)
        assert out.tags == [UNVERIFIED] * 4 and all(len(r) == 2 for r in out.record)  # the leaf + output level
    assert {leaf.name for p in conds.values() for leaf in p.leaves} == {"pitch_shift", "white_noise"}
    assert all(len(rules_for(n)) for n in ("pitch_shift", "white_noise"))


def test_fillers_come_from_the_clips_own_speaker():
    """The study used the speaker's own fillers (seed 001 5.2): with item and clip speakers known,
    InsertClip draws from the clip's speaker (tag altering, rated); without, unverified."""
    t = torch.linspace(0, 0.2, 3200)
    clips = [torch.sin(2 * math.pi * f * t) * 0.3 for f in (150, 160, 250, 260, 400)]
    bank = Bank(clips, ["filler", "filler", "filler", "filler", "laugh"], SR, ["a_uhm", "a_ehm", "b_uhm", "b_ehm", "a_haha"])
    ins = InsertClip(bank, categories=["filler"], speakers=lambda n: n.split("_")[0])
    assert ins.item_speakers == ["a", "a", "b", "b", "a"]
    wave = torch.randn(12, 8000, generator=torch.Generator().manual_seed(0)) * 0.1
    speakers = ["a", "b", "c"] * 4  # "c" has no filler in the bank
    out = Pipeline([ins], sample_rate=SR)(wave, speakers=speakers, seed=3)
    for spk, rec, tag in zip(speakers, out.record, out.tags):
        item = rec[0]["insert_name"]
        if spk == "c":
            assert rec[0]["speaker_match_name"] == "other" and tag == UNVERIFIED
        else:
            assert item.startswith(spk) and rec[0]["speaker_match_name"] == "same" and tag == ALTERING
    assert {r[0]["insert_name"] for r, s in zip(out.record, speakers) if s == "a"} == {"a_uhm", "a_ehm"}
    anyone = InsertClip(bank, categories=["filler"], speakers=lambda n: n.split("_")[0], speaker="any")
    out = Pipeline([anyone], sample_rate=SR)(wave, speakers=speakers, seed=3)
    assert "other" in {r[0]["speaker_match_name"] for r in out.record}
    out = Pipeline([ins], sample_rate=SR)(wave, seed=3)  # no clip speakers: unknown
    assert set(out.tags) == {UNVERIFIED}
    with pytest.raises(ValueError, match="speakers has 2 entries"):
        InsertClip(bank, speakers=["a", "b"])


def test_insert_bank_folders_name_the_speakers(tmp_path):
    import numpy as np
    import soundfile as sf

    from gpuaug.data import insert_bank_from_folder

    for spk in ("spk01", "spk02"):
        (tmp_path / "filler" / spk).mkdir(parents=True)
        sf.write(tmp_path / "filler" / spk / "uhm.wav", 0.3 * np.sin(np.arange(3200) / 7.0), SR)
    ins = InsertClip(insert_bank_from_folder(tmp_path, SR), categories=["filler"])
    assert ins.item_speakers == ["spk01", "spk02"]
    wave = torch.randn(4, 8000, generator=torch.Generator().manual_seed(0)) * 0.1
    out = Pipeline([ins], sample_rate=SR)(wave, speakers=["spk02", "spk01", "spk02", "spk01"], seed=0)
    assert [r[0]["insert_name"] for r in out.record] == ["spk02/uhm", "spk01/uhm", "spk02/uhm", "spk01/uhm"]
    assert out.tags == [ALTERING] * 4


def test_a_clip_of_unknown_speaker_is_not_matched_to_unknown_items():
    t = torch.linspace(0, 0.2, 3200)
    bank = Bank([torch.sin(2 * math.pi * f * t) * 0.3 for f in (150, 250)], ["filler", "filler"], SR,
                ["a_uhm", "x_uhm"])
    ins = InsertClip(bank, categories=["filler"], speakers=["a", None])
    wave = torch.randn(40, 8000, generator=torch.Generator().manual_seed(0)) * 0.1
    out = Pipeline([ins], sample_rate=SR)(wave, speakers=[None, "a"] * 20, seed=1)
    for rec, spk in zip(out.record, [None, "a"] * 20):
        assert rec[0]["speaker_match_name"] == ("unknown" if spk is None else "same")
    # a clip of unknown speaker draws from the whole bank (not only from items of unknown speaker)
    assert {rec[0]["insert_name"] for rec in out.record[::2]} == {"a_uhm", "x_uhm"}
