"""Editing transforms: insert a clip (filler, laugh, cry) and drop segments (letters, words)."""
from __future__ import annotations

import torch
from torch import Tensor

from .._sync import host_of, mirrored
from ..backend import DROP_SEGMENTS, INSERT_CLIP
from ..banks import Bank
from ..functional.drop import drop_segments
from ..functional.insert import insert_clip
from ..functional.noise import valid_power
from ..policy.evaluate import Cat
from ..policy.rules import DROP_WORDS
from .base import Draw, Transform
from .space import Limit, declare

__all__ = ["InsertClip", "DropSegments", "INSERT_POSITIONS", "WORD_CLASSES", "SPEAKER_MATCH"]

INSERT_POSITIONS = ("start", "middle", "end", "random")
#: What the dropped word was (``word_class`` in the record): one of the papers' function words,
#: another word, a word of unknown text (no transcript), or none (the clip had no candidate).
WORD_CLASSES = ("function", "other", "unknown", "none")
#: Whether an inserted clip is the speaker's own (the perception rules read it as ``speaker``).
SPEAKER_MATCH = ("same", "other", "unknown")
_PUNCT = ".,!?;:\"'()[]"


def function_words(word_text, K: int) -> Tensor:
    """``(B, K)`` bool: which of each clip's ``K`` aligned words is one of the papers'
    :data:`~gpuaug.policy.rules.DROP_WORDS` (case and punctuation ignored). Per-clip metadata
    (strings) on the host; no audio."""
    return torch.tensor([[k < len(w) and w[k].strip(_PUNCT).lower() in DROP_WORDS for k in range(K)]
                         for w in word_text], dtype=torch.bool).reshape(len(word_text), K)


