"""Issue 11 item 1: RIR spectra cached across batches (Reverb) and length bucketing (reverb)."""
from __future__ import annotations

import pytest
import torch

import importlib

R = importlib.import_module("gpuaug.functional.reverb")
from gpuaug.banks import Bank
from gpuaug.functional.reverb import reverb, reverb_fft_size, rir_span, synthetic_rir
from gpuaug.transforms import Reverb


def _bank(n=5, sr=16000):
    rirs, rl = synthetic_rir(torch.arange(n) + 11, rt60_s=torch.linspace(0.1, 0.3, n), drr_db=3.0,
                             predelay_s=torch.linspace(0.0, 0.01, n), sample_rate=sr)
    clips = [rirs[i, :int(rl[i])].clone() for i in range(n)]
    clips[2] = torch.cat([torch.zeros(40), clips[2]])  # a later direct path
    return Bank(clips, ["room"] * n, sr, names=[f"r{i}" for i in range(n)])


class _Ctx:
    sample_rate = 16000


def _params(tr, B, seed):
    g = torch.Generator().manual_seed(seed)
    return {"u_category": torch.rand(B, generator=g, dtype=torch.float64),
            "u_item": torch.rand(B, generator=g, dtype=torch.float64)}


def _count_rffts(monkeypatch):
    calls = {"n": 0}
    orig = R._spectra

    def counted(h, *a, **k):
        calls["n"] += h.shape[0]
        return orig(h, *a, **k)

    monkeypatch.setattr(R, "_spectra", counted)
    return calls


def test_cache_bit_identical_and_hits(monkeypatch):
    bank = _bank()
    snapshot = [bank.clip(i).clone() for i in range(len(bank.names))]
    cached, plain = Reverb(bank), Reverb(bank, cache_bytes=0)
    g = torch.Generator().manual_seed(0)
    wave = torch.randn(8, 4000, generator=g)
    lengths = torch.tensor([4000, 3999, 4000, 2500, 4000, 4000, 100, 4000])
    calls = _count_rffts(monkeypatch)
    for seed in range(3):
        params = _params(cached, 8, seed % 2)  # batches 0 and 2 draw the same RIRs
        before = calls["n"]
        a, la, _ = cached.apply(wave, lengths, params, _Ctx())
        n_cached = calls["n"] - before
        b, lb, _ = plain.apply(wave, lengths, params, _Ctx())
        assert torch.equal(a, b) and torch.equal(la, lb)
        if seed == 2:
            assert n_cached == 0  # every RIR spectrum from the cache
    assert cached.rir_cache_stats["hits"] > 0
    for i, c in enumerate(snapshot):  # the bank's RIRs are never modified
        assert torch.equal(bank.clip(i), c)


def test_small_bank_spectra_stacked_once(monkeypatch):
    """Once every spectrum of a small bank is cached, later batches read them from one kept
    stack (no stack per batch), with results bit for bit those of the uncached transform."""
    bank = _bank()
    cached, plain = Reverb(bank), Reverb(bank, cache_bytes=0)
    g = torch.Generator().manual_seed(1)
    wave = torch.randn(12, 3000, generator=g)
    lengths = torch.full((12,), 3000)
    stacks = []
    real = torch.stack
    monkeypatch.setattr(torch, "stack", lambda t, *a, **k: stacks.append(len(t)) or real(t, *a, **k))
    for seed in range(12):
        params = _params(cached, 12, seed)
        if seed == 8:
            stacks.clear()
        a, _, _ = cached.apply(wave, lengths, params, _Ctx())
        b, _, _ = plain.apply(wave, lengths, params, _Ctx())
        assert torch.equal(a, b)
    assert cached._slab is not None and len(cached._slab[1]) == len(bank.names)
    assert not [n for n in stacks if n == len(bank.names)]  # the slab was not rebuilt in the last batches
    cached.clear_cache()
    assert cached._slab is None


def test_cache_keys_do_not_collide():
    bank = _bank()
    tr = Reverb(bank)
    g = torch.Generator().manual_seed(1)
    params = _params(tr, 4, 0)
    for T in (3000, 9000):  # different n_fft
        for dt in (torch.float32, torch.float64):
            wave = torch.randn(4, T, generator=g, dtype=dt)
            lengths = torch.full((4,), T)
            a, _, _ = tr.apply(wave, lengths, params, _Ctx())
            b, _, _ = Reverb(bank, cache_bytes=0).apply(wave, lengths, params, _Ctx())
            assert a.dtype == dt and torch.equal(a, b)
    dts = {k[5] for k in tr._rir_cache}
    nffts = {k[1] for k in tr._rir_cache}
    assert dts == {torch.float32, torch.float64} and len(nffts) == 2
    assert all(k[6] == torch.device("cpu") for k in tr._rir_cache)  # device is part of the key


