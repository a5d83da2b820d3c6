"""The "T-DNN" CNN-GRU of seed 001 section 7 / Table 1: conv over time on log-mel, GRU, mean pooling.

Architecture of :class:`CNNGRU` (``(B, F, n_mels)`` frames with ``frame_lengths`` valid):

1. ``conv_layers`` ``Conv1d`` layers over time (mel bands as input channels, ``channels``
   output channels, kernel ``kernel_width``, stride 1, **no padding**: a "valid" conv, so a
   clip with ``L`` valid frames keeps ``L - (kernel_width - 1)`` per layer and no output frame
   ever reads a padded input frame), each followed by ReLU; activations at invalid frames are
   reset to 0 after every layer.
2. **One** max-pooling of size and stride ``pool`` over time **after the whole conv stack**
   (frame rate 10 ms -> ``pool`` x 10 ms; lengths ``L // pool``, floor). Placing it after the
   stack keeps every conv at the full frame rate and makes ``pool`` the single downsampling
   factor of Table 1.
3. A unidirectional ``nn.GRU`` of ``gru_layers`` x ``gru_units``, fed a
   ``PackedSequence`` of the valid frames (padding never enters the recurrence).
4. **Mean over valid GRU outputs only** -> the pooled embedding ``(B, gru_units)``
   (:meth:`CNNGRU.embed`).
5. ``dense_layers`` x (``Linear(dense_units)``, ReLU, dropout) and the heads: ``emotion``
   ``(B, n_classes)`` and, with ``aux_heads``, ``activation`` / ``valence`` ``(B, 3)``
   (low / mid / high bins of :func:`gpuaug.data.iemocap.bin_dimension`).

Valid lengths after every stage are clamped to ``>= 1``: a clip shorter than the receptive
field (``conv_layers * (kernel_width - 1) + pool`` frames) keeps one output frame, computed from
its frames followed by zero padding. The batch tensor is zero padded to that minimum, so such a
clip gives the same result alone or batched. There is no batch normalisation (its batch
statistics would mix padded frames and other clips into every clip); dropout acts in the dense
layers and, with ``gru_layers > 1``, between GRU layers.
"""
from __future__ import annotations

import itertools
from dataclasses import asdict, dataclass, fields, replace

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

__all__ = ["CNNGRUConfig", "CNNGRU", "TABLE1_GRID", "grid_configs", "DEFAULT_CONFIG", "AUX_CLASSES"]

#: Bins of the auxiliary activation / valence heads (low, mid, high).
AUX_CLASSES = 3

#: The hyper-parameter grid of Table 1 (2 x 2 x 3 x 2 x 3 = 72 configurations).
TABLE1_GRID = {"channels": (64, 128), "pool": (2, 4), "gru_layers": (1, 2, 3), "gru_units": (32, 64),
               "dense_layers": (1, 2, 3)}


