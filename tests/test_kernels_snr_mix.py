"""Kernels of the fused SNR mix (gpuaug.kernels.snr_mix) vs the torch reference.

``mix_noise`` / ``mix_noise_from_bank`` with ``backend="numba"`` (CPU ``@njit``) against
``backend="torch"``; the flat (ragged) bank against the padded layout, bit for bit; the two
``@cuda.jit`` passes on the CUDA simulator (tiny inputs, launched directly with numpy arrays);
the AddNoise record's backend.
"""
import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st

import gpuaug.kernels.snr_mix as sm
from gpuaug import backend as gb
from gpuaug.banks import Bank
from gpuaug.functional.noise import _placement, _snr_gain, _snr_scale, mix_noise, mix_noise_from_bank, valid_power
from gpuaug.transforms import AddNoise, Pipeline
from conftest import load_real
from harness import check_op, mixed_batch
from reference.noise_ref import mix_noise_ref, snr_db

TOL = {torch.float32: dict(atol=1e-6, rtol=1e-6), torch.float64: dict(atol=1e-12, rtol=1e-12)}


def placement_kwargs(B, seed=0):
    """Per-clip SNR, offsets beyond the noise length, negative starts, spans and fades."""
    g = torch.Generator().manual_seed(seed)
    return dict(
        snr_db=torch.rand(B, generator=g, dtype=torch.float64) * 30 - 5,
        noise_offset=torch.randint(0, 5000, (B,), generator=g),
        span_start=torch.randint(-200, 800, (B,), generator=g),
        span_length=torch.randint(0, 1500, (B,), generator=g),
        fade_out=torch.randint(0, 400, (B,), generator=g),
    )


