"""Noise transforms: environmental noise from a bank at a per-clip SNR, and white noise."""
from __future__ import annotations

import torch

from .._sync import host_of
from ..banks import Bank
from ..functional.noise import mix_noise_from_bank, valid_power, white_noise
from ..policy.table import RETAINING, UNVERIFIED
from .base import Draw, Transform, draw_choice, draw_index, draw_range, no_delta, severity

__all__ = ["AddNoise", "WhiteNoise", "PLACEMENTS", "SPAN_FRACTIONS", "STUDY_NOISE_CATEGORIES"]

#: Where the noise sits in the clip (seeds 000/001: "St" = start fading out, "Co" = continuous).
PLACEMENTS = ("continuous", "start", "span")
#: Fraction of the clip the noise covers for the seeds' short / medium / complete lengths.
SPAN_FRACTIONS = {"short": 0.25, "medium": 0.5, "complete": 1.0}
#: Categories measured in the perception study ("domestic" is ESC-50's interior/domestic).
STUDY_NOISE_CATEGORIES = ("natural", "human", "interior", "domestic")
#: Lowest SNR of the study's conditions (20 / 10 / 0 dB).
STUDY_MIN_SNR_DB = 0.0


def _snr_draw(draw: Draw, lo: float, hi: float, choices) -> torch.Tensor:
    return draw_choice(draw, "snr_db", choices) if choices is not None else draw_range(draw, "snr_db", lo, hi)


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
    Perception: ``retaining`` for the study's categories at SNR >= 0 dB, else ``unverified``.
    """

    name = "add_noise"
    kernel_op = "mix_noise"

    def __init__(self, bank: Bank, *, categories=None, min_snr_db: float = 0.0, max_snr_db: float = 20.0,
                 snr_db_choices=None, placements=("continuous",), span_lengths=("complete",), p: float = 1.0,
                 backend: str | None = None):
        super().__init__(p, backend)
        self.bank = bank
        self.categories = bank._category_list(categories)
        if snr_db_choices is None and not min_snr_db <= max_snr_db:
            raise ValueError(f"AddNoise: min_snr_db {min_snr_db} > max_snr_db {max_snr_db}")
        self.min_snr_db, self.max_snr_db = float(min_snr_db), float(max_snr_db)
        self.snr_db_choices = None if snr_db_choices is None else tuple(float(s) for s in snr_db_choices)
        self.placements = tuple(placements)
        self.span_lengths = tuple(span_lengths)
        for pl in self.placements:
            if pl not in PLACEMENTS:
                raise ValueError(f"AddNoise: unknown placement {pl!r}; choose from {PLACEMENTS}")
        for s in self.span_lengths:
            if s not in SPAN_FRACTIONS:
                raise ValueError(f"AddNoise: unknown span length {s!r}; choose from {tuple(SPAN_FRACTIONS)}")

    def draw_params(self, draw: Draw, batch: int):
        return {
            "snr_db": _snr_draw(draw, self.min_snr_db, self.max_snr_db, self.snr_db_choices),
            "u_category": draw("category"), "u_item": draw("item"), "u_offset": draw("offset"),
            "placement": torch.tensor([PLACEMENTS.index(p) for p in self.placements])[
                draw_index(draw, "placement", len(self.placements))],
            "span_fraction": draw_choice(draw, "span", [SPAN_FRACTIONS[s] for s in self.span_lengths]),
            "u_span_start": draw("span_start"),
        }

    def apply(self, wave, lengths, params, ctx):
        # Replay resolves the recorded item by identity (content hash), never by index or draw.
        index = self.bank.choose(params, "noise_id", self.categories, what="noise")
        dev = wave.device
        backend = self.backend_for(dev)
        if self.bank.audio.device == dev:  # the kernels read the bank rows in place
            audio, bank_lengths, rows = self.bank.audio, self.bank.lengths, index
        else:  # bank elsewhere: move only the picked rows
            audio, bank_lengths = self.bank.gather(index, dev)
            rows = torch.arange(index.shape[0])
        # Placement from host values (parameters, lengths' mirror, bank lengths): no sync.
        L = host_of(lengths)
        noise_lengths = self.bank.lengths[index]
        offset = (params["u_offset"] * noise_lengths).long()
        placement = params["placement"]
        covered = torch.where(placement == 0, L, (params["span_fraction"] * L).round().long())
        start = torch.where(placement == 2, (params["u_span_start"] * (L - covered + 1)).long(), 0)
        fade_out = torch.where(placement == 1, covered // 2, 0)
        silent = valid_power(wave, lengths) == 0  # device-only: read back at the end of the call
        out, out_len = mix_noise_from_bank(wave, lengths, audio, bank_lengths, rows, snr_db=params["snr_db"],
                                           noise_offset=offset, span_start=start, span_length=covered,
                                           fade_out=fade_out, backend=backend)
        resolved = {"noise_index": index, "noise_id": self.bank.item_keys[index],
                    "noise_category": self.bank.category_ids[index], "noise_offset": offset,
                    "span_start": start, "span_length": covered, "fade_out": fade_out, "silent_passthrough": silent}
        return out, out_len, resolved

    def _study_category(self, ids: torch.Tensor) -> torch.Tensor:
        ok = torch.tensor([n in STUDY_NOISE_CATEGORIES for n in self.bank.category_names])
        return ok[ids]

    def perception(self, params):
        B = params["apply"].shape[0]
        ids = params.get("noise_category", torch.zeros(B, dtype=torch.int64))
        retain = self._study_category(ids) & (params["snr_db"] >= STUDY_MIN_SNR_DB)
        return torch.where(retain, severity(RETAINING, B), severity(UNVERIFIED, B)), no_delta(B)

    def possible_tags(self):
        lo = min(self.snr_db_choices) if self.snr_db_choices is not None else self.min_snr_db
        study = all(c in STUDY_NOISE_CATEGORIES for c in self.categories)
        return {RETAINING} if study and lo >= STUDY_MIN_SNR_DB else {RETAINING, UNVERIFIED}

    def annotate(self, entry):
        entry["noise_category_name"] = self.bank.category_names[int(entry["noise_category"])]
        entry["noise_name"] = self.bank.names[int(entry["noise_index"])]
        entry["noise_sha1"] = self.bank.hashes[int(entry["noise_index"])]
        entry["noise_bank"] = self.bank.fingerprint
        entry["placement_name"] = PLACEMENTS[int(entry["placement"])]
        return entry

    def describe(self):
        snr = self.snr_db_choices or (self.min_snr_db, self.max_snr_db)
        return (f"AddNoise(source={self.bank.describe()}, categories={self.categories}, snr_db={snr}, "
                f"placements={self.placements}, p={self.p})")

    def check_record(self, entry: dict) -> None:
        """Raise :class:`~gpuaug.banks.MissingBankItem` naming the recorded noise unless
        the bank still holds it (called by :meth:`Pipeline.params_from_records`)."""
        self.bank.check_recorded(entry.get("noise_name"), entry.get("noise_sha1"), entry.get("noise_bank"), "noise")


class WhiteNoise(Transform):
    """Gaussian white noise at a per-clip SNR (dB), or with absolute ``sigma`` (seed 004: 0.1).

    Perception: ``unverified`` (not in the study).
    """

    name = "white_noise"

    def __init__(self, *, min_snr_db: float = 10.0, max_snr_db: float = 30.0, sigma: float | None = None,
                 p: float = 1.0):
        super().__init__(p)
        if sigma is not None and sigma < 0:
            raise ValueError(f"WhiteNoise: sigma must be >= 0, got {sigma}")
        self.min_snr_db, self.max_snr_db, self.sigma = float(min_snr_db), float(max_snr_db), sigma

    def draw_params(self, draw: Draw, batch: int):
        seed = (draw("seed") * 2.0**53).long()
        if self.sigma is not None:
            return {"sigma": torch.full((batch,), float(self.sigma), dtype=torch.float64), "noise_seed": seed}
        return {"snr_db": draw_range(draw, "snr_db", self.min_snr_db, self.max_snr_db), "noise_seed": seed}

    def apply(self, wave, lengths, params, ctx):
        if "sigma" in params:
            out, out_len = white_noise(wave, lengths, seed=params["noise_seed"], sigma=params["sigma"])
        else:
            out, out_len = white_noise(wave, lengths, seed=params["noise_seed"], snr_db=params["snr_db"])
        return out, out_len, {}

    def perception(self, params):
        B = params["apply"].shape[0]
        return severity(UNVERIFIED, B), no_delta(B)

    def possible_tags(self):
        return {UNVERIFIED}
