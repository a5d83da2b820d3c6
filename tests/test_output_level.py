"""The pipeline's output-level policy (issue 10, A4): explicit, per clip, recorded, and what
``gpuaug augment`` writes is exactly what training sees (float32 WAV, never clipped)."""
from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf
import torch

from gpuaug.cli import main
from gpuaug.data import pad_batch
from gpuaug.data.synthetic import synthetic_noise_bank, synthetic_speech
from gpuaug.sync_count import count_syncs, mark_device
from gpuaug.transforms import AddNoise, Gain, McAdams, Pipeline


@pytest.fixture(scope="module")
def loud():
    """Clips with peaks 0.3 .. 0.95 and 0 dB noise: most augmented clips exceed full scale."""
    waves = [w.wave for w in synthetic_speech(6, seed=5, min_s=0.5, max_s=0.9)]
    waves = [w * (p / w.abs().max()) for w, p in zip(waves, (0.3, 0.5, 0.7, 0.8, 0.9, 0.95))]
    return pad_batch(waves)


def _noise(**kw):
    return Pipeline([AddNoise(synthetic_noise_bank(seconds=1), snr_db_choices=(0.0,), p=kw.pop("p", 1.0))], **kw)


def test_functional_policies():
    from gpuaug.functional.level import output_level

    x = torch.tensor([[0.5, -2.0, 1.0], [0.25, 0.1, 0.0], [0.0, 0.0, 0.0]])
    y, g, p = output_level(x, "peak_limit", 1.0)
    assert torch.equal(p, torch.tensor([2.0, 0.25, 0.0]))
    assert float(y[0].abs().max()) <= 1.0 and abs(float(g[0]) - 0.5) < 1e-7
    assert torch.equal(y[1:], x[1:]) and torch.equal(g[1:], torch.ones(2))       # under the ceiling: untouched
    y, g, _ = output_level(x, "normalize", 0.5)
    assert torch.allclose(y.abs().amax(1), torch.tensor([0.5, 0.5, 0.0])) and float(g[2]) == 1.0
    y, g, _ = output_level(x, "keep")
    assert torch.equal(y, x) and torch.equal(g, torch.ones(3))
    y, g, _ = output_level(x, "normalize", 1.0, mask=torch.tensor([False, True, True]))
    assert torch.equal(y[0], x[0]) and float(g[0]) == 1.0
    with pytest.raises(ValueError, match="output_level"):
        output_level(x, "clip")
    with pytest.raises(ValueError, match="output_peak"):
        Pipeline([Gain()], output_peak=0.0)


def test_default_peak_limits_the_augmented_clips_and_records_the_gain(loud):
    wave, lengths = loud
    keep = _noise(output_level="keep")(wave, lengths, seed=0)
    assert float(keep.wave.abs().max()) > 1.0                    # the issue: above full scale
    out = _noise()(wave, lengths, seed=0)                        # the default: peak_limit at 1.0
    assert _noise().output_level == "peak_limit"
    assert float(out.wave.abs().max()) <= 1.0
    assert torch.equal(out.params["root/0.add_noise"]["snr_db"], keep.params["root/0.add_noise"]["snr_db"])
    for b in range(wave.shape[0]):
        entry = out.record[b][-1]
        assert entry["transform"] == "output_level" and entry["policy"] == "peak_limit" and entry["level"] == 1.0
        peak = float(keep.wave[b].abs().max())
        assert entry["peak"] == pytest.approx(peak, rel=1e-6)
        assert entry["gain"] == pytest.approx(min(1.0, 1.0 / peak), rel=1e-6)
        torch.testing.assert_close(out.wave[b], keep.wave[b] * entry["gain"], rtol=0, atol=1e-6)
    assert sum(e[-1]["gain"] < 1 for e in out.record) >= 3


def test_only_augmented_clips_are_touched_and_replay_is_exact(loud):
    wave, lengths = loud
    pipe = _noise(p=0.5, output_level="normalize", output_peak=0.9)
    out = pipe(wave, lengths, seed=3)
    applied = out.params["root/0.add_noise"]["apply"]
    assert 0 < int(applied.sum()) < wave.shape[0]
    for b in range(wave.shape[0]):
        if applied[b]:
            assert float(out.wave[b].abs().max()) == pytest.approx(0.9, rel=1e-6)
            assert out.record[b][-1]["transform"] == "output_level"
        else:
            assert torch.equal(out.wave[b], wave[b]) and out.record[b] == []   # clean clips: bit for bit
    assert torch.equal(pipe(wave, lengths, params=out.params).wave, out.wave)
    assert torch.equal(pipe(wave, lengths, params=pipe.params_from_records(out.record)).wave, out.wave)


def test_output_level_costs_no_extra_sync(loud):
    wave, lengths = loud
    pipe = Pipeline([McAdams()])           # McAdams: no deferred read of its own
    pipe(wave, lengths, seed=1)
    with count_syncs() as c:
        out = pipe(mark_device(wave), lengths, seed=1)
        out.record
    assert c.count <= 2 and not c.mixed, c.sites
    assert all(r[-1]["transform"] == "output_level" for r in out.record)


def test_emodb_noise_at_0db_stays_within_full_scale(shared_data):
    from gpuaug.audio_io import read_audio
    from gpuaug.data.collate import AugmentCollate

    files = sorted((shared_data / "emotion").glob("*.wav"))[:12]
    items = [{"wave": read_audio(f)[0], "sample_rate": read_audio(f)[1], "index": i} for i, f in enumerate(files)]
    for policy, within in (("keep", False), ("peak_limit", True)):
        collate = AugmentCollate(_noise(output_level=policy), seed=0)
        batch = collate(items)
        peaks = torch.stack([batch.wave[k, : batch.lengths[k]].abs().max() for k in range(len(items))])
        assert bool((peaks <= 1.0).all()) == within, (policy, peaks)


def test_cli_writes_exactly_what_training_sees(tmp_path):
    """float32 WAV, never clipped: the _aug file equals the collate's output sample for sample,
    also with --output-level keep, where samples beyond full scale are kept."""
    from gpuaug.data.collate import AugmentCollate
    from gpuaug.data.datasets import SyntheticSERDataset
    from gpuaug.data.synthetic import synthetic_insert_bank, synthetic_rir_bank
    from gpuaug.presets import build_preset

    for policy in ("keep", "peak_limit"):
        out = tmp_path / policy
        assert main(["augment", "--out", str(out), "--preset", "seed002", "--clips", "3", "--seed", "2",
                     "--output-level", policy]) == 0
        meta = json.loads((out / "params.json").read_text())
        assert meta["output_level"] == policy
        pipe = build_preset("seed002", noise=synthetic_noise_bank(), rir=synthetic_rir_bank(),
                            insert=synthetic_insert_bank(), sample_rate=16000)
        pipe.output_level = policy
        ds = SyntheticSERDataset(3, sample_rate=16000, seed=2)
        batch = AugmentCollate(pipe, seed=2)([ds[i] for i in range(3)])
        peaks = []
        for k, entry in enumerate(meta["clips"]):
            assert sf.info(str(out / entry["file"])).subtype == "FLOAT"
            data, sr = sf.read(str(out / entry["file"]), dtype="float32")
            assert sr == 16000
            np.testing.assert_array_equal(data, batch.wave[k, : batch.lengths[k]].numpy())
            assert (entry["record"][-1]["transform"] == "output_level") == (policy != "keep")
            peaks.append(float(np.abs(data).max()))
        if policy == "keep":
            assert max(peaks) > 1.0, peaks      # written as is, not clipped
        else:
            assert max(peaks) <= 1.0, peaks