class InsertClip(Transform):
    """Insert a bank clip (filler, laugh, cry, ...) into each clip, with optional silences.

    Args:
        bank: bank of insert clips; its categories name the kind (``filler``, ``laugh``, ``cry``).
        categories: categories to draw from.
        positions: subset of :data:`INSERT_POSITIONS`, one chosen per clip.
        silence_before_s, silence_after_s: choices of silence (s) around the insert (the
            seeds' long-pause fillers use a pause; short fillers none).
        level_db: the insert's RMS relative to the clip's speech RMS (dB).
        speakers: the speaker of each bank item: a sequence aligned with the bank's items, or a
            function of the item name (``None`` for unknown); default: the folder of
            :func:`~gpuaug.data.insert_bank_from_folder`'s ``<speaker>/<file>`` names, else unknown.
        speaker: ``same`` (default): when the items' and the clips' speakers are known (the
            pipeline's ``speakers=``, which :class:`~gpuaug.data.AugmentCollate` fills from the
            items' ``speaker``), draw each clip's insert from its own speaker's items (category
            balanced over the categories that speaker has), as the study did; a clip whose
            speaker has none gets any speaker's. ``any``: any speaker. The record says which
            (``speaker_match``: same / other / unknown).
        backend: backend of the op (op ``"insert_clip"``, see :mod:`gpuaug.backend`; recorded).
    Perception (rules ``insert_clip``): ``altering`` in the rated settings (laughs / cries
    appended at the end, as seed 000 4.2 did; fillers without a pause or with a long pause,
    from the speaker: deltas of the laugh / cry rows, none for fillers, so relabel masks);
    ``unverified`` variants of this altering family otherwise (laughs / cries placed before or
    inside the utterance, fillers of another or an unknown speaker, pauses shorter than a
    long pause, other categories), which the default
    :class:`~gpuaug.policy.labels.LabelPolicy` masks too.
    """

    name = "insert_clip"
    changes_length = True
    kernel_op = INSERT_CLIP
    LIMITS = {"position_kind": Limit(names=INSERT_POSITIONS),
              "silence_before_s": Limit(0.0, 10.0, "s"), "silence_after_s": Limit(0.0, 10.0, "s"),
              "level_db": Limit(-60.0, 40.0, "dB", "insert RMS relative to the clip's speech RMS"),
              "draw_speaker": Limit(names=("same", "any"))}

    def __init__(self, bank: Bank, *, categories=None, positions=("end",), silence_before_s=(0.0,),
                 silence_after_s=(0.0,), level_db: float = 0.0, speakers=None, speaker: str = "same",
                 p: float = 1.0, backend: str | None = None):
        super().__init__(p, backend)
        self.bank = bank
        self.categories = bank._category_list(categories)
        self.speaker = self.option("draw_speaker", speaker, args="speaker")
        if callable(speakers):
            speakers = [speakers(n) for n in bank.names]
        if speakers is not None and len(speakers) != len(bank):
            raise ValueError(f"InsertClip: speakers has {len(speakers)} entries for a bank of {len(bank)} items")
        #: Speaker of each bank item (None: unknown).
        if speakers is None:  # insert_bank_from_folder names items "<speaker>/<file>" below a category folder
            speakers = [n.split("/", 1)[0] if "/" in n else None for n in bank.names]
        self.item_speakers = [None if x is None else str(x) for x in speakers]
        self._known_speakers = sorted({x for x in self.item_speakers if x is not None})
        self._item_speaker_codes = torch.tensor(
            [-1 if x is None else self._known_speakers.index(x) for x in self.item_speakers], dtype=torch.int64)
        self.declare("position_kind", choices=positions, stream="position", args="positions")
        self.declare("silence_before_s", choices=silence_before_s, stream="before")
        self.declare("silence_after_s", choices=silence_after_s, stream="after")
        self.declare("level_db", value=level_db)
        self.positions = tuple(self.space["position_kind"].names)

    def draw_params(self, draw: Draw, batch: int):
        return {**super().draw_params(draw, batch), "u_category": draw("category"), "u_item": draw("item"),
                "u_position": draw("u_position")}

    def _pick(self, params, clip_speakers) -> Tensor:
        """Bank items (host int64) of the clips: the clip's own speaker's when ``speaker="same"``
        and both speakers are known (:meth:`Bank.pick` otherwise). Loops over items' and clips'
        speaker names (metadata), not audio."""
        base = self.bank.pick(params["u_category"], params["u_item"], self.categories)
        if self.speaker != "same" or clip_speakers is None or not self._known_speakers:
            return base
        item_spk, clip_spk = self._item_speaker_codes, self._speaker_codes(clip_speakers)
        cats = torch.tensor([self.bank.category_names.index(c) for c in self.categories])
        of_cat = self.bank.category_ids[None, :] == cats[:, None]                     # (C, N)
        own = (item_spk[None, :] == clip_spk[:, None]) & (clip_spk[:, None] >= 0)      # (B, N)
        cand = own[:, None, :] & of_cat[None, :, :]                                    # (B, C, N)
        has = cand.any(2)                                                              # (B, C)
        n_cat = has.sum(1)
        k = torch.minimum((params["u_category"] * n_cat).long(), (n_cat - 1).clamp_min(0))
        cat_pos = torch.argsort((~has).long(), dim=1, stable=True).gather(1, k[:, None])[:, 0]
        items = cand[torch.arange(cand.shape[0]), cat_pos]                             # (B, N)
        n_item = items.sum(1)
        j = torch.minimum((params["u_item"] * n_item).long(), (n_item - 1).clamp_min(0))
        own_pick = torch.argsort((~items).long(), dim=1, stable=True).gather(1, j[:, None])[:, 0]
        return torch.where(n_cat > 0, own_pick, base)

    def _speaker_codes(self, clip_speakers) -> Tensor:
        """``(n,)`` int64 index of each clip's speaker in the bank's known speakers: -1 for an
        unknown (``None``) speaker, -2 for one the bank does not hold (speaker names: metadata)."""
        known = self._known_speakers
        return torch.tensor([-1 if x is None else known.index(str(x)) if str(x) in known else -2
                             for x in clip_speakers], dtype=torch.int64)

    def _speaker_match(self, index: Tensor, clip_speakers) -> Tensor:
        """``(n,)`` :data:`SPEAKER_MATCH` codes of the picked items against the clips' speakers."""
        if clip_speakers is None:
            return torch.full((index.shape[0],), SPEAKER_MATCH.index("unknown"))
        item, clip = self._item_speaker_codes[index], self._speaker_codes(clip_speakers)
        same = torch.where(item == clip, SPEAKER_MATCH.index("same"), SPEAKER_MATCH.index("other"))
        return torch.where((item == -1) | (clip == -1), SPEAKER_MATCH.index("unknown"), same)

    def apply(self, wave, lengths, params, ctx):
        # Replay resolves the recorded clip by identity (content hash), never by index or draw.
        if "insert_id" in params:
            index = self.bank.index_of(params["insert_id"], "insert clip")
        else:
            index = self._pick(params, ctx.speakers)
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
                              "insert_category": self.bank.category_ids[index], "position": position,
                              "speaker_match": self._speaker_match(index, ctx.speakers)}

    def policy_view(self, params):
        B = params["apply"].shape[0]
        index = params.get("insert_index", torch.zeros(B, dtype=torch.int64))
        return {**super().policy_view(params),
                "category": Cat(self.bank.category_ids[index], tuple(self.bank.category_names)),
                "pause_s": params["silence_before_s"] + params["silence_after_s"],
                "speaker": Cat(params.get("speaker_match", torch.full((B,), SPEAKER_MATCH.index("unknown"))).long(),
                               SPEAKER_MATCH)}

    def policy_space(self):
        before, after = self.space["silence_before_s"].values, self.space["silence_after_s"].values
        return {**super().policy_space(), "category": tuple(self.categories),
                "pause_s": tuple(sorted({b + a for b in before for a in after})),
                "speaker": SPEAKER_MATCH if any(x is not None for x in self.item_speakers) else ("unknown",)}

    def annotate(self, entry):
        entry["insert_category_name"] = self.bank.category_names[int(entry["insert_category"])]
        entry["insert_name"] = self.bank.names[int(entry["insert_index"])]
        entry["insert_sha1"] = self.bank.hashes[int(entry["insert_index"])]
        entry["insert_bank"] = self.bank.fingerprint
        entry["speaker_match_name"] = SPEAKER_MATCH[int(entry["speaker_match"])]
        return super().annotate(entry)

    def check_record(self, entry: dict) -> None:
        """Raise :class:`~gpuaug.banks.MissingBankItem` naming the recorded clip unless
        the bank still holds it (called by :meth:`Pipeline.params_from_records`)."""
        self.bank.check_recorded(entry.get("insert_name"), entry.get("insert_sha1"), entry.get("insert_bank"),
                                 "insert clip")

    def describe(self):
        return (f"InsertClip(source={self.bank.describe()}, categories={self.categories}, "
                f"{super().describe().split('(', 1)[1]}")


