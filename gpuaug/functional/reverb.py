"""Reverberation: batched FFT convolution with per-clip room impulse responses (RIRs), and
seeded synthetic RIRs (direct impulse + pre-delay + exponentially decaying Gaussian tail).
"""
from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

from gpuaug._sync import check_later, host_of, mirrored, take_rows
from gpuaug._workspace import Workspace
from gpuaug.backend import REVERB, kernel_for
from gpuaug.functional._batch import (
    NARROW_FLOATS,
    as_3d,
    check_finite_output,
    check_rows,
    in_float32,
    check_companion,
    check_wave,
    per_clip,
    per_clip_int,
    restore_rank,
    valid_mask,
    zero_padding,
)
from gpuaug.functional.fade import fade as fade_op, fade_args
from gpuaug.functional.fft_sizes import fast_fft_size
from gpuaug.random import normal, stream_id

__all__ = ["reverb", "reverb_fft_size", "reverb_rows_in_place", "rir_span", "synthetic_rir"]

_NORMALIZE = ("energy", "peak", "none")
_RIR_STREAM = stream_id("gpuaug.functional.synthetic_rir")


def _next_fast_len(n: int, fft: str = "torch") -> int:
    """The FFT size for a linear convolution of length ``n`` by ``fft`` (:func:`~gpuaug.functional.fft_sizes.fast_fft_size`)."""
    return fast_fft_size(n, fft)


def _fft_of(kernel) -> str:
    """The FFT library whose size table :func:`reverb` uses: the CPU kernel's pocketfft, else torch's."""
    return "torch" if kernel is None else "pocketfft"


def _pow2_scale(peak: Tensor, dtype: torch.dtype) -> tuple[Tensor, Tensor]:
    """Per-clip exact powers of two ``(s1, s2)`` in ``dtype`` with ``peak * s1 * s2`` in
    [0.5, 1) (1 where ``peak`` is 0); two factors so that each stays in range for denormal
    or huge peaks. Multiplying by them is exact (barring underflow of tiny samples)."""
    p = peak.to(torch.float64)
    _, e = torch.frexp(torch.where(p > 0, p, torch.ones_like(p)))
    e = -e.to(torch.float64)  # scale 2**e
    e1 = torch.trunc(e / 2)
    return torch.exp2(e1).to(dtype), torch.exp2(e - e1).to(dtype)


