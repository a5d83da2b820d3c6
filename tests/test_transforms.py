"""Transforms and pipelines: reproducibility, replay, probabilities, containers, records."""
import pytest
import torch

from gpuaug.data import pad_batch
from gpuaug.data.synthetic import (synthetic_insert_bank, synthetic_noise_bank, synthetic_rir_bank,
                                   synthetic_speech)
from gpuaug.transforms import (VTLN, AddNoise, Compose, DropSegments, Fade, Gain, InsertClip, McAdams,
                               ModulationSmoothing, OneOf, Pipeline, PitchShift, Reverb, SomeOf, Speed,
                               SpeedSegment, WhiteNoise)


@pytest.fixture(scope="module")
def banks():
    return synthetic_noise_bank(seconds=2), synthetic_rir_bank(), synthetic_insert_bank()


@pytest.fixture(scope="module")
def batch():
    items = synthetic_speech(6, min_s=0.6, max_s=1.2)
    wave, lengths = pad_batch([i.wave for i in items])
    return wave, lengths


def _all_leaves(banks):
    nb, rb, ib = banks
    return [
        AddNoise(nb, placements=("continuous", "start", "span"), span_lengths=("short", "complete")),
        WhiteNoise(), Reverb(), Reverb(rb), Fade(), Gain(), Speed(min_factor=0.8, max_factor=1.2),
        SpeedSegment(), PitchShift(min_semitones=-2, max_semitones=2), McAdams(), VTLN(),
        ModulationSmoothing(), InsertClip(ib, positions=("start", "middle", "end", "random"), silence_before_s=(0.0, 0.2)),
        DropSegments(),
    ]


def _applied(record):
    """The transforms of a clip's record, without the pipeline's output-level entry (issue 10,
    A4: the default ``output_level="peak_limit"`` appends one to every augmented clip)."""
    return [[e for e in r if e["transform"] != "output_level"] for r in record]


def _assert_valid(out, B):
    assert out.wave.shape[0] == B and out.lengths.shape == (B,)
    assert bool(torch.isfinite(out.wave).all())
    pad = torch.arange(out.wave.shape[-1]) >= out.lengths[:, None]
    assert bool((out.wave[pad] == 0).all())


def test_every_transform_runs_replays_and_records(banks, batch):
    wave, lengths = batch
    for t in _all_leaves(banks):
        pipe = Pipeline([t])
        out = pipe(wave, lengths, seed=3, index=torch.arange(6) + 100)
        _assert_valid(out, 6)
        assert all(len(r) == 1 and r[0]["transform"] == t.name for r in _applied(out.record)), t
        again = pipe(wave, lengths, seed=3, index=torch.arange(6) + 100)
        assert torch.equal(again.wave, out.wave), f"{t}: same seed must be bit-identical"
        replay = pipe(wave, lengths, params=out.params)
        assert torch.equal(replay.wave, out.wave), f"{t}: params replay must be bit-identical"
        from_record = pipe(wave, lengths, params=pipe.params_from_records(out.record))
        assert torch.equal(from_record.wave, out.wave), f"{t}: record replay must be bit-identical"
        if not t.changes_length:
            assert torch.equal(out.lengths, lengths)


def test_parameters_depend_only_on_seed_epoch_index(banks):
    pipe = Pipeline([AddNoise(banks[0]), Speed()])
    a = pipe.sample(4, seed=1, epoch=2, index=[10, 11, 12, 13])
    b = pipe.sample(2, seed=1, epoch=2, index=[13, 11])
    for slot in a:
        for k in a[slot]:
            assert a[slot][k][3] == b[slot][k][0] and a[slot][k][1] == b[slot][k][1], (slot, k)
    c = pipe.sample(4, seed=1, epoch=3, index=[10, 11, 12, 13])
    assert not torch.equal(a["root/1.speed"]["factor"], c["root/1.speed"]["factor"])


