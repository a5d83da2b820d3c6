"""Noise transforms: environmental noise from a bank at a per-clip SNR, and white noise."""
from __future__ import annotations

import re

import torch

from .._sync import host_of
from ..backend import MIX_NOISE
from ..banks import Bank
from ..functional.noise import mix_noise_from_bank, mixes_rows_in_place, white_noise
from ..policy.evaluate import Cat
from ..policy.rules import STUDY_NOISE, VOCAL_BURST_PATTERN
from .base import Draw, Transform
from .space import Limit

__all__ = ["AddNoise", "WhiteNoise", "PLACEMENTS", "SPAN_FRACTIONS", "STUDY_NOISE_CATEGORIES", "is_vocal_burst"]

#: Where the noise sits in the clip (seeds 000/001: "St" = start fading out, "Co" = continuous).
PLACEMENTS = ("continuous", "start", "span")
#: Fraction of the clip the noise covers for the seeds' short / medium / complete lengths.
SPAN_FRACTIONS = {"short": 0.25, "medium": 0.5, "complete": 1.0}
#: Categories measured in the perception study ("domestic" is ESC-50's interior/domestic).
STUDY_NOISE_CATEGORIES = tuple(STUDY_NOISE)
_BURST = re.compile(VOCAL_BURST_PATTERN)


def is_vocal_burst(name: str) -> bool:
    """Whether a bank item's name marks an emotional vocal burst (a token such as ``laugh``,
    ``crying``, ``sobbing``: :data:`~gpuaug.policy.rules.VOCAL_BURST_PATTERN`)."""
    return any(_BURST.match(tok) for tok in re.split(r"[^a-z0-9]+", name.lower()) if tok)