def reverb(
    wave: Tensor, lengths: Tensor, rir: Tensor, rir_lengths: Tensor, *, normalize: str = "energy",
    direct: Tensor | None = None, rir_index: Tensor | None = None, rir_spectra=None, bucket: bool = True,
    fade: dict | None = None, backend: str | None = None, workspace: Workspace | None = None,
    rows: Tensor | None = None, inplace: bool = False,
) -> tuple[Tensor, Tensor]:
    """Convolve each clip with its own RIR (batched FFT convolution), aligned to the direct path.

    The direct path of clip ``b`` is ``d_b = argmax_t max_c |rir[b, c, t]|`` over the RIR's
    valid samples (one index per clip, shared by all channels so inter-channel delays of
    multichannel RIRs are kept). The output is ``full_conv[t + d_b]`` for ``t`` in
    ``[0, L)``: the reverberant clip without the RIR's pre-delay, truncated to the input
    length (the reverb tail past the clip end is dropped).

    Args:
        wave: ``(B, T)`` or ``(B, C, T)`` float waveform.
        lengths: ``(B,)`` valid samples per clip.
        rir: ``(B, Tr)`` or ``(B, Cr, Tr)`` float RIRs at the wave's sample rate, ``Cr``
            equal to 1 (applied to every channel) or ``C``.
        rir_lengths: ``(B,)`` valid RIR samples per clip, each >= 1; the valid part must
            not be all zero.
        normalize: ``"energy"`` (output energy over the valid samples, all channels, equals
            the input's), ``"peak"`` (output peak |sample| equals the input's) or ``"none"``
            (plain convolution). Silent inputs give silent outputs.
        direct: optional ``(B,)`` int64 host tensor of the direct-path indices ``d_b`` (as
            defined above, e.g. :attr:`gpuaug.banks.Bank.peak_index`); saves reading
            them back from the device (a host sync on CUDA). Not checked against ``rir``:
            each RIR's peak (its scale and the all-zero check) is read at ``d_b``.
        rir_index: optional ``(B,)`` int64 host tensor: clip ``b`` is convolved with
            ``rir[rir_index[b]]``. Then ``rir``, ``rir_lengths`` and ``direct`` hold ``U``
            distinct RIRs (``U`` rows) and each RIR's spectrum is computed once, however many
            clips use it (a bank of 7 RIRs drawn for 32 clips: 7 FFTs instead of 32). Default:
            row ``b`` for clip ``b``.
        rir_spectra: optional precomputed RIR spectra. Either a complex ``(U, Cr, n_fft // 2 +
            1)`` tensor for the ``U`` RIR rows, computed as this function does at ``n_fft =``
            :func:`reverb_fft_size` (length bucketing is then off), or a cache callable
            ``rir_spectra(rows, tags, compute)``: ``rows`` a host int64 tensor of RIR rows,
            ``tags`` one hashable tuple ``(n_fft, post, pre, scaled, dtype, device)`` per row
            (everything the row's spectrum depends on besides the RIR), ``compute(sub)`` the
            spectra of rows ``sub``; it returns the ``(len(rows), Cr, n_fft // 2 + 1)`` spectra
            (e.g. cached ones, bit-identical to ``compute``), or ``(S, at)``: spectra ``S`` of
            which ``S[at[u]]`` is row ``rows[u]``'s (a kept stack of more RIRs: no copy per
            call). :class:`gpuaug.transforms.Reverb` passes its LRU cache this way.
        bucket: split a batch that mixes short and long clips into two length groups, each at
            its own FFT size, when that lowers the estimated FFT cost (Notes). Default True.
        fade: optional fade applied to the output, ``{"sample_rate", "rate_per_s", "direction",
            "shape"}`` as the arguments of :func:`gpuaug.functional.fade.fade` (``shape``
            default ``"linear"``): the result equals ``fade(reverb(...), ...)`` bit for bit,
            and the ``reverb`` kernel applies it in its output pass (no extra pass, no extra
            buffer; :class:`gpuaug.transforms.Pipeline` fuses a Fade that follows a Reverb
            on the same clips this way).
        backend: ``"auto"`` | ``"torch"`` | ``"numba"`` | ``"cupy"`` or None (op ``"reverb"``,
            :mod:`gpuaug.backend`): the Numba CPU kernel
            (:mod:`gpuaug.kernels.reverb_io`) fuses the passes around the FFTs; the FFTs and
            the RIR spectra are the same on every backend.
        workspace: optional :class:`gpuaug._workspace.Workspace` the kernel takes its FFT
            buffers from (no page faults after the first batch; :class:`gpuaug.transforms.Reverb`
            passes its own). Ignored by the torch path.
        rows: optional host int64 ``(G,)`` distinct rows of ``wave`` to convolve (a device
            tensor's host mirror: no sync); the per-clip arguments (``rir`` / ``rir_lengths`` /
            ``direct`` without ``rir_index``, ``rir_index``, the fade) are then per row of
            ``rows``, and the other rows come back unchanged. The Numba CPU kernel reads and
            writes those rows of the batch itself (no gather, no merge); elsewhere they are
            gathered, convolved and written back, with the same values.
        inplace: with ``rows``: write the convolved rows into ``wave`` itself and return it (for
            a caller's own buffer, e.g. a pipeline's intermediate; each row is read before it is
            written) instead of into a copy. :class:`gpuaug.transforms.Reverb` applied to part of
            a batch uses ``rows`` (:meth:`~gpuaug.transforms.Transform.mixes_rows`).

    Shapes:
        returns ``wave`` with the input's shape, dtype and device and ``lengths`` unchanged.

    Notes:
        The FFT size is :func:`reverb_fft_size`: the smallest size measured fast for the FFTs
        that run (:mod:`gpuaug.functional.fft_sizes`: the CPU kernel's pocketfft table, else
        torch's) >= ``n_w + max(max(post) - 1, max(pre))`` with
        ``n_w = max(lengths)``, ``post = min(rir_lengths - d, n_w)`` and ``pre = min(d, n_w -
        1)`` (:func:`rir_span`; RIR samples past those never reach the kept output), computed
        in the wave's dtype (float32 FFTs for float32 waves), so batched and single-clip
        results differ only by FFT rounding (~1e-6 relative in float32). The direct-path
        alignment is a circular shift of each RIR by ``-d_b`` before its FFT (exact: the FFT
        is long enough that nothing wraps into the kept output), so the output is a plain
        slice and each RIR's spectrum depends only on the RIR, ``(n_fft, post, pre)``, the
        dtype and whether it is scaled (it can be cached across batches: ``rir_spectra``).
        Length bucketing: with ``bucket``, each clip's own convolution length (its length plus
        its RIR's span, :func:`rir_span` at that length) is formed and the batch is split at
        the threshold of that length that minimises the estimated cost ``sum_g (2 B_g C + U_g
        Cr + 10) n_g log2 n_g`` (``B_g`` clips, ``U_g`` distinct RIRs and FFT size ``n_g`` per
        group; 10: the set-up of the group's two FFT calls, in rows), and only when that is
        below 0.9 of the one-group cost: a batch mixing short and long clips (e.g. 28 clips of
        2 s + 4 of 8 s), or clips of one length whose RIRs differ very much in length (2 s
        clips with 0.02 s and 2 s RIRs; the shared bank's 1.0-3.3 s RIRs on 2 s or 8 s clips
        do not split: the FFT calls' set-up eats the saving); each group runs at its own
        FFT size and the outputs are merged back in order. The result then differs from the
        one-size result by FFT rounding only (<= 1e-5 of the peak in float32, tested); a batch
        whose clips all need the same length never splits.
        With ``normalize`` "energy" or "peak" the RIR and the clip are first scaled by exact
        powers of two to peak in [0.5, 1) (the result does not depend on their scale), so a
        denormal or huge RIR or clip does not underflow or overflow; the energies are then
        summed in the wave's dtype (float32: ~1e-6 relative), and the gain applied in one
        multiply. float16 / bfloat16 waves are computed in float32 and returned in their
        dtype.

    Raises:
        ValueError: unknown ``normalize``, mismatched batch / channel counts,
            ``rir_lengths < 1``, an all-zero RIR, NaN / Inf samples, an output that overflows
            the dtype (``normalize="none"`` with a huge RIR; inside a pipeline call these
            data-dependent checks are raised at the end of the call).
    """
    if normalize not in _NORMALIZE:
        raise ValueError(f"normalize must be one of {_NORMALIZE}, got {normalize!r}")
    lengths = check_wave(wave, lengths)
    w, was_2d = as_3d(wave)
    B, C, T = w.shape
    sel = None if rows is None else check_rows(rows, B)
    G = B if sel is None else sel.numel()  # the clips convolved
    if rir_index is not None:
        rir_index = host_of(torch.as_tensor(rir_index)).to(torch.int64)
        U = rir.shape[0] if isinstance(rir, Tensor) else 0
        if rir_index.shape != (G,) or (G and not bool(((rir_index >= 0) & (rir_index < U)).all())):
            raise ValueError(f"rir_index must be ({G},) row indices into the {U} RIRs, got {rir_index.tolist()}")
    h, rir_lengths = check_companion(rir, rir_lengths, batch=G if rir_index is None else rir.shape[0], channels=C,
                                     name="rir", min_length=1)
    same = dict(normalize=normalize, direct=direct, rir_index=rir_index, rir_spectra=rir_spectra, bucket=bucket,
                fade=fade, backend=backend, workspace=workspace)
    if wave.dtype in NARROW_FLOATS:  # torch's FFTs refuse 16-bit floats on the CPU: compute in float32
        out, _ = in_float32(reverb, wave, lengths, rir, rir_lengths, rows=sel, name="reverb", **same)
        return (wave.copy_(out) if inplace and sel is not None else out), lengths
    dev, dt = w.device, w.dtype
    kernel = kernel_for(REVERB, dev, backend, shared=True)[1]
    if sel is not None and (kernel is None or not w.is_contiguous()):  # gather the rows, convolve, write back
        dev_rows = mirrored(sel, dev)
        y, _ = reverb(w.index_select(0, dev_rows), take_rows(lengths, sel, dev_rows), rir, rir_lengths, **same)
        target = w if inplace else w.clone()
        return restore_rank(target.index_copy_(0, dev_rows, y), was_2d), lengths
    fade = _fade_params(fade, G, dev)
    if G == 0:
        return (wave if inplace and sel is not None else wave.clone()), lengths
    len_host, hl_host = host_of(lengths), host_of(rir_lengths)
    if sel is not None:
        len_host = len_host[sel]
    n_w = int(len_host.max())
    h = h.to(device=dev)
    if direct is None:
        if int(hl_host.min()) < h.shape[-1]:  # samples past rir_lengths are not part of the RIR
            h_lengths = rir_lengths if rir_lengths.device == dev else mirrored(hl_host, dev)
            h = zero_padding(h, h_lengths)
        direct = h.abs().amax(dim=1).argmax(dim=1)  # first maximum; padding is zero and never wins
        direct_host = host_of(direct)  # a sync on CUDA: pass direct= to avoid it
    else:
        direct_host = host_of(direct).to(torch.int64)
    h = h[..., :int(hl_host.max())]
    # the RIR's peak is its sample at the direct path (the argmax over its valid samples): read
    # there, not over the whole padded RIR; the spectra read only samples inside rir_lengths
    # (rir_span), so samples past rir_lengths never need masking
    at = mirrored(direct_host, dev).view(-1, 1, 1).expand(h.shape[0], h.shape[1], 1)
    h_peak = h.gather(2, at).abs().amax(dim=(1, 2))
    check_later(h_peak > 0, lambda ok: f"reverb: rir of clip(s) {(~ok).nonzero().flatten().tolist()} is all zero")
    if n_w == 0:  # only empty clips: nothing to convolve
        if sel is None:
            return zero_padding(wave, lengths), lengths
        target = w if inplace else w.clone()
        return restore_rank(target.index_fill_(0, mirrored(sel, dev), 0), was_2d), lengths

    clip_row = torch.arange(G) if rir_index is None else rir_index
    groups = ([None] if isinstance(rir_spectra, Tensor) or not bucket
              else _length_groups(len_host, hl_host, direct_host, clip_row, C, h.shape[1], _fft_of(kernel)))
    args = (h, h_peak, hl_host, direct_host, normalize, rir_spectra, kernel, workspace)
    k_fade = fade if kernel is not None else None  # the kernel fades in its output pass; torch afterwards
    if sel is not None and k_fade is not None:  # the kernel reads the fade per row of the batch
        k_fade = (_scatter(k_fade[0], sel, B), _scatter(k_fade[1], sel, B), *k_fade[2:])
    if groups == [None] and sel is None:
        out, finite = _convolve(w, lengths, len_host, clip_row, k_fade, *args)
    elif kernel is not None:  # the kernel reads and writes each group's rows in place: no gather, no merge
        out = w.new_empty(B, C, T) if sel is None else (w if inplace else w.clone())
        finite = torch.ones(G, dtype=torch.bool, device=dev)
        for idx in ([torch.arange(G)] if groups == [None] else groups):
            clips = idx if sel is None else sel[idx]
            finite[idx] = _convolve(w, lengths, len_host[idx], clip_row[idx], k_fade, *args, clips=clips, out=out)[1]
    else:
        out, finite = w.new_empty(B, C, T), None
        for idx in groups:
            idx_dev = mirrored(idx, dev)
            g_len = mirrored(len_host[idx], dev)
            o, f = _convolve(w.index_select(0, idx_dev), g_len, len_host[idx], clip_row[idx], None, *args)
            out.index_copy_(0, idx_dev, o)
    if fade is not None and kernel is None:
        rate, direc, sample_rate, shape = fade
        out = fade_op(out, lengths, sample_rate=sample_rate, rate_per_s=rate, direction=direc, shape=shape,
                      backend="torch")[0]
    why = lambda: f"normalize={normalize!r} overflows {dt}"  # noqa: E731
    if finite is None:
        check_finite_output(out, "reverb", why)
    else:  # the kernel flagged its non-finite outputs in its output pass (per convolved clip)
        batch_rows = torch.arange(G) if sel is None else sel
        check_later(finite, lambda ok: f"reverb: the output of clip(s) {batch_rows[~ok].tolist()} is not "
                                       f"finite (Inf / NaN in {dt}): {why()}")
    return restore_rank(out, was_2d), lengths


