"""The perception table, label handling and the retaining guardrail."""
import math

import pytest
import torch

from gpuaug.data.synthetic import synthetic_insert_bank, synthetic_noise_bank
from gpuaug.policy import ALTERING, RETAINING, UNVERIFIED, LabelPolicy, lookup, study_rows
from gpuaug.presets import perception_retaining, seed000_table1, seed003_attacks, seed004_perturbations
from gpuaug.policy.table import SEVERITY
from gpuaug.transforms import (AddNoise, Fade, InsertClip, PerceptionPolicyError, Pipeline, PitchShift, Speed,
                               SpeedSegment)

from conftest import SHARED_DATA


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


def test_label_policy_refuses_keep_for_altering():
    with pytest.raises(ValueError, match="not allowed"):
        LabelPolicy(on_altering="keep")


@pytest.mark.parametrize("mode", ["drop", "mask", "relabel"])
def test_label_actions(mode):
    sev = torch.tensor([SEVERITY["clean"], SEVERITY[RETAINING], SEVERITY[UNVERIFIED], SEVERITY[ALTERING], SEVERITY[ALTERING]])
    delta = torch.tensor([[0, 0], [0, 0], [0, 0], [0.11, 0.26], [math.nan, math.nan]], dtype=torch.float64)
    act = LabelPolicy(on_altering=mode, delta_scale=2.0).actions(sev, delta)
    assert act.action[:3] == ["keep"] * 3
    assert act.keep[:3].all() and (act.loss_weight[:3] == 1).all()
    if mode == "drop":
        assert act.keep.tolist() == [True, True, True, False, False]
    if mode == "mask":
        assert act.loss_weight.tolist() == [1, 1, 1, 0, 0] and act.keep.all()
    if mode == "relabel":
        assert act.action[3:] == ["relabel", "mask"]  # no measured delta -> masked
        torch.testing.assert_close(act.delta[3], torch.tensor([0.22, 0.52]))
        assert act.dimensional_weight.tolist() == [1, 1, 1, 1, 0]
        assert act.loss_weight[3] == 0  # categorical labels cannot be shifted


def test_unverified_policy():
    sev = torch.tensor([SEVERITY[UNVERIFIED]])
    assert LabelPolicy(on_unverified="mask").actions(sev, torch.zeros(1, 2)).loss_weight.tolist() == [0.0]


@pytest.mark.parametrize("bad", [
    lambda nb, ib: Speed(min_factor=0.75, max_factor=1.25),
    lambda nb, ib: PitchShift(),
    lambda nb, ib: InsertClip(ib, categories=["laugh"]),
    lambda nb, ib: AddNoise(nb, snr_db_choices=(-5.0, 0.0)),
    lambda nb, ib: Fade(rate_per_s=0.2),
    lambda nb, ib: SpeedSegment(max_fraction=0.5),
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


def test_speed_tags_and_relabel_per_clip():
    pipe = Pipeline([Speed(factor_choices=(1.0, 1.25, 0.75))], label_policy=LabelPolicy(on_altering="relabel"))
    wave = torch.randn(40, 1600) * 0.1
    out = pipe(wave, seed=1)
    f = out.params[pipe.leaves[0].slot]["factor"]
    for b in range(40):
        assert out.tags[b] == (RETAINING if f[b] == 1.0 else ALTERING)
        want = {1.0: (0, 0), 1.25: (-0.10, -0.13), 0.75: (-0.18, -0.23)}[float(f[b])]
        torch.testing.assert_close(out.labels.delta[b], torch.tensor(want, dtype=torch.float32))


def test_seed000_conditions_match_the_table():
    conds = seed000_table1(synthetic_noise_bank(seconds=1), synthetic_insert_bank())
    want = {"NatSt": RETAINING, "HumCo_0dB": RETAINING, "IntCo_20dB": RETAINING, "SpeedSeg": RETAINING,
            "FadeIn": RETAINING, "FadeOut": RETAINING, "DropLetters": RETAINING, "Reverb": RETAINING,
            "Speed_0.75x": ALTERING, "Speed_1.25x": ALTERING, "Pitch_0.75x": ALTERING, "Pitch_1.25x": ALTERING,
            "FillerS": ALTERING, "FillerL": ALTERING, "Laugh": ALTERING, "Cry": ALTERING}
    wave = torch.randn(2, 8000) * 0.1
    for name, tag in want.items():
        out = conds[name](wave, seed=0)
        assert out.tags == [tag, tag], name
        assert out.labels.loss_weight.tolist() == ([1.0, 1.0] if tag == RETAINING else [0.0, 0.0]), name


def test_attack_and_perturbation_presets_are_unverified():
    wave = torch.randn(2, 16000) * 0.1
    for pipe in seed003_attacks().values():
        assert pipe(wave).tags == [UNVERIFIED] * 2
    assert seed004_perturbations()(wave).tags == [UNVERIFIED] * 2
