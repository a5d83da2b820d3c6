"""Editing transforms: insert a clip (filler, laugh, cry) and drop segments (letters, words)."""
from __future__ import annotations

import math

import torch

from .._sync import host_of, mirrored
from ..banks import Bank
from ..functional.drop import drop_segments
from ..functional.insert import insert_clip
from ..functional.noise import valid_power
from ..policy.table import ALTERING, RETAINING, lookup
from .base import Draw, Transform, draw_choice, draw_index, draw_range, no_delta, severity

__all__ = ["InsertClip", "DropSegments", "INSERT_POSITIONS", "LONG_PAUSE_S"]

INSERT_POSITIONS = ("start", "middle", "end", "random")
#: A filler with at least this much silence around it counts as the study's "long pause" filler.
LONG_PAUSE_S = 0.3


class InsertClip(Transform):
    """Insert a bank clip (filler, laugh, cry, ...) into each clip, with optional silences.

    Args:
        bank: bank of insert clips; its categories name the kind (``filler``, ``laugh``, ``cry``).
        categories: categories to draw from.
        positions: subset of :data:`INSERT_POSITIONS`, one chosen per clip.
        silence_before_s, silence_after_s: choices of silence (s) around the insert (the
            seeds' long-pause fillers use a pause; short fillers none).
        level_db: the insert's RMS relative to the clip's speech RMS (dB).
        backend: backend of the op (op ``"insert_clip"``, see :mod:`gpuaug.backend`; recorded).
    Perception: always ``altering`` (seeds: do not add pauses or vocal bursts); deltas of the
    laugh / cry rows, none for fillers (relabel falls back to masking).
    """

    name = "insert_clip"
    changes_length = True
    kernel_op = "insert_clip"

    def __init__(self, bank: Bank, *, categories=None, positions=("middle", "end"), silence_before_s=(0.0,),
                 silence_after_s=(0.0,), level_db: float = 0.0, p: float = 1.0, backend: str | None = None):
        super().__init__(p, backend)
        self.bank = bank
        self.categories = bank._category_list(categories)
        bad = [x for x in positions if x not in INSERT_POSITIONS]
        if bad or not positions:
            raise ValueError(f"InsertClip: positions must be a non-empty subset of {INSERT_POSITIONS}, got {positions}")
        if min(silence_before_s) < 0 or min(silence_after_s) < 0:
            raise ValueError("InsertClip: silences must be >= 0 s")
        self.positions = tuple(positions)
        self.silence_before_s, self.silence_after_s = tuple(silence_before_s), tuple(silence_after_s)
        self.level_db = float(level_db)

    def draw_params(self, draw: Draw, batch: int):
        pos = torch.tensor([INSERT_POSITIONS.index(x) for x in self.positions])
        return {"u_category": draw("category"), "u_item": draw("item"),
                "position_kind": pos[draw_index(draw, "position", len(self.positions))], "u_position": draw("u_position"),
                "silence_before_s": draw_choice(draw, "before", self.silence_before_s),
                "silence_after_s": draw_choice(draw, "after", self.silence_after_s),
                "level_db": torch.full((batch,), self.level_db, dtype=torch.float64)}

    def apply(self, wave, lengths, params, ctx):
        # Replay resolves the recorded clip by identity (content hash), never by index or draw.
        index = self.bank.choose(params, "insert_id", self.categories, what="insert clip")
        clip, clip_lengths = self.bank.gather(index, wave.device)
        clip = clip.to(wave.dtype)
        kind = params["position_kind"]
        L = host_of(lengths)  # positions from host values (no sync)
        position = torch.stack([torch.zeros_like(L), L // 2, L, (params["u_position"] * (L + 1)).long().clamp(max=L)], 1)
        position = position.gather(1, kind[:, None]).squeeze(1)
        p_speech = valid_power(wave, lengths)
        p_clip = valid_power(clip, clip_lengths)
        level = mirrored(10 ** (params["level_db"] / 20), wave.device)
        scale = torch.where((p_speech > 0) & (p_clip > 0), torch.sqrt(p_speech / p_clip.clamp_min(1e-30)) * level, 1.0)
        sr = ctx.sample_rate
        before = (params["silence_before_s"] * sr).round().long()
        after = (params["silence_after_s"] * sr).round().long()
        out, out_len = insert_clip(wave, lengths, clip * scale[:, None].to(wave.dtype), clip_lengths, position=position,
                                   silence_before=before, silence_after=after, backend=self.backend_for(wave.device))
        return out, out_len, {"insert_index": index, "insert_id": self.bank.item_keys[index],
                              "insert_category": self.bank.category_ids[index], "position": position}

    def _row(self, category: str, pause_s: float):
        if category == "filler":
            return lookup("filler", "long_pause" if pause_s >= LONG_PAUSE_S else "short")
        if category in ("laugh", "cry"):
            return lookup(category)
        return None

    def perception(self, params):
        B = params["apply"].shape[0]
        cats = params.get("insert_category", torch.zeros(B, dtype=torch.int64))
        delta = torch.full((B, 2), math.nan, dtype=torch.float64)
        for cid, name in enumerate(self.bank.category_names):  # loop over categories, not clips
            row = self._row(name, 0.0)  # only fillers depend on the pause, and they have no deltas
            if row is not None and row.delta_valence is not None:
                delta[cats == cid] = torch.tensor([row.delta_valence, row.delta_activation], dtype=torch.float64)
        return severity(ALTERING, B), delta

    def possible_tags(self):
        return {ALTERING}

    def annotate(self, entry):
        entry["insert_category_name"] = self.bank.category_names[int(entry["insert_category"])]
        entry["insert_name"] = self.bank.names[int(entry["insert_index"])]
        entry["insert_sha1"] = self.bank.hashes[int(entry["insert_index"])]
        entry["insert_bank"] = self.bank.fingerprint
        entry["position_name"] = INSERT_POSITIONS[int(entry["position_kind"])]
        pause = entry["silence_before_s"] + entry["silence_after_s"]
        row = self._row(entry["insert_category_name"], pause)
        entry["study_variant"] = f"{row.augmentation}:{row.variant}" if row is not None else "not in study"
        return entry

    def check_record(self, entry: dict) -> None:
        """Raise :class:`~gpuaug.banks.MissingBankItem` naming the recorded clip unless
        the bank still holds it (called by :meth:`Pipeline.params_from_records`)."""
        self.bank.check_recorded(entry.get("insert_name"), entry.get("insert_sha1"), entry.get("insert_bank"),
                                 "insert clip")

    def describe(self):
        return (f"InsertClip(source={self.bank.describe()}, categories={self.categories}, "
                f"positions={self.positions}, p={self.p})")


class DropSegments(Transform):
    """Drop short segments (``letters``) or one aligned word (``word``), stitched with a crossfade.

    Args:
        mode: ``letters``: ``min_segments..max_segments`` random segments of
            ``min_ms..max_ms`` each; ``word``: one word from the batch's alignments
            (``Pipeline(..., alignments=(B, K, 2))``; put word dropping before any
            length-changing transform so the alignments still hold).
        crossfade_ms: crossfade at each join.
        backend: backend of the op (op ``"drop_segments"``, see :mod:`gpuaug.backend`; recorded).
    Perception: ``retaining`` (seed 001 Table 2, DropWord / DropLetters).
    """

    name = "drop_segments"
    changes_length = True
    kernel_op = "drop_segments"

    def __init__(self, *, mode: str = "letters", min_segments: int = 1, max_segments: int = 3,
                 min_ms: float = 20.0, max_ms: float = 60.0, crossfade_ms: float = 5.0, p: float = 1.0,
                 backend: str | None = None):
        super().__init__(p, backend)
        if mode not in ("letters", "word"):
            raise ValueError(f"DropSegments: mode must be 'letters' or 'word', got {mode!r}")
        if not 1 <= min_segments <= max_segments or not 0 < min_ms <= max_ms or crossfade_ms < 0:
            raise ValueError("DropSegments: need 1 <= min_segments <= max_segments, 0 < min_ms <= max_ms, crossfade_ms >= 0")
        self.mode, self.segments, self.ms, self.crossfade_ms = mode, (min_segments, max_segments), (min_ms, max_ms), crossfade_ms

    def draw_params(self, draw: Draw, batch: int):
        if self.mode == "word":
            return {"u_word": draw("word")}
        lo, hi = self.segments
        out = {"count": lo + draw_index(draw, "count", hi - lo + 1)}
        for k in range(hi):
            out[f"u_start{k}"] = draw(f"start{k}")
            out[f"ms{k}"] = draw_range(draw, f"ms{k}", *self.ms)
        return out

    def _intervals(self, lengths, params, ctx):
        """``(n, K, 2)`` sample intervals to drop."""
        if self.mode == "word":
            if ctx.alignments is None:
                raise ValueError("DropSegments(mode='word') needs word alignments: call the pipeline with alignments=(B, K, 2)")
            al = ctx.alignments.long()  # host
            valid = al[..., 1] > al[..., 0]
            n = valid.sum(1)
            pick = (params["u_word"] * n).long().clamp(max=(n - 1).clamp_min(0))
            order = torch.argsort((~valid).long(), dim=1, stable=True)  # valid words first
            row = order.gather(1, pick[:, None])
            word = al.gather(1, row[..., None].expand(-1, 1, 2))
            return torch.where((n > 0)[:, None, None], word, torch.zeros_like(word))
        K = self.segments[1]
        lengths = host_of(lengths)  # intervals are computed on the host (no sync)
        span = torch.stack([(params[f"ms{k}"] * 1e-3 * ctx.sample_rate).round().long() for k in range(K)], 1)
        starts = torch.stack([(params[f"u_start{k}"] * (lengths - span[:, k] + 1).clamp_min(0)).long() for k in range(K)], 1)
        used = torch.arange(K)[None, :] < params["count"][:, None]
        ends = torch.where(used, starts + span, starts)
        return torch.stack([starts, ends], dim=2)

    def apply(self, wave, lengths, params, ctx):
        intervals = self._intervals(lengths, params, ctx)
        crossfade = int(round(self.crossfade_ms * 1e-3 * ctx.sample_rate))
        out, out_len = drop_segments(wave, lengths, intervals=intervals, crossfade=crossfade,
                                     backend=self.backend_for(wave.device))
        return out, out_len, {"dropped_samples": host_of(lengths) - host_of(out_len)}

    def perception(self, params):
        B = params["apply"].shape[0]
        return severity(RETAINING, B), no_delta(B)

    def possible_tags(self):
        return {RETAINING}