def bank_of(N=5, Tb=1200, seed=1, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(1, Tb + 1, (N,), generator=g)
    lengths[0] = Tb
    lengths[1] = 1
    audio = torch.randn(N, Tb, generator=g, dtype=torch.float64) * (torch.arange(Tb) < lengths[:, None])
    return audio.to(dtype), lengths


def ragged_of(bank, bank_lengths, gap=3):
    """The padded ``bank``'s items in a flat store, in reverse order with NaN gaps between them
    (a kernel reading outside an item would pick up a NaN); returns ``(flat, offsets)``."""
    parts, offsets, pos = [], [0] * len(bank), 0
    for r in reversed(range(len(bank))):
        parts.append(torch.full((gap,), float("nan"), dtype=bank.dtype))
        pos += gap
        offsets[r] = pos
        parts.append(bank[r, : int(bank_lengths[r])])
        pos += int(bank_lengths[r])
    parts.append(torch.full((gap,), float("nan"), dtype=bank.dtype))
    return torch.cat(parts), torch.tensor(offsets)


def same_bits(a, b):
    return a.shape == b.shape and a.dtype == b.dtype and torch.equal(a.view(-1).view(torch.uint8),
                                                                     b.view(-1).view(torch.uint8))


# ---------------------------------------------------------------- flat (ragged) bank vs the padded layout


@pytest.mark.parametrize("backend", ["torch", "numba"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("C", [None, 2])
def test_flat_bank_is_bit_identical_to_the_padded_layout(backend, dtype, C):
    """The ragged bank (items at offsets, NaN between them) mixes exactly as the old padded
    ``(N, T_max)`` bank did: the old torch formula ``mix_noise(bank[index, :t], ...)`` and the
    kernels on the gathered rows."""
    wave, lengths = mixed_batch(B=5, T=1500, C=C, dtype=dtype, seed=21)
    bank, bank_lengths = bank_of(N=5, Tb=1200, seed=22)
    flat, offsets = ragged_of(bank, bank_lengths)
    index = torch.tensor([0, 1, 4, 0, 3])
    kw = placement_kwargs(5, seed=23)
    out, out_len = mix_noise_from_bank(wave, lengths, flat, bank_lengths, index, bank_offsets=offsets,
                                       backend=backend, **kw)
    t_noise = int(bank_lengths[index].max())
    old, _ = mix_noise(wave, lengths, bank[index, :t_noise], bank_lengths[index], backend=backend, **kw)
    assert same_bits(out, old) and torch.equal(out_len, lengths)
    padded, _ = mix_noise_from_bank(wave, lengths, bank, bank_lengths, index, backend=backend, **kw)
    assert same_bits(out, padded)
    assert bool(torch.isfinite(out).all()) and not torch.equal(out, wave)


@pytest.mark.parametrize("backend", ["torch", "numba"])
def test_bank_object_mix_is_bit_identical_to_the_padded_layout(backend):
    """A :class:`Bank` (flat audio + offsets, the AddNoise call) against its items zero-padded."""
    g = torch.Generator().manual_seed(24)
    clips = [torch.randn(n, generator=g) * 0.3 for n in (5000, 40, 700, 1)]  # one long, several short
    bank = Bank(clips, ["natural"] * 4, 16000)
    padded = torch.zeros(4, 5000)
    for i, c in enumerate(clips):
        padded[i, : c.numel()] = c
    wave, lengths = mixed_batch(B=6, T=1200, dtype=torch.float32, seed=25)
    index = torch.tensor([0, 3, 1, 2, 0, 1])
    kw = placement_kwargs(6, seed=26)
    out, _ = mix_noise_from_bank(wave, lengths, bank.audio, bank.lengths, index, bank_offsets=bank.offsets,
                                 backend=backend, **kw)
    old, _ = mix_noise_from_bank(wave, lengths, padded, bank.lengths, index, backend=backend, **kw)
    assert same_bits(out, old)
    t_noise = int(bank.lengths[index].max())
    ref, _ = mix_noise(wave, lengths, padded[index, :t_noise], bank.lengths[index], backend="torch", **kw)
    assert same_bits(out, ref) if backend == "torch" else torch.allclose(out, ref, atol=1e-6, rtol=1e-6)
    packed, _ = mix_noise_from_bank(wave, lengths, bank.audio, bank.lengths, index, backend=backend, **kw)
    assert same_bits(packed, out)  # without offsets a flat bank is read as packed in order


def test_flat_bank_validation():
    wave, lengths = torch.zeros(2, 10) + 0.5, torch.tensor([10, 5])
    flat, bl, off = torch.ones(20), torch.tensor([8, 4, 6]), torch.tensor([0, 8, 12])
    idx = torch.tensor([0, 2])
    for be in ("torch", "numba"):
        mix_noise_from_bank(wave, lengths, flat, bl, idx, bank_offsets=off, snr_db=0.0, backend=be)
        mix_noise_from_bank(wave, lengths, flat[:18], bl, idx, snr_db=0.0, backend=be)  # packed
        with pytest.raises(ValueError, match="inside the flat bank"):
            mix_noise_from_bank(wave, lengths, flat, bl, idx, bank_offsets=torch.tensor([0, 8, 15]), snr_db=0.0,
                                backend=be)
        with pytest.raises(ValueError, match="inside the flat bank"):
            mix_noise_from_bank(wave, lengths, flat, bl, idx, bank_offsets=torch.tensor([-1, 8, 12]), snr_db=0.0,
                                backend=be)
    with pytest.raises(ValueError, match="packed"):
        mix_noise_from_bank(wave, lengths, flat, bl, idx, snr_db=0.0)  # 18 != 20 samples
    with pytest.raises(ValueError, match="bank_offsets must have shape"):
        mix_noise_from_bank(wave, lengths, flat, bl, idx, bank_offsets=torch.tensor([0, 8]), snr_db=0.0)
    with pytest.raises(TypeError, match="bank_offsets"):
        mix_noise_from_bank(wave, lengths, flat, bl, idx, bank_offsets=off.float(), snr_db=0.0)
    with pytest.raises(ValueError, match=">= 1"):
        mix_noise_from_bank(wave, lengths, flat, torch.tensor([8, 0, 6]), idx, bank_offsets=off, snr_db=0.0)
    with pytest.raises(ValueError, match="index"):
        mix_noise_from_bank(wave, lengths, flat, bl, torch.tensor([0, 3]), bank_offsets=off, snr_db=0.0)
    with pytest.raises(ValueError, match="padded"):
        mix_noise_from_bank(wave, lengths, torch.ones(3, 8), torch.tensor([8, 8, 8]), idx, bank_offsets=off,
                            snr_db=0.0)


# ---------------------------------------------------------------- CPU (njit) vs torch


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("C,Cn", [(None, None), (2, 1), (2, 2)])
def test_mix_noise_numba_matches_torch(dtype, C, Cn):
    wave, lengths = mixed_batch(B=4, T=1500, C=C, dtype=dtype, seed=2)
    wave[1] = 0.0  # silent clip: passes through
    g = torch.Generator().manual_seed(3)
    noise = torch.randn((4, 700) if Cn is None else (4, Cn, 700), generator=g).to(dtype)
    noise_lengths = torch.tensor([700, 13, 1, 350])
    kw = placement_kwargs(4, seed=4)
    ref, _ = mix_noise(wave, lengths, noise, noise_lengths, backend="torch", **kw)
    out, out_len = mix_noise(wave, lengths, noise, noise_lengths, backend="numba", **kw)
    assert torch.equal(out_len, lengths) and out.dtype == dtype
    torch.testing.assert_close(out, ref, **TOL[dtype])
    assert torch.equal(out[1], wave[1])
    # continuous noise over the whole clip (defaults)
    torch.testing.assert_close(mix_noise(wave, lengths, noise, noise_lengths, snr_db=3.0, backend="numba")[0],
                               mix_noise(wave, lengths, noise, noise_lengths, snr_db=3.0, backend="torch")[0],
                               **TOL[dtype])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("C", [None, 2])
def test_mix_from_bank_numba_matches_torch_and_gathered(dtype, C):
    wave, lengths = mixed_batch(B=4, T=1500, C=C, dtype=dtype, seed=5)
    bank, bank_lengths = bank_of()
    index = torch.tensor([0, 1, 4, 0])
    kw = placement_kwargs(4, seed=6)
    ref, _ = mix_noise_from_bank(wave, lengths, bank, bank_lengths, index, backend="torch", **kw)
    out, _ = mix_noise_from_bank(wave, lengths, bank, bank_lengths, index, backend="numba", **kw)
    torch.testing.assert_close(out, ref, **TOL[dtype])
    gathered, _ = mix_noise(wave, lengths, bank[index], bank_lengths[index], backend="torch", **kw)
    assert torch.equal(ref, gathered)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_mix_from_bank_numba_contract(dtype):
    wave, lengths = mixed_batch(B=3, T=1200, C=2, dtype=dtype, seed=7)
    bank, bank_lengths = bank_of(N=5)
    check_op(mix_noise_from_bank, wave, lengths, bank_audio=bank, bank_lengths=bank_lengths,
             index=torch.tensor([2, 0, 1]), snr_db=torch.tensor([0.0, 10.0, 5.0]), fade_out=torch.tensor([0, 50, 9]),
             noise_offset=torch.tensor([3, 900, 0]), backend="numba", atol=1e-6, rtol=1e-5)


def test_mix_from_bank_numba_vs_float64_reference():
    wave, lengths = mixed_batch(B=3, T=1000, C=2, dtype=torch.float64, seed=8)
    bank, bank_lengths = bank_of(N=4, dtype=torch.float64)
    index = torch.tensor([3, 0, 2])
    kw = dict(snr_db=[0.0, 7.5, 20.0], noise_offset=[5, 1999, 0], span_start=[-30, 100, 0], span_length=[500, 300, 2000],
              fade_out=[100, 0, 300])
    out, _ = mix_noise_from_bank(wave, lengths, bank, bank_lengths, index, backend="numba",
                                 **{k: torch.tensor(v) for k, v in kw.items()})
    for b in range(3):
        L, r = int(lengths[b]), int(index[b])
        ref = mix_noise_ref(wave[b, :, :L].numpy(), bank[r : r + 1, : int(bank_lengths[r])].numpy(),
                            **{k: v[b] for k, v in kw.items()})
        np.testing.assert_allclose(out[b, :, :L].numpy(), ref, atol=1e-12)


@pytest.mark.parametrize("fade", [0, 250])
def test_numba_mix_meets_the_snr(fade):
    """Measured SNR over the active span equals the target (numba path)."""
    wave, lengths = mixed_batch(B=3, T=2000, dtype=torch.float64, seed=9)
    bank, bank_lengths = bank_of(N=3, Tb=900, dtype=torch.float64)
    bank_lengths[1] = 900
    out, _ = mix_noise_from_bank(wave, lengths, bank, bank_lengths, torch.tensor([0, 1, 2]), snr_db=torch.tensor(
        [0.0, 10.0, 20.0], dtype=torch.float64), span_start=100, span_length=600, fade_out=fade, backend="numba")
    for b, target in enumerate((0.0, 10.0, 20.0)):
        L = int(lengths[b])
        measured = snr_db(wave[b, :L].numpy(), out[b, :L].numpy(), 100, 700)
        assert abs(measured - target) < 1e-9


def test_silent_and_empty_span_pass_through_bit_identical():
    wave, lengths = mixed_batch(B=4, T=800, dtype=torch.float32, seed=10)
    wave[0] = 0.0
    wave[2, 5] = -0.0
    bank, bank_lengths = bank_of(N=3, Tb=500)
    bank[2] = 0.0  # silent noise row
    out, _ = mix_noise_from_bank(wave, lengths, bank, bank_lengths, torch.tensor([0, 0, 2, 1]), snr_db=0.0,
                                 span_length=torch.tensor([100, 0, 100, 100]), backend="numba")
    for b in (0, 1, 2):  # bit-identical on the valid samples (-0.0 kept)
        L = int(lengths[b])
        assert torch.equal(out[b, :L].view(torch.int32), wave[b, :L].view(torch.int32)), b
    assert not torch.equal(out[3], wave[3])


@settings(max_examples=20, deadline=None)
@given(
    L=st.integers(0, 30),
    noise_len=st.integers(1, 40),
    scale=st.sampled_from([0.0, 1e-3, 1.0]),
    span_start=st.integers(-50, 40),
    span_length=st.one_of(st.none(), st.integers(0, 50)),
    fade=st.integers(0, 60),
    offset=st.integers(0, 100),
)
def test_numba_edge_cases(L, noise_len, scale, span_start, span_length, fade, offset):
    """Empty and 1-sample clips, 1-sample noise, silence, spans outside the clip, long fades."""
    g = torch.Generator().manual_seed(L * 97 + noise_len)
    wave = torch.zeros(1, 30, dtype=torch.float64)
    wave[0, :L] = scale * (torch.rand(L, generator=g, dtype=torch.float64) * 2 - 1)
    bank = torch.zeros(2, 40)
    bank[1, :noise_len] = torch.rand(noise_len, generator=g) * 2 - 1
    args = (wave, torch.tensor([L]), bank, torch.tensor([40, noise_len]), torch.tensor([1]))
    kw = dict(snr_db=5.0, noise_offset=offset, span_start=span_start, span_length=span_length, fade_out=fade)
    ref, _ = mix_noise_from_bank(*args, backend="torch", **kw)
    out, _ = mix_noise_from_bank(*args, backend="numba", **kw)
    torch.testing.assert_close(out, ref, atol=1e-12, rtol=1e-12)


def test_bank_validation():
    wave, lengths = torch.zeros(2, 10), torch.tensor([10, 5])
    bank, bl = torch.ones(3, 8), torch.tensor([8, 8, 8])
    with pytest.raises(ValueError, match="index"):
        mix_noise_from_bank(wave, lengths, bank, bl, torch.tensor([0, 3]), snr_db=0.0, backend="numba")
    with pytest.raises(ValueError, match="bank_lengths"):
        mix_noise_from_bank(wave, lengths, bank, torch.tensor([8, 9, 8]), torch.tensor([0, 1]), snr_db=0.0)
    with pytest.raises(ValueError, match="bank_lengths"):
        mix_noise_from_bank(wave, lengths, bank, torch.tensor([8, 8]), torch.tensor([0, 1]), snr_db=0.0)
    with pytest.raises(TypeError):
        mix_noise_from_bank(wave, lengths, bank, bl, torch.tensor([0.0, 1.0]), snr_db=0.0)
    with pytest.raises(TypeError):
        mix_noise_from_bank(wave, lengths, bank[None], bl, torch.tensor([0, 1]), snr_db=0.0)
    bad = bank.clone()
    bad[1, 3] = float("nan")
    for be in ("torch", "numba"):
        with pytest.raises(ValueError, match="NaN"):
            mix_noise_from_bank(wave + 1, lengths, bad, bl, torch.tensor([0, 1]), snr_db=0.0, backend=be)
    with pytest.raises(ValueError, match="NaN"):
        mix_noise_from_bank(wave.fill_(float("nan")), lengths, bank, bl, torch.tensor([0, 1]), snr_db=0.0,
                            backend="numba")


@pytest.mark.real_data
def test_real_noise_numba_matches_torch(shared_data, emodb_speech):
    clips = [c[:12000] for c in emodb_speech[:3]]
    lengths = torch.tensor([c.numel() for c in clips])
    wave = torch.nn.utils.rnn.pad_sequence(clips, batch_first=True)
    noises = [load_real(f"noise/{n}")[:20000] for n in ("natural_rain_light.wav", "natural_wind.wav")]
    bank = Bank(noises, ["natural", "natural"], 16000)
    kw = dict(snr_db=torch.tensor([0.0, 10.0, 5.0]), noise_offset=torch.tensor([0, 7000, 19999]))
    args = (wave, lengths, bank.audio, bank.lengths, torch.tensor([1, 0, 1]))
    kw["bank_offsets"] = bank.offsets
    ref, _ = mix_noise_from_bank(*args, backend="torch", **kw)
    out, _ = mix_noise_from_bank(*args, backend="numba", **kw)
    torch.testing.assert_close(out, ref, atol=1e-6, rtol=1e-6)
    assert float((out - wave).abs().max()) > 1e-3


# ---------------------------------------------------------------- fused CPU pass vs the previous kernels


import numba  # noqa: E402


@numba.njit
def _prev_index(offset, t, start, nlen):
    i = (offset + t - start) % nlen
    return i + nlen if i < 0 else i


@numba.njit
def _prev_shaped(noise, base, cn, i, t, end, fade):
    env = 1.0
    if fade > 0 and end - 1 - t < fade:
        env = (end - 1 - t) / fade
    return env * numba.float64(noise[cn, base + i])


@numba.njit
def _prev_powers(w, lengths, noise, base, nlen, offset, start, begin, end, fade, p_signal, p_noise):
    B, C, _ = w.shape
    Cn = noise.shape[0]
    for b in range(B):
        acc = 0.0
        for c in range(C):
            for t in range(lengths[b]):
                v = numba.float64(w[b, c, t])
                acc += v * v
        p_signal[b] = acc / max(lengths[b] * C, 1)
        acc = 0.0
        for cn in range(Cn):
            i = _prev_index(offset[b], begin[b], start[b], nlen[b])
            for t in range(begin[b], end[b]):
                v = _prev_shaped(noise, base[b], cn, i, t, end[b], fade[b])
                acc += v * v
                i += 1
                if i == nlen[b]:
                    i = 0
        p_noise[b] = acc / max((end[b] - begin[b]) * Cn, 1)


@numba.njit
def _prev_mix(w, lengths, noise, base, nlen, offset, start, begin, end, fade, gain, ok, out):
    B, C, T = w.shape
    Cn = noise.shape[0]
    for q in range(B * C):
        b, c = q // C, q % C
        L = lengths[b]
        lo = begin[b] if ok[b] != 0 else L
        hi = end[b] if ok[b] != 0 else L
        for t in range(lo):
            out[b, c, t] = w[b, c, t]
        cn = c if Cn > 1 else 0
        i = _prev_index(offset[b], lo, start[b], nlen[b])
        for t in range(lo, hi):
            out[b, c, t] = gain[b] * _prev_shaped(noise, base[b], cn, i, t, hi, fade[b])
            out[b, c, t] += w[b, c, t]
            i += 1
            if i == nlen[b]:
                i = 0
        for t in range(hi, L):
            out[b, c, t] = w[b, c, t]
        for t in range(L, T):
            out[b, c, t] = 0.0


def previous_kernel(w3, lengths, flat, base, nlen, snr, placement):
    """The CPU path before the fusion (issue 11 item 3), copied from ``kernels/snr_mix.py`` at
    065f858: one-accumulator powers kernel, torch ``_snr_gain``, mixing kernel."""
    arr = [w3.numpy(), lengths.numpy(), flat.numpy(), base.numpy(), nlen.numpy(), *[p.numpy() for p in placement]]
    p_signal, p_noise = np.zeros(w3.shape[0]), np.zeros(w3.shape[0])
    _prev_powers(*arr, p_signal, p_noise)
    gain, ok = _snr_gain(torch.from_numpy(p_signal), torch.from_numpy(p_noise), snr)
    out = np.empty_like(arr[0])
    _prev_mix(*arr, gain.numpy(), ok.to(torch.uint8).numpy(), out)
    return torch.from_numpy(out), torch.from_numpy(p_signal)


#: The documented bound (kernels/snr_mix.py): per sample, |fused - previous| and |fused -
#: float64 torch| <= BOUND[dtype] * (|noise term| + |out|), the noise term from the float64 torch path.
BOUND = {torch.float32: 2.0**-23, torch.float64: 1e-13}


def _bound_excess(out, ref, wave, ref64):
    """max of |out - ref| / (BOUND * (|noise term| + |ref|)) over the valid samples (<= 1: within)."""
    term = (ref64 - wave.to(torch.float64)).abs()
    scale = BOUND[out.dtype] * (term + ref.to(torch.float64).abs()) + 1e-300
    return float(((out.to(torch.float64) - ref.to(torch.float64)).abs() / scale).max())


def _fused_case(dtype, C, seed, B=6, T=24000, Tb=7000):
    """Long clips from a flat bank with short items (many wraps), fades crossing wraps, negative
    starts, offsets beyond the item, a silent clip and a 1-sample item."""
    wave, lengths = mixed_batch(B=B, T=T, C=C, dtype=dtype, seed=seed)
    wave[2] = 0.0
    bank, bank_lengths = bank_of(N=5, Tb=Tb, seed=seed + 1)
    bank_lengths[2] = 333
    flat, offsets = ragged_of(bank, bank_lengths)
    g = torch.Generator().manual_seed(seed + 2)
    index = torch.tensor([0, 1, 2, 3, 4, 2])[:B]
    kw = dict(snr_db=torch.rand(B, generator=g, dtype=torch.float64) * 40 - 10,
              noise_offset=torch.randint(0, 20000, (B,), generator=g),
              span_start=torch.randint(-3000, 8000, (B,), generator=g),
              span_length=torch.randint(0, T, (B,), generator=g),
              fade_out=torch.randint(0, 9000, (B,), generator=g))
    kw["span_length"][0], kw["fade_out"][5] = T, 4000
    return wave, lengths, flat, offsets, bank_lengths, index, kw


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("C", [None, 2])
def test_fused_pass_matches_previous_kernel_and_float64_torch(dtype, C):
    """The fused CPU pass against the previous two kernels and the float64 torch path, within
    the bound of the kernel docstring; the silent flag equals valid_power == 0; padding zero."""
    wave, lengths, flat, offsets, bank_lengths, index, kw = _fused_case(dtype, C, seed=31)
    out, _, p_signal = mix_noise_from_bank(wave, lengths, flat, bank_lengths, index, bank_offsets=offsets,
                                           backend="numba", return_signal_power=True, **kw)
    w3 = wave if C else wave[:, None]
    placement = _placement(lengths, kw["noise_offset"], kw["span_start"], kw["span_length"], kw["fade_out"])
    prev, prev_ps = previous_kernel(w3, lengths, flat[None], offsets[index], bank_lengths[index], kw["snr_db"],
                                    placement)
    prev = prev.reshape(out.shape)
    ref64, _, ref_ps = mix_noise_from_bank(wave.double(), lengths, flat.double(), bank_lengths, index,
                                           bank_offsets=offsets, backend="torch", return_signal_power=True, **kw)
    mask = torch.arange(wave.shape[-1]) < lengths[:, None]
    mask = mask if C is None else mask[:, None, :].expand_as(wave)
    assert out.dtype == dtype and bool((out[~mask] == 0).all())
    assert _bound_excess(out[mask], prev[mask], wave[mask], ref64[mask]) <= 1.0
    assert _bound_excess(out[mask], ref64[mask].to(dtype), wave[mask], ref64[mask]) <= 1.0 if dtype == torch.float64 \
        else _bound_excess(out[mask], ref64[mask], wave[mask], ref64[mask]) <= 1.0
    torch.testing.assert_close(p_signal, prev_ps, rtol=1e-11, atol=0)  # one accumulator: ~n * eps worst case
    torch.testing.assert_close(p_signal, ref_ps, rtol=1e-11, atol=0)
    assert torch.equal(p_signal == 0, valid_power(wave, lengths) == 0) and bool(p_signal[2] == 0)
    assert torch.equal(out[2], wave[2])
    # the check can fail: a gain off by 1e-6 (or an envelope off by one sample) is far outside the bound
    bad = wave + (out - wave) * (1 + 1e-6)
    assert _bound_excess(bad[mask], prev[mask], wave[mask], ref64[mask]) > 1.0


def test_fused_pass_tolerance_on_8s_clips():
    """8 s float32 clips at 16 kHz, continuous / start / span placements: fused vs previous kernel
    at most 1 float32 ulp-level difference (the docstring's measured figure: <= 6e-8 of the peak)."""
    g = torch.Generator().manual_seed(41)
    B, T = 4, 128000
    wave = torch.randn(B, T, generator=g) * 0.1
    lengths = torch.tensor([T, 100000, 64000, T])
    wave[torch.arange(T) >= lengths[:, None]] = 0.0
    clips = [torch.randn(n, generator=g) * 0.05 for n in (48000, 16000, 160000)]
    bank = Bank(clips, ["natural"] * 3, 16000)
    index = torch.tensor([0, 1, 2, 1])
    covered = torch.tensor([T, 50000, 16000, 64000])
    kw = dict(snr_db=torch.tensor([0.0, 5.0, 10.0, 20.0], dtype=torch.float64), noise_offset=torch.tensor([0, 999, 5, 0]),
              span_start=torch.tensor([0, 0, 30000, 0]), span_length=covered, fade_out=torch.tensor([0, 25000, 0, 32000]))
    out, _ = mix_noise_from_bank(wave, lengths, bank.audio, bank.lengths, index, bank_offsets=bank.offsets,
                                 backend="numba", **kw)
    placement = _placement(lengths, kw["noise_offset"], kw["span_start"], kw["span_length"], kw["fade_out"])
    prev, _ = previous_kernel(wave[:, None], lengths, bank.audio[None], bank.offsets[index], bank.lengths[index],
                              kw["snr_db"], placement)
    rel = ((out - prev[:, 0]).abs().amax(dim=1) / prev[:, 0].abs().amax(dim=1)).max()
    assert float(rel) <= 6e-8


# ---------------------------------------------------------------- CUDA kernels (simulator)


@pytest.mark.parametrize("dtype,C,Cn", [(torch.float32, 1, 1), (torch.float64, 2, 1)])
def test_cuda_kernels_match_torch(dtype, C, Cn):
    """Both ``@cuda.jit`` passes launched with host arrays (CUDA simulator without a GPU), on a
    flat store with the items out of order and NaN between them (read by per-clip start)."""
    B, T = 2, 90 // C
    wave, lengths = mixed_batch(B=B, T=T, C=C, dtype=dtype, seed=11)
    bank, bank_lengths = bank_of(N=3, Tb=30)
    flat, offsets = ragged_of(bank, bank_lengths)
    index = torch.tensor([2, 0])
    kw = dict(snr_db=torch.tensor([0.0, 12.0], dtype=torch.float64), noise_offset=torch.tensor([40, 3]),
              span_start=torch.tensor([-5, 10]), span_length=torch.tensor([60, 20]), fade_out=torch.tensor([9, 0]))
    ref, _ = mix_noise_from_bank(wave, lengths, bank, bank_lengths, index, backend="torch", **kw)
    offset, start, begin, end, fade = _placement(lengths, kw["noise_offset"], kw["span_start"], kw["span_length"],
                                                 kw["fade_out"])
    w3 = wave.reshape(B, C, T)
    base = offsets[index]
    per_clip = [a.numpy() for a in (base, bank_lengths[index], offset, start, begin, end, fade)]
    args = [w3.numpy(), lengths.numpy(), flat[None].contiguous().numpy(), *per_clip]
    p_signal, p_noise = np.zeros(B), np.zeros(B)
    sm.launch_powers_cuda(*args, p_signal, p_noise)
    assert np.isfinite(p_noise).all()  # no NaN between the items was read
    scale = _snr_scale(kw["snr_db"])
    cpu_out, cpu_ps, cpu_pn, _ = sm.mix_fused(w3, lengths, flat[None], base, bank_lengths[index], offset, start,
                                              begin, end, fade, scale)
    np.testing.assert_allclose(p_signal, cpu_ps.numpy(), rtol=1e-12)
    np.testing.assert_allclose(p_noise, cpu_pn.numpy(), rtol=1e-12)
    out = np.full(w3.shape, 5.0, dtype=w3.numpy().dtype)  # every sample, padding included, is written
    sm.launch_mix_cuda(*args, p_signal, p_noise, scale.numpy(), out)
    torch.testing.assert_close(torch.from_numpy(out).reshape(ref.shape), ref, **TOL[dtype])
    torch.testing.assert_close(torch.from_numpy(out), cpu_out, **TOL[dtype])
    out2 = np.full(w3.shape, 5.0, dtype=w3.numpy().dtype)  # both passes through the fused entry point
    sm.launch_cuda(*args, scale.numpy(), np.zeros(B), np.zeros(B), out2)
    assert np.array_equal(out2, out)


def test_cuda_mix_passes_undefined_snr_through():
    """The CUDA mix derives the gain from the powers: a silent signal or noise copies the clip."""
    w = np.array([[[0.0, 0.0, 0.0, 0.0]], [[0.5, -0.25, 0.0, 9.0]]], dtype=np.float32)
    lengths = np.array([4, 3])
    noise = np.ones((1, 8), dtype=np.float32)
    per_clip = [np.array(v) for v in ([0, 4], [4, 4], [0, 0], [0, 0], [0, 0], [4, 3], [0, 0])]
    out = np.full(w.shape, 5.0, dtype=np.float32)
    sm.launch_mix_cuda(w, lengths, noise, *per_clip, np.array([0.0, 0.1]), np.array([1.0, 0.0]),
                       np.ones(2), out)
    assert np.array_equal(out[0], w[0]) and np.array_equal(out[1, 0], [0.5, -0.25, 0.0, 0.0])


# ---------------------------------------------------------------- dispatch and records


def _bank():
    g = torch.Generator().manual_seed(0)
    clips = [torch.randn(n, generator=g) for n in (900, 400, 1300)]
    return Bank(clips, ["natural", "human", "natural"], 16000, names=["a", "b", "c"])


def test_registration_and_auto(monkeypatch):
    monkeypatch.delenv("GPUAUG_BACKEND", raising=False)
    monkeypatch.delenv("GPUAUG_BACKEND_MIX_NOISE", raising=False)
    assert gb.kernels_for("mix_noise") == {("numba", "cpu"): 0, ("numba", "cuda"): 0}
    assert gb.resolve("mix_noise", "cpu") == "numba"


def test_add_noise_records_backend(monkeypatch):
    monkeypatch.delenv("GPUAUG_BACKEND", raising=False)
    monkeypatch.delenv("GPUAUG_BACKEND_MIX_NOISE", raising=False)
    wave, lengths = mixed_batch(B=3, T=1500, seed=12)
    wave[1] = 0.0
    results = {}
    for requested, expected in ((None, "numba"), ("torch", "torch")):
        t = AddNoise(_bank(), placements=("continuous", "start", "span"), span_lengths=("short", "complete"),
                     backend=requested)
        res = Pipeline([t])(wave, lengths, seed=4)
        entries = [e for clip in res.record for e in clip if e["transform"] != "output_level"]  # A4: not a kernel op
        assert len(entries) == 3 and all(e["backend_name"] == expected for e in entries)
        results[expected] = res
    a, b = results["numba"], results["torch"]
    torch.testing.assert_close(a.wave, b.wave, atol=1e-6, rtol=1e-6)
    for ea, eb in zip(sum(a.record, []), sum(b.record, [])):
        assert {k: v for k, v in ea.items() if not k.startswith("backend")} == \
               {k: v for k, v in eb.items() if not k.startswith("backend")}
    with pytest.raises(ValueError, match="backend"):
        AddNoise(_bank(), backend="opencl")


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_fused_pass_overflow_raises(dtype):
    """The fused pass flags non-finite mixed samples itself (float32 / float64: no scan of the
    output; float16: the float32 result cast back is scanned): a huge gain raises."""
    level, snr = (1e30, -200.0) if dtype == torch.float32 else (1e3, -40.0)  # noise term ~1e40 / ~1e5
    wave, lengths = torch.full((2, 50), level).to(dtype), torch.tensor([50, 40])
    bank = torch.rand(2, 30, generator=torch.Generator().manual_seed(0)) - 0.5
    args = (wave, lengths, bank, torch.tensor([30, 30]), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match=r"mix_noise: the output of clip\(s\) \[0\] is not finite"):
        mix_noise_from_bank(*args, snr_db=torch.tensor([snr, 0.0]), backend="numba")
    out, _ = mix_noise_from_bank(*args, snr_db=torch.tensor([0.0, 0.0]), backend="numba")
    assert bool(torch.isfinite(out).all())


@pytest.mark.parametrize("backend", ["numba", "torch"])
@pytest.mark.parametrize("C", [None, 2])
def test_rows_mix_in_place_of_gather_and_merge(backend, C):
    """``rows=``: mixing rows of the whole batch is mixing ``wave[rows]`` and writing it back
    into a copy, bit for bit (the Numba CPU kernel reads and writes the rows in place; the
    torch path gathers and merges); the other rows and the input stay as they were."""
    bank = _bank()
    wave, lengths = mixed_batch(B=7, T=1500, C=C, seed=21)
    lengths[3] = 0
    wave = wave * (torch.arange(1500) < lengths.view(-1, *([1] * (wave.dim() - 1))))
    rows = torch.tensor([0, 3, 4, 6])
    kw = dict(bank_offsets=bank.offsets, snr_db=torch.tensor([0.0, 10.0, 20.0, -5.0]),
              noise_offset=torch.tensor([0, 10, 500, 7]), span_start=torch.tensor([0, 100, -50, 200]),
              span_length=torch.tensor([1500, 500, 300, 1000]), fade_out=torch.tensor([0, 50, 10, 100]),
              backend=backend, return_signal_power=True)
    index = torch.tensor([2, 0, 1, 2])
    before = wave.clone()
    got, got_len, p = mix_noise_from_bank(wave, lengths, bank.audio, bank.lengths, index, rows=rows, **kw)
    sub, _, p_sub = mix_noise_from_bank(wave[rows], lengths[rows], bank.audio, bank.lengths, index, **kw)
    want = wave.clone()
    want[rows] = sub
    assert torch.equal(got, want) and torch.equal(p, p_sub) and torch.equal(got_len, lengths)
    assert torch.equal(wave, before) and got.data_ptr() != wave.data_ptr()
    for bad in (torch.tensor([0, 0, 1, 2]), torch.tensor([0, 1, 2, 7]), torch.tensor([0.0, 1.0, 2.0, 3.0])):
        with pytest.raises((ValueError, TypeError), match="rows"):
            mix_noise_from_bank(wave, lengths, bank.audio, bank.lengths, index, rows=bad, **kw)


def test_add_noise_on_part_of_a_batch_mixes_rows_in_place(monkeypatch):
    """AddNoise applied to some clips of a batch (p < 1, and a collate selection) mixes their
    rows in the whole batch (no gather, no merge): the result and the record are bit for bit
    those of the gather / mix / merge path."""
    from gpuaug.transforms import base as tb
    wave, lengths = mixed_batch(B=12, T=2000, seed=22)
    select = torch.tensor([True] * 10 + [False] * 2)
    merged, merge = [], tb.merge_rows
    monkeypatch.setattr(tb, "merge_rows", lambda *a, **k: (merged.append(1), merge(*a, **k))[1])
    pipe = Pipeline([AddNoise(_bank(), placements=("continuous", "start", "span"), p=0.6)])
    fast = pipe(wave, lengths, seed=5, select=select)
    assert not merged  # the in-place rows path
    monkeypatch.setattr(AddNoise, "mixes_rows", lambda self, w: False)
    slow = pipe(wave, lengths, seed=5, select=select)
    assert merged  # the gather / merge path
    applied = fast.params[pipe.leaves[0].slot]["apply"]
    assert 0 < int(applied.sum()) < 10
    assert torch.equal(fast.wave, slow.wave) and fast.record == slow.record
    assert torch.equal(fast.wave[~applied], wave[~applied])