def test_item_result_independent_of_batch_company(banks, batch):
    wave, lengths = batch
    pipe = Pipeline([AddNoise(banks[0]), Reverb(), SpeedSegment(p=0.5)])
    full = pipe(wave, lengths, seed=5, index=torch.arange(6))
    for b in (0, 4):
        L = int(lengths[b])
        one = pipe(wave[b : b + 1, :L], lengths[b : b + 1], seed=5, index=torch.tensor([b]))
        assert int(one.lengths[0]) == int(full.lengths[b])
        torch.testing.assert_close(one.wave[0, : one.lengths[0]], full.wave[b, : full.lengths[b]], atol=2e-5, rtol=1e-4)


def test_probability_p():
    pipe = Pipeline([Gain(p=0.3)])
    apply = pipe.sample(4000, seed=0)["root/0.gain"]["apply"]
    assert abs(float(apply.float().mean()) - 0.3) < 3 * (0.3 * 0.7 / 4000) ** 0.5 + 1e-3
    out = pipe(torch.randn(50, 100), seed=0)
    n = sum(len(r) for r in _applied(out.record))
    assert n == int(out.params["root/0.gain"]["apply"].sum())
    assert [t != "clean" for t in out.tags] == out.params["root/0.gain"]["apply"].tolist()


def test_one_of_applies_exactly_one_with_weights():
    pipe = Pipeline(OneOf([Gain(), Fade(), WhiteNoise()], weights=[2, 1, 1]))
    out = pipe(torch.randn(400, 200) * 0.1, seed=0)
    counts = [len(r) for r in _applied(out.record)]
    assert counts == [1] * 400
    share = sum(r[0]["transform"] == "gain" for r in out.record) / 400
    assert 0.42 < share < 0.58


def test_some_of_counts():
    pipe = Pipeline(SomeOf([Gain(), Fade(), WhiteNoise()], min_count=1, max_count=2))
    out = pipe(torch.randn(200, 200) * 0.1, seed=0)
    counts = [len(r) for r in _applied(out.record)]
    assert set(counts) == {1, 2}
    nested = Pipeline(Compose([OneOf([Speed(min_factor=0.8, max_factor=1.2), Gain()]), Fade(p=0.5)]))
    out = nested(torch.randn(20, 300) * 0.1, seed=0)
    _assert_valid(out, 20)
    replay = nested(torch.randn(20, 300) * 0, params=out.params)
    assert replay.lengths.tolist() == out.lengths.tolist()


def test_length_changing_subset_merge(batch):
    wave, lengths = batch
    pipe = Pipeline([Speed(factor_choices=(0.8,), p=0.5)])
    out = pipe(wave, lengths, seed=0)
    applied = out.params["root/0.speed"]["apply"]
    assert 0 < int(applied.sum()) < 6
    for b in range(6):
        if applied[b]:
            assert int(out.lengths[b]) == round(int(lengths[b]) / 0.8)
        else:
            assert int(out.lengths[b]) == int(lengths[b])
            assert torch.equal(out.wave[b, : lengths[b]], wave[b, : lengths[b]])
    _assert_valid(out, 6)


def test_multichannel_batch(banks):
    wave = torch.randn(3, 2, 4000) * 0.1
    lengths = torch.tensor([4000, 2500, 3000])
    out = Pipeline([AddNoise(banks[0]), Reverb(), Speed()])(wave, lengths, seed=0)
    assert out.wave.shape[:2] == (3, 2)
    pad = torch.arange(out.wave.shape[-1]) >= out.lengths[:, None]
    assert bool((out.wave.transpose(0, 1)[:, pad] == 0).all())


def test_drop_word_uses_alignments(batch):
    wave, lengths = batch
    al = torch.tensor([[[1000, 3000], [4000, 6000], [0, 0]]] * 6)
    pipe = Pipeline([DropSegments(mode="word", crossfade_ms=0)])
    out = pipe(wave, lengths, alignments=al, word_text=[["so", "so"]] * 6, seed=0)
    assert (lengths - out.lengths).tolist() == [2000] * 6
    out = Pipeline([DropSegments(mode="word", words="any", crossfade_ms=0)])(wave, lengths, alignments=al, seed=0)
    assert (lengths - out.lengths).tolist() == [2000] * 6
    with pytest.raises(ValueError, match="alignments"):
        pipe(wave, lengths, word_text=[["so", "so"]] * 6, seed=0)


