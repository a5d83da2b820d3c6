"""pytest-benchmark: each functional op on one batch (8 clips x 4 s at 16 kHz, mixed lengths).

    make bench            # or: python -m pytest benchmarks --benchmark-enable

Throughput in x realtime = (audio seconds in the batch) / (mean time per call).
"""
import pytest
import torch

from gpuaug import functional as F
from gpuaug.data.synthetic import synthetic_noise_bank, synthetic_rir_bank, synthetic_speech
from gpuaug.data import pad_batch

SR = 16000
DEVICE = "cuda" if torch.cuda.is_available() else "cpu"


@pytest.fixture(scope="module")
def batch():
    items = synthetic_speech(8, min_s=3.0, max_s=4.0)
    wave, lengths = pad_batch([i.wave for i in items])
    return wave.to(DEVICE), lengths.to(DEVICE)


def _ops(B):
    padded = lambda bank: bank.gather(torch.arange(len(bank)))[0]  # noqa: E731  (N, T_max), as before D5
    noise = padded(synthetic_noise_bank())[:1].expand(B, -1).contiguous().to(DEVICE)
    nl = torch.full((B,), noise.shape[-1], device=DEVICE)
    rir = padded(synthetic_rir_bank())[2:3].expand(B, -1).contiguous().to(DEVICE)
    rl = torch.full((B,), rir.shape[-1], device=DEVICE)
    p = lambda v: torch.full((B,), v, dtype=torch.float64, device=DEVICE)  # noqa: E731
    return {
        "mix_noise": lambda w, l: F.mix_noise(w, l, noise, nl, snr_db=p(10.0)),
        "white_noise": lambda w, l: F.white_noise(w, l, seed=torch.arange(B, device=DEVICE), snr_db=p(20.0)),
        "reverb": lambda w, l: F.reverb(w, l, rir, rl),
        "fade": lambda w, l: F.fade(w, l, sample_rate=SR, rate_per_s=p(0.02), direction=torch.ones(B, dtype=torch.int64, device=DEVICE)),
        "speed": lambda w, l: F.speed(w, l, factor=p(1.05)),
        "speed_segment": lambda w, l: F.speed_segment(w, l, start=l // 4, length=l // 4, factor=p(1.25)),
        "pitch_shift": lambda w, l: F.pitch_shift(w, l, semitones=p(1.0), sample_rate=SR),
        "mcadams": lambda w, l: F.mcadams(w, l, alpha=p(0.8), sample_rate=SR),
        "vtln": lambda w, l: F.vtln(w, l, alpha=p(0.1)),
        "modulation_smoothing": lambda w, l: F.modulation_smoothing(w, l, alpha=p(0.2)),
        "drop_segments": lambda w, l: F.drop_segments(w, l, intervals=torch.stack([l // 3, l // 3 + 800], 1)[:, None, :]),
    }


@pytest.mark.parametrize("name", list(_ops(8)))
def test_op(benchmark, batch, name):
    wave, lengths = batch
    op = _ops(wave.shape[0])[name]
    out, out_len = benchmark(op, wave, lengths)
    audio_s = float(lengths.sum()) / SR
    if benchmark.stats:
        benchmark.extra_info["x_realtime"] = audio_s / benchmark.stats["mean"]
    assert bool(torch.isfinite(out).all())
