"""Length-aware log-mel features and their z-normalisation (training-fold statistics only).

:class:`LogMel` turns a zero-padded batch ``(B, T)`` of waveforms into ``(B, F, n_mels)``
log-mel frames plus the number of valid frames of every clip; :class:`Normalizer` fits
mean / standard deviation on the valid frames of the training fold (globally or per
speaker) and applies them, keeping padded frames at exactly 0.

Pipeline of :class:`LogMel` (all in float32 on the wave's device):

1. samples at or beyond ``lengths[b]`` are zeroed (padding is zero by the batch contract;
   zeroing makes that hold whatever the caller left there);
2. frames of ``win = round(win_ms * sample_rate / 1000)`` samples every
   ``hop = round(hop_ms * sample_rate / 1000)`` samples, *not* centred (frame ``t`` covers
   samples ``[t * hop, t * hop + win)``), weighted by a **symmetric** Hamming window
   ``0.54 - 0.46 cos(2 pi n / (win - 1))`` (HTK / Kaldi convention) and zero padded to
   ``n_fft`` (the next power of two ``>= win`` unless given) by ``torch.stft``;
3. power spectrum ``|X_k|^2``, ``k = 0 .. n_fft // 2``;
4. triangular **HTK-mel** filterbank (``mel(f) = 2595 log10(1 + f / 700)``, filters with
   peak 1, no Slaney area normalisation), ``n_mels`` bands evenly spaced in mel between
   ``f_min`` and ``f_max`` (built in float64, stored float32);
5. ``log(energy + eps)``.

Clip ``b`` has ``frame_lengths[b] = max(1, 1 + (lengths[b] - win) // hop)`` valid frames: every
valid frame lies entirely inside the clip. A clip shorter than one window (``lengths < win``)
gets exactly one frame, the analysis of its zero-padded first window (so a 0-sample clip gives
one frame of ``log(eps)``). Rows at frames ``>= frame_lengths`` are set to 0.
"""
from __future__ import annotations

import json
import math
from typing import Iterable, Sequence

import torch
from torch import Tensor, nn

__all__ = ["LogMel", "Normalizer", "htk_mel_filterbank", "hz_to_mel", "mel_to_hz", "valid_frame_mask"]


def hz_to_mel(f):
    """HTK mel scale: ``2595 log10(1 + f / 700)`` (``f`` in Hz; float or float64 tensor)."""
    if isinstance(f, Tensor):
        return 2595.0 * torch.log10(1.0 + f / 700.0)
    return 2595.0 * math.log10(1.0 + f / 700.0)


def mel_to_hz(m):
    """Inverse of :func:`hz_to_mel`: ``700 (10^(m / 2595) - 1)`` Hz."""
    if isinstance(m, Tensor):
        return 700.0 * (torch.pow(10.0, m / 2595.0) - 1.0)
    return 700.0 * (10.0 ** (m / 2595.0) - 1.0)