@dataclass(frozen=True)
class CNNGRUConfig:
    """Hyper-parameters of :class:`CNNGRU` (Table 1's grid in :data:`TABLE1_GRID`).

    Attributes:
        n_mels: input feature bands.
        n_classes: emotion classes (>= 2).
        conv_layers: conv layers over time (Table 1: 5).
        kernel_width: conv kernel in frames (Table 1: 2).
        channels: conv channels (Table 1: 64 or 128).
        pool: max-pool size over time after the conv stack (Table 1: 2 or 4).
        gru_layers, gru_units: GRU depth (1..3) and width (32 or 64).
        dense_layers, dense_units: dense layers (1..3) and their width.
        dropout: dropout probability in ``[0, 1)`` (dense layers, between GRU layers).
        aux_heads: add activation and valence heads of 3 classes each.

    Any positive sizes are accepted (the Table 1 values are the grid, not a constraint), so
    smaller models can be built for tests; invalid values raise ``ValueError`` naming the field.
    """

    n_mels: int = 40
    n_classes: int = 4
    conv_layers: int = 5
    kernel_width: int = 2
    channels: int = 64
    pool: int = 2
    gru_layers: int = 1
    gru_units: int = 32
    dense_layers: int = 1
    dense_units: int = 64
    dropout: float = 0.2
    aux_heads: bool = False

    def __post_init__(self):
        minimum = {"n_mels": 1, "n_classes": 2, "conv_layers": 1, "kernel_width": 1, "channels": 1, "pool": 1,
                   "gru_layers": 1, "gru_units": 1, "dense_layers": 1, "dense_units": 1}
        for name, lo in minimum.items():
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int):
                raise ValueError(f"CNNGRUConfig.{name} must be an int, got {v!r}")
            if v < lo:
                raise ValueError(f"CNNGRUConfig.{name} must be >= {lo}, got {v}")
        if isinstance(self.dropout, bool) or not isinstance(self.dropout, (int, float)) \
                or not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"CNNGRUConfig.dropout must be a float in [0, 1), got {self.dropout!r}")
        if not isinstance(self.aux_heads, bool):
            raise ValueError(f"CNNGRUConfig.aux_heads must be a bool, got {self.aux_heads!r}")

    @property
    def min_frames(self) -> int:
        """Receptive field in input frames of one output frame: ``conv_layers * (kernel_width - 1) + pool``."""
        return self.conv_layers * (self.kernel_width - 1) + self.pool

    def to_dict(self) -> dict:
        """JSON-able dict of every field."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "CNNGRUConfig":
        """Inverse of :meth:`to_dict` (unknown keys raise ``ValueError``; missing keys take defaults)."""
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown CNNGRUConfig fields {sorted(unknown)}; known: {sorted(known)}")
        return cls(**d)


#: A small, quick configuration (channels 64, pool 2, GRU 1 x 32, one dense layer of 64).
DEFAULT_CONFIG = CNNGRUConfig(channels=64, pool=2, gru_layers=1, gru_units=32, dense_layers=1, dense_units=64)


def grid_configs(base: CNNGRUConfig = DEFAULT_CONFIG, grid: dict = TABLE1_GRID) -> list[CNNGRUConfig]:
    """Every combination of ``grid`` applied to ``base`` (72 for :data:`TABLE1_GRID`).

    The order is ``itertools.product`` over ``grid``'s keys in insertion order (the last key
    varies fastest). Unknown keys raise ``ValueError``.
    """
    known = {f.name for f in fields(CNNGRUConfig)}
    unknown = set(grid) - known
    if unknown:
        raise ValueError(f"grid keys {sorted(unknown)} are not CNNGRUConfig fields")
    keys = list(grid)
    return [replace(base, **dict(zip(keys, combo))) for combo in itertools.product(*(grid[k] for k in keys))]


def _mask_time(x: Tensor, lengths: Tensor) -> Tensor:
    """Zero ``x`` ``(B, C, T)`` at time steps ``>= lengths``."""
    return x * (torch.arange(x.shape[-1], device=x.device) < lengths[:, None])[:, None, :]


class CNNGRU(nn.Module):
    """Log-mel frames -> emotion logits (and optional activation / valence logits); module docstring.

    Args:
        config: a :class:`CNNGRUConfig` (default :data:`DEFAULT_CONFIG`).
    """

    def __init__(self, config: CNNGRUConfig = DEFAULT_CONFIG):
        super().__init__()
        self.config = config
        c = config
        self.convs = nn.ModuleList(nn.Conv1d(c.n_mels if i == 0 else c.channels, c.channels, c.kernel_width)
                                   for i in range(c.conv_layers))
        self.pool = nn.MaxPool1d(c.pool, stride=c.pool)
        self.gru = nn.GRU(c.channels, c.gru_units, num_layers=c.gru_layers, batch_first=True,
                          dropout=c.dropout if c.gru_layers > 1 else 0.0)
        dense, width = [], c.gru_units
        for _ in range(c.dense_layers):
            dense += [nn.Linear(width, c.dense_units), nn.ReLU(), nn.Dropout(c.dropout)]
            width = c.dense_units
        self.dense = nn.Sequential(*dense)
        self.emotion = nn.Linear(width, c.n_classes)
        if c.aux_heads:
            self.activation = nn.Linear(width, AUX_CLASSES)
            self.valence = nn.Linear(width, AUX_CLASSES)

    def output_lengths(self, frame_lengths: Tensor) -> Tensor:
        """Valid GRU steps of clips with ``frame_lengths`` input frames: ``(L - conv_layers *
        (kernel_width - 1)) // pool``, each stage clamped to ``>= 1``."""
        L = frame_lengths.long()
        for _ in range(self.config.conv_layers):
            L = (L - (self.config.kernel_width - 1)).clamp_min(1)
        return torch.div(L, self.config.pool, rounding_mode="floor").clamp_min(1)

    def embed(self, feats: Tensor, frame_lengths: Tensor) -> Tensor:
        """Mean of the GRU outputs over valid steps.

        Args:
            feats: ``(B, F, n_mels)`` float features, rows ``>= frame_lengths`` zero.
            frame_lengths: ``(B,)`` int valid frames (any device; copied to the host for packing).

        Returns:
            ``(B, gru_units)`` pooled embedding.
        """
        c = self.config
        if feats.dim() != 3 or feats.shape[2] != c.n_mels:
            raise ValueError(f"feats must be (B, F, {c.n_mels}), got {tuple(feats.shape)}")
        L = frame_lengths.to(feats.device).long().clamp(1, feats.shape[1])
        x = feats.transpose(1, 2)  # (B, n_mels, F): bands as channels
        x = _mask_time(x, L)
        if x.shape[-1] < c.min_frames:
            x = nn.functional.pad(x, (0, c.min_frames - x.shape[-1]))
        for conv in self.convs:
            x = torch.relu(conv(x))
            L = (L - (c.kernel_width - 1)).clamp_min(1)
            x = _mask_time(x, L)
        x = self.pool(x)
        L = torch.div(L, c.pool, rounding_mode="floor").clamp_min(1)
        packed = pack_padded_sequence(x.transpose(1, 2), L.cpu(), batch_first=True, enforce_sorted=False)
        out, _ = self.gru(packed)
        out, _ = pad_packed_sequence(out, batch_first=True)  # (B, max L, H), zeros after L
        return out.sum(dim=1) / L.to(out.device, out.dtype)[:, None]

    def forward(self, feats: Tensor, frame_lengths: Tensor) -> dict[str, Tensor]:
        """``{"emotion": (B, n_classes)}`` logits, plus ``"activation"`` and ``"valence"``
        ``(B, 3)`` logits with ``aux_heads`` (arguments as :meth:`embed`)."""
        h = self.dense(self.embed(feats, frame_lengths))
        out = {"emotion": self.emotion(h)}
        if self.config.aux_heads:
            out["activation"] = self.activation(h)
            out["valence"] = self.valence(h)
        return out
