"""Tests of gpuaug.functional.tempo: a segment sped up (or slowed down) with its pitch kept."""
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st

from gpuaug.functional import tempo_segment
from gpuaug.functional._batch import finite_checked
from gpuaug.functional.pitch import _phase_vocoder
from gpuaug.functional.speed import speed_segment
from gpuaug.sync_count import DeviceResident, count_syncs, mark_device
from harness import check_op, mixed_batch
from reference.resample_ref import peak_freq

SR = 16000
N_FFT, HOP, XFADE = 512, 128, 80  # the defaults at 16 kHz


def tone(freq, n, amp=0.5, dtype=torch.float64):
    return amp * torch.sin(2 * np.pi * freq * torch.arange(n, dtype=torch.float64) / SR).to(dtype)


def tempo_segment_ref(x, start, length, factor, n_fft=N_FFT, hop=HOP, crossfade=XFADE):
    """One clip ``x`` (``(C, L)`` float64), written plainly: stretch the segment and its context
    with the phase vocoder, cut the stretched segment out, crossfade, splice."""
    C, L = x.shape
    s, e = min(start, L), min(start + length, L)
    n = e - s
    m = round(n / factor)  # half to even, as torch.round
    if m == n:
        return x.clone()
    if m == 0:
        return torch.cat([x[:, :s], x[:, e:]], 1)
    margin = n_fft + n_fft // 2 + hop
    w0, w1 = max(s - margin, 0), min(e + margin, L)
    rate = m / n
    stretched, _ = _phase_vocoder(x[None, :, w0:w1], torch.tensor([w1 - w0]),
                                  torch.tensor([rate], dtype=torch.float64), n_fft, hop, "torch")
    off = round((s - w0) * rate)
    seg = stretched[0, :, off:off + m].clone()
    assert seg.shape[-1] == m
    X = min(crossfade, m // 2)
    for k in range(X):  # equal-power crossfade with the original signal across each join
        th = math.pi / 2 * (k + 0.5) / X
        if s > 0:
            seg[:, k] = math.cos(th) * x[:, s + k] + math.sin(th) * seg[:, k]
        if e < L:
            seg[:, m - 1 - k] = math.cos(th) * x[:, e - 1 - k] + math.sin(th) * seg[:, m - 1 - k]
    return torch.cat([x[:, :s], seg, x[:, e:]], 1)


def expected_length(L, start, length, factor):
    n = min(start + length, L) - min(start, L)
    return L - n + round(n / factor)


# ---------------------------------------------------------------- contract (check_op)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("C", [None, 2])
def test_check_op(dtype, C):
    """No in-place change, dtype / rank / device kept, zero padding, batched == single clip,
    extra input padding changes nothing, empty batch."""
    wave, lengths = mixed_batch(B=5, T=4000, C=C, dtype=dtype, seed=1)
    check_op(tempo_segment, wave, lengths, start=torch.tensor([300, 0, 9000, 1500, 2000]),
             length=torch.tensor([1500, 2500, 10, 900, 5000]),
             factor=torch.tensor([1.25, 0.75, 1.25, 2.0, 0.5]))


# ---------------------------------------------------------------- vs reference


@pytest.mark.parametrize("backend, atol", [("torch", 1e-12), ("numba", 1e-9)])
def test_vs_reference(backend, atol):
    """float64, two channels: segments inside, at the start, running past the end, of one
    sample that vanishes (m == 0), kept (factor 1), empty; torch and Numba phase locking."""
    wave, lengths = mixed_batch(B=7, T=5000, C=2, dtype=torch.float64, seed=3)
    lengths = torch.tensor([5000, 4200, 3900, 5000, 4800, 5000, 4500])
    wave = wave * (torch.arange(5000) < lengths[:, None])[:, None, :]
    start = torch.tensor([1200, 0, 2500, 3000, 100, 700, 4500])
    length = torch.tensor([2000, 1800, 10_000, 1, 1000, 0, 300])
    factor = torch.tensor([1.25, 0.8, 1.6, 2.0, 1.0, 1.3, 0.5])
    out, out_len = tempo_segment(wave, lengths, start=start, length=length, factor=factor, backend=backend)
    for b in range(7):
        L = int(lengths[b])
        ref = tempo_segment_ref(wave[b, :, :L], int(start[b]), int(length[b]), float(factor[b]))
        assert int(out_len[b]) == ref.shape[-1] == expected_length(L, int(start[b]), int(length[b]), float(factor[b]))
        np.testing.assert_allclose(out[b, :, : ref.shape[-1]].numpy(), ref.numpy(), rtol=0, atol=atol)
        assert bool((out[b, :, ref.shape[-1]:] == 0).all())


def test_other_stft_sizes_and_crossfade_vs_reference():
    wave, lengths = mixed_batch(B=3, T=6000, dtype=torch.float64, seed=5)
    start, length = torch.tensor([500, 2000, 1000]), torch.tensor([3000, 1500, 4000])
    factor = torch.tensor([1.4, 0.6, 1.1])
    out, out_len = tempo_segment(wave, lengths, start=start, length=length, factor=factor, n_fft=256, hop=64,
                                 crossfade=200, backend="torch")
    for b in range(3):
        L = int(lengths[b])
        ref = tempo_segment_ref(wave[b, None, :L], int(start[b]), int(length[b]), float(factor[b]),
                                n_fft=256, hop=64, crossfade=200)[0]
        assert int(out_len[b]) == ref.shape[-1]
        np.testing.assert_allclose(out[b, : ref.shape[-1]].numpy(), ref.numpy(), rtol=0, atol=1e-12)


def test_batched_equals_single_clip_exactly():
    """Each clip's vocoder window, rate and cut depend on that clip only (float64: to rounding)."""
    wave, lengths = mixed_batch(B=4, T=6000, dtype=torch.float64, seed=7)
    start, length = torch.tensor([100, 2500, 0, 4000]), torch.tensor([3000, 2000, 6000, 1500])
    factor = torch.tensor([1.25, 0.7, 1.9, 1.05])
    out, out_len = tempo_segment(wave, lengths, start=start, length=length, factor=factor)
    for b in range(4):
        L = int(lengths[b])
        one, one_len = tempo_segment(wave[b:b + 1, :L], lengths[b:b + 1], start=start[b:b + 1],
                                     length=length[b:b + 1], factor=factor[b:b + 1])
        assert int(one_len[0]) == int(out_len[b])
        np.testing.assert_allclose(out[b, : int(out_len[b])].numpy(), one[0].numpy(), rtol=0, atol=1e-12)


# ---------------------------------------------------------------- bookkeeping and layouts


@settings(max_examples=25, deadline=None)
@given(
    L=st.integers(0, 3000),
    factor=st.floats(0.5, 2.0),
    start=st.integers(0, 3200),
    length=st.integers(0, 3200),
    kind=st.sampled_from(["silence", "full_scale", "noise"]),
)
def test_lengths_and_edge_cases(L, factor, start, length, kind):
    g = torch.Generator().manual_seed(L)
    x = {"silence": torch.zeros(1, 3000), "full_scale": -torch.ones(1, 3000),
         "noise": torch.rand(1, 3000, generator=g) * 2 - 1}[kind]
    x = x * (torch.arange(3000) < L)
    out, out_len = tempo_segment(x, torch.tensor([L]), start=start, length=length, factor=factor)
    expect = expected_length(L, start, length, factor)
    assert int(out_len[0]) == expect and out.shape == (1, expect)
    # bounded by the input's RMS: a stretched noise segment is near Gaussian (the phase vocoder
    # randomises phases), so its peak can pass the input's (found by hypothesis: uniform noise
    # of peak 1.0, slowed 2x, peaked at 2.30 = 3.98 sigma); 5 sigma bounds it
    rms = float(x[0, :L].square().mean().sqrt()) if L else 0.0
    assert torch.isfinite(out).all() and (out.abs() <= 5.0 * rms + 1e-6).all()
    s, e = min(start, L), min(start + length, L)
    m = expect - L + (e - s)
    assert torch.equal(out[0, :s], x[0, :s]) and torch.equal(out[0, s + m:], x[0, e:L])  # outside: copied
    if kind == "silence":
        assert (out == 0).all()


def test_two_and_three_dims_and_channels():
    """(B, T) == (B, 1, T); each channel of (B, 2, T) == that channel alone."""
    wave, lengths = mixed_batch(B=3, T=5000, C=2, dtype=torch.float32, seed=11)
    kw = dict(start=torch.tensor([400, 1000, 2000]), length=torch.tensor([2000, 1500, 2500]),
              factor=torch.tensor([1.25, 0.8, 1.5]))
    out3, len3 = tempo_segment(wave, lengths, **kw)
    assert out3.dim() == 3 and out3.shape[:2] == (3, 2)
    for c in range(2):
        out2, len2 = tempo_segment(wave[:, c], lengths, **kw)
        assert out2.dim() == 2 and torch.equal(len2, len3)
        torch.testing.assert_close(out2, out3[:, c], atol=1e-6, rtol=0)
        out1, _ = tempo_segment(wave[:, c:c + 1], lengths, **kw)
        torch.testing.assert_close(out1[:, 0], out2, atol=1e-6, rtol=0)


def test_input_not_modified_and_padding_zero():
    wave, lengths = mixed_batch(B=3, T=4000, dtype=torch.float64, seed=2)
    before, len_before = wave.clone(), lengths.clone()
    start, length, factor = torch.tensor([100, 200, 300]), torch.tensor([2000, 2000, 2000]), torch.tensor([0.6, 1.3, 2.0])
    out, out_len = tempo_segment(wave, lengths, start=start, length=length, factor=factor)
    assert torch.equal(wave, before) and torch.equal(lengths, len_before)
    assert torch.equal(start, torch.tensor([100, 200, 300])) and torch.equal(factor, torch.tensor([0.6, 1.3, 2.0]))
    assert out.shape[-1] == int(out_len.max())
    assert bool((out[torch.arange(out.shape[-1]) >= out_len[:, None]] == 0).all())
    assert out_len.dtype == torch.int64


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64])
def test_dtype_and_device_kept(dtype):
    wave, lengths = mixed_batch(B=2, T=4000, dtype=torch.float32, seed=4)
    kw = dict(start=500, length=2000, factor=torch.tensor([1.25, 0.8]))
    out, out_len = tempo_segment(wave.to(dtype), lengths, **kw)
    ref, ref_len = tempo_segment(wave.to(dtype).float(), lengths, **kw)
    assert out.dtype == dtype and out.device == wave.device and torch.equal(out_len, ref_len)
    tol = {torch.float16: 2e-3, torch.bfloat16: 1e-2}.get(dtype, 1e-6)
    torch.testing.assert_close(out.float(), ref, atol=tol, rtol=0)