def htk_mel_filterbank(n_fft: int, n_mels: int, sample_rate: int, f_min: float = 0.0,
                       f_max: float | None = None) -> Tensor:
    """Triangular HTK-mel filters, float64 ``(n_mels, n_fft // 2 + 1)``.

    Filter ``m`` rises linearly (in Hz) from edge ``m`` to a peak of 1 at edge ``m + 1`` and
    falls to 0 at edge ``m + 2``, the ``n_mels + 2`` edges evenly spaced in mel between
    ``f_min`` and ``f_max`` (default ``sample_rate / 2``); FFT bin ``k`` sits at
    ``k * sample_rate / n_fft`` Hz.

    Raises:
        ValueError: bad frequency range, or a filter that covers no FFT bin (too many mel
            bands for ``n_fft``).
    """
    f_max = sample_rate / 2 if f_max is None else float(f_max)
    if not 0.0 <= f_min < f_max <= sample_rate / 2:
        raise ValueError(f"need 0 <= f_min < f_max <= sample_rate / 2, got f_min={f_min}, f_max={f_max}, "
                         f"sample_rate={sample_rate}")
    edges = mel_to_hz(torch.linspace(hz_to_mel(float(f_min)), hz_to_mel(f_max), n_mels + 2, dtype=torch.float64))
    bins = torch.arange(n_fft // 2 + 1, dtype=torch.float64) * (sample_rate / n_fft)
    lo, mid, hi = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    up = (bins - lo) / (mid - lo)
    down = (hi - bins) / (hi - mid)
    fb = torch.clamp(torch.minimum(up, down), min=0.0)
    empty = (fb.sum(dim=1) == 0).nonzero().flatten().tolist()
    if empty:
        raise ValueError(f"mel filters {empty} cover no FFT bin: use fewer mel bands than {n_mels} "
                         f"or a larger n_fft than {n_fft}")
    return fb


def valid_frame_mask(frame_lengths: Tensor, n_frames: int) -> Tensor:
    """``(B, n_frames)`` bool, True at frames ``< frame_lengths[b]``."""
    return torch.arange(n_frames, device=frame_lengths.device) < frame_lengths[:, None]


class LogMel(nn.Module):
    """Zero-padded waveforms ``(B, T)`` -> log-mel frames ``(B, F, n_mels)`` (module docstring).

    Args:
        sample_rate: Hz.
        n_mels: mel bands.
        win_ms, hop_ms: window and hop in milliseconds (25 / 10: 400 / 160 samples at 16 kHz).
        n_fft: FFT size (default: the next power of two ``>= win``, 512 at 16 kHz).
        f_min, f_max: filterbank range in Hz (default ``0 .. sample_rate / 2``).
        eps: floor added before the log (energies are in squared full-scale units summed over
            a window, so ``log(eps)`` = -13.8 is far below speech).

    The window and filterbank are non-persistent float32 buffers (nothing to checkpoint);
    they follow the wave to its device on every call, so the module works on the batch's
    device whether or not it was moved there.
    """

    def __init__(self, sample_rate: int, n_mels: int = 40, win_ms: float = 25.0, hop_ms: float = 10.0,
                 n_fft: int | None = None, f_min: float = 0.0, f_max: float | None = None, eps: float = 1e-6):
        super().__init__()
        if sample_rate <= 0 or n_mels < 1:
            raise ValueError(f"need sample_rate > 0 and n_mels >= 1, got {sample_rate}, {n_mels}")
        self.sample_rate, self.n_mels, self.eps = int(sample_rate), int(n_mels), float(eps)
        self.win = int(round(win_ms * sample_rate / 1000.0))
        self.hop = int(round(hop_ms * sample_rate / 1000.0))
        if self.win < 2 or self.hop < 1:
            raise ValueError(f"window ({self.win} samples) must be >= 2 and hop ({self.hop}) >= 1")
        self.n_fft = 1 << (self.win - 1).bit_length() if n_fft is None else int(n_fft)
        if self.n_fft < self.win:
            raise ValueError(f"n_fft ({self.n_fft}) must be >= the window ({self.win} samples)")
        window = torch.zeros(self.n_fft, dtype=torch.float64)  # the Hamming window, then zeros to n_fft
        window[: self.win] = torch.hamming_window(self.win, periodic=False, dtype=torch.float64)
        self.register_buffer("window", window.float(), persistent=False)
        fb = htk_mel_filterbank(self.n_fft, self.n_mels, self.sample_rate, f_min, f_max)
        self.register_buffer("filterbank", fb.T.contiguous().float(), persistent=False)  # (n_fft//2+1, n_mels)

    def frame_lengths(self, lengths: Tensor) -> Tensor:
        """``(B,)`` int64 valid frames: ``max(1, 1 + (lengths - win) // hop)``."""
        return torch.clamp(1 + torch.div(lengths.long() - self.win, self.hop, rounding_mode="floor"), min=1)

    def forward(self, wave: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        """Log-mel frames of a padded batch.

        Args:
            wave: ``(B, T)`` float audio (full scale +-1), zero padded after ``lengths``.
            lengths: ``(B,)`` int valid samples (clamped to ``[0, T]``), any device.

        Returns:
            ``(feats, frame_lengths)``: float32 ``(B, F, n_mels)`` natural-log mel energies with
            ``F = max(1, 1 + (T - win) // hop)``, rows ``>= frame_lengths`` zero; int64 ``(B,)``
            valid frames, on the wave's device.
        """
        if wave.dim() != 2:
            raise ValueError(f"wave must be (B, T), got shape {tuple(wave.shape)} (mix channels down first)")
        if not wave.is_floating_point():
            raise TypeError(f"wave must be floating point, got {wave.dtype}")
        device = wave.device
        B, T = wave.shape
        lengths = lengths.to(device).long().clamp(0, T)
        x = wave.float() * (torch.arange(T, device=device) < lengths[:, None])
        # every frame start t * hop <= max(T, win) - win is analysed; n_fft - win zeros after the
        # last window let torch.stft (which frames n_fft samples) reach it
        x = nn.functional.pad(x, (0, max(T, self.win) - T + self.n_fft - self.win))
        spec = torch.stft(x, self.n_fft, hop_length=self.hop, win_length=self.n_fft,
                          window=self.window.to(device), center=False, return_complex=True)  # (B, K, F)
        power = spec.real.square() + spec.imag.square()
        feats = torch.log(power.transpose(1, 2) @ self.filterbank.to(device) + self.eps)  # (B, F, n_mels)
        frame_lengths = self.frame_lengths(lengths)
        feats = feats * valid_frame_mask(frame_lengths, feats.shape[1])[..., None]
        return feats, frame_lengths

    def extra_repr(self) -> str:
        return (f"sample_rate={self.sample_rate}, n_mels={self.n_mels}, win={self.win}, hop={self.hop}, "
                f"n_fft={self.n_fft}, mel=HTK")


_MODES = ("global", "speaker")


def _encode_names(names: Sequence[str]) -> tuple[Tensor, Tensor]:
    """Strings -> (uint8 UTF-8 bytes, int64 offsets ``(S + 1,)``): a tensors-only encoding."""
    raw = [n.encode("utf-8") for n in names]
    offsets = torch.zeros(len(raw) + 1, dtype=torch.int64)
    if raw:
        offsets[1:] = torch.cumsum(torch.tensor([len(r) for r in raw], dtype=torch.int64), 0)
    data = torch.tensor(list(b"".join(raw)), dtype=torch.uint8)
    return data, offsets


def _decode_names(data: Tensor, offsets: Tensor) -> list[str]:
    raw = bytes(data.to(torch.uint8).cpu().tolist())
    o = offsets.cpu().tolist()
    return [raw[o[i]:o[i + 1]].decode("utf-8") for i in range(len(o) - 1)]


class Normalizer:
    """Per-band z-normalisation of log-mel frames, fitted on the training fold only.

    Args:
        mode: ``"global"`` (one mean / std per mel band over every valid training frame) or
            ``"speaker"`` (one per training speaker, plus the global statistics).
        eps: floor of the standard deviation (a band constant over the fitted frames is
            centred, not blown up).

    Statistics are population moments (``ddof=0``) accumulated in float64 over **valid frames
    only** (``t < frame_lengths[b]``); padding never enters them. In ``"speaker"`` mode a clip
    whose speaker was not seen in training (the test fold of a leave-speakers-out split: the
    usual case) is normalised with the **global training statistics**; no statistic is ever
    computed from test data. (Per-test-speaker normalisation would use unlabelled test audio:
    a transductive choice this class deliberately does not make.) Normalised padding stays 0.

    The state (:meth:`state_dict`) is tensors only, safetensors-compatible: ``mode`` (int64
    ``(1,)``: 0 global, 1 speaker), ``eps`` (float64 ``(1,)``), ``global_mean`` /
    ``global_std`` (float64 ``(M,)``), ``global_frames`` (int64 ``(1,)``), ``speaker_mean`` /
    ``speaker_std`` (float64 ``(S, M)``), ``speaker_frames`` (int64 ``(S,)``) and the speaker ids
    as ``speaker_names_utf8`` (uint8, the UTF-8 names concatenated) + ``speaker_names_offsets``
    (int64 ``(S + 1,)``, name ``i`` is bytes ``[o[i], o[i+1])``).
    """

    def __init__(self, mode: str = "global", eps: float = 1e-5):
        if mode not in _MODES:
            raise ValueError(f"mode must be one of {_MODES}, got {mode!r}")
        if not eps > 0:
            raise ValueError(f"eps must be > 0, got {eps}")
        self.mode, self.eps = mode, float(eps)
        self.global_mean: Tensor | None = None
        self.global_std: Tensor | None = None
        self.global_frames = 0
        self.speakers: list[str] = []
        self.speaker_mean = torch.zeros(0, 0, dtype=torch.float64)
        self.speaker_std = torch.zeros(0, 0, dtype=torch.float64)
        self.speaker_frames = torch.zeros(0, dtype=torch.int64)

    @property
    def fitted(self) -> bool:
        return self.global_mean is not None

    def fit(self, feats_iter: Iterable) -> "Normalizer":
        """Accumulate statistics over the training fold.

        Args:
            feats_iter: an iterable of ``(feats, frame_lengths)`` or ``(feats, frame_lengths,
                speakers)`` tuples (``feats`` ``(B, F, M)``, ``frame_lengths`` ``(B,)``,
                ``speakers`` a list of ``B`` ids; required in ``"speaker"`` mode). Pass the
                training fold only.

        Returns:
            self (replacing any earlier fit).

        Raises:
            ValueError: no valid frame, inconsistent band counts, missing speakers.
        """
        g_sum = g_sq = None
        g_n = 0
        per: dict[str, list] = {}  # speaker -> [sum, sumsq, n]
        for item in feats_iter:
            if not isinstance(item, (tuple, list)) or len(item) not in (2, 3):
                raise ValueError("fit() expects (feats, frame_lengths) or (feats, frame_lengths, speakers) tuples")
            feats, frame_lengths = item[0], item[1]
            speakers = item[2] if len(item) == 3 else None
            if feats.dim() != 3:
                raise ValueError(f"feats must be (B, F, M), got shape {tuple(feats.shape)}")
            x = feats.detach().to("cpu", torch.float64)
            mask = valid_frame_mask(frame_lengths.detach().cpu().long(), x.shape[1]).to(torch.float64)[..., None]
            if g_sum is None:
                g_sum = torch.zeros(x.shape[2], dtype=torch.float64)
                g_sq = torch.zeros_like(g_sum)
            elif x.shape[2] != g_sum.shape[0]:
                raise ValueError(f"feats have {x.shape[2]} bands, earlier batches {g_sum.shape[0]}")
            xs, xq, n = (x * mask).sum(dim=1), (x.square() * mask).sum(dim=1), mask.sum(dim=(1, 2))  # per clip
            g_sum += xs.sum(0)
            g_sq += xq.sum(0)
            g_n += int(n.sum())
            if self.mode == "speaker":
                if speakers is None or len(speakers) != x.shape[0]:
                    raise ValueError("speaker mode needs a list of one speaker id per clip in every fit() batch")
                for b, s in enumerate(speakers):
                    if s is None:
                        raise ValueError(f"clip {b} has no speaker id (speaker mode)")
                    acc = per.setdefault(str(s), [torch.zeros_like(g_sum), torch.zeros_like(g_sum), 0])
                    acc[0] += xs[b]
                    acc[1] += xq[b]
                    acc[2] += int(n[b])
        if g_n == 0:
            raise ValueError("no valid frame to fit the normaliser on")
        self.global_mean, self.global_std = self._moments(g_sum, g_sq, g_n)
        self.global_frames = g_n
        names = sorted(s for s, acc in per.items() if acc[2] > 0)
        self.speakers = names
        if names:
            stats = [self._moments(*per[s]) for s in names]
            self.speaker_mean = torch.stack([m for m, _ in stats])
            self.speaker_std = torch.stack([s for _, s in stats])
        else:
            self.speaker_mean = torch.zeros(0, g_sum.shape[0], dtype=torch.float64)
            self.speaker_std = torch.zeros(0, g_sum.shape[0], dtype=torch.float64)
        self.speaker_frames = torch.tensor([per[s][2] for s in names], dtype=torch.int64)
        return self

    def _moments(self, s: Tensor, sq: Tensor, n: int) -> tuple[Tensor, Tensor]:
        mean = s / n
        var = (sq / n - mean.square()).clamp_min(0.0)
        return mean, var.sqrt().clamp_min(self.eps)

    def _row_stats(self, B: int, speakers, device) -> tuple[Tensor, Tensor]:
        """``(B, M)`` mean and std of each clip (speaker statistics or the global fallback)."""
        if self.mode == "global" or not self.speakers:
            return self.global_mean.to(device)[None].expand(B, -1), self.global_std.to(device)[None].expand(B, -1)
        if speakers is None or len(speakers) != B:
            raise ValueError(f"speaker mode needs a list of {B} speaker ids")
        table_mean = torch.cat([self.speaker_mean, self.global_mean[None]])  # row S: the fallback
        table_std = torch.cat([self.speaker_std, self.global_std[None]])
        pos = {s: i for i, s in enumerate(self.speakers)}
        rows = torch.tensor([pos.get(None if s is None else str(s), len(self.speakers)) for s in speakers],
                            dtype=torch.int64)
        return table_mean[rows].to(device), table_std[rows].to(device)

    def __call__(self, feats: Tensor, frame_lengths: Tensor, speakers: Sequence[str] | None = None) -> Tensor:
        """``(feats - mean) / std`` per clip and band, rows ``>= frame_lengths`` set to 0.

        Args:
            feats: ``(B, F, M)`` float features (e.g. :class:`LogMel` output).
            frame_lengths: ``(B,)`` valid frames.
            speakers: ``B`` speaker ids (``"speaker"`` mode; unseen or None ids use the global
                statistics; ignored in ``"global"`` mode).

        Returns:
            ``(B, F, M)`` in ``feats``' dtype and device.
        """
        if not self.fitted:
            raise RuntimeError("Normalizer is not fitted: call fit() on the training fold first")
        if feats.dim() != 3 or feats.shape[2] != self.global_mean.shape[0]:
            raise ValueError(f"feats must be (B, F, {self.global_mean.shape[0]}), got {tuple(feats.shape)}")
        mean, std = self._row_stats(feats.shape[0], speakers, feats.device)
        out = (feats - mean[:, None].to(feats.dtype)) / std[:, None].to(feats.dtype)
        mask = valid_frame_mask(frame_lengths.to(feats.device).long(), feats.shape[1])
        return out * mask[..., None]

    def state_dict(self) -> dict[str, Tensor]:
        """Tensors-only state (class docstring), safe for ``safetensors.torch.save_file``."""
        if not self.fitted:
            raise RuntimeError("Normalizer is not fitted")
        names, offsets = _encode_names(self.speakers)
        return {"mode": torch.tensor([_MODES.index(self.mode)], dtype=torch.int64),
                "eps": torch.tensor([self.eps], dtype=torch.float64),
                "global_mean": self.global_mean.clone(), "global_std": self.global_std.clone(),
                "global_frames": torch.tensor([self.global_frames], dtype=torch.int64),
                "speaker_mean": self.speaker_mean.clone().contiguous(),
                "speaker_std": self.speaker_std.clone().contiguous(),
                "speaker_frames": self.speaker_frames.clone(),
                "speaker_names_utf8": names, "speaker_names_offsets": offsets}

    def load_state_dict(self, state: dict[str, Tensor]) -> "Normalizer":
        """Restore a :meth:`state_dict` (mode and eps included); returns self."""
        missing = {"mode", "eps", "global_mean", "global_std", "global_frames", "speaker_mean", "speaker_std",
                   "speaker_frames", "speaker_names_utf8", "speaker_names_offsets"} - set(state)
        if missing:
            raise KeyError(f"normaliser state lacks {sorted(missing)}")
        self.mode = _MODES[int(state["mode"][0])]
        self.eps = float(state["eps"][0])
        self.global_mean = state["global_mean"].to("cpu", torch.float64).clone()
        self.global_std = state["global_std"].to("cpu", torch.float64).clone()
        self.global_frames = int(state["global_frames"][0])
        self.speakers = _decode_names(state["speaker_names_utf8"], state["speaker_names_offsets"])
        M = self.global_mean.shape[0]
        self.speaker_mean = state["speaker_mean"].to("cpu", torch.float64).reshape(-1, M).clone()
        self.speaker_std = state["speaker_std"].to("cpu", torch.float64).reshape(-1, M).clone()
        self.speaker_frames = state["speaker_frames"].to("cpu", torch.int64).clone()
        if not (len(self.speakers) == self.speaker_mean.shape[0] == self.speaker_std.shape[0]
                == self.speaker_frames.shape[0]):
            raise ValueError("normaliser state: speaker names and statistics disagree in count")
        return self

    def describe(self) -> str:
        """A JSON summary (mode, bands, frames, speakers) for logs."""
        return json.dumps({"mode": self.mode, "bands": None if not self.fitted else int(self.global_mean.shape[0]),
                           "frames": self.global_frames, "speakers": self.speakers})