def reverb_rows_in_place(wave: Tensor, backend: str | None = None) -> bool:
    """Whether :func:`reverb` with ``rows=`` and this ``backend`` reads and writes the rows of
    ``wave`` itself (the Numba CPU kernel on a C-contiguous float32 / float64 wave) rather than
    gathering, convolving and writing them back."""
    return (wave.dtype in (torch.float32, torch.float64) and wave.is_contiguous()
            and kernel_for(REVERB, wave.device, backend, shared=True)[1] is not None)


def _scatter(v: Tensor, rows: Tensor, B: int) -> Tensor:
    """``(B,)`` zeros of ``v``'s dtype with ``v`` at ``rows`` (host)."""
    out = v.new_zeros(B)
    out[mirrored(rows, v.device)] = v
    return out


def _fade_params(fade: dict | None, B: int, dev) -> tuple | None:
    """``reverb``'s ``fade`` argument as ``(rate, direc, sample_rate, shape)``, validated by
    :func:`~gpuaug.functional.fade.fade_args`; None stays None."""
    if fade is None:
        return None
    unknown = set(fade) - {"sample_rate", "rate_per_s", "direction", "shape"}
    if unknown or not {"sample_rate", "rate_per_s", "direction"} <= set(fade):
        raise ValueError(f"reverb: fade must be a dict with keys sample_rate, rate_per_s, direction (and shape), "
                         f"got {sorted(fade)}")
    shape = fade.get("shape", "linear")
    rate, direc = fade_args(B, dev, sample_rate=fade["sample_rate"], rate_per_s=fade["rate_per_s"],
                            direction=fade["direction"], shape=shape)
    return rate, direc, float(fade["sample_rate"]), shape



