"""Models whose training step the augmentation overhead is measured against.

* :class:`CNNGRU`: a small speech-emotion model for CPU training (log-mel via ``torch.stft``,
  a 2-D conv front-end, a bidirectional GRU and a linear head over the mean of the GRU states).
* :func:`wav2vec2_base`: a wav2vec2-base-sized classifier from ``transformers`` (random
  init, nothing downloaded) for the GPU; :func:`wav2vec2_tiny` the same architecture at toy
  size (the dry run of ``gpu_check.py``).
"""
from __future__ import annotations

import math

import torch
from torch import Tensor, nn


def mel_filterbank(n_fft: int, n_mels: int, sample_rate: int, f_min: float = 20.0, f_max: float | None = None) -> Tensor:
    """``(n_mels, n_fft // 2 + 1)`` triangular HTK-mel filters (float32)."""
    f_max = f_max or sample_rate / 2
    mel = lambda f: 2595.0 * math.log10(1.0 + f / 700.0)  # noqa: E731
    m = torch.linspace(mel(f_min), mel(f_max), n_mels + 2, dtype=torch.float64)
    hz = 700.0 * (10 ** (m / 2595.0) - 1.0)
    bins = torch.linspace(0, sample_rate / 2, n_fft // 2 + 1, dtype=torch.float64)
    lo, mid, hi = hz[:-2, None], hz[1:-1, None], hz[2:, None]
    up = (bins - lo) / (mid - lo)
    down = (hi - bins) / (hi - mid)
    return torch.clamp(torch.minimum(up, down), min=0.0).float()


class CNNGRU(nn.Module):
    """Raw 16 kHz audio ``(B, T)`` -> ``(B, n_classes)`` emotion logits.

    Log-mel (25 ms window, 10 ms hop, ``n_mels`` bands) -> three conv blocks (3x3 conv,
    batch norm, ReLU, 2x2 max-pool over frequency and time) -> bidirectional GRU over time ->
    mean over frames -> linear. About 0.55 M parameters with the defaults.
    """

    def __init__(self, n_classes: int = 4, sample_rate: int = 16000, n_mels: int = 64, channels: int = 64,
                 hidden: int = 128):
        super().__init__()
        self.n_fft, self.hop = int(0.025 * sample_rate), int(0.010 * sample_rate)
        self.register_buffer("window", torch.hann_window(self.n_fft), persistent=False)
        self.register_buffer("mel", mel_filterbank(self.n_fft, n_mels, sample_rate), persistent=False)
        blocks, c_in = [], 1
        for c in (channels // 2, channels, channels):
            blocks += [nn.Conv2d(c_in, c, 3, padding=1), nn.BatchNorm2d(c), nn.ReLU(), nn.MaxPool2d(2)]
            c_in = c
        self.conv = nn.Sequential(*blocks)
        self.gru = nn.GRU(channels * (n_mels // 8), hidden, batch_first=True, bidirectional=True)
        self.head = nn.Linear(2 * hidden, n_classes)

    def features(self, wave: Tensor) -> Tensor:
        """``(B, T)`` -> ``(B, 1, n_mels, frames)`` log-mel."""
        spec = torch.stft(wave, self.n_fft, self.hop, window=self.window, return_complex=True)
        power = spec.real.square() + spec.imag.square()
        return torch.log(self.mel @ power + 1e-6)[:, None]

    def forward(self, wave: Tensor) -> Tensor:
        x = self.conv(self.features(wave))  # (B, C, F', T')
        x = x.flatten(1, 2).transpose(1, 2)  # (B, T', C * F')
        x, _ = self.gru(x)
        return self.head(x.mean(dim=1))


def wav2vec2_base(n_classes: int = 4) -> nn.Module:
    """wav2vec2-base-sized ``Wav2Vec2ForSequenceClassification`` with random weights (~95 M parameters).

    Raises ImportError when ``transformers`` is not installed.
    """
    from transformers import Wav2Vec2Config, Wav2Vec2ForSequenceClassification

    return Wav2Vec2ForSequenceClassification(Wav2Vec2Config(num_labels=n_classes))


def wav2vec2_tiny(n_classes: int = 4) -> nn.Module:
    """A toy ``Wav2Vec2ForSequenceClassification`` (2 layers of width 32, ~40 k parameters).

    The same code path as :func:`wav2vec2_base` in seconds on a CPU. Raises ImportError when
    ``transformers`` is not installed.
    """
    from transformers import Wav2Vec2Config, Wav2Vec2ForSequenceClassification

    cfg = Wav2Vec2Config(num_labels=n_classes, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                         intermediate_size=64, conv_dim=(32, 32, 32), conv_stride=(5, 4, 4), conv_kernel=(10, 4, 4),
                         num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2, classifier_proj_size=16,
                         do_stable_layer_norm=False, mask_time_prob=0.0)
    return Wav2Vec2ForSequenceClassification(cfg)


def n_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
