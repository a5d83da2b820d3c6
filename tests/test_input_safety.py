"""No silent wrong results (issue 10: A5, A8, A9, A10, A12).

A5 integer PCM is rescaled on the way in; A8 seeds outside [0, 2**63) are refused; A9 outputs
that overflow raise (inside a pipeline at the end of the call) and the reverb normalisation does
not underflow; A10 every public op takes float16 / bfloat16; A12 foreign replay params raise.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

import gpuaug.functional as F
from gpuaug.data import pad_batch
from gpuaug.data.collate import AugmentCollate
from gpuaug.data.padding import pcm_to_float
from gpuaug.random import check_seed, item_keys
from gpuaug.transforms import (
    VTLN, AddNoise, Fade, Gain, McAdams, ModulationSmoothing, Pipeline, PitchShift, Reverb, Speed,
)
from gpuaug.transforms.noise import WhiteNoise
from gpuaug.data.synthetic import synthetic_noise_bank, synthetic_rir_bank

SR = 16000


def _speech(B=2, T=8000, seed=0):
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(T) / SR
    tone = torch.sin(2 * torch.pi * 220 * t) * (0.5 + 0.5 * torch.sin(2 * torch.pi * 3 * t))
    return (0.3 * tone + 0.05 * torch.randn(B, T, generator=g)).float(), torch.tensor([T, T - 2000][:B])


# ---- A5: integer PCM ------------------------------------------------------------------------
@pytest.mark.parametrize("dtype,offset,scale", [(torch.int16, 0, 2**15), (torch.int32, 0, 2**31),
                                                (torch.int8, 0, 2**7), (torch.uint8, 128, 2**7)])
def test_pcm_to_float_scales_like_soundfile(dtype, offset, scale):
    info = torch.iinfo(dtype)
    pcm = torch.tensor([info.min, -1, 0, 1, info.max], dtype=torch.int64).clamp(info.min, info.max).to(dtype)
    got = pcm_to_float(pcm)
    assert got.dtype == torch.float32
    want = (pcm.to(torch.float64) - offset) / scale
    torch.testing.assert_close(got.double(), want, atol=2**-24, rtol=0)
    assert float(got.min()) >= -1.0 and float(got.max()) <= 1.0  # int32 max rounds to 1.0 in float32


def test_pcm_refuses_non_audio_dtypes():
    for bad in (torch.zeros(4, dtype=torch.int64), torch.zeros(4, dtype=torch.bool), torch.zeros(4, dtype=torch.cfloat)):
        with pytest.raises(TypeError, match="not audio"):
            pcm_to_float(bad)


def _items(waves):
    return [{"wave": w, "sample_rate": SR, "index": i} for i, w in enumerate(waves)]


def test_collate_rescales_int16_items():
    """Before: int16 items were cast with .float() (peak 32765) and fed to the ops unscaled."""
    x, _ = _speech(2, 4000)
    pcm = [(x[i] * 32767).round().to(torch.int16) for i in range(2)]
    collate = AugmentCollate(Pipeline([Gain(min_gain_db=0.0, max_gain_db=0.0)], sample_rate=SR), ratio=0.0)
    batch = collate(_items(pcm))
    assert batch.wave.dtype == torch.float32
    assert float(batch.wave.abs().max()) <= 1.0
    torch.testing.assert_close(batch.wave[0], pcm[0].float() / 32768)
    np_batch = collate(_items([p.numpy() for p in pcm]))  # numpy int16 arrays too
    assert torch.equal(np_batch.wave, batch.wave)


def test_collate_uint8_and_int32_items_and_refuses_int64():
    collate = AugmentCollate(Pipeline([Fade()], sample_rate=SR), ratio=0.0)
    u8 = torch.tensor([0, 128, 255], dtype=torch.uint8)
    i32 = torch.tensor([-(2**31), 0, 2**30], dtype=torch.int32)
    batch = collate(_items([u8, i32]))
    torch.testing.assert_close(batch.wave[0], torch.tensor([-1.0, 0.0, 127 / 128]))
    torch.testing.assert_close(batch.wave[1], torch.tensor([-1.0, 0.0, 0.5]))
    with pytest.raises(TypeError, match="item 0.*int64"):
        collate(_items([torch.zeros(10, dtype=torch.int64)]))


def test_pad_batch_rescales_pcm_and_never_narrows():
    pcm = torch.tensor([-32768, 16384, 32767], dtype=torch.int16)
    wave, lengths = pad_batch([pcm, torch.tensor([0.25, -0.5], dtype=torch.float64)])
    assert wave.dtype == torch.float64 and lengths.tolist() == [3, 2]
    torch.testing.assert_close(wave[0], pcm.double() / 32768)
    assert wave[1].tolist() == [0.25, -0.5, 0.0]  # before: copied into an int16 buffer -> [0, 0, 0]
    wave, _ = pad_batch([torch.tensor([0.1], dtype=torch.float16), torch.tensor([0.1, 0.2])])
    assert wave.dtype == torch.float32 and wave[1, 0] == torch.tensor(0.1)  # no float16 rounding of clip 1


# ---- A8: seeds ------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", [2**63, -1, 2**64 + 5])
def test_out_of_range_seeds_are_refused(seed):
    with pytest.raises(ValueError, match=r"seed must lie in \[0, 2\*\*63\)"):
        item_keys(seed, 0, torch.arange(3))
    pipe = Pipeline([Gain()], sample_rate=SR)
    wave, lengths = _speech()
    with pytest.raises(ValueError, match="seed"):
        pipe(wave, lengths, seed=seed)
    with pytest.raises(ValueError, match="seed"):
        pipe.sample(2, seed=seed)
    with pytest.raises(ValueError, match="seed"):
        AugmentCollate(pipe, seed=seed)


def test_seed_zero_and_two_to_the_63_no_longer_collide():
    """Before: both were masked to 0 and drew the same parameters."""
    pipe = Pipeline([Gain()], sample_rate=SR)
    a = pipe.sample(4, seed=0)
    with pytest.raises(ValueError):
        pipe.sample(4, seed=2**63)
    assert not torch.equal(pipe.sample(4, seed=2**63 - 1)["root/0.gain"]["gain_db"], a["root/0.gain"]["gain_db"])


def test_check_seed_types():
    assert check_seed(np.int64(7)) == 7 and check_seed(torch.tensor(7)) == 7 and check_seed(2**63 - 1) == 2**63 - 1
    for bad in (1.0, "3", True, None, torch.tensor([1, 2])):
        with pytest.raises(TypeError, match="seed"):
            check_seed(bad)
    torch.testing.assert_close(item_keys(np.int64(7), 0, torch.arange(3)), item_keys(7, 0, torch.arange(3)))
    with pytest.raises(ValueError, match="epoch"):
        item_keys(0, 2**63, torch.arange(3))


# ---- A9: non-finite outputs -----------------------------------------------------------------
def test_denormal_rir_is_normalised_not_nan():
    """Before: a RIR of 1e-40 everywhere gave an all-NaN clip (output energy underflowed)."""
    wave, lengths = _speech()
    ones, rl = torch.ones(2, 64), torch.tensor([64, 64])
    for norm in ("energy", "peak"):
        ref, _ = F.reverb(wave, lengths, ones, rl, normalize=norm)
        for scale in (1e-40, 1e-30, 1e30):  # denormal, tiny and huge RIRs: the same normalised clip
            out, _ = F.reverb(wave, lengths, torch.full((2, 64), scale), rl, normalize=norm)
            assert bool(torch.isfinite(out).all())
            torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-6)
    ref, _ = F.reverb(wave, lengths, ones, rl)
    quiet, _ = F.reverb(wave * 1e-30, lengths, ones, rl)  # quiet clips keep their (tiny) level
    torch.testing.assert_close(quiet * 1e30, ref, rtol=1e-4, atol=1e-6)
    assert float(ref.abs().max()) > 0


def test_reverb_overflow_raises():
    wave, lengths = _speech()
    with pytest.raises(ValueError, match="reverb.*not finite"):
        F.reverb(wave * 1e4, lengths, torch.full((2, 512), 3e37), torch.tensor([512, 512]), normalize="none")


def test_white_noise_overflow_raises_at_once_and_in_a_pipeline():
    wave, lengths = _speech()
    with pytest.raises(ValueError, match="white_noise.*sigma"):
        F.white_noise(wave, lengths, seed=torch.tensor([1, 2]), sigma=1e38)
    with pytest.raises(ValueError, match="white_noise.*snr_db"):
        F.white_noise(wave, lengths, seed=torch.tensor([1, 2]), snr_db=-800.0)
    with pytest.raises(ValueError, match=r"WhiteNoise: sigma=1e\+38 outside \[0, 10\]"):  # refused when built
        WhiteNoise(sigma=1e38)
    out, _ = F.white_noise(wave, lengths, seed=torch.tensor([1, 2]), sigma=0.1)  # ordinary levels still pass
    assert bool(torch.isfinite(out).all())


@pytest.mark.parametrize("backend", ["torch", "numba"])
def test_mix_noise_overflow_raises(backend):
    wave, lengths = _speech()
    noise = torch.randn(2, 3000, generator=torch.Generator().manual_seed(1))
    with pytest.raises(ValueError, match="mix_noise.*snr_db"):
        F.mix_noise(wave, lengths, noise, torch.tensor([3000, 3000]), snr_db=-800.0, backend=backend)
    bank = noise * 0.1
    with pytest.raises(ValueError, match="mix_noise.*snr_db"):
        F.mix_noise_from_bank(wave, lengths, bank, torch.tensor([3000, 3000]), index=torch.tensor([0, 1]),
                              snr_db=-800.0, backend=backend)


# ---- A10: float16 / bfloat16 through every public op ------------------------------------------
def _ops():
    B = 2
    rir, rl = F.synthetic_rir(torch.tensor([1, 2]), rt60_s=0.3, drr_db=5.0, predelay_s=0.01, sample_rate=SR)
    noise, nl = torch.randn(B, 4000, generator=torch.Generator().manual_seed(2)) * 0.1, torch.tensor([4000, 3000])
    clip, cl = torch.randn(B, 500, generator=torch.Generator().manual_seed(3)) * 0.1, torch.tensor([500, 400])
    bank = torch.randn(3, 5000, generator=torch.Generator().manual_seed(4)) * 0.1
    pos = torch.arange(7000, dtype=torch.float64)[None].expand(B, -1) * 0.9
    return {
        "gain": lambda w, l: F.gain(w, l, gain_db=3.0),
        "fade": lambda w, l: F.fade(w, l, sample_rate=SR, rate_per_s=0.2, direction=1),
        "drop_segments": lambda w, l: F.drop_segments(w, l, intervals=torch.tensor([[[100, 300]], [[200, 900]]]),
                                                      crossfade=16),
        "insert_clip": lambda w, l: F.insert_clip(w, l, clip.to(w.dtype), cl, position=100, edge_fade=8),
        "mcadams": lambda w, l: F.mcadams(w, l, alpha=0.8),
        "modulation_smoothing": lambda w, l: F.modulation_smoothing(w, l, alpha=0.1),
        "mix_noise": lambda w, l: F.mix_noise(w, l, noise.to(w.dtype), nl, snr_db=10.0),
        "mix_noise_from_bank": lambda w, l: F.mix_noise_from_bank(w, l, bank.to(w.dtype), torch.tensor([5000, 4000, 3000]),
                                                                  index=torch.tensor([0, 2]), snr_db=10.0),
        "white_noise_sigma": lambda w, l: F.white_noise(w, l, seed=torch.tensor([1, 2]), sigma=0.01),
        "white_noise_snr": lambda w, l: F.white_noise(w, l, seed=torch.tensor([1, 2]), snr_db=10.0),
        "pitch_shift": lambda w, l: F.pitch_shift(w, l, semitones=torch.tensor([1.0, -2.0])),
        "resample": lambda w, l: F.resample(w, l, ratio=0.9),
        "warp": lambda w, l: F.warp(w, l, pos, torch.tensor([7000, 5000])),
        "reverb": lambda w, l: F.reverb(w, l, rir.to(w.dtype), rl),
        "reverb_float32_rir": lambda w, l: F.reverb(w, l, rir, rl, normalize="peak"),
        "speed": lambda w, l: F.speed(w, l, factor=1.1),
        "speed_segment": lambda w, l: F.speed_segment(w, l, factor=1.25, start=1000, length=2000),
        "tempo_segment": lambda w, l: F.tempo_segment(w, l, factor=1.25, start=1000, length=2000, sample_rate=SR),
        "vtln": lambda w, l: F.vtln(w, l, alpha=0.1),
    }


def test_every_public_wave_op_is_covered():
    covered = {name.split("_float32")[0].replace("_sigma", "").replace("_snr", "") for name in _ops()}
    not_wave_ops = {"burg_lpc", "valid_power", "synthetic_rir", "factor_to_semitones"}
    assert set(F.__all__) - not_wave_ops <= covered


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("name", sorted(_ops()))
def test_half_precision_inputs(name, dtype):
    """Before: reverb, pitch_shift, vtln and modulation_smoothing crashed inside torch's FFT."""
    op = _ops()[name]
    wave, lengths = _speech()
    half = wave.to(dtype)
    out, out_lengths = op(half, lengths)
    ref, ref_lengths = op(half.float(), lengths)  # the float32 result on the same samples
    assert out.dtype == dtype and out.shape == ref.shape
    assert torch.equal(out_lengths, ref_lengths)
    assert bool(torch.isfinite(out).all())
    tol = 4 * torch.finfo(dtype).eps * float(ref.abs().max())
    torch.testing.assert_close(out.float(), ref, atol=tol, rtol=0)


