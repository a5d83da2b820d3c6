"""Issue 11: the fused CPU reverb kernel (op ``reverb``), its workspace, and Fade fused into it.

The kernel is checked against the float64 reference and the torch path; the fused fade against
the reverb-then-fade sequence (bit for bit); the pipeline fusion against the same pipeline with
fusion switched off (bit for bit, same records); the workspace for reuse and thread safety.
"""
from __future__ import annotations

import copy
import importlib
import pickle
import threading

import pytest
import torch

from gpuaug._workspace import Workspace
from gpuaug.banks import Bank
from gpuaug.functional import fade
from gpuaug.functional.reverb import reverb, synthetic_rir
from gpuaug.transforms import Fade, Gain, Pipeline, Reverb
from harness import mixed_batch
from reference.reverb_ref import reverb_ref

MODES = ["energy", "peak", "none"]


def _batch_ref(wave, lengths, rir, rl, normalize):
    """:func:`reverb_ref` clip by clip, zero padded to the batch: ``(B, C, T)`` float64."""
    w = wave if wave.dim() == 3 else wave[:, None]
    h = rir if rir.dim() == 3 else rir[:, None]
    out = torch.zeros(w.shape, dtype=torch.float64)
    for b in range(w.shape[0]):
        L = int(lengths[b])
        if L:
            y = reverb_ref(w[b, :, :L].double().numpy(), h[b, :, :int(rl[b])].double().numpy(), normalize=normalize)
            out[b, :, :L] = torch.from_numpy(y)
    return out.reshape(wave.shape)


def _rirs(B, seed=0, dtype=torch.float64, channels=None):
    rir, rl = synthetic_rir(torch.arange(B) + seed, rt60_s=torch.linspace(0.05, 0.2, B), drr_db=2.0,
                            predelay_s=torch.linspace(0.0, 0.005, B), sample_rate=16000, dtype=dtype)
    if channels:
        rir = torch.stack([rir, 0.5 * rir.roll(7, dims=-1)], 1)[:, :channels]
    return rir, rl


@pytest.mark.parametrize("normalize", MODES)
@pytest.mark.parametrize("C,Cr", [(None, None), (2, 1), (2, 2)])
def test_kernel_matches_float64_reference_and_torch(normalize, C, Cr):
    B, T = 5, 3000
    wave, lengths = mixed_batch(B=B, T=T, C=C, seed=4, dtype=torch.float64)
    lengths[1] = 0
    wave[1] = 0
    rir, rl = _rirs(B, channels=Cr if C else None)  # (B, Cr, Tr) for multichannel clips
    want = _batch_ref(wave, lengths, rir, rl, normalize)
    for dt, tol in [(torch.float64, 1e-12), (torch.float32, 2e-6)]:
        x, h = wave.to(dt), rir.to(dt)
        before = x.clone()
        got, out_len = reverb(x, lengths, h, rl, normalize=normalize, backend="numba")
        ref_t, _ = reverb(x, lengths, h, rl, normalize=normalize, backend="torch")
        peak = want.abs().max()
        assert got.dtype == dt and got.shape == x.shape and torch.equal(out_len, lengths)
        assert torch.equal(x, before)
        assert (got.to(torch.float64) - want).abs().max() <= tol * 10 * peak
        assert (got - ref_t).abs().max() <= tol * 10 * peak
        pad = torch.arange(T) >= lengths[:, None]
        assert not got.reshape(B, -1, T).masked_select(pad[:, None, :].expand(B, got.reshape(B, -1, T).shape[1], T)).any()


def test_kernel_shares_spectra_by_row_and_buckets():
    """rir_index (distinct RIRs read in place) and length bucketing give the per-clip result."""
    B, T = 7, 4000
    wave, lengths = mixed_batch(B=B, T=T, seed=9)
    lengths[:5] = torch.tensor([400, 500, 450, 600, 420])
    wave = wave * (torch.arange(T) < lengths[:, None])
    rir, rl = _rirs(3, dtype=torch.float32)
    row = torch.tensor([2, 0, 0, 1, 2, 1, 0])
    R = importlib.import_module("gpuaug.functional.reverb")
    assert R._length_groups(lengths, rl, rir.abs().argmax(1), row, 1, 1, "pocketfft") != [None]  # the in-place bucket path
    shared, _ = reverb(wave, lengths, rir, rl, rir_index=row, backend="numba")
    single, _ = reverb(wave, lengths, rir[row], rl[row], bucket=False, backend="numba")
    torch_path, _ = reverb(wave, lengths, rir, rl, rir_index=row, backend="torch")
    assert (shared - single).abs().max() <= 1e-5 * single.abs().max()
    assert (shared - torch_path).abs().max() <= 1e-5 * single.abs().max()


