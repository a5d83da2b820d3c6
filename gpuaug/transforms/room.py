"""Reverberation: a measured RIR from a bank, or a synthetic one per clip."""
from __future__ import annotations

from .._sync import upload
from ..banks import Bank
from ..functional._batch import as_3d
from ..functional.reverb import reverb, synthetic_rir
from ..policy.table import RETAINING
from .base import Draw, Transform, draw_range, no_delta, severity

__all__ = ["Reverb"]


class Reverb(Transform):
    """Convolve each clip with a room impulse response (direct-path aligned, same length).

    Args:
        bank: RIR bank; when ``None`` a synthetic RIR is made per clip from the drawn
            ``rt60_s`` (s), ``drr_db`` (direct-to-reverberant ratio, dB) and ``predelay_s``.
        categories: bank categories to draw from.
        normalize: ``energy`` (default; keeps the clip's energy) | ``peak`` | ``none``.
    Perception: ``retaining`` (seed 001 Table 2, "Reverb"); note the seeds' deployment
    advice that reverberant test audio stays hard.
    """

    name = "reverb"

    def __init__(self, bank: Bank | None = None, *, categories=None, min_rt60_s: float = 0.2,
                 max_rt60_s: float = 0.8, min_drr_db: float = 0.0, max_drr_db: float = 10.0,
                 min_predelay_s: float = 0.0, max_predelay_s: float = 0.02, normalize: str = "energy",
                 p: float = 1.0):
        super().__init__(p)
        self.bank = bank
        self.categories = bank._category_list(categories) if bank is not None else None
        if not 0 < min_rt60_s <= max_rt60_s:
            raise ValueError(f"Reverb: need 0 < min_rt60_s <= max_rt60_s, got {min_rt60_s}, {max_rt60_s}")
        if not 0 <= min_predelay_s <= max_predelay_s:
            raise ValueError(f"Reverb: need 0 <= min_predelay_s <= max_predelay_s, got {min_predelay_s}, {max_predelay_s}")
        self.rt60 = (float(min_rt60_s), float(max_rt60_s))
        self.drr = (float(min_drr_db), float(max_drr_db))
        self.predelay = (float(min_predelay_s), float(max_predelay_s))
        self.normalize = normalize

    def draw_params(self, draw: Draw, batch: int):
        if self.bank is not None:
            return {"u_category": draw("category"), "u_item": draw("item")}
        return {"rt60_s": draw_range(draw, "rt60", *self.rt60), "drr_db": draw_range(draw, "drr", *self.drr),
                "predelay_s": draw_range(draw, "predelay", *self.predelay),
                "rir_seed": (draw("seed") * 2.0**53).long()}

    def apply(self, wave, lengths, params, ctx):
        if self.bank is not None:
            # Replay resolves the recorded RIR by identity (content hash), never by index or draw.
            index = self.bank.choose(params, "rir_id", self.categories, what="RIR")
            rir, rir_lengths = self.bank.gather(index, wave.device)
            direct = self.bank.peak_index[index]
            resolved = {"rir_index": index, "rir_id": self.bank.item_keys[index]}
        else:
            rir, rir_lengths = synthetic_rir(params["rir_seed"], rt60_s=params["rt60_s"], drr_db=params["drr_db"],
                                             predelay_s=params["predelay_s"], sample_rate=ctx.sample_rate)
            direct = as_3d(rir)[0].abs().amax(dim=1).argmax(dim=1)  # drawn on the host
            rir, rir_lengths = upload([rir, rir_lengths], wave.device)
            resolved = {}
        out, out_len = reverb(wave, lengths, rir.to(wave.dtype), rir_lengths, normalize=self.normalize,
                              direct=direct)
        return out, out_len, resolved

    def perception(self, params):
        B = params["apply"].shape[0]
        return severity(RETAINING, B), no_delta(B)

    def possible_tags(self):
        return {RETAINING}

    def annotate(self, entry):
        if self.bank is not None:
            entry["rir_name"] = self.bank.names[int(entry["rir_index"])]
            entry["rir_sha1"] = self.bank.hashes[int(entry["rir_index"])]
            entry["rir_bank"] = self.bank.fingerprint
        return entry

    def check_record(self, entry: dict) -> None:
        """Raise :class:`~gpuaug.banks.MissingBankItem` naming the recorded RIR unless the
        bank still holds it; a record of a bank RIR replayed without a bank fails too."""
        if "rir_sha1" not in entry and "rir_index" not in entry:
            return
        if self.bank is None:
            raise ValueError(f"replay: the record used the RIR {entry.get('rir_name')!r} from a bank, but this "
                             "Reverb has no bank (synthetic rooms)")
        self.bank.check_recorded(entry.get("rir_name"), entry.get("rir_sha1"), entry.get("rir_bank"), "RIR")

    def describe(self):
        if self.bank is None:
            return (f"Reverb(source=synthetic rooms (rt60_s={self.rt60}, drr_db={self.drr}, "
                    f"predelay_s={self.predelay}), p={self.p})")
        return f"Reverb(source={self.bank.describe()}, categories={self.categories}, p={self.p})"