def test_factor_one_and_empty_segment_pass_through_bit_exact():
    wave, lengths = mixed_batch(B=4, T=3000, dtype=torch.float32, seed=8)
    out, out_len = tempo_segment(wave, lengths, start=200, length=1500, factor=1.0)
    assert torch.equal(out, wave) and torch.equal(out_len, lengths)
    factor = torch.tensor([1.0, 1.25, 1.0, 0.9])
    out, out_len = tempo_segment(wave, lengths, start=200, length=1500, factor=factor)
    T = out.shape[-1]
    for b in (0, 2):
        assert torch.equal(out[b, : int(lengths[b])], wave[b, : int(lengths[b])]) and int(out_len[b]) == int(lengths[b])
        assert bool((out[b, int(lengths[b]):] == 0).all())
    assert not torch.equal(out[1, :T], torch.nn.functional.pad(wave[1], (0, max(0, T - 3000)))[:T])
    # empty segments and segments starting past the clip: untouched
    out, out_len = tempo_segment(wave, lengths, start=torch.tensor([0, 5000, 100, 3000]),
                                 length=torch.tensor([0, 100, 0, 10]), factor=1.5)
    assert torch.equal(out, wave) and torch.equal(out_len, lengths)


def test_bad_inputs_raise():
    x, lengths = torch.zeros(2, 1000), torch.tensor([1000, 500])
    for bad in (0.0, -1.0, 0.49, 2.01, float("inf"), float("nan")):
        with pytest.raises(ValueError, match="factor"):
            tempo_segment(x, lengths, start=0, length=100, factor=bad)
    with pytest.raises(ValueError, match="factor"):
        tempo_segment(x, lengths, start=0, length=100, factor=torch.tensor([1.0, 1.1, 1.2]))
    with pytest.raises(ValueError, match="start"):
        tempo_segment(x, lengths, start=-1, length=100, factor=1.2)
    with pytest.raises(ValueError, match="length"):
        tempo_segment(x, lengths, start=0, length=torch.tensor([10, -3]), factor=1.2)
    for sr in (0, -16000, 16000.0, None):
        with pytest.raises(ValueError, match="sample_rate"):
            tempo_segment(x, lengths, start=0, length=100, factor=1.2, sample_rate=sr)
    with pytest.raises(ValueError, match="n_fft"):
        tempo_segment(x, lengths, start=0, length=100, factor=1.2, n_fft=8)
    with pytest.raises(ValueError, match="hop"):
        tempo_segment(x, lengths, start=0, length=100, factor=1.2, hop=300)
    with pytest.raises(ValueError, match="crossfade"):
        tempo_segment(x, lengths, start=0, length=100, factor=1.2, crossfade=-1)
    with pytest.raises(ValueError, match="NaN"):
        tempo_segment(torch.full((1, 10), float("nan")), torch.tensor([10]), start=0, length=5, factor=1.2)