def test_noise_record_names_category(banks, batch):
    wave, lengths = batch
    out = Pipeline([AddNoise(banks[0], categories=["human"])])(wave, lengths, seed=0)
    for rec in out.record:
        assert rec[0]["noise_category_name"] == "human" and rec[0]["noise_name"] in ("babble", "cough")


def test_silent_clip_passes_noise_unchanged(banks):
    wave = torch.zeros(2, 1000)
    wave[1] = torch.randn(1000) * 0.1
    out = Pipeline([AddNoise(banks[0])])(wave, seed=0)
    assert torch.equal(out.wave[0], wave[0])
    assert out.record[0][0]["silent_passthrough"] is True


def test_bad_input_errors():
    pipe = Pipeline([Gain()])
    with pytest.raises(ValueError, match="NaN"):
        pipe(torch.tensor([[0.0, float("nan")]]))
    with pytest.raises(TypeError):
        pipe(torch.zeros(2, 10, dtype=torch.int32))
    with pytest.raises(ValueError, match="p must be"):
        Gain(p=1.5)
    with pytest.raises(KeyError, match="no category"):
        AddNoise(synthetic_noise_bank(seconds=1), categories=["music"])


def test_pipeline_scans_for_nan_once_and_keeps_outputs_finite(banks):
    """The pipeline checks its input, then runs the ops inside finite_checked (no rescans);
    the context is reset afterwards and a NaN still raises from a plain op call."""
    from gpuaug.functional import gain
    from gpuaug.functional._batch import check_wave, finite_checked, finite_trusted

    bad = torch.tensor([[0.0, float("nan")]])
    with finite_checked():
        assert finite_trusted()
        check_wave(bad, torch.tensor([2]))  # trusted: no scan
    assert not finite_trusted()
    with pytest.raises(ValueError, match="NaN"):
        gain(bad, torch.tensor([2]), gain_db=1.0)
    pipe = Pipeline([AddNoise(banks[0]), Reverb(banks[1]), SpeedSegment(), Fade()], sample_rate=16000)
    wave = torch.randn(4, 16000) * 0.1
    out = pipe(wave, torch.tensor([16000, 9000, 1, 0]), seed=3)
    assert bool(torch.isfinite(out.wave).all()) and not finite_trusted()
    with pytest.raises(ValueError, match="NaN"):
        pipe(bad)


@pytest.mark.real_data
def test_recommended_pipeline_on_real_recordings(shared_data, emodb_speech):
    """EmoDB speech + the real noise (natural / human / domestic) and measured RIR folders."""
    from gpuaug.data import Bank
    from gpuaug.presets import perception_retaining

    noise = Bank.from_folder(shared_data / "noise", 16000)
    assert {"natural", "human", "domestic"} <= set(noise.categories())
    rirs = Bank.from_folder(shared_data / "rir", 16000, category_of=lambda p: "room")
    wave, lengths = pad_batch(emodb_speech)
    pipe = perception_retaining(noise, rirs, p_noise=1.0, p_other=0.5)
    out = pipe(wave, lengths, seed=0, index=torch.arange(len(emodb_speech)))
    _assert_valid(out, len(emodb_speech))
    assert set(out.tags) <= {"retaining"}
    for b, rec in enumerate(out.record):
        noise_entry = next(e for e in rec if e["transform"] == "add_noise")
        assert noise_entry["snr_db"] in (0.0, 10.0, 20.0)
        assert noise_entry["noise_category_name"] in ("natural", "human", "domestic")
    assert torch.equal(pipe(wave, lengths, params=out.params).wave, out.wave)