@pytest.mark.parametrize("rows", [1, 3, 4])
def test_row_passes_give_the_one_pass_result(monkeypatch, rows):
    """The kernel convolves ``pass_clips`` clips per load / FFT / store pass: a batch of 11
    (a remainder pass, a fade, an energy-normalised and a silent clip) in passes of 1, 3 or 4
    clips gives the single-pass result bit for bit (pocketfft's rows vectorised 4 at a time and
    the remainder rows alone round alike here), and with ``clips`` / ``out`` the rows outside
    ``clips`` are left untouched."""
    RIO = importlib.import_module("gpuaug.kernels.reverb_io")
    B, T = 11, 3000
    wave, lengths = mixed_batch(B=B, T=T, seed=5)
    lengths[2] = 0
    wave = wave * (torch.arange(T) < lengths[:, None])
    rir, rl = _rirs(4, dtype=torch.float32)
    row = torch.arange(B) % 4
    fade_spec = {"sample_rate": 16000, "rate_per_s": 0.5, "direction": torch.arange(B) % 3 - 1}
    monkeypatch.setattr(RIO, "pass_clips", lambda G, C, n_fft, dtype: 64)
    one, _ = reverb(wave, lengths, rir, rl, rir_index=row, fade=fade_spec, backend="numba", bucket=False)
    monkeypatch.setattr(RIO, "pass_clips", lambda G, C, n_fft, dtype: rows)
    got, _ = reverb(wave, lengths, rir, rl, rir_index=row, fade=fade_spec, backend="numba", bucket=False)
    assert torch.equal(got, one)
    assert not got[2].any()
    sentinel = torch.full((B, 1, T), 7.0)  # rows outside ``clips`` are left as they are
    clips = torch.tensor([0, 4, 5, 9, 10])
    H = torch.fft.rfft(rir[:, None], n=8192)
    _, ok = RIO.reverb_convolve(wave[:, None], lengths, H, row[clips], n_fft=8192, normalize="none", clips=clips,
                                out=sentinel)
    assert ok.all() and torch.equal(sentinel[[1, 2, 3, 6, 7, 8]], torch.full((6, 1, T), 7.0))
    assert not torch.equal(sentinel[clips], torch.full((5, 1, T), 7.0))


