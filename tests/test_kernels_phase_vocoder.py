"""The fused phase vocoder (gpuaug.kernels.phase_vocoder, op ``phase_vocoder``) vs the torch path.

The kernel replaces the elementwise torch chain of ``_phase_vocoder`` between the STFT and the
ISTFT (``_stretch_frames``). It carries the phases as unit vectors (no atan2 / cos / sin), so it
matches the torch path by rounding only: float32 within ``atol = 1e-5`` of the torch float32
path on unit-scale signals (measured: ~2e-7), float64 within ``1e-10`` of the torch float64
path (measured: ~2e-13) and of the frame-by-frame numpy reference (test_pitch).
"""
import numpy as np
import pytest
import torch

import gpuaug.functional.pitch as P
import gpuaug.kernels.phase_vocoder as pv
from gpuaug import backend as gb
from gpuaug.functional.pitch import pitch_shift
from gpuaug.functional.tempo import tempo_segment
from harness import check_op, mixed_batch
from reference.pitch_ref import pitch_shift_ref

TOL = {torch.float32: dict(atol=1e-5, rtol=0), torch.float64: dict(atol=1e-10, rtol=0)}


def vocode(wave, lengths, rate, backend, n_fft=256, hop=64):
    x3 = wave if wave.dim() == 3 else wave[:, None]
    return P._phase_vocoder(x3, lengths, torch.as_tensor(rate, dtype=torch.float64), n_fft, hop, backend)


@pytest.fixture
def clean_env(monkeypatch):
    for op in gb.OPS:
        monkeypatch.delenv(f"GPUAUG_BACKEND_{op.upper()}", raising=False)
    monkeypatch.delenv("GPUAUG_BACKEND", raising=False)
    return monkeypatch


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("C", [None, 2])
def test_fused_matches_torch_path(dtype, C):
    wave, lengths = mixed_batch(B=4, T=5000, C=C, dtype=dtype, seed=4)
    rate = [2 ** (3.86 / 12), 0.5, 2.0, 2 ** (-1 / 12)]
    ref, ref_len = vocode(wave, lengths, rate, "torch")
    out, out_len = vocode(wave, lengths, rate, "numba")
    assert torch.equal(out_len, ref_len) and out.dtype == dtype and out.shape == ref.shape
    torch.testing.assert_close(out, ref, **TOL[dtype])
    for n_fft, hop in ((512, 128), (64, 32), (100, 30)):  # default size, small, odd sizes
        torch.testing.assert_close(vocode(wave, lengths, rate, "numba", n_fft, hop)[0],
                                   vocode(wave, lengths, rate, "torch", n_fft, hop)[0], **TOL[dtype])


def test_kernel_alone_matches_stretch_frames():
    """The stretched spectrogram itself (before the ISTFT), float64: the same frames."""
    wave, _ = mixed_batch(B=3, T=3000, dtype=torch.float64, seed=6)
    rate = torch.tensor([1.3, 0.7, 1.0], dtype=torch.float64)
    window = torch.hann_window(256, periodic=True, dtype=torch.float64)
    spec = torch.stft(torch.nn.functional.pad(wave, (0, 256)), 256, 64, window=window, center=True,
                      pad_mode="constant", return_complex=True)
    spec_before = spec.clone()
    n_out = 3000 * 13 // 10 // 64 + 6
    ref = P._stretch_frames(spec, rate, 1, 256, 64, n_out, "torch")
    out = pv.phase_vocoder_kernel(spec, rate, channels=1, hop=64, n_fft=256, n_out=n_out)
    assert torch.equal(spec, spec_before) and out.shape == ref.shape and out.dtype == ref.dtype
    torch.testing.assert_close(out, ref, atol=1e-10, rtol=0)


