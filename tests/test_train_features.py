"""LogMel against a float64 numpy reference; length awareness; the normaliser's statistics and state."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from gpuaug.train.features import LogMel, Normalizer, htk_mel_filterbank

SR = 16000


def _ref_logmel(x: np.ndarray, length: int, sr: int = SR, n_mels: int = 40, win: int = 400, hop: int = 160,
                n_fft: int = 512, eps: float = 1e-6) -> np.ndarray:
    """Plain float64 numpy: symmetric Hamming frames, |rfft|^2, HTK triangles, log(+eps)."""
    x = np.asarray(x, dtype=np.float64)[:length]
    n_frames = max(1, 1 + (length - win) // hop)
    w = 0.54 - 0.46 * np.cos(2 * np.pi * np.arange(win) / (win - 1))
    mel = lambda f: 2595.0 * np.log10(1.0 + f / 700.0)  # noqa: E731
    edges_mel = np.linspace(mel(0.0), mel(sr / 2), n_mels + 2)
    edges = 700.0 * (10.0 ** (edges_mel / 2595.0) - 1.0)
    freqs = np.arange(n_fft // 2 + 1) * sr / n_fft
    fb = np.zeros((n_mels, n_fft // 2 + 1))
    for m in range(n_mels):
        lo, c, hi = edges[m], edges[m + 1], edges[m + 2]
        for k, f in enumerate(freqs):
            if lo < f <= c:
                fb[m, k] = (f - lo) / (c - lo)
            elif c < f < hi:
                fb[m, k] = (hi - f) / (hi - c)
    out = np.zeros((n_frames, n_mels))
    for t in range(n_frames):
        frame = np.zeros(win)
        seg = x[t * hop: t * hop + win]
        frame[: len(seg)] = seg
        spec = np.fft.rfft(frame * w, n=n_fft)
        out[t] = np.log(fb @ (spec.real ** 2 + spec.imag ** 2) + eps)
    return out


def _signal(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(n) / SR
    return 0.05 * rng.standard_normal(n) + 0.3 * np.sin(2 * np.pi * 220 * t) + 0.1 * np.sin(2 * np.pi * 3100 * t)


# float32 STFT + matmul against float64: the log-mel values (about -4 .. 7 here) agree to
# 5e-5 absolute (a relative energy error of 5e-5); the measured max is ~6e-6, a periodic
# instead of symmetric Hamming window is off by ~5e-2.
LOG_ATOL = 5e-5


def test_filterbank_matches_reference_and_is_htk():
    fb = htk_mel_filterbank(512, 40, SR).numpy()
    assert fb.shape == (40, 257)
    assert np.all(fb >= 0) and np.all(fb.max(axis=1) <= 1.0)
    # every band's peak sits at its HTK-mel centre: the centre of band 20
    centre = 700.0 * (10 ** (np.linspace(0, 2595 * math.log10(1 + 8000 / 700), 42)[21] / 2595) - 1)
    assert abs(np.argmax(fb[20]) * SR / 512 - centre) <= SR / 512
    with pytest.raises(ValueError, match="cover no FFT bin"):
        htk_mel_filterbank(64, 80, SR)


def test_logmel_matches_float64_reference():
    lengths = [16000, 9137, 4000, 401, 399]
    B, T = len(lengths), max(lengths)
    wave = torch.zeros(B, T)
    sigs = [_signal(n, seed=i) for i, n in enumerate(lengths)]
    for i, s in enumerate(sigs):
        wave[i, : len(s)] = torch.from_numpy(s).float()
    feats, fl = LogMel(SR)(wave, torch.tensor(lengths))
    assert feats.dtype == torch.float32 and feats.shape == (B, 1 + (T - 400) // 160, 40)
    assert fl.tolist() == [max(1, 1 + (n - 400) // 160) for n in lengths]
    for i, n in enumerate(lengths):
        # the reference sees the float32-rounded samples, as the module does
        ref = _ref_logmel(wave[i].double().numpy(), n)
        got = feats[i, : fl[i]].double().numpy()
        assert got.shape == ref.shape
        np.testing.assert_allclose(got, ref, rtol=0, atol=LOG_ATOL)
        assert torch.all(feats[i, fl[i]:] == 0)


def test_short_clip_gets_one_frame_of_its_zero_padded_window():
    x = torch.from_numpy(_signal(250)).float()
    wave = torch.zeros(2, 1000)
    wave[0, :250] = x
    wave[1] = torch.from_numpy(_signal(1000, 3)).float()
    feats, fl = LogMel(SR)(wave, torch.tensor([250, 1000]))
    assert fl.tolist() == [1, 4]
    np.testing.assert_allclose(feats[0, 0].double().numpy(), _ref_logmel(x.double().numpy(), 250)[0], atol=LOG_ATOL)
    assert torch.all(feats[0, 1:] == 0)
    # an empty clip: one frame of log(eps); a batch shorter than one window: one frame
    feats, fl = LogMel(SR)(torch.zeros(1, 100), torch.tensor([0]))
    assert fl.tolist() == [1] and feats.shape == (1, 1, 40)
    assert torch.allclose(feats, torch.full_like(feats, math.log(1e-6)))


def test_padding_does_not_change_valid_features():
    x = torch.from_numpy(_signal(12345, 7)).float()
    m = LogMel(SR)
    alone, fl_alone = m(x[None], torch.tensor([12345]))
    padded = torch.zeros(2, 20000)
    padded[0, :12345] = x
    padded[1] = torch.from_numpy(_signal(20000, 8)).float()
    batched, fl = m(padded, torch.tensor([12345, 20000]))
    assert fl[0] == fl_alone[0]
    assert torch.equal(batched[0, : fl[0]], alone[0, : fl[0]])
    assert torch.all(batched[0, fl[0]:] == 0)
    # padding is zero by contract; garbage after lengths is zeroed as well
    garbage = padded.clone()
    garbage[0, 12345:] = 0.7
    g, _ = m(garbage, torch.tensor([12345, 20000]))
    assert torch.equal(g, batched)


def test_logmel_float64_input_gives_float32_and_frame_lengths_on_wave_device():
    wave = torch.from_numpy(_signal(3000)).double()[None]
    feats, fl = LogMel(SR, n_mels=24, win_ms=20, hop_ms=5)(wave, torch.tensor([3000]))
    assert feats.dtype == torch.float32 and fl.dtype == torch.int64 and fl.device == wave.device
    assert feats.shape == (1, 1 + (3000 - 320) // 80, 24)
    with pytest.raises(ValueError, match=r"\(B, T\)"):
        LogMel(SR)(torch.zeros(1, 2, 100), torch.tensor([100]))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_logmel_on_cuda_matches_cpu():
    wave = torch.from_numpy(np.stack([_signal(8000, 1), _signal(8000, 2)])).float()
    lengths = torch.tensor([8000, 5000])
    wave[1, 5000:] = 0
    m = LogMel(SR)
    cpu, fl = m(wave, lengths)
    gpu, flg = m(wave.cuda(), lengths)  # module left on the CPU: buffers follow the wave
    assert gpu.device.type == "cuda" and flg.device.type == "cuda"
    torch.testing.assert_close(gpu.cpu(), cpu, atol=2 * LOG_ATOL, rtol=0)  # cuFFT vs pocketfft
    assert torch.equal(flg.cpu(), fl)


def _batch(values: list[np.ndarray]):
    """(B, F, M) features and frame lengths from per-clip (F_i, M) arrays, zero padded."""
    F = max(len(v) for v in values)
    x = torch.zeros(len(values), F, values[0].shape[1], dtype=torch.float64)
    for i, v in enumerate(values):
        x[i, : len(v)] = torch.from_numpy(v)
    return x.float(), torch.tensor([len(v) for v in values])


def test_global_normalizer_uses_valid_frames_only():
    rng = np.random.default_rng(0)
    clips = [rng.normal(3.0, 2.0, (n, 5)) for n in (30, 7, 50)]
    feats, fl = _batch(clips)
    feats[1, 7:] = 99.0  # garbage in padding must not enter the statistics
    norm = Normalizer().fit([(feats[:2], fl[:2]), (feats[2:], fl[2:])])
    allv = np.concatenate(clips)
    np.testing.assert_allclose(norm.global_mean.numpy(), allv.mean(0), rtol=1e-6)
    np.testing.assert_allclose(norm.global_std.numpy(), allv.std(0), rtol=1e-5)
    out = norm(feats, fl)
    assert torch.all(out[1, 7:] == 0) and torch.all(out[0, 30:] == 0)
    valid = torch.cat([out[i, : fl[i]] for i in range(3)]).double()
    np.testing.assert_allclose(valid.mean(0).numpy(), 0, atol=1e-5)
    np.testing.assert_allclose(valid.std(0, unbiased=False).numpy(), 1, atol=1e-5)


def test_speaker_normalizer_and_unseen_speaker_fallback():
    rng = np.random.default_rng(1)
    a, b = rng.normal(0.0, 1.0, (40, 3)), rng.normal(10.0, 3.0, (20, 3))
    feats, fl = _batch([a, b])
    norm = Normalizer("speaker").fit([(feats, fl, ["A", "B"])])
    assert norm.speakers == ["A", "B"]
    np.testing.assert_allclose(norm.speaker_mean[1].numpy(), b.mean(0), rtol=1e-6)
    out = norm(feats, fl, ["B", "C"])  # clip 0 with B's stats, clip 1 of unseen C: global stats
    allv = np.concatenate([a, b])
    np.testing.assert_allclose(out[0, :40].numpy(), (a - b.mean(0)) / b.std(0), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(out[1, :20].numpy(), (b - allv.mean(0)) / allv.std(0), rtol=1e-4, atol=1e-4)
    assert torch.all(out[1, 20:] == 0)
    with pytest.raises(ValueError, match="speaker"):
        Normalizer("speaker").fit([(feats, fl)])
    with pytest.raises(RuntimeError, match="not fitted"):
        Normalizer()(feats, fl)


@pytest.mark.parametrize("mode", ["global", "speaker"])
def test_normalizer_state_is_tensors_only_and_roundtrips_safetensors(tmp_path, mode):
    from safetensors.torch import load_file, save_file

    rng = np.random.default_rng(2)
    feats, fl = _batch([rng.normal(1, 2, (12, 4)), rng.normal(-1, 1, (9, 4))])
    norm = Normalizer(mode, eps=1e-4).fit([(feats, fl, ["spk é", "x"])])
    state = norm.state_dict()
    assert all(isinstance(v, torch.Tensor) for v in state.values())
    save_file(state, str(tmp_path / "norm.safetensors"))
    back = Normalizer().load_state_dict(load_file(str(tmp_path / "norm.safetensors")))
    assert back.mode == mode and back.eps == 1e-4
    assert back.speakers == (["spk é", "x"] if mode == "speaker" else [])
    for spk in (["x", "spk é"], ["new", "x"]):
        assert torch.equal(back(feats, fl, spk), norm(feats, fl, spk))