# ---------------------------------------------------------------- fidelity: the point of the op


@pytest.mark.parametrize("factor", [1.25, 0.75, 2.0, 0.5])
def test_tone_keeps_its_pitch_in_the_segment_unlike_speed_segment(factor):
    """A 220 Hz tone: in the sped-up segment it stays at 220 Hz (< 1 Hz off) and keeps its
    amplitude (within 2 %), while speed_segment plays it at ``220 * factor``."""
    n, s, seg = 24000, 6000, 12000
    x = tone(220.0, n, dtype=torch.float32)[None]
    m = round(seg / factor)
    inner = slice(s + 2 * XFADE, s + m - 2 * XFADE)
    out, out_len = tempo_segment(x, torch.tensor([n]), start=s, length=seg, factor=factor)
    assert int(out_len[0]) == n - seg + m
    assert abs(peak_freq(out[0, inner].numpy(), SR) - 220.0) < 1.0
    assert float(out[0, inner].std()) * math.sqrt(2) == pytest.approx(0.5, rel=0.02)
    sped, sped_len = speed_segment(x, torch.tensor([n]), start=s, length=seg, factor=factor)
    assert torch.equal(sped_len, out_len)
    assert peak_freq(sped[0, inner].numpy(), SR) == pytest.approx(220.0 * factor, rel=2e-3)


