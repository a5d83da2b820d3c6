"""Issue 11 item 1: RIR trimming, the measured FFT size table, and the shifted-RIR reverb path."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import soundfile as sf
import pytest
import torch

from gpuaug.data.layouts import rir_bank_from_folder, rir_trim_length
from gpuaug.functional.fft_sizes import FAST_SIZES, POCKETFFT_SIZES, fast_fft_size, next_5_smooth
from gpuaug.functional.reverb import reverb
from reference.reverb_ref import reverb_ref

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from fft_sizes_measure import TOLERANCE, fast_table  # noqa: E402


@pytest.mark.parametrize("fft,table", [("torch", FAST_SIZES), ("pocketfft", POCKETFFT_SIZES)])
def test_fft_size_table(fft, table):
    assert list(table) == sorted(set(table))
    for n in table:
        m = n
        for p in (2, 3, 5, 7):
            while m % p == 0:
                m //= p
        assert m == 1
    for n in [1, 100, 4095, 4097, 180451, 224_000, 524_288, 600_000]:
        k = fast_fft_size(n, fft)
        assert k >= n and (k in table or k == next_5_smooth(n))
    assert fast_fft_size(180_451, fft) != 180_500 and fast_fft_size(10**6, fft) == next_5_smooth(10**6)
    # the table is the one the committed measurement gives (benchmarks/fft_sizes_measure.py --table)
    measured = ROOT / "benchmarks" / "results" / {"torch": "cpu-2core-fft-sizes.json",
                                                   "pocketfft": "cpu-1thread-fft-sizes-pocketfft.json"}[fft]
    report = json.loads(measured.read_text())
    assert fast_table(report["sizes"], TOLERANCE[fft]) == list(table)


def test_fft_size_tables_differ_and_unknown_library_is_refused():
    assert fast_fft_size(180_500, "torch") == 186_624 and fast_fft_size(180_500, "pocketfft") == 184_320
    assert fast_fft_size(180_500) == fast_fft_size(180_500, "torch")
    with pytest.raises(ValueError, match="fft must be one of"):
        fast_fft_size(1000, "mkl")


def test_rir_trim_length_and_bank(tmp_path):
    h = np.zeros(8000)
    h[30] = 1.0
    h[31:] = 0.2 * np.exp(-np.arange(7969) / 200.0) * np.cos(np.arange(7969))
    t = torch.from_numpy(h)
    n = rir_trim_length(t, 16000, 60.0)
    e = h**2
    assert e[n:].sum() < 1e-6 * e.sum() <= e[n - 1:].sum()
    assert rir_trim_length(torch.zeros(100).index_fill_(0, torch.tensor([50]), 1.0), 16000) == 100  # 50 + 1 + 80 > 100
    sf.write(tmp_path / "r.wav", h.astype(np.float32), 16000, subtype="FLOAT")
    bank = rir_bank_from_folder(tmp_path, 16000)
    untrimmed = rir_bank_from_folder(tmp_path, 16000, trim_db=None)
    assert bank.lengths.tolist() == [n] and untrimmed.lengths.tolist() == [8000]
    assert bank.trim_db == 60.0 and untrimmed.trim_db is None and bank.untrimmed_lengths.tolist() == [8000]
    assert bank.hashes != untrimmed.hashes  # identity is of the trimmed clip
    assert torch.equal(bank.clip(0), untrimmed.clip(0)[:n])


def test_mixed_direct_paths_vs_float64_reference():
    """Different direct paths per clip (the shifted-RIR path), float32 and float64, given direct=."""
    g = torch.Generator().manual_seed(1)
    B, T = 4, 3000
    wave = torch.randn(B, T, generator=g, dtype=torch.float64)
    lengths = torch.tensor([3000, 1200, 2999, 17])
    wave = wave * (torch.arange(T) < lengths[:, None])
    rl = torch.tensor([900, 400, 50, 600])
    rir = torch.randn(B, 900, generator=g, dtype=torch.float64) * 0.1 * (torch.arange(900) < rl[:, None])
    direct = torch.tensor([0, 123, 49, 550])
    rir[torch.arange(B), direct] = torch.tensor([1.0, -2.0, 3.0, 1.5], dtype=torch.float64)
    for mode in ["energy", "peak", "none"]:
        for dt, tol in [(torch.float64, 1e-12), (torch.float32, 2e-5)]:
            out, _ = reverb(wave.to(dt), lengths, rir.to(dt), rl, normalize=mode, direct=direct)
            again, _ = reverb(wave.to(dt), lengths, rir.to(dt), rl, normalize=mode)
            torch.testing.assert_close(out, again, atol=0, rtol=0)
            for b in range(B):
                L = int(lengths[b])
                ref = reverb_ref(wave[b:b + 1, :L].numpy(), rir[b:b + 1, :int(rl[b])].numpy(), mode)[0]
                scale = max(1.0, float(np.abs(ref).max()))
                np.testing.assert_allclose(out[b, :L].double().numpy(), ref, atol=tol * scale, rtol=0)
                assert bool((out[b, L:] == 0).all())


def test_tiny_and_huge_scales_are_scale_free():
    g = torch.Generator().manual_seed(2)
    wave = torch.randn(2, 2000, generator=g)
    rir = torch.randn(2, 300, generator=g) * torch.exp(-torch.arange(300) / 50.0)
    lengths, rl = torch.tensor([2000, 1500]), torch.tensor([300, 300])
    base, _ = reverb(wave, lengths, rir, rl)
    for fw, fh in [(1e-30, 1.0), (1e30, 1e-38), (1.0, 1e38), (1e-20, 1e-36)]:
        out, _ = reverb(wave * fw, lengths, rir * fh, rl)
        torch.testing.assert_close(out / fw, base, atol=1e-5, rtol=1e-4)


def test_rir_index_shares_spectra_and_matches_per_clip_rirs():
    """Clips sharing an RIR (rir_index) give exactly what the per-clip RIR batch gives."""
    from gpuaug.functional.reverb import reverb, synthetic_rir

    g = torch.Generator().manual_seed(3)
    wave = torch.randn(6, 1, 4000, generator=g)
    lengths = torch.tensor([4000, 3500, 4000, 100, 0, 2500])
    rirs, rl = synthetic_rir(torch.tensor([1, 2, 3]), rt60_s=torch.tensor([0.2, 0.4, 0.3]), drr_db=5.0,
                             predelay_s=torch.tensor([0.0, 0.01, 0.005]), sample_rate=16000)
    rows = torch.tensor([2, 0, 2, 1, 0, 1])
    for normalize in ("energy", "peak", "none"):
        shared, _ = reverb(wave, lengths, rirs, rl, normalize=normalize, rir_index=rows)
        each, _ = reverb(wave, lengths, rirs[rows], rl[rows], normalize=normalize)
        assert torch.equal(shared, each), normalize
    with pytest.raises(ValueError, match="rir_index must be"):
        reverb(wave, lengths, rirs, rl, rir_index=torch.tensor([0, 1, 2, 3, 0, 0]))
