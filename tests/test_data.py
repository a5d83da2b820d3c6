"""Banks, padding and the built-in synthetic corpus."""
import numpy as np
import pytest
import soundfile as sf
import torch

from gpuaug.data import Bank, pad_batch
from gpuaug.data.synthetic import EMOTIONS, synthetic_noise_bank, synthetic_speech


def test_bank_from_folder_mixed_rates_and_channels(tmp_path):
    sf.write(tmp_path / "natural_rain.wav", np.random.default_rng(0).normal(size=(22050, 2)) * 0.1, 22050)
    sf.write(tmp_path / "human_cough.flac", np.random.default_rng(1).normal(size=8000) * 0.1, 8000)
    (tmp_path / "sub").mkdir()
    sf.write(tmp_path / "sub" / "interior_fan.wav", np.random.default_rng(2).normal(size=48000) * 0.1, 48000)
    bank = Bank.from_folder(tmp_path, 16000)
    assert bank.categories() == ["human", "interior", "natural"]
    assert sorted(bank.lengths.tolist()) == [16000, 16000, 16000]
    assert bank.exclude(["human"]).categories() == ["interior", "natural"]
    assert len(bank.select("natural")) == 1
    with pytest.raises(KeyError, match="available"):
        bank.select("music")
    with pytest.raises(FileNotFoundError):
        Bank.from_folder(tmp_path / "sub" / "nothing", 16000)


def test_bank_pick_is_category_balanced():
    bank = Bank([torch.ones(10)] * 5 + [torch.ones(20)], ["a"] * 5 + ["b"], 16000)
    u = torch.rand(20000, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    v = torch.rand(20000, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    idx = bank.pick(u, v)
    assert abs(float((idx == 5).double().mean()) - 0.5) < 0.02
    audio, lengths = bank.gather(idx[:3])
    assert audio.shape == (3, int(lengths.max()))


def test_bank_rejects_bad_clips():
    with pytest.raises(ValueError, match="NaN"):
        Bank([torch.tensor([float("nan")])], ["a"], 16000)
    with pytest.raises(ValueError, match="empty"):
        Bank([torch.zeros(0)], ["a"], 16000)


def test_pad_batch():
    wave, lengths = pad_batch([torch.ones(3), torch.ones(5)])
    assert wave.tolist() == [[1, 1, 1, 0, 0], [1] * 5] and lengths.tolist() == [3, 5]
    with pytest.raises(ValueError, match="channel"):
        pad_batch([torch.ones(1, 3), torch.ones(2, 3)])


def test_synthetic_corpus_is_deterministic_and_label_dependent():
    a, b = synthetic_speech(8, seed=0), synthetic_speech(8, seed=0)
    assert all(torch.equal(x.wave, y.wave) for x, y in zip(a, b))
    assert [x.emotion for x in a[:4]] == list(EMOTIONS)
    rms = {x.emotion: float(x.wave.pow(2).mean().sqrt()) for x in a[:4]}
    assert rms["angry"] > rms["neutral"] > rms["sad"]
    bank = synthetic_noise_bank(seconds=1)
    assert bank.categories() == ["human", "interior", "natural"] and bool(torch.isfinite(bank.audio).all())