def test_cache_bounded():
    bank = _bank(6)
    tr = Reverb(bank, cache_entries=3)
    g = torch.Generator().manual_seed(2)
    wave = torch.randn(6, 3000, generator=g)
    for seed in range(6):
        tr.apply(wave, torch.full((6,), 3000), _params(tr, 6, seed), _Ctx())
        assert len(tr._rir_cache) <= 3
    one = next(iter(tr._rir_cache.values()))
    size = one.numel() * one.element_size()
    small = Reverb(bank, cache_bytes=2 * size)
    small.apply(wave, torch.full((6,), 3000), _params(small, 6, 0), _Ctx())
    assert len(small._rir_cache) <= 2 and small._rir_cache_size <= 2 * size
    assert small._rir_cache_size == sum(v.numel() * v.element_size() for v in small._rir_cache.values())


def test_precomputed_spectra_tensor():
    g = torch.Generator().manual_seed(3)
    wave = torch.randn(5, 2, 3000, generator=g)
    lengths = torch.tensor([3000, 2000, 3000, 10, 2999])
    rirs, rl = synthetic_rir(torch.tensor([1, 2, 3]), rt60_s=0.2, drr_db=4.0, predelay_s=0.005, sample_rate=16000)
    direct = rirs.abs().argmax(dim=1)
    rows = torch.tensor([0, 2, 1, 1, 0])
    n_fft = reverb_fft_size(3000, rl, direct)
    post, pre = rir_span(rl, direct, 3000)
    S = R._spectra(rirs[:, None], rirs.abs().amax(dim=1), rl, direct, 3000, n_fft, True, torch.float32)
    a, _ = reverb(wave, lengths, rirs, rl, direct=direct, rir_index=rows, rir_spectra=S)
    b, _ = reverb(wave, lengths, rirs, rl, direct=direct, rir_index=rows, bucket=False)
    assert torch.equal(a, b)
    with pytest.raises(ValueError, match="rir_spectra must be"):
        reverb(wave, lengths, rirs, rl, direct=direct, rir_index=rows, rir_spectra=S[..., :-1])
    # the torch path sizes its FFTs from torch's table: here another size, which its spectra need
    n_torch = reverb_fft_size(3000, rl, direct, backend="torch")
    assert n_torch != n_fft and {n_torch, n_fft} == {R._fft_size(3000, rl, direct, f) for f in ("torch", "pocketfft")}
    S_t = R._spectra(rirs[:, None], rirs.abs().amax(dim=1), rl, direct, 3000, n_torch, True, torch.float32)
    a, _ = reverb(wave, lengths, rirs, rl, direct=direct, rir_index=rows, rir_spectra=S_t, backend="torch")
    b, _ = reverb(wave, lengths, rirs, rl, direct=direct, rir_index=rows, bucket=False, backend="torch")
    assert torch.equal(a, b)
    with pytest.raises(ValueError, match="rir_spectra must be"):
        reverb(wave, lengths, rirs, rl, direct=direct, rir_index=rows, rir_spectra=S, backend="torch")


@pytest.mark.parametrize("normalize", ["energy", "peak", "none"])
def test_bucketing_matches_unbucketed(normalize):
    g = torch.Generator().manual_seed(4)
    T_long, T_short = 32000, 8000
    B = 10
    lengths = torch.tensor([T_short] * 8 + [T_long] * 2)
    wave = torch.randn(B, T_long, generator=g) * (torch.arange(T_long) < lengths[:, None])
    wave[:, -1] += 0.0  # padding already zero
    rirs, rl = synthetic_rir(torch.arange(B), rt60_s=0.2, drr_db=3.0, predelay_s=0.01, sample_rate=16000)
    groups = R._length_groups(lengths, rl, rirs.abs().argmax(1), torch.arange(B), 1, 1, "pocketfft")
    assert groups != [None]
    a, la = reverb(wave, lengths, rirs, rl, normalize=normalize)
    b, lb = reverb(wave, lengths, rirs, rl, normalize=normalize, bucket=False)
    assert torch.equal(la, lengths) and torch.equal(lb, lengths)
    peak = b.abs().amax()
    assert float((a - b).abs().max()) <= 1e-5 * float(peak)  # different FFT sizes: fp32 rounding only
    assert bool((a[:8, T_short:] == 0).all())  # zero padding kept


def test_equal_needs_take_the_old_path():
    """Equal lengths and equal RIR spans: one group, the one-size result bit for bit."""
    g = torch.Generator().manual_seed(5)
    wave = torch.randn(4, 6000, generator=g)
    lengths = torch.full((4,), 6000)
    rirs, rl = synthetic_rir(torch.arange(4), rt60_s=0.2, drr_db=3.0, predelay_s=0.0, sample_rate=16000)
    assert R._length_groups(lengths, rl, rirs.abs().argmax(1), torch.arange(4), 1, 1, "pocketfft") == [None]
    a, _ = reverb(wave, lengths, rirs, rl)
    b, _ = reverb(wave, lengths, rirs, rl, bucket=False)
    assert torch.equal(a, b)