def test_pass_clips_bound_the_fft_buffers():
    """Passes hold whole SIMD vectors of clips within PASS_BYTES, shared out evenly; a clip too
    large for the bound still runs, one vector per pass."""
    RIO = importlib.import_module("gpuaug.kernels.reverb_io")
    f32, f64 = torch.float32, torch.float64
    assert RIO.pass_clips(32, 1, 184_320, f32) == 32  # 8 s clips: one pass, a 23.6 MB input
    assert RIO.pass_clips(32, 1, 69_120, f32) == 32  # 2 s clips: one pass
    assert RIO.pass_clips(50, 1, 184_320, f32) == 25  # at most 44 per pass: 2 passes of 25
    assert RIO.pass_clips(32, 1, 184_320, f64) == 16 and RIO.pass_clips(32, 2, 184_320, f32) == 16
    assert RIO.pass_clips(5, 1, 2**24, f32) == 3  # 64 MB per clip: vectors of 4, 2 passes
    assert RIO.pass_clips(1, 1, 1000, f32) == 1 and RIO.pass_clips(0, 1, 1000, f32) == 1
    for G in range(1, 70):
        for n in (8192, 69_120, 184_320, 524_288):
            k = RIO.pass_clips(G, 1, n, f32)
            assert 1 <= k <= max(G, 1) and (k * n * 4 <= RIO.PASS_BYTES or k <= RIO.FFT_LANES)
            assert -(-G // k) == -(-G // max(RIO.FFT_LANES, RIO.PASS_BYTES // (n * 4) // 4 * 4))  # fewest passes


def test_passes_padded_to_whole_fft_vectors(monkeypatch):
    """A float32 pass whose rows x channels leave rows over a multiple of FFT_LANES runs its FFTs
    on zero rows completing the vector where that costs less (fft_rows: mono 4k + 2 and 4k + 3
    clips, stereo odd counts; not 3 channels); the output is bit for bit the unpadded one (mono,
    stereo, 3 channels, a silent clip), and float64 passes are never padded."""
    RIO = importlib.import_module("gpuaug.kernels.reverb_io")
    assert [RIO.fft_rows(n, 1, torch.float32) for n in range(1, 10)] == [1, 4, 4, 4, 5, 8, 8, 8, 9]
    assert [RIO.fft_rows(n, 2, torch.float32) for n in range(1, 5)] == [2, 2, 4, 4]
    assert [RIO.fft_rows(n, 3, torch.float32) for n in range(1, 5)] == [1, 2, 3, 4]
    assert all(RIO.fft_rows(n, 1, torch.float64) == n for n in range(1, 10))
    for B, C in ((3, 1), (6, 1), (7, 1), (3, 2), (5, 3)):
        wave, lengths = mixed_batch(B=B, C=C, T=3000, seed=B + C)
        lengths[1] = 0
        wave = wave * (torch.arange(3000) < lengths[:, None, None])
        rir, rl = _rirs(B, dtype=torch.float32)
        padded, _ = reverb(wave, lengths, rir, rl, backend="numba", bucket=False)
        with monkeypatch.context() as m:
            m.setattr(RIO, "fft_rows", lambda n, channels, dtype: n)
            plain, _ = reverb(wave, lengths, rir, rl, backend="numba", bucket=False)
        assert torch.equal(padded, plain) and not padded[1].any()


@pytest.mark.parametrize("shape", ["linear", "exponential"])
@pytest.mark.parametrize("backend", ["numba", "torch"])
def test_fused_fade_equals_reverb_then_fade(shape, backend):
    B, T = 6, 5000
    wave, lengths = mixed_batch(B=B, T=T, seed=2)
    rir, rl = _rirs(B, dtype=torch.float32)
    rate = torch.tensor([0.02, 0.3, 0.5, 0.0, 0.9, 0.1], dtype=torch.float64) * 10 if shape == "linear" else \
        torch.tensor([0.02, 0.3, 0.5, 0.0, 0.9, 0.1], dtype=torch.float64)
    direction = torch.tensor([1, -1, 0, 1, -1, 1])
    spec = {"sample_rate": 16000, "rate_per_s": rate, "direction": direction, "shape": shape}
    fused, _ = reverb(wave, lengths, rir, rl, fade=spec, backend=backend)
    plain, _ = reverb(wave, lengths, rir, rl, backend=backend)
    seq, _ = fade(plain, lengths, sample_rate=16000, rate_per_s=rate, direction=direction, shape=shape,
                  backend=backend)
    assert torch.equal(fused, seq)
    assert not torch.equal(fused, plain)


def test_fade_argument_is_validated():
    wave, lengths = mixed_batch(B=2, T=800, seed=1)
    rir, rl = _rirs(2, dtype=torch.float32)
    with pytest.raises(ValueError, match="reverb: fade must be a dict"):
        reverb(wave, lengths, rir, rl, fade={"rate": 0.1})
    with pytest.raises(ValueError, match="direction"):
        reverb(wave, lengths, rir, rl, fade={"sample_rate": 16000, "rate_per_s": 0.1, "direction": 3})


def test_kernel_flags_overflow_without_a_scan():
    wave = torch.full((2, 600), 1e30)
    rir = torch.zeros(2, 50)
    rir[:, 0] = 1e30  # normalize="none": the plain convolution overflows float32
    with pytest.raises(ValueError, match=r"reverb: the output of clip\(s\) \[0, 1\] is not finite"):
        reverb(wave, torch.tensor([600, 600]), rir, torch.tensor([50, 50]), normalize="none", backend="numba")


def test_workspace_reuses_and_never_shares_a_buffer():
    ws = Workspace()
    a = ws.take("x", (3, 4), torch.float32)
    b = ws.take("x", (3, 4), torch.float32)  # a is out: a second buffer
    assert a.data_ptr() != b.data_ptr() and ws.stats == {"reused": 0, "allocated": 2}
    ws.give("x", a)
    c = ws.take("x", (2, 5), torch.float32)  # fits in a's 12 elements
    assert c.data_ptr() == a.data_ptr() and c.is_contiguous() and ws.stats["reused"] == 1
    ws.give("x", c)
    big = ws.take("x", (5, 5), torch.float32)  # larger: a new buffer, kept instead
    ws.give("x", big)
    assert ws.nbytes == 100
    clone = pickle.loads(pickle.dumps(ws))  # spawned workers and deepcopy: empty, its own lock
    assert clone.nbytes == 0 and clone.max_bytes == ws.max_bytes and copy.deepcopy(ws).nbytes == 0
    small = Workspace(max_bytes=16)
    small.give("x", small.take("x", (8,), torch.float32))
    assert small.nbytes == 0
    ws.clear()
    assert ws.nbytes == 0


def _bank(n=4):
    rirs, rl = _rirs(n, seed=30, dtype=torch.float32)
    return Bank([rirs[i, :int(rl[i])].clone() for i in range(n)], ["room"] * n, 16000,
                names=[f"r{i}" for i in range(n)])


def test_transform_workspace_is_reused_and_thread_safe():
    tr = Reverb(_bank())
    pipe = Pipeline([tr], sample_rate=16000)
    wave, lengths = mixed_batch(B=6, T=8000, seed=5)
    want = [pipe(wave, lengths, seed=0, epoch=e).wave for e in range(4)]
    assert tr.workspace.stats["reused"] > 0 and tr.workspace.nbytes > 0
    again = pickle.loads(pickle.dumps(pipe))  # a pipeline with a used workspace pickles (spawn workers)
    assert torch.equal(again(wave, lengths, seed=0, epoch=1).wave, want[1])
    got, errors = {}, []

    def work(e):
        try:
            for _ in range(3):
                got[e] = pipe(wave, lengths, seed=0, epoch=e).wave
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(e,)) for e in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for e in range(4):
        assert torch.equal(got[e], want[e])


