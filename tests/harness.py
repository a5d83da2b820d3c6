"""``check_op``: the contract every functional op must satisfy (torchvision v2 style).

Every op test calls :func:`check_op`, which asserts for ``op(wave, lengths, **kwargs)``:

* inputs are not modified in place;
* dtype, rank and device are kept; ``lengths`` comes back as a ``(B,)`` int64 tensor;
* the output padding (``t >= new_lengths``) is exactly zero and the output is finite;
* the batched result with mixed lengths equals running each clip alone (trimmed to its
  length, with its own parameters);
* extra zero padding of the input changes nothing;
* an empty batch (B = 0) works.

Per-clip keyword arguments are the tensors whose first dimension is ``B``; they are sliced
with the clip in the single-clip runs. Other keyword arguments are passed unchanged.
"""
from __future__ import annotations

import torch


def _slice_kwargs(kwargs: dict, batch: int, index) -> dict:
    out = {}
    for k, v in kwargs.items():
        if isinstance(v, torch.Tensor) and v.dim() >= 1 and v.shape[0] == batch:
            out[k] = v[index]
        else:
            out[k] = v
    return out


def check_op(op, wave, lengths, *, atol=1e-5, rtol=1e-5, single_atol=None, **kwargs):
    """Run the op contract checks; return ``(out_wave, out_lengths)`` of the batched call."""
    B = wave.shape[0]
    wave_before = wave.clone()
    lengths_before = lengths.clone()
    kw_before = {k: v.clone() for k, v in kwargs.items() if isinstance(v, torch.Tensor)}

    out, out_len = op(wave, lengths, **kwargs)

    # no in-place change of any input
    assert torch.equal(wave, wave_before), "op modified its input wave in place"
    assert torch.equal(lengths, lengths_before), "op modified its input lengths in place"
    for k, v in kw_before.items():
        assert torch.equal(kwargs[k], v), f"op modified its input {k!r} in place"

    # dtype / rank / device / lengths
    assert out.dtype == wave.dtype, f"dtype changed: {wave.dtype} -> {out.dtype}"
    assert out.device == wave.device
    assert out.dim() == wave.dim() and out.shape[:-1] == wave.shape[:-1]
    assert out_len.dtype == torch.int64 and out_len.shape == (B,)
    assert bool(torch.isfinite(out).all()), "op produced NaN/Inf"
    if B:
        assert int(out_len.max()) <= out.shape[-1]
    # zero padding
    t = torch.arange(out.shape[-1])
    pad = t[None, :] >= out_len[:, None]
    if out.dim() == 3:
        pad = pad[:, None, :].expand_as(out)
    assert bool((out[pad] == 0).all()), "output padding is not zero"

    # batched == per clip
    tol = atol if single_atol is None else single_atol
    for b in range(B):
        L = int(lengths[b])
        one, one_len = op(wave[b : b + 1, ..., :L], lengths[b : b + 1], **_slice_kwargs(kwargs, B, slice(b, b + 1)))
        assert int(one_len[0]) == int(out_len[b]), f"clip {b}: length {int(one_len[0])} alone vs {int(out_len[b])} batched"
        Lo = int(out_len[b])
        torch.testing.assert_close(
            out[b, ..., :Lo], one[0, ..., :Lo], atol=tol, rtol=rtol,
            msg=lambda m: f"clip {b}: batched != single\n{m}",
        )

    # extra padding changes nothing
    padded = torch.nn.functional.pad(wave, (0, 37))
    out_p, len_p = op(padded, lengths, **kwargs)
    assert torch.equal(len_p, out_len)
    Tm = min(out.shape[-1], out_p.shape[-1])
    torch.testing.assert_close(out_p[..., :Tm], out[..., :Tm], atol=tol, rtol=rtol)
    assert bool((out_p[..., Tm:] == 0).all())

    # empty batch
    empty_kwargs = _slice_kwargs(kwargs, B, slice(0, 0))
    e, e_len = op(wave[:0], lengths[:0], **empty_kwargs)
    assert e.shape[0] == 0 and e_len.shape == (0,) and e.dtype == wave.dtype
    return out, out_len


def mixed_batch(B=3, T=4000, C=None, seed=0, dtype=torch.float32, min_len=1):
    """A random speech-like batch with mixed lengths (the last clip is full length)."""
    g = torch.Generator().manual_seed(seed)
    shape = (B, T) if C is None else (B, C, T)
    wave = torch.randn(shape, generator=g, dtype=torch.float64) * 0.1
    t = torch.arange(T, dtype=torch.float64) / 16000
    wave = wave + 0.3 * torch.sin(2 * torch.pi * 220 * t)
    lengths = torch.randint(max(min_len, T // 3), T + 1, (B,), generator=g)
    if B:
        lengths[-1] = T
    mask = torch.arange(T) < lengths[:, None]
    wave = wave * (mask if C is None else mask[:, None, :])
    return wave.to(dtype), lengths