@pytest.mark.parametrize("normalize", ["energy", "peak", "none"])
def test_equal_lengths_split_by_rir_span(normalize):
    """2 s clips, two RIRs of 0.02 s and 2 s: the short-RIR clips run at a smaller FFT size;
    RIRs of 0.5 s and 1 s (the saving below the FFT calls' set-up) stay in one group."""
    g = torch.Generator().manual_seed(6)
    B, T = 32, 32000
    wave = torch.randn(B, T, generator=g)
    lengths = torch.full((B,), T)
    row = torch.arange(B) % 2
    for rl_want, split in ((torch.tensor([320, 32000]), True), (torch.tensor([8000, 16000]), False)):
        rirs, rl = synthetic_rir(torch.arange(2), rt60_s=rl_want / 16000.0, drr_db=3.0, predelay_s=0.0,
                                 sample_rate=16000, length=rl_want)
        direct = rirs.abs().argmax(1)
        groups = R._length_groups(lengths, rl, direct, row, 1, 1, "pocketfft")
        assert (groups != [None]) == split
        if not split:
            continue
        assert groups[0].tolist() == list(range(0, B, 2))
        assert reverb_fft_size(T, rl[:1], direct[:1]) < reverb_fft_size(T, rl, direct)
        a, _ = reverb(wave, lengths, rirs, rl, normalize=normalize, rir_index=row)
        b, _ = reverb(wave, lengths, rirs, rl, normalize=normalize, rir_index=row, bucket=False)
        assert float((a - b).abs().max()) <= 1e-5 * float(b.abs().amax())


def _groups_by_loop(len_host, hl_host, direct_host, clip_row, C, Cr, fft):
    """The split rule of ``_length_groups`` written as its definition: every threshold tried
    one after the other, each group's FFT size from ``_fft_size`` of its own RIRs."""
    import numpy as np
    L, row = len_host.numpy(), clip_row.numpy()
    hl, dd = hl_host.numpy(), direct_host.numpy()
    post, pre = np.minimum(hl[row] - dd[row], L), np.minimum(dd[row], np.maximum(L - 1, 0))
    need = L + np.maximum(post - 1, pre)

    def cost(sel):
        rows = np.unique(row[sel])
        n = R._fft_size(int(L[sel].max()), hl[rows], dd[rows], fft)
        return (2 * int(sel.sum()) * C + rows.size * Cr + R._FFT_CALL_ROWS) * R._fft_cost(n)

    if L.size < 2 or L.max() == 0:
        return [None]
    best, best_sel = 0.9 * cost(np.ones(L.shape, dtype=bool)), None
    for v in np.unique(need)[:-1]:
        short = need <= v
        if L[short].max() == 0 or L[~short].max() == 0:
            continue
        c = cost(short) + cost(~short)
        if c < best:
            best, best_sel = c, short
    if best_sel is None:
        return [None]
    return [torch.from_numpy(best_sel.nonzero()[0]), torch.from_numpy((~best_sel).nonzero()[0])]


@pytest.mark.parametrize("fft", ["torch", "pocketfft"])
def test_length_groups_match_the_rule_tried_threshold_by_threshold(fft):
    """The vectorised split (all thresholds at once, from running maxima) is the rule evaluated
    threshold by threshold, on 400 random batches (empty clips, shared RIRs, two channels),
    with either FFT size table."""
    g = torch.Generator().manual_seed(12)
    splits = 0
    for _ in range(400):
        B = int(torch.randint(1, 33, (1,), generator=g))
        U = int(torch.randint(1, 14, (1,), generator=g))
        pool = torch.tensor([0, 400, 2000, 16000, 32000, 64000, 128000])
        lengths = pool[torch.randint(len(pool), (B,), generator=g)]
        lengths[torch.rand(B, generator=g) < 0.3] = torch.randint(0, 130000, (1,), generator=g)
        rl = torch.randint(1, 60000, (U,), generator=g)
        direct = (torch.rand(U, generator=g, dtype=torch.float64) * rl).long()
        row = torch.randint(U, (B,), generator=g)
        C = int(torch.randint(1, 3, (1,), generator=g))
        Cr = int(torch.randint(1, C + 1, (1,), generator=g))
        want = _groups_by_loop(lengths, rl, direct, row, C, Cr, fft)
        got = R._length_groups(lengths, rl, direct, row, C, Cr, fft)
        splits += want != [None]
        assert (got == [None]) == (want == [None])
        if want != [None]:
            assert all(torch.equal(a, b) for a, b in zip(got, want))
    assert 50 < splits < 400  # both outcomes exercised