def test_half_pipeline_and_float16_range():
    pipe = Pipeline([Reverb(synthetic_rir_bank()), AddNoise(synthetic_noise_bank()), Speed(), PitchShift(), VTLN(),
                     ModulationSmoothing(), McAdams()], sample_rate=SR)
    wave, lengths = _speech(T=12000)  # long enough for modulation smoothing (> 9 frames)
    for dtype in (torch.float16, torch.bfloat16):
        out = pipe(wave.to(dtype), lengths, seed=3)
        assert out.wave.dtype == dtype and bool(torch.isfinite(out.wave).all())
    with pytest.raises(ValueError, match="reverb.*float16"):  # float32 result beyond 65504
        F.reverb(wave.half() * 100, lengths, torch.full((2, 64), 1000.0).half(), torch.tensor([64, 64]),
                 normalize="none")


# ---- A12: replaying params from another pipeline --------------------------------------------
def test_foreign_params_raise_with_the_slots():
    wave, lengths = _speech()
    a = Pipeline([Fade(), Gain()], sample_rate=SR)
    b = Pipeline([Gain(), Speed()], sample_rate=SR)
    params = a(wave, lengths, seed=0).params
    with pytest.raises(ValueError, match=r"missing slots \['root/0.gain', 'root/1.speed'\], "
                                         r"unexpected slots \['root/0.fade', 'root/1.gain'\]"):
        b(wave, lengths, params=params)
    with pytest.raises(ValueError, match=r"\(1,\) tensor for this batch of 1"):
        a(wave[:1], lengths[:1], params=params)  # drawn for 2 clips
    assert torch.equal(a(wave, lengths, params=params).wave, a(wave, lengths, seed=0).wave)  # replay still exact
    with pytest.raises(ValueError, match=r"records do not match this pipeline: unknown slots \['root/0.fade', 'root/1.gain'\]"):
        b.params_from_records(a(wave, lengths, seed=0).record)  # before: a bare KeyError


def test_records_replay_passes_the_slot_check():
    wave, lengths = _speech()
    pipe = Pipeline([Fade(), Gain(), Speed()], sample_rate=SR)
    out = pipe(wave, lengths, seed=1)
    again = pipe(wave, lengths, params=pipe.params_from_records(out.record))
    torch.testing.assert_close(again.wave, out.wave)