def rir_span(rir_lengths: Tensor, direct: Tensor, n_w) -> tuple[Tensor, Tensor]:
    """Host ``(post, pre)`` per RIR: the samples from the direct path on (``post``) and before
    it (``pre``) that can reach an output of ``n_w`` samples (``min(rir_lengths - d, n_w)``,
    ``min(d, n_w - 1)``; ``n_w`` an int, or one per RIR). With :func:`reverb_fft_size` this
    fixes an RIR's spectrum: it is a function of the RIR, ``(post, pre, n_fft)``, the dtype and
    whether it is scaled."""
    post, pre = _span(rir_lengths, direct, n_w)
    return torch.from_numpy(post), torch.from_numpy(pre)


def _span(rir_lengths, direct, n_w) -> tuple[np.ndarray, np.ndarray]:
    """:func:`rir_span` on host int64 values (tensors or arrays) as numpy arrays."""
    hl, d = np.asarray(rir_lengths, dtype=np.int64), np.asarray(direct, dtype=np.int64)
    return np.minimum(hl - d, n_w), np.minimum(d, np.maximum(np.asarray(n_w) - 1, 0))


def reverb_fft_size(n_w: int, rir_lengths: Tensor, direct: Tensor, *, device: torch.device | str = "cpu",
                    backend: str | None = None) -> int:
    """The FFT size :func:`reverb` uses for clips of at most ``n_w`` samples and these RIRs
    (host ``rir_lengths`` and direct-path indices, tensors or arrays) on ``device`` with
    ``backend``: the smallest size measured fast for the FFTs that run there
    (:func:`~gpuaug.functional.fft_sizes.fast_fft_size`: the CPU kernel's pocketfft table,
    else torch's) >= ``n_w + max(max(post) - 1, max(pre))`` with ``(post, pre)`` from
    :func:`rir_span` (the circularly shifted RIR then never wraps into the kept output).
    Precomputed ``rir_spectra`` tensors need this size."""
    return _fft_size(n_w, rir_lengths, direct, _fft_of(kernel_for(REVERB, device, backend, shared=True)[1]))