def _no_fusion(monkeypatch):
    monkeypatch.setattr(Reverb, "fuses_with", lambda self, nxt, device: False)


@pytest.mark.parametrize("p_fade", [1.0, 0.5])
def test_pipeline_fuses_fade_into_reverb_bit_identically(monkeypatch, p_fade):
    bank = _bank()
    wave, lengths = mixed_batch(B=8, T=6000, seed=6)

    def run():
        pipe = Pipeline([Reverb(bank), Fade(rate_per_s=0.3), Gain(min_gain_db=-3.0, max_gain_db=3.0)],
                        sample_rate=16000)
        pipe.leaves[1].p = p_fade
        return pipe(wave, lengths, seed=3, epoch=1)

    calls = []

    def spy(*a, **k):
        calls.append(k.get("fade") is not None)
        return reverb(*a, **k)

    monkeypatch.setattr("gpuaug.transforms.room.reverb", spy)
    fused = run()
    assert calls == [p_fade == 1.0]  # fused only where both apply to the same clips
    _no_fusion(monkeypatch)
    plain = run()
    assert torch.equal(fused.wave, plain.wave)
    assert fused.record == plain.record
    assert any(e.get("transform") == "fade" and e["backend_name"] == "numba" for clip in fused.record for e in clip)


def test_no_fusion_when_fade_runs_elsewhere():
    tr = Reverb(_bank())
    assert tr.fuses_with(Fade(), "cpu")
    assert not tr.fuses_with(Fade(backend="torch"), "cpu")
    assert not tr.fuses_with(Gain(), "cpu")
    assert not Reverb(_bank(), backend="torch").fuses_with(Fade(), "cpu")


@pytest.mark.parametrize("normalize", ["energy", "peak"])
def test_unscaled_and_scaled_clips_agree_bit_for_bit(normalize):
    """A clip inside the kernel's safe range is convolved unscaled, the same clip times 2**70 is
    scaled first (kernels/reverb_io.SAFE_EXP): the outputs differ by exactly 2**70."""
    wave, lengths = mixed_batch(B=4, T=4000, seed=8)
    rir, rl = _rirs(4, dtype=torch.float32)
    small, _ = reverb(wave, lengths, rir, rl, normalize=normalize, backend="numba")
    big, _ = reverb(wave * 2.0**70, lengths, rir, rl, normalize=normalize, backend="numba")
    assert torch.equal(big, small * 2.0**70)


def test_fused_fade_in_length_buckets():
    """Buckets written in place by the kernel, each with its clips' fades (rows indexed by clip)."""
    B, T = 12, 16000
    g = torch.Generator().manual_seed(12)
    lengths = torch.tensor([2000] * 10 + [16000] * 2)
    wave = torch.randn(B, T, generator=g) * (torch.arange(T) < lengths[:, None])
    rir, rl = _rirs(2, dtype=torch.float32)
    row = torch.arange(B) % 2
    R = importlib.import_module("gpuaug.functional.reverb")
    assert R._length_groups(lengths, rl, rir.abs().argmax(1), row, 1, 1, "pocketfft") != [None]
    spec = {"sample_rate": 16000, "rate_per_s": torch.linspace(0.0, 0.9, B, dtype=torch.float64),
            "direction": torch.tensor([1, -1, 0] * 4)}
    fused, _ = reverb(wave, lengths, rir, rl, rir_index=row, fade=spec, backend="numba")
    plain, _ = reverb(wave, lengths, rir, rl, rir_index=row, backend="numba")
    assert torch.equal(fused, fade(plain, lengths, **spec, backend="numba")[0])
    assert not fused[:10, 2000:].any()


