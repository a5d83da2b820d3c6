"""Banks for the command line: from folders when given, else the built-in synthetic ones."""
from __future__ import annotations

from pathlib import Path

from ..data.synthetic import synthetic_insert_bank, synthetic_noise_bank, synthetic_rir_bank


def add_bank_arguments(parser) -> None:
    parser.add_argument("--noise-dir", help="noise folder (ESC-50, MUSAN, prefix or subfolder layout)")
    parser.add_argument("--rir-dir", help="room impulse response folder")
    parser.add_argument("--insert-dir", help="insert clips folder (filler / laugh / cry)")
    parser.add_argument("--exclude-noise", nargs="*", default=(), help="noise categories to hold out")


def check_bank_arguments(args) -> str | None:
    """The first problem with the ``--*-dir`` arguments (a message), or ``None``; checks only
    that each given folder exists, so that a typo fails before any work."""
    for flag, value in (("--noise-dir", args.noise_dir), ("--rir-dir", args.rir_dir), ("--insert-dir", args.insert_dir)):
        if value is not None and not Path(value).is_dir():
            return f"{flag} {value}: no such folder"
    return None


def load_banks(args, sample_rate: int):
    """``(noise, rir, insert)`` banks from ``--*-dir`` arguments or the synthetic defaults."""
    from ..data.layouts import insert_bank_from_folder, noise_bank_from_folder, rir_bank_from_folder

    if args.noise_dir:
        noise = noise_bank_from_folder(args.noise_dir, sample_rate, exclude=list(args.exclude_noise) or None)
    else:
        noise = synthetic_noise_bank(sample_rate=sample_rate)
        if args.exclude_noise:
            noise = noise.exclude(list(args.exclude_noise))
    rir = rir_bank_from_folder(args.rir_dir, sample_rate) if args.rir_dir else synthetic_rir_bank(sample_rate=sample_rate)
    insert = insert_bank_from_folder(args.insert_dir, sample_rate) if args.insert_dir else synthetic_insert_bank(sample_rate=sample_rate)
    return noise, rir, insert