def _fft_size(n_w: int, rir_lengths, direct, fft: str) -> int:
    """:func:`reverb_fft_size` with the FFT library ``fft`` (a key of :data:`~gpuaug.functional.fft_sizes.FFT_TABLES`)."""
    post, pre = _span(rir_lengths, direct, n_w)
    return _next_fast_len(max(1, n_w + max(int(post.max()) - 1, int(pre.max()))), fft)


def _spectra(h: Tensor, h_peak: Tensor, hl: Tensor, d: Tensor, n_w: int, n_fft: int, scaled: bool, dt) -> Tensor:
    """rfft(n_fft) of the RIRs ``h`` (masked, on the device) circularly shifted by ``-d`` and cut to
    :func:`rir_span` (scaled to peak in [0.5, 1) when ``scaled``): ``(U, Cr, n_fft // 2 + 1)``."""
    post, pre = rir_span(hl, d, n_w)
    if scaled:
        s1, s2 = _pow2_scale(h_peak, dt)
        h = h.to(dt) * s1[:, None, None]
        h.mul_(s2[:, None, None])
    else:
        h = h.to(dt)
    buf = h.new_zeros(h.shape[0], h.shape[1], n_fft)
    for u, (db, p, m) in enumerate(zip(d.tolist(), post.tolist(), pre.tolist())):  # host ints
        buf[u, :, :p] = h[u, :, db:db + p]
        if m:
            buf[u, :, n_fft - m:] = h[u, :, db - m:db]
    return torch.fft.rfft(buf)


#: The fixed cost of a group's FFT calls (its rfft + irfft), in rows of its FFT size: a torch CPU
#: rfft call costs about as much as 5 rows in set-up (4.6-5.8 rows at the sizes of 2 s and 8 s
#: clips), a scipy one (the CPU kernel's) 2.3-3.7 rows (``benchmarks/fft_call_cost.py``,
#: ``benchmarks/results/cpu-1thread-fft-call-cost.json``); 10 charges two torch-sized calls.
_FFT_CALL_ROWS = 10