class DropSegments(Transform):
    """Drop short segments (``letters``) or one aligned word (``word``), stitched with a crossfade.

    Args:
        mode: ``letters``: ``min_segments..max_segments`` random segments of
            ``min_ms..max_ms`` each; ``word``: one word from the batch's alignments
            (``Pipeline(..., alignments=(B, K, 2))``; put word dropping before any
            length-changing transform so the alignments still hold).
        words: for ``mode="word"``: ``function`` (default) drops one of the papers'
            :data:`~gpuaug.policy.rules.DROP_WORDS` (needs the transcript:
            ``Pipeline(..., word_text=...)``; a clip without such a word keeps all its words),
            ``any`` drops any aligned word.
        crossfade_ms: crossfade at each join.
        backend: backend of the op (op ``"drop_segments"``, see :mod:`gpuaug.backend`; recorded).
    Perception (rules ``drop_segments``): ``retaining`` for a dropped function word (seed 001
    Table 2, DropWord); ``unverified`` for other words, words of unknown text, and ``letters``
    (random segments: the papers dropped letters by phonological rules, not implemented here).
    """

    name = "drop_segments"
    changes_length = True
    kernel_op = DROP_SEGMENTS
    LIMITS = {"mode": Limit(names=("letters", "word")), "words": Limit(names=("function", "any")),
              "count": Limit(1, 16, "segments"), "ms": Limit(0.0, 1000.0, "ms", lo_open=True),
              "crossfade_ms": Limit(0.0, 100.0, "ms")}

    def __init__(self, *, mode: str = "letters", words: str = "function", min_segments: int = 1,
                 max_segments: int = 3, min_ms: float = 20.0, max_ms: float = 60.0, crossfade_ms: float = 5.0,
                 p: float = 1.0, backend: str | None = None):
        super().__init__(p, backend)
        self.mode = self.option("mode", mode)
        self.words = self.option("words", words)
        owner = type(self).__name__
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in (min_segments, max_segments)):
            raise ValueError(f"{owner}: min_segments and max_segments must be ints, got {min_segments!r}, {max_segments!r}")
        count = declare(owner, self.LIMITS, "count", lo=min_segments, hi=max_segments, args="(min_segments, max_segments)")
        ms = declare(owner, self.LIMITS, "ms", lo=min_ms, hi=max_ms, args="(min_ms, max_ms)")
        declare(owner, self.LIMITS, "crossfade_ms", value=crossfade_ms)
        self.segments, self.ms, self.crossfade_ms = (int(count.lo), int(count.hi)), (ms.lo, ms.hi), float(crossfade_ms)

    def draw_params(self, draw: Draw, batch: int):
        if self.mode == "word":
            return {"u_word": draw("word")}
        lo, hi = self.segments
        out = {"count": lo + torch.clamp((draw("count") * (hi - lo + 1)).long(), max=hi - lo)}
        for k in range(hi):
            out[f"u_start{k}"] = draw(f"start{k}")
            out[f"ms{k}"] = self.ms[0] + (self.ms[1] - self.ms[0]) * draw(f"ms{k}")
        return out

    def _word(self, params, ctx):
        """``(n, 1, 2)`` interval of the word to drop and ``(n,)`` its :data:`WORD_CLASSES` code."""
        if ctx.alignments is None:
            raise ValueError("DropSegments(mode='word') needs word alignments: call the pipeline with alignments=(B, K, 2)")
        if self.words == "function" and ctx.word_text is None:
            raise ValueError("DropSegments(mode='word', words='function') needs the transcript: call the pipeline with "
                             "word_text=[[word, ...] per clip] (or use words='any', which is unverified)")
        al = ctx.alignments.long()  # host
        valid = al[..., 1] > al[..., 0]
        func = function_words(ctx.word_text, al.shape[1]) if ctx.word_text is not None else None
        cand = valid & func if self.words == "function" else valid
        n = cand.sum(1)
        pick = (params["u_word"] * n).long().clamp(max=(n - 1).clamp_min(0))
        order = torch.argsort((~cand).long(), dim=1, stable=True)  # candidates first
        row = order.gather(1, pick[:, None])
        word = al.gather(1, row[..., None].expand(-1, 1, 2))
        if func is None:
            cls = torch.full_like(n, WORD_CLASSES.index("unknown"))
        else:
            cls = torch.where(func.gather(1, row)[:, 0], WORD_CLASSES.index("function"), WORD_CLASSES.index("other"))
        cls = torch.where(n > 0, cls, WORD_CLASSES.index("none"))
        return torch.where((n > 0)[:, None, None], word, torch.zeros_like(word)), cls

    def _letters(self, lengths, params, ctx):
        """``(n, K, 2)`` random sample intervals to drop."""
        K = self.segments[1]
        lengths = host_of(lengths)  # intervals are computed on the host (no sync)
        span = torch.stack([(params[f"ms{k}"] * 1e-3 * ctx.sample_rate).round().long() for k in range(K)], 1)
        starts = torch.stack([(params[f"u_start{k}"] * (lengths - span[:, k] + 1).clamp_min(0)).long() for k in range(K)], 1)
        used = torch.arange(K)[None, :] < params["count"][:, None]
        ends = torch.where(used, starts + span, starts)
        return torch.stack([starts, ends], dim=2)

    def apply(self, wave, lengths, params, ctx):
        resolved = {}
        if self.mode == "word":
            intervals, resolved["word_class"] = self._word(params, ctx)
        else:
            intervals = self._letters(lengths, params, ctx)
        crossfade = int(round(self.crossfade_ms * 1e-3 * ctx.sample_rate))
        out, out_len = drop_segments(wave, lengths, intervals=intervals, crossfade=crossfade,
                                     backend=self.backend_for(wave.device))
        resolved["dropped_samples"] = host_of(lengths) - host_of(out_len)
        return out, out_len, resolved

    def policy_view(self, params):
        view = super().policy_view(params)
        if self.mode == "word":
            cls = params.get("word_class", torch.full((params["apply"].shape[0],), WORD_CLASSES.index("unknown")))
            view["word"] = Cat(cls.long(), WORD_CLASSES)
        return view

    def policy_space(self):
        space = super().policy_space()
        if self.mode == "word":
            space["word"] = ("function", "none") if self.words == "function" else ("function", "other", "unknown")
        return space

    def annotate(self, entry):
        if "word_class" in entry:
            entry["word_class_name"] = WORD_CLASSES[int(entry["word_class"])]
        return entry

    def describe(self):
        if self.mode == "word":
            return f"DropSegments(mode=word, words={self.words}, p={self.p})"
        return (f"DropSegments(mode=letters, segments={self.segments}, ms={self.ms}, "
                f"crossfade_ms={self.crossfade_ms:g}, p={self.p})")