def test_fused_fade_on_a_selected_subset(monkeypatch):
    """Both transforms at p=1 on a selection of the batch: fused on the gathered rows, merged back
    like the unfused pair (the other clips bit for bit)."""
    bank = _bank()
    wave, lengths = mixed_batch(B=8, T=5000, seed=13)
    select = torch.tensor([True, False, True, True, False, False, True, False])

    def run():
        return Pipeline([Reverb(bank), Fade(rate_per_s=0.5)], sample_rate=16000)(
            wave, lengths, seed=4, epoch=2, select=select)

    calls = []

    def spy(*a, **k):
        calls.append((a[0].shape[0], k.get("fade") is not None))
        return reverb(*a, **k)

    monkeypatch.setattr("gpuaug.transforms.room.reverb", spy)
    fused = run()
    assert calls == [(4, True)]
    _no_fusion(monkeypatch)
    plain = run()
    assert torch.equal(fused.wave, plain.wave) and fused.record == plain.record
    assert torch.equal(fused.wave[~select], wave[~select])


@pytest.mark.parametrize("backend", ["numba", "torch"])
def test_rows_give_the_gathered_result(backend):
    """``rows=``: only those rows are convolved (per-row RIRs and fade), bit for bit the reverb of
    the gathered rows written back, the other rows unchanged; ``inplace`` writes into the input
    itself (the kernel reads each row before writing it); bad rows are refused."""
    wave, lengths = mixed_batch(B=7, C=2, T=9000, seed=31)
    lengths[2] = 0
    wave = wave * (torch.arange(9000) < lengths[:, None, None])
    rows = torch.tensor([5, 0, 2, 3])
    rir, rl = synthetic_rir(torch.arange(4), rt60_s=torch.full((4,), 0.3), drr_db=torch.full((4,), 3.0),
                            predelay_s=torch.full((4,), 0.01), sample_rate=16000)
    for fade_arg in (None, {"sample_rate": 16000, "rate_per_s": torch.full((4,), 2.0),
                            "direction": torch.tensor([1, -1, 1, 0])}):
        sub, _ = reverb(wave.index_select(0, rows), lengths[rows], rir, rl, backend=backend, fade=fade_arg)
        want = wave.clone()
        want[rows] = sub
        before = wave.clone()
        got, got_len = reverb(wave, lengths, rir, rl, rows=rows, backend=backend, fade=fade_arg)
        assert torch.equal(got, want) and torch.equal(got_len, lengths) and torch.equal(wave, before)
        own = wave.clone()
        mine, _ = reverb(own, lengths, rir, rl, rows=rows, backend=backend, fade=fade_arg, inplace=True)
        assert torch.equal(mine, want) and mine.data_ptr() == own.data_ptr()
    for bad in (torch.tensor([0, 0]), torch.tensor([7]), torch.tensor([-1])):
        with pytest.raises(ValueError, match="rows must be distinct rows of the batch of 7"):
            reverb(wave, lengths, rir[:bad.numel()], rl[:bad.numel()], rows=bad, backend=backend)


def test_reverb_on_part_of_a_batch_convolves_rows_in_place(monkeypatch):
    """Reverb applied to some clips of a batch (p < 1) convolves their rows in the batch (no
    gather, no merge): the result and the record are bit for bit those of the gather / merge path."""
    from gpuaug.transforms import base as tb
    wave, lengths = mixed_batch(B=12, T=6000, seed=23)
    merged, merge = [], tb.merge_rows
    monkeypatch.setattr(tb, "merge_rows", lambda *a, **k: (merged.append(1), merge(*a, **k))[1])
    for first in ([], [Gain(min_gain_db=-3.0, max_gain_db=-1.0)]):  # the caller's batch, or the call's own
        pipe = Pipeline(first + [Reverb(_bank(), p=0.5)])
        merged.clear()
        fast = pipe(wave, lengths, seed=5)
        assert not merged  # the in-place rows path
        with monkeypatch.context() as m:
            m.setattr(Reverb, "mixes_rows", lambda self, w: False)
            slow = pipe(wave, lengths, seed=5)
        assert merged  # the gather / merge path
        applied = fast.params[pipe.leaves[-1].slot]["apply"]
        assert 0 < int(applied.sum()) < 12
        assert torch.equal(fast.wave, slow.wave) and fast.record == slow.record
        if not first:
            assert torch.equal(fast.wave[~applied], wave[~applied])