@pytest.mark.parametrize("factor, start", [(1.25, 6000), (0.75, 6000), (1.25, 6137), (1.6, 5021), (0.55, 7003)])
def test_no_click_at_the_joins(factor, start):
    """Sample-to-sample steps near the joins stay below ``1.8 * A * w`` (``A = 0.5``,
    ``w = 2 pi 220 / SR``: the steepest step of the tone itself).

    Why 1.8: in the equal-power crossfade ``cos(t) a + sin(t) b`` of two tones of amplitude
    ``A`` (any phase offset) the tone part is at most ``sqrt(2) A`` and the ramp adds at most
    ``t' * sqrt(2) A`` per sample with ``t' = pi / (2 X)``, ``X = 80``: together
    ``sqrt(2) A w (1 + pi / (2 X w)) = 1.74 A w``; a splice without crossfade steps by up to
    ``2 A = 23 A w``. The hard splice (crossfade=0) of the same cases fails the bound, so the
    bound is what the crossfade buys.
    """
    n, seg = 24000, 9000
    x = tone(220.0, n, dtype=torch.float64)[None]
    m = round(seg / factor)
    bound = 1.8 * 0.5 * 2 * np.pi * 220.0 / SR
    worst_hard = 0.0
    for crossfade, must_hold in ((XFADE, True), (0, False)):
        out, _ = tempo_segment(x, torch.tensor([n]), start=start, length=seg, factor=factor, crossfade=crossfade)
        y = out[0]
        assert torch.equal(y[:start], x[0, :start]) and torch.equal(y[start + m:], x[0, start + seg:])
        steps = [float(y[j - 200:j + 200].diff().abs().max()) for j in (start, start + m)]
        if must_hold:
            assert max(steps) <= bound, steps
        else:
            worst_hard = max(steps)
    assert worst_hard > bound  # without the crossfade this check fails


