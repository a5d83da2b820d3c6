"""Banks for the command line: from folders when given, else the built-in synthetic ones."""
from __future__ import annotations

from pathlib import Path



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
    from ..data.layouts import banks_or_synthetic

    return banks_or_synthetic(sample_rate, noise_dir=args.noise_dir, rir_dir=args.rir_dir, insert_dir=args.insert_dir,
                              exclude_noise=args.exclude_noise)
