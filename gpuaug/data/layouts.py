"""Noise, RIR and insert-clip banks from folders in known layouts, mapped to the study's categories.

Every file is read once (any sample rate or channel count), down-mixed (RIRs: first
channel), resampled with julius to the bank's rate and kept in memory by
:class:`~gpuaug.banks.Bank`; nothing is read per batch.

Noise layouts (``layout=``):

* ``esc50``: ``audio/{fold}-{src}-{take}-{target}.wav`` (optionally ``meta/esc50.csv`` with
  ``filename``, ``target``, ``category`` columns). ESC-50's five groups of ten targets map to
  ``animal`` (0-9), ``natural`` (10-19, natural soundscapes & water), ``human`` (20-29,
  human non-speech), ``interior`` (30-39, interior/domestic), ``transport`` (40-49,
  exterior/urban).
* ``musan``: ``[musan/]{music,speech,noise}/...`` -> ``music``, ``babble``, ``noise``.
* ``prefix``: the file stem's part before the first ``_`` (``natural_rain.wav`` ->
  ``natural``), in any sub-folder.
* ``subfolder``: the first-level folder name (``natural/rain.wav`` -> ``natural``).

In ``prefix`` and ``subfolder`` layouts ``domestic`` is renamed ``interior`` (the study's
name for ESC-50's interior/domestic sounds); other names are kept.
"""
from __future__ import annotations

import csv
import math
import re
from pathlib import Path
from typing import Iterable, Sequence

import torch
from torch import Tensor

from ..audio_io import load_resampled
from ..banks import AUDIO_SUFFIXES, Bank

__all__ = ["NOISE_LAYOUTS", "ESC50_GROUPS", "MUSAN_CATEGORIES", "CATEGORY_ALIASES", "INSERT_CATEGORIES",
           "detect_noise_layout", "noise_bank_from_folder", "rir_bank_from_folder", "insert_bank_from_folder",
           "rir_trim_length", "trim_rir", "RIR_TRIM_MARGIN_S"]

NOISE_LAYOUTS = ("auto", "esc50", "musan", "prefix", "subfolder")
#: ESC-50 category of target ``t`` is ``ESC50_GROUPS[t // 10]``.
ESC50_GROUPS = ("animal", "natural", "human", "interior", "transport")
#: MUSAN folder -> category.
MUSAN_CATEGORIES = {"music": "music", "speech": "babble", "noise": "noise"}
#: Folder / prefix names renamed to the study's categories.
CATEGORY_ALIASES = {"domestic": "interior"}
#: Insert-clip categories (those :class:`~gpuaug.transforms.InsertClip` knows) and their aliases.
INSERT_CATEGORIES = ("filler", "laugh", "cry")
_INSERT_ALIASES = {"fillers": "filler", "laughs": "laugh", "laughter": "laugh", "cries": "cry", "crying": "cry"}
_ESC50_STEM = re.compile(r"^(\d+)-(\d+)-([A-Z]+)-(\d+)$")


def _audio_files(root: Path) -> list[Path]:
    if not root.is_dir():
        raise FileNotFoundError(f"folder not found: {root}")
    files = sorted(p for p in root.rglob("*")
                   if p.suffix.lower() in AUDIO_SUFFIXES and p.is_file() and not p.name.startswith("."))
    if not files:
        raise FileNotFoundError(f"no audio files ({', '.join(AUDIO_SUFFIXES)}) under {root}")
    return files


def _musan_base(root: Path) -> Path | None:
    base = root / "musan" if (root / "musan").is_dir() else root
    return base if any((base / d).is_dir() for d in MUSAN_CATEGORIES) else None


def _musan_folder(rel: Path) -> str | None:
    """The MUSAN folder (``music`` / ``speech`` / ``noise``) a relative path lies in, if any."""
    parts = rel.parts[1:] if rel.parts[0] == "musan" else rel.parts
    return parts[0] if len(parts) > 1 and parts[0] in MUSAN_CATEGORIES else None