def _fft_cost(n: int) -> float:
    return n * math.log2(max(n, 2))


def _length_groups(len_host: Tensor, hl_host: Tensor, direct_host: Tensor, clip_row: Tensor, C: int, Cr: int,
                   fft: str):
    """``[None]`` (one group: the whole batch) or host index tensors of 2 groups of clips, split
    by the FFT length each clip needs on its own (its length plus its RIR's span,
    :func:`_fft_size` of that clip alone with ``fft``), when splitting lowers the estimated FFT cost
    ``sum_g (2 B_g C + U_g Cr + 10) n_g log2 n_g`` (clip rfft + irfft per clip and channel, one
    RIR rfft per distinct RIR, the set-up of the group's two FFT calls :data:`_FFT_CALL_ROWS`;
    ``n_g`` its FFT size from ``fft``'s table) below 0.9 of the one-group cost (module-level rule, see
    :func:`reverb` Notes)."""
    if len_host.numel() < 2 or int(len_host.max()) == 0:
        return [None]
    L, row = np.asarray(len_host, dtype=np.int64), np.asarray(clip_row, dtype=np.int64)
    hl, dd = np.asarray(hl_host, dtype=np.int64), np.asarray(direct_host, dtype=np.int64)
    post, pre = _span(hl[row], dd[row], L)  # each clip's RIR span at its own length
    need = L + np.maximum(post - 1, pre)  # the clip's own linear-convolution length
    order = np.argsort(need, kind="stable")
    ns = need[order]
    cut = np.flatnonzero(ns[1:] != ns[:-1]) + 1  # candidate splits: the short group is order[:k]
    if cut.size == 0:
        return [None]
    # every candidate at once (no loop over clips or splits): a group's FFT size needs only its
    # largest length, largest ``rir_length - direct`` and largest direct index, since
    # max_r min(a_r, n) = min(max_r a_r, n) (reverb_fft_size); its distinct RIRs are counted by
    # first occurrences along the sorted order (forwards for the short group, backwards for the long)
    Ls, rs = L[order], row[order]
    As, Ds = (hl - dd)[rs], dd[rs]
    B = L.size

    def seen(r):  # 1 where a row occurs for the first time along r
        first = np.zeros(B, dtype=np.int64)
        first[np.unique(r, return_index=True)[1]] = 1
        return np.cumsum(first)

    def sizes(mL, mA, mD):
        n = mL + np.maximum(np.minimum(mA, mL) - 1, np.minimum(mD, np.maximum(mL - 1, 0)))
        return [_next_fast_len(max(1, int(v)), fft) for v in n]

    def cost(count, distinct, n):
        return [(2 * int(c) * C + int(u) * Cr + _FFT_CALL_ROWS) * _fft_cost(m) for c, u, m in zip(count, distinct, n)]

    pre_L, pre_A, pre_D = (np.maximum.accumulate(v)[cut - 1] for v in (Ls, As, Ds))
    rev = slice(None, None, -1)
    suf_L, suf_A, suf_D = (np.maximum.accumulate(v[rev])[rev][cut] for v in (Ls, As, Ds))
    short = cost(cut, seen(rs)[cut - 1], sizes(pre_L, pre_A, pre_D))
    long = cost(B - cut, seen(rs[rev])[rev][cut], sizes(suf_L, suf_A, suf_D))
    whole = cost([B], [np.unique(row).size], sizes(Ls.max(keepdims=True), As.max(keepdims=True), Ds.max(keepdims=True)))
    total = np.asarray(short) + np.asarray(long)
    total[(pre_L == 0) | (suf_L == 0)] = np.inf  # a group of empty clips only: not a split
    i = int(np.argmin(total))  # the first of the cheapest splits
    if not total[i] < 0.9 * whole[0]:
        return [None]
    return [torch.from_numpy(np.sort(order[:cut[i]])), torch.from_numpy(np.sort(order[cut[i]:]))]