class AddNoise(Transform):
    """Mix a bank noise into each clip at a per-clip SNR (dB, powers over valid samples).

    Args:
        bank: :class:`~gpuaug.banks.Bank` of noises (move it to the device once).
        categories: categories to draw from (category-balanced); default all of the bank.
        min_snr_db, max_snr_db: uniform SNR range; or ``snr_db_choices`` (e.g. ``(0, 10, 20)``).
        placements: subset of :data:`PLACEMENTS`, one chosen per clip. ``start``: noise from
            the clip start over the span, fading out linearly over its second half.
            ``span``: noise over a span at a random offset. ``continuous``: whole clip.
        span_lengths: subset of :data:`SPAN_FRACTIONS` keys for ``start`` / ``span``.
        p: probability per clip.
        backend: backend of the mix (``"auto"`` | ``"torch"`` | ``"numba"`` | ``"cupy"`` or
            None, see :mod:`gpuaug.backend`); the record's ``backend`` /
            ``backend_name`` say which one ran.
    Perception (rules ``add_noise`` of :mod:`gpuaug.policy.rules`): ``retaining`` for the
    study's categories (natural, human, interior = domestic) at the start (covering the clip)
    or continuous at SNR >= 0 dB; ``unverified`` for other categories, the ``span`` placement,
    start noise over 25 % / 50 %, SNR below 0 dB, and files whose name marks an emotional vocal
    burst (:func:`is_vocal_burst`: laughter, crying, ... in a "human" folder), tagged per file.
    """

    name = "add_noise"
    kernel_op = MIX_NOISE
    LIMITS = {"snr_db": Limit(-40.0, 80.0, "dB", "signal-to-noise ratio over valid samples"),
              "placement": Limit(names=PLACEMENTS),
              "span_fraction": Limit(0.0, 1.0, "of the clip", lo_open=True)}

    def __init__(self, bank: Bank, *, categories=None, min_snr_db: float = 0.0, max_snr_db: float = 20.0,
                 snr_db_choices=None, placements=("continuous",), span_lengths=("complete",), p: float = 1.0,
                 backend: str | None = None):
        super().__init__(p, backend)
        self.bank = bank
        self.categories = bank._category_list(categories)
        if snr_db_choices is None:
            self.declare("snr_db", lo=min_snr_db, hi=max_snr_db, args="(min_snr_db, max_snr_db)")
        else:
            self.declare("snr_db", choices=snr_db_choices, args="snr_db_choices")
        self.declare("placement", choices=tuple(placements), args="placements")
        spans = (span_lengths,) if isinstance(span_lengths, str) else tuple(span_lengths)
        bad = [x for x in spans if x not in SPAN_FRACTIONS]
        if bad or not spans:
            raise ValueError(f"AddNoise: span_lengths={spans!r} must be a non-empty subset of {tuple(SPAN_FRACTIONS)}")
        self.declare("span_fraction", choices=[SPAN_FRACTIONS[x] for x in spans], stream="span", args="span_lengths")
        self.placements, self.span_lengths = tuple(self.space["placement"].names), spans
        #: Per bank item, its category for the perception rules: ``vocal_burst`` for bursts.
        self._policy_names = tuple(sorted(set(bank.category_names) | {"vocal_burst"}))
        self._policy_category = torch.tensor([
            self._policy_names.index("vocal_burst" if is_vocal_burst(n) else bank.category_names[c])
            for n, c in zip(bank.names, bank.category_ids.tolist())])

    def draw_params(self, draw: Draw, batch: int):
        return {**super().draw_params(draw, batch), "u_category": draw("category"), "u_item": draw("item"),
                "u_offset": draw("offset"), "u_span_start": draw("span_start")}

    def mixes_rows(self, wave) -> bool:
        """Whether :meth:`apply` can mix rows of the whole batch in place of a gather and a merge
        (``rows=``, :meth:`~gpuaug.transforms.base.Transform.run`): the bank on the wave's device
        and :func:`~gpuaug.functional.noise.mixes_rows_in_place` for this transform's backend."""
        return self.bank.audio.device == wave.device and mixes_rows_in_place(wave, self.backend_for(wave.device))

    def apply(self, wave, lengths, params, ctx, rows=None):
        """``rows``: ``None``, or the host rows of the whole batch ``wave`` to mix (``params``
        and the resolved values then per row; the other rows come back unchanged)."""
        # Replay resolves the recorded item by identity (content hash), never by index or draw.
        index = self.bank.choose(params, "noise_id", self.categories, what="noise")
        dev = wave.device
        backend = self.backend_for(dev)
        if self.bank.audio.device == dev:  # the kernels read the flat (ragged) bank in place
            audio, bank_lengths, items, offsets = self.bank.audio, self.bank.lengths, index, self.bank.offsets
        else:  # bank elsewhere: move only the picked rows (padded)
            audio, bank_lengths = self.bank.gather(index, dev)
            items, offsets = torch.arange(index.shape[0]), None
        # Placement from host values (parameters, lengths' mirror, bank lengths): no sync.
        L = host_of(lengths) if rows is None else host_of(lengths)[rows]
        noise_lengths = self.bank.lengths[index]
        offset = (params["u_offset"] * noise_lengths).long()
        placement = params["placement"]
        covered = torch.where(placement == 0, L, (params["span_fraction"] * L).round().long())
        start = torch.where(placement == 2, (params["u_span_start"] * (L - covered + 1)).long(), 0)
        fade_out = torch.where(placement == 1, covered // 2, 0)
        out, out_len, p_signal = mix_noise_from_bank(
            wave, lengths, audio, bank_lengths, items, snr_db=params["snr_db"], noise_offset=offset, span_start=start,
            span_length=covered, fade_out=fade_out, bank_offsets=offsets, backend=backend, return_signal_power=True,
            rows=rows)
        silent = p_signal == 0  # the mix's own signal power (no extra pass); device-only, read at the call's end
        resolved = {"noise_index": index, "noise_id": self.bank.item_keys[index],
                    "noise_category": self.bank.category_ids[index], "noise_offset": offset,
                    "span_start": start, "span_length": covered, "fade_out": fade_out, "silent_passthrough": silent}
        return out, out_len, resolved

    def policy_view(self, params):
        view = super().policy_view(params)
        index = params.get("noise_index", torch.zeros(params["apply"].shape[0], dtype=torch.int64))
        view["category"] = Cat(self._policy_category[index], self._policy_names)
        return view

    def policy_space(self):
        ids = [self.bank.category_names.index(c) for c in self.categories]
        held = self._policy_category[torch.isin(self.bank.category_ids, torch.tensor(ids))]
        return {**super().policy_space(), "category": tuple(self._policy_names[i] for i in sorted(set(held.tolist())))}

    def annotate(self, entry):
        entry["noise_category_name"] = self.bank.category_names[int(entry["noise_category"])]
        entry["noise_name"] = self.bank.names[int(entry["noise_index"])]
        entry["noise_sha1"] = self.bank.hashes[int(entry["noise_index"])]
        entry["noise_bank"] = self.bank.fingerprint
        return super().annotate(entry)

    def describe(self):
        return (f"AddNoise(source={self.bank.describe()}, categories={self.categories}, "
                f"{super().describe().split('(', 1)[1]}")

    def check_record(self, entry: dict) -> None:
        """Raise :class:`~gpuaug.banks.MissingBankItem` naming the recorded noise unless
        the bank still holds it (called by :meth:`Pipeline.params_from_records`)."""
        self.bank.check_recorded(entry.get("noise_name"), entry.get("noise_sha1"), entry.get("noise_bank"), "noise")


class WhiteNoise(Transform):
    """Gaussian white noise at a per-clip SNR (dB), or with absolute ``sigma`` (seed 004: 0.1).

    Perception: ``unverified`` (not in the study; rule ``white_noise``).
    """

    name = "white_noise"
    LIMITS = {"snr_db": Limit(-40.0, 80.0, "dB", "signal-to-noise ratio over valid samples"),
              "sigma": Limit(0.0, 10.0, "linear", "standard deviation of the noise")}

    def __init__(self, *, min_snr_db: float = 10.0, max_snr_db: float = 30.0, sigma: float | None = None,
                 p: float = 1.0):
        super().__init__(p)
        if sigma is not None:
            self.declare("sigma", value=sigma)
        else:
            self.declare("snr_db", lo=min_snr_db, hi=max_snr_db, args="(min_snr_db, max_snr_db)")

    def draw_params(self, draw: Draw, batch: int):
        return {**super().draw_params(draw, batch), "noise_seed": (draw("seed") * 2.0**53).long()}

    def apply(self, wave, lengths, params, ctx):
        if "sigma" in params:
            out, out_len = white_noise(wave, lengths, seed=params["noise_seed"], sigma=params["sigma"])
        else:
            out, out_len = white_noise(wave, lengths, seed=params["noise_seed"], snr_db=params["snr_db"])
        return out, out_len, {}