def test_float64_vs_frame_by_frame_reference():
    wave, lengths = mixed_batch(B=3, T=1800, C=2, dtype=torch.float64, seed=3)
    semitones = torch.tensor([3.86, -12.0, 1.0])
    out, _ = pitch_shift(wave, lengths, semitones=semitones, n_fft=256, hop=64, backend="numba")
    for b in range(3):
        L = int(lengths[b])
        ref = pitch_shift_ref(wave[b, :, :L].numpy(), float(semitones[b]), n_fft=256, hop=64)
        np.testing.assert_allclose(out[b, :, :L].numpy(), ref, rtol=0, atol=1e-10)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_contract_batched_single_padding(dtype):
    """check_op (no in-place change, dtype, zero padding, batched == single), variable lengths."""
    wave, lengths = mixed_batch(B=4, T=3000, C=2, dtype=dtype, seed=7)
    semitones = torch.tensor([3.86, -12.0, 0.0, 7.0])
    out, out_len = check_op(pitch_shift, wave, lengths, semitones=semitones, backend="numba")
    for b in range(4):  # rows are independent: the same result bit for bit
        L = int(lengths[b])
        one, _ = pitch_shift(wave[b:b + 1, :, :L], lengths[b:b + 1], semitones=semitones[b:b + 1], backend="numba")
        assert torch.equal(one[0], out[b, :, :L])
        assert bool((out[b, :, L:] == 0).all())


def test_zero_semitones_bit_exact_and_no_nan():
    wave, lengths = mixed_batch(B=3, T=2000, dtype=torch.float32, seed=2)
    out, _ = pitch_shift(wave, lengths, semitones=torch.tensor([0.0, 2.0, 0.0]), backend="numba")
    assert torch.equal(out[[0, 2]], wave[[0, 2]])
    for x in (torch.zeros(2, 3000), torch.ones(2, 3000), torch.nn.functional.pad(torch.ones(2, 1), (1000, 1999))):
        for s in (-24.0, -0.5, 12.0, 24.0):
            y, _ = pitch_shift(x, torch.tensor([3000, 17]), semitones=s, backend="numba")
            assert bool(torch.isfinite(y).all()) and float(y.abs().max()) <= 4
            if not x.any():
                assert bool((y == 0).all())


def test_env_selects_the_torch_path(clean_env):
    """GPUAUG_BACKEND_PHASE_VOCODER=torch: the torch chain (with op phase_lock on its own);
    otherwise the fused kernel on CPU, torch on CUDA (no CUDA kernel)."""
    calls = []
    inner = P._stretch_frames
    clean_env.setattr(P, "_stretch_frames", lambda *a: calls.append(1) or inner(*a))
    wave, lengths = mixed_batch(B=2, T=2000, dtype=torch.float32, seed=5)
    assert gb.kernel_for(gb.PHASE_VOCODER, "cpu") == ("numba", pv.phase_vocoder_kernel)
    assert gb.kernel_for(gb.PHASE_VOCODER, "cuda") == ("torch", None)
    fused, _ = pitch_shift(wave, lengths, semitones=2.0)
    assert calls == []
    clean_env.setenv("GPUAUG_BACKEND_PHASE_VOCODER", "torch")
    assert gb.resolve(gb.PHASE_VOCODER, "cpu") == "torch" and gb.resolve(gb.PHASE_LOCK, "cpu") == "numba"
    env, _ = pitch_shift(wave, lengths, semitones=2.0)
    assert calls == [1]
    ref, _ = pitch_shift(wave, lengths, semitones=2.0, backend="torch")
    assert calls == [1, 1]
    torch.testing.assert_close(fused, env, atol=1e-4, rtol=0)  # + the tabulated sinc (same in both)
    clean_env.delenv("GPUAUG_BACKEND_PHASE_VOCODER")
    assert torch.equal(pitch_shift(wave, lengths, semitones=2.0)[0], fused)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_tempo_segment_uses_it_and_matches_torch(dtype):
    wave, lengths = mixed_batch(B=3, T=6000, dtype=dtype, seed=9)
    kw = dict(start=torch.tensor([500, 0, 2000]), length=torch.tensor([3000, 2500, 4000]),
              factor=torch.tensor([1.3, 0.7, 1.9], dtype=torch.float64))
    ref, ref_len = tempo_segment(wave, lengths, backend="torch", **kw)
    out, out_len = tempo_segment(wave, lengths, backend="numba", **kw)
    assert torch.equal(out_len, ref_len) and out.dtype == dtype
    torch.testing.assert_close(out, ref, **TOL[dtype])