def _convolve(w, lengths, len_host, clip_row, fade, h, h_peak, hl_host, direct_host, normalize, rir_spectra, kernel,
              workspace, clips=None, out=None):
    """The convolution of :func:`reverb` for clips ``w`` (``(B, C, T)``), clip ``b`` with RIR row
    ``clip_row[b]`` of ``h`` (through ``kernel`` when it is not None, with the optional ``fade``
    of :func:`_fade_params` in its output pass); returns the ``(B, C, T)`` output and, from the
    kernel, its ``(B,)`` finite flags (else None). Kernel only: ``clips`` (host int64) the rows of
    ``w`` to convolve (``len_host`` and ``clip_row`` then per row of ``clips``), written into
    those rows of ``out``; the flags are then per row of ``clips``."""
    B, C, T = w.shape
    dev, dt = w.device, w.dtype
    n_w = int(len_host.max())
    if n_w == 0:
        return w.new_zeros(B, C, T), None
    rows, inv = torch.unique(clip_row, return_inverse=True)
    n_fft = _fft_size(n_w, hl_host[rows], direct_host[rows], _fft_of(kernel))
    scaled = normalize != "none"
    nf = n_fft // 2 + 1
    if isinstance(rir_spectra, Tensor):
        if rir_spectra.shape != (h.shape[0], h.shape[1], nf) or not rir_spectra.is_complex():
            raise ValueError(f"rir_spectra must be a complex ({h.shape[0]}, {h.shape[1]}, {nf}) tensor "
                             f"(n_fft {n_fft}), got {rir_spectra.dtype} {tuple(rir_spectra.shape)}")
        H, H_row = rir_spectra.to(device=dev), clip_row  # spectrum H[H_row[b]] for clip b
    else:
        def compute(sub: Tensor) -> Tensor:  # spectra of RIR rows ``sub`` (host int64)
            sub_dev = mirrored(sub, dev)
            return _spectra(h[sub_dev], h_peak[sub_dev], hl_host[sub], direct_host[sub], n_w, n_fft, scaled, dt)

        if rir_spectra is None:
            H = compute(rows)
        else:  # a caller's cache: each row's spectrum depends on exactly its tag
            post, pre = rir_span(hl_host[rows], direct_host[rows], n_w)
            tags = [(n_fft, p, m, scaled, dt, dev) for p, m in zip(post.tolist(), pre.tolist())]
            H = rir_spectra(rows, tags, compute)
        if isinstance(H, tuple):  # (spectra, the row of each of ``rows`` in them)
            H, at = H
            H_row = host_of(at).to(torch.int64)[inv]
        else:
            H_row = inv
    if kernel is not None:  # the kernel reads H[H_row[b]] itself: no (B, Cr, nf) gather
        return kernel(w, lengths, H, H_row, n_fft=n_fft, normalize=normalize, fade=fade, workspace=workspace,
                      clips=clips, out=out)
    if H.shape[0] != B or not torch.equal(H_row, torch.arange(B)):
        H = H[mirrored(H_row, dev)]
    # the clip, zero past its length (and scaled to peak in [0.5, 1)), written into the padded FFT input
    x = w[..., :n_w]
    masked = int(len_host.min()) < n_w
    mask = valid_mask(lengths, n_w)[:, None, :].to(dt) if masked else None  # multiplied: cheaper than where
    if scaled:
        x_peak = torch.maximum(x.amax(dim=(1, 2)), -x.amin(dim=(1, 2)))  # padding may be nonzero: an upper bound
        x1, x2 = _pow2_scale(x_peak, dt)
        xs = x * x1[:, None, None]
        xs.mul_(mask * x2[:, None, None] if masked else x2[:, None, None])
    else:
        xs = x * mask if masked else x
    X = torch.fft.rfft(xs, n=n_fft)
    X.mul_(H)
    y = torch.fft.irfft(X, n=n_fft)[..., :n_w]
    del X, H

    out = w.new_empty(B, C, T)
    if T > n_w:
        out[..., n_w:] = 0
    o = out[..., :n_w]
    if masked:
        torch.mul(y, mask, out=o)
    else:
        o.copy_(y)
    del y
    if scaled:
        if normalize == "energy":  # values <= 1 (x) and <= n_h (y): float32 sums neither overflow nor lose range
            ref, got = torch.linalg.vector_norm(xs, dim=(1, 2)), torch.linalg.vector_norm(o, dim=(1, 2))
        else:
            ref = torch.maximum(xs.amax(dim=(1, 2)), -xs.amin(dim=(1, 2)))
            got = torch.maximum(o.amax(dim=(1, 2)), -o.amin(dim=(1, 2)))
        # the gain restores the clip's scale: (ref / got) / (x1 * x2), in float64
        ref64, got64 = ref.to(torch.float64), got.to(torch.float64)
        gain = ref64 / got64.clamp_min(torch.finfo(torch.float64).tiny) / (x1.to(torch.float64) * x2.to(torch.float64))
        gain = torch.where(got64 > 0, gain, torch.zeros_like(gain))
        out.mul_(gain.to(dt)[:, None, None])  # an overflowing gain is caught just below
    return out, None