def detect_noise_layout(root: str | Path) -> str:
    """The layout of a noise folder: ``esc50`` (every file named like ESC-50's), ``musan``
    (every file in ``[musan/]{music,speech,noise}/``), ``subfolder`` (every file inside a
    first-level folder), else ``prefix`` (every stem has a ``_``).

    Raises:
        FileNotFoundError: missing folder or no audio files. ValueError: no layout fits.
    """
    root = Path(root)
    files = _audio_files(root)
    if all(_ESC50_STEM.match(f.stem) for f in files):
        return "esc50"
    if all(_musan_folder(f.relative_to(root)) for f in files):
        return "musan"
    if all(len(f.relative_to(root).parts) > 1 for f in files):
        return "subfolder"
    if all("_" in f.stem for f in files):
        return "prefix"
    odd = [str(f.relative_to(root)) for f in files if len(f.relative_to(root).parts) == 1 and "_" not in f.stem]
    raise ValueError(f"cannot detect the layout of {root}: files such as {odd[:3]} are neither in a category "
                     "folder nor named '<category>_<name>'; pass layout= one of " + ", ".join(NOISE_LAYOUTS[1:]))


def _esc50(root: Path) -> list[tuple[Path, str, str]]:
    files = _audio_files(root)
    meta = {}
    for cand in (root / "meta" / "esc50.csv", root.parent / "meta" / "esc50.csv"):
        if cand.is_file():
            with cand.open(newline="", encoding="utf-8") as f:
                meta = {row["filename"]: row for row in csv.DictReader(f)}
            break
    out = []
    for f in files:
        m = _ESC50_STEM.match(f.stem)
        if not m:
            raise ValueError(f"{f} is not named like an ESC-50 clip ({{fold}}-{{src}}-{{take}}-{{target}}.wav)")
        row = meta.get(f.name)
        target = int(row["target"]) if row else int(m.group(4))
        if not 0 <= target < 10 * len(ESC50_GROUPS):
            raise ValueError(f"{f}: ESC-50 target {target} outside 0..49")
        name = f"{row['category']}-{f.stem}" if row and row.get("category") else f.stem
        out.append((f, ESC50_GROUPS[target // 10], name))
    return out


def _musan(root: Path) -> list[tuple[Path, str, str]]:
    base = _musan_base(root)
    if base is None:
        raise ValueError(f"{root} is not a MUSAN tree: expected [musan/]{{{','.join(MUSAN_CATEGORIES)}}}/ folders")
    out = []
    for folder, category in MUSAN_CATEGORIES.items():
        if (base / folder).is_dir():
            out += [(f, category, f.stem) for f in _audio_files(base / folder)]
    return out


def _by_name(root: Path, layout: str) -> list[tuple[Path, str, str]]:
    out = []
    for f in _audio_files(root):
        rel = f.relative_to(root)
        if layout == "subfolder":
            if len(rel.parts) < 2:
                raise ValueError(f"subfolder layout: {f} is not inside a category folder of {root}")
            name = rel.parts[0]
        else:
            if "_" not in f.stem:
                raise ValueError(f"prefix layout: {f} is not named '<category>_<name>'")
            name = f.stem.split("_")[0]
        out.append((f, CATEGORY_ALIASES.get(name, name), f.stem))
    return out


def _check_categories(what: str, asked: Iterable[str], available: Sequence[str], root: Path) -> list[str]:
    asked = [CATEGORY_ALIASES.get(c, c) for c in ([asked] if isinstance(asked, str) else asked)]
    unknown = [c for c in asked if c not in available]
    if unknown:
        raise ValueError(f"{what}: unknown categor{'y' if len(unknown) == 1 else 'ies'} {unknown} in {root}; "
                         f"available: {sorted(available)}")
    return asked


def _bank(entries: list[tuple[Path, str, str]], sample_rate: int, max_seconds: float | None,
          channel: int | None = None) -> Bank:
    clips = [load_resampled(f, sample_rate, channel=channel, max_seconds=max_seconds) for f, _, _ in entries]
    return Bank(clips, [c for _, c, _ in entries], sample_rate, [n for _, _, n in entries])


def noise_bank_from_folder(root: str | Path, sample_rate: int, layout: str = "auto", *,
                           categories: str | Sequence[str] | None = None,
                           exclude: str | Sequence[str] | None = None, max_seconds: float | None = None) -> Bank:
    """A noise :class:`~gpuaug.banks.Bank` from a folder in a known layout (module doc).

    Args:
        root: the folder (for ESC-50 the dataset folder holding ``audio/`` and ``meta/``,
            or ``audio/`` itself; for MUSAN the folder holding ``musan/``, or ``musan/`` itself).
        sample_rate: the bank's rate in Hz (files at other rates are resampled once).
        layout: one of :data:`NOISE_LAYOUTS`; ``auto`` uses :func:`detect_noise_layout`.
        categories: keep only these categories (after the mapping, e.g. ``"natural"``).
        exclude: drop these categories (the held-out noise types of a leave-one-noise-out
            split).
        max_seconds: keep only the first ``max_seconds`` seconds of each file (bounds the
            memory of long recordings; the bank pads all clips to the longest).

    Clip names are the file stems (ESC-50 with ``meta/esc50.csv``: ``{class}-{stem}``).

    Raises:
        FileNotFoundError: missing folder or no audio files. ValueError: unknown layout,
        a file the layout cannot map, a category in ``categories`` / ``exclude`` that the
        folder does not have (the message lists the available ones), or a selection
        that leaves no clip.
    """
    root = Path(root)
    if layout not in NOISE_LAYOUTS:
        raise ValueError(f"layout must be one of {NOISE_LAYOUTS}, got {layout!r}")
    if layout == "auto":
        layout = detect_noise_layout(root)
    if layout == "esc50":
        entries = _esc50(root / "audio" if (root / "audio").is_dir() else root)
    elif layout == "musan":
        entries = _musan(root)
    else:
        entries = _by_name(root, layout)
    available = sorted({c for _, c, _ in entries})
    keep = set(available)
    if categories is not None:
        keep = set(_check_categories("categories", categories, available, root))
    if exclude is not None:
        keep -= set(_check_categories("exclude", exclude, available, root))
    entries = [e for e in entries if e[1] in keep]
    if not entries:
        raise ValueError(f"the category selection leaves no noise in {root} (available: {available}, "
                         f"categories={categories}, exclude={exclude})")
    return _bank(entries, sample_rate, max_seconds)


def rir_bank_from_folder(root: str | Path, sample_rate: int, *, category: str = "room",
                         max_seconds: float | None = None, trim_db: float | None = 60.0) -> Bank:
    """A room-impulse-response bank from every audio file under ``root``.

    Multi-channel RIRs keep their first channel (channels of a binaural or array RIR have
    different direct-path delays, so their mean would comb-filter). All clips get
    ``category``; names are the file stems.

    Args:
        root: folder of RIR files (searched recursively).
        sample_rate: the bank's rate in Hz.
        category: the category name of every RIR.
        max_seconds: keep only the first ``max_seconds`` seconds of each RIR.
        trim_db: cut each RIR (after resampling and ``max_seconds``) where its energy decay
            has fallen ``trim_db`` dB (default 60, the RT60 criterion): the Schroeder backward
            integral ``E(t) = sum_{k >= t} h[k]^2`` is cut at the first ``t`` with
            ``E(t) < 10^(-trim_db / 10) * E(0)`` (the dropped tail holds less than that share of
            the energy), but never before the direct path (the first absolute maximum) plus
            5 ms (see :func:`trim_rir`). Measured RIRs end in seconds of noise floor the
            convolution would otherwise pay for (the FFT size follows the longest RIR in a
            batch). ``None`` keeps the files' full length.

    The bank holds the trimmed clips, so each item's identity (content hash,
    :attr:`~gpuaug.banks.Bank.hashes`, and the bank's fingerprint) is that of the
    *trimmed* RIR: a record made with one ``trim_db`` replays only on a bank built with the
    same one (another raises :class:`~gpuaug.banks.MissingBankItem`). The setting is kept as
    the bank's ``trim_db`` attribute and the untrimmed lengths as ``untrimmed_lengths``.
    """
    files = _audio_files(Path(root))
    clips = [load_resampled(f, sample_rate, channel=0, max_seconds=max_seconds) for f in files]
    full = [int(c.shape[-1]) for c in clips]
    if trim_db is not None:
        clips = [trim_rir(c, sample_rate, trim_db) for c in clips]
    bank = Bank(clips, [category] * len(files), sample_rate, [f.stem for f in files])
    bank.trim_db = None if trim_db is None else float(trim_db)
    bank.untrimmed_lengths = torch.tensor(full, dtype=torch.int64)
    return bank


#: Samples (in seconds) always kept after an RIR's direct path by :func:`trim_rir`.
RIR_TRIM_MARGIN_S = 0.005


def rir_trim_length(rir: Tensor, sample_rate: int, trim_db: float = 60.0) -> int:
    """Samples of a 1-D RIR to keep so that the dropped tail holds less than
    ``10^(-trim_db / 10)`` of its energy (Schroeder backward integral, float64), at least
    the direct path (first absolute maximum) + :data:`RIR_TRIM_MARGIN_S` (capped at the
    RIR's length)."""
    trim_db = float(trim_db)
    if not (trim_db > 0 and math.isfinite(trim_db)):
        raise ValueError(f"trim_db must be a finite number > 0 (or None), got {trim_db}")
    h = rir.detach().to("cpu", torch.float64).reshape(-1)
    n = h.shape[0]
    if n == 0:
        return 0
    e = h.square()
    # remaining energy E(t) = sum_{k >= t} e[k], from the back (flip + cumsum: exact order)
    remaining = torch.flip(torch.cumsum(torch.flip(e, [0]), 0), [0])
    total = float(remaining[0])
    if total <= 0:
        return n
    below = remaining < total * 10.0 ** (-trim_db / 10.0)
    cut = int(below.to(torch.int8).argmax()) if bool(below.any()) else n
    keep = int(h.abs().argmax()) + 1 + int(round(RIR_TRIM_MARGIN_S * sample_rate))
    return min(n, max(cut, keep))


def trim_rir(rir: Tensor, sample_rate: int, trim_db: float = 60.0) -> Tensor:
    """The first :func:`rir_trim_length` samples of a 1-D RIR (a copy, so the untrimmed
    tensor is not kept alive)."""
    return rir[..., :rir_trim_length(rir, sample_rate, trim_db)].clone()


def insert_bank_from_folder(root: str | Path, sample_rate: int, *, max_seconds: float | None = None) -> Bank:
    """An insert-clip bank (fillers, laughs, cries) from a folder.

    The category of a file is its first-level folder (``filler/uhm.wav``) or, for files
    directly in ``root``, its stem prefix (``laugh_01.wav``); plural / -ing forms
    (``fillers``, ``laughter``, ``crying`` ...) are accepted. Deeper folders name a speaker:
    ``filler/spk03/uhm.wav`` is a ``filler`` named ``spk03/uhm`` (others are named by stem).

    Args:
        root: the folder.
        sample_rate: the bank's rate in Hz.
        max_seconds: keep only the first ``max_seconds`` seconds of each clip.

    Raises:
        FileNotFoundError: missing folder or no audio files. ValueError: a file whose
        category is not one of :data:`INSERT_CATEGORIES` (the message names it).
    """
    root = Path(root)
    entries = []
    for f in _audio_files(root):
        rel = f.relative_to(root)
        raw = rel.parts[0] if len(rel.parts) > 1 else f.stem.split("_")[0]
        category = _INSERT_ALIASES.get(raw, raw)
        if category not in INSERT_CATEGORIES:
            raise ValueError(f"{f}: insert category {raw!r} is not one of {INSERT_CATEGORIES} "
                             "(use folders or '<category>_' prefixes)")
        name = "/".join(rel.parts[1:-1] + (f.stem,)) if len(rel.parts) > 2 else f.stem
        entries.append((f, category, name))
    return _bank(entries, sample_rate, max_seconds)


def banks_or_synthetic(sample_rate: int, *, noise_dir=None, rir_dir=None, insert_dir=None,
                       exclude_noise: Sequence[str] = ()) -> tuple[Bank, Bank, Bank]:
    """``(noise, rir, insert)`` banks at ``sample_rate``: each read from its folder when given
    (:func:`noise_bank_from_folder`, :func:`rir_bank_from_folder`,
    :func:`insert_bank_from_folder`), else the built-in synthetic one
    (:mod:`gpuaug.data.synthetic`); ``exclude_noise`` drops noise categories either way."""
    from .synthetic import synthetic_insert_bank, synthetic_noise_bank, synthetic_rir_bank

    exclude = list(exclude_noise)
    if noise_dir:
        noise = noise_bank_from_folder(noise_dir, sample_rate, exclude=exclude or None)
    else:
        noise = synthetic_noise_bank(sample_rate=sample_rate)
        noise = noise.exclude(exclude) if exclude else noise
    rir = rir_bank_from_folder(rir_dir, sample_rate) if rir_dir else synthetic_rir_bank(sample_rate=sample_rate)
    insert = insert_bank_from_folder(insert_dir, sample_rate) if insert_dir else \
        synthetic_insert_bank(sample_rate=sample_rate)
    return noise, rir, insert

