"""Test conditions and training augmentations by name; a clip's condition from its record."""
import pytest
import torch

from gpuaug.data.synthetic import synthetic_noise_bank, synthetic_rir_bank
from gpuaug.train.conditions import (Banks, augment_pipeline, clip_condition, condition_pipeline,
                                     parse_condition)

SR = 16000


@pytest.fixture(scope="module")
def banks():
    return Banks(synthetic_noise_bank(sample_rate=SR), synthetic_rir_bank(sample_rate=SR))


def test_parse():
    assert parse_condition("clean").kind == "clean"
    c = parse_condition("noise:interior@10")
    assert (c.kind, c.category, c.snr_db) == ("noise", "interior", 10.0)
    assert parse_condition("noise:natural@-5dB").snr_db == -5.0
    assert parse_condition("preset:retaining").preset == "retaining"
    for bad, match in [("noisy", "expected clean"), ("noise:interior", "category>@<snr"),
                       ("noise:interior@loud", "not a number"), ("preset:bogus", "unknown preset")]:
        with pytest.raises(ValueError, match=match):
            parse_condition(bad)


def test_noise_condition_is_one_category_at_one_snr(banks):
    pipe = condition_pipeline(parse_condition("noise:natural@0"), banks, SR)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(6, SR, generator=g) * 0.01  # far below the output peak limit
    out = pipe(x, torch.full((6,), SR), params=pipe.sample(6, seed=3, epoch=0, index=torch.arange(6)))
    names = [clip_condition(r) for r in out.record]
    assert names == ["noise:natural@0dB"] * 6
    noise = out.wave - x
    snr = 10 * torch.log10(x.square().sum(1) / noise.square().sum(1))
    assert torch.allclose(snr, torch.zeros(6), atol=0.05)
    assert condition_pipeline(parse_condition("clean"), banks, SR) is None


def test_augment_names(banks):
    assert augment_pipeline("none", banks, SR) is None
    assert augment_pipeline("retaining", banks, SR).require == "retaining"
    assert augment_pipeline("noise:human@20", banks, SR) is not None
    with pytest.raises(ValueError, match="augmentation 'bogus'"):
        augment_pipeline("bogus", banks, SR)


def test_clip_condition_names_applied_transforms():
    assert clip_condition([]) == "clean"
    assert clip_condition([{"transform": "crop"}, {"transform": "output_level"}]) == "clean"
    rec = [{"transform": "add_noise", "noise_category_name": "interior", "snr_db": 10.0}, {"transform": "reverb"},
           {"transform": "output_level"}]
    assert clip_condition(rec) == "noise:interior@10dB+reverb"