def synthetic_rir(
    seed,
    *,
    rt60_s,
    drr_db,
    predelay_s,
    sample_rate: float,
    length=None,
    dtype: torch.dtype = torch.float32,
) -> tuple[Tensor, Tensor]:
    """Seeded synthetic RIRs: unit direct impulse, silent pre-delay, decaying Gaussian tail.

    ``rir[b, 0] = 1``; samples ``1 .. n0 - 1`` are 0 with ``n0 = max(1, round(predelay_s *
    sample_rate))``; from ``n0`` on, ``rir[b, n] = g * N(n) * 10 ** (-3 (n - n0) / (rt60_s *
    sample_rate))`` (energy falls 60 dB over ``rt60_s``) with ``N(n) =
    gpuaug.random.normal(key=seed[b], stream=<rir stream>, counter=n)`` and ``g`` chosen so
    that ``10 log10(E_direct / E_tail) = drr_db`` exactly on the drawn tail. Each RIR
    depends only on its seed and parameters (not on batch composition or device).

    With a very low ``drr_db`` and short ``rt60_s`` a tail sample can exceed the direct
    impulse, and :func:`reverb` would then align to that sample.

    Args:
        seed: ``(B,)`` integer seeds (defines ``B`` and the device).
        rt60_s: per-clip reverberation time in seconds (> 0).
        drr_db: per-clip direct-to-reverberant energy ratio in dB.
        predelay_s: per-clip delay from the direct impulse to the tail onset, seconds (>= 0).
        sample_rate: sampling rate in Hz (> 0).
        length: per-clip RIR length in samples, or None for ``ceil((predelay_s + rt60_s) *
            sample_rate)``; at least ``n0 + 1`` (the tail must not be empty).
        dtype: floating dtype of the returned RIRs.

    Returns:
        ``rir`` ``(B, Tr)`` with ``Tr = max(rir_lengths)`` (zero padded) and ``rir_lengths``
        ``(B,)`` int64.
    """
    seed = torch.as_tensor(seed)
    if seed.dim() != 1 or seed.is_floating_point() or seed.is_complex() or seed.dtype == torch.bool:
        raise ValueError(f"seed must be a (B,) integer tensor, got {seed.dtype} {tuple(seed.shape)}")
    if not dtype.is_floating_point:
        raise TypeError(f"dtype must be floating, got {dtype}")
    sr = float(sample_rate)
    if not (math.isfinite(sr) and sr > 0):
        raise ValueError(f"sample_rate must be > 0, got {sample_rate}")
    B, dev = seed.shape[0], seed.device
    key = seed.to(torch.int64)
    rt60 = per_clip(rt60_s, B, name="rt60_s", device=dev, dtype=torch.float64)
    drr = per_clip(drr_db, B, name="drr_db", device=dev, dtype=torch.float64)
    predelay = per_clip(predelay_s, B, name="predelay_s", device=dev, dtype=torch.float64)
    if B and bool((rt60 <= 0).any()):
        raise ValueError(f"rt60_s must be > 0, got {rt60.tolist()}")
    if B and bool((predelay < 0).any()):
        raise ValueError(f"predelay_s must be >= 0, got {predelay.tolist()}")
    onset = (predelay * sr).round().to(torch.int64).clamp_min(1)
    if length is None:
        rir_lengths = torch.maximum(torch.ceil((predelay + rt60) * sr - 1e-6).to(torch.int64), onset + 1)
    else:
        rir_lengths = per_clip_int(length, B, name="length", device=dev)
        if B and bool((rir_lengths < onset + 1).any()):
            raise ValueError(
                f"length must exceed the pre-delay (>= {(onset + 1).tolist()} samples), "
                f"got {rir_lengths.tolist()}"
            )
    Tr = int(rir_lengths.max()) if B else 0

    n = torch.arange(Tr, device=dev)
    since = (n - onset[:, None]).clamp_min(0).to(torch.float64)
    envelope = torch.pow(10.0, -3.0 * since / (rt60[:, None] * sr))
    in_tail = (n >= onset[:, None]) & valid_mask(rir_lengths, Tr)
    tail = normal(key[:, None], _RIR_STREAM, n[None], dtype=torch.float64) * envelope * in_tail
    energy = tail.square().sum(dim=1).clamp_min(torch.finfo(torch.float64).tiny)
    tail = tail * (10.0 ** (-drr / 10.0) / energy).sqrt()[:, None]
    rir = tail + (n == 0).to(torch.float64)
    return rir.to(dtype), rir_lengths