# ---------------------------------------------------------------- host syncs


def test_at_most_one_host_sync():
    """On the CPU stand-in of a device: the input NaN scan is the only host read (none inside
    :func:`finite_checked`); the audio never leaves the device and no host tensor mixes in."""
    wave, lengths = mixed_batch(B=4, T=6000, C=2, dtype=torch.float32, seed=6)
    kw = dict(start=torch.tensor([100, 2000, 0, 3000]), length=torch.tensor([3000, 2000, 6000, 500]),
              factor=torch.tensor([1.25, 0.8, 1.0, 1.9]))
    tempo_segment(mark_device(wave), lengths, **kw)  # warm up (kernel compile)
    with count_syncs() as c:
        out, out_len = tempo_segment(mark_device(wave), lengths, **kw)
    assert c.count <= 1, c.sites
    assert not c.mixed, c.mixed
    assert isinstance(out, DeviceResident)
    with count_syncs() as c, finite_checked():
        out2, _ = tempo_segment(mark_device(wave), lengths, **kw)
    assert c.count == 0, c.sites
    ref, ref_len = tempo_segment(wave, lengths, **kw)
    assert torch.equal(out.as_subclass(torch.Tensor), ref) and torch.equal(out_len, ref_len)


def test_sync_counter_sees_a_host_read():
    """The count above can fail: a device tensor read back inside the op's argument handling
    (device ``start`` without a host mirror) is one more sync."""
    wave, lengths = mixed_batch(B=2, T=3000, dtype=torch.float32, seed=6)
    with count_syncs() as c, finite_checked():
        tempo_segment(mark_device(wave), lengths, start=mark_device(torch.tensor([100, 200])), length=1000, factor=1.2)
    assert c.count >= 1


# ---------------------------------------------------------------- real data


@pytest.mark.real_data
def test_real_speech(emodb_speech):
    """EmoDB speech: lengths as speed_segment, outside copied, energy in the segment kept."""
    clips = [c[:24000].double() for c in emodb_speech[:3]]
    lengths = torch.tensor([min(24000, len(c)) for c in clips])
    batch = torch.zeros(3, int(lengths.max()), dtype=torch.float64)
    for b, c in enumerate(clips):
        batch[b, : lengths[b]] = c[: lengths[b]]
    out, out_len = tempo_segment(batch, lengths, start=3000, length=8000, factor=1.25)
    _, sped_len = speed_segment(batch, lengths, start=3000, length=8000, factor=1.25)
    assert torch.equal(out_len, sped_len) and torch.isfinite(out).all()
    assert torch.equal(out[:, :3000], batch[:, :3000])
    for b in range(3):
        e_in = batch[b, 3000:11000].pow(2).mean()
        e_out = out[b, 3000:9400].pow(2).mean()
        assert 0.7 < float(e_out / e_in) < 1.3


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu_and_syncs_only_where_sanctioned():
    """On CUDA: same result as the CPU (torch phase locking), at most one host sync (the NaN
    scan), and none outside :func:`gpuaug._sync.to_host` (sync debug mode ``error``)."""
    wave, lengths = mixed_batch(B=4, T=6000, C=2, dtype=torch.float32, seed=6)
    kw = dict(start=torch.tensor([100, 2000, 0, 3000]), length=torch.tensor([3000, 2000, 6000, 500]),
              factor=torch.tensor([1.25, 0.8, 1.0, 1.9]))
    ref, ref_len = tempo_segment(wave, lengths, backend="torch", **kw)
    w = wave.cuda()
    tempo_segment(w, lengths, **kw)  # warm up
    with count_syncs("cuda") as c:
        tempo_segment(w, lengths, **kw)
    assert c.count <= 1, c.sites
    torch.cuda.set_sync_debug_mode("error")
    try:
        out, out_len = tempo_segment(w, lengths, **kw)
    finally:
        torch.cuda.set_sync_debug_mode(0)
    assert out.device == w.device and torch.equal(out_len.cpu(), ref_len)
    torch.testing.assert_close(out.cpu(), ref, atol=1e-4, rtol=0)
