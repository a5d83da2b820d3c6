"""Command line: ``python -m gpuaug {demo, augment, policy, train}`` (also the ``gpuaug`` script)."""
from __future__ import annotations

import argparse
import sys

from .errors import CommandError, UsageError

__all__ = ["main", "CommandError", "UsageError"]


def main(argv=None) -> int:
    from . import augment, demo, policy, train

    parser = argparse.ArgumentParser(prog="gpuaug", description="GPU-batched perception-aware audio augmentation")
    sub = parser.add_subparsers(dest="command", required=True)
    commands = (
        (demo, "demo", "augment the built-in corpus with DataLoader workers; print a summary"),
        (augment, "augment", "augment files (or the built-in corpus) and write wavs + params.json"),
        (policy, "policy", "print the perception rules with their sources, and the study table"),
        (train, "train", "train and evaluate a SER model on a corpus with on-the-fly augmentation"),
    )
    for module, name, help_text in commands:
        p = sub.add_parser(name, help=help_text)
        module.add_arguments(p)
        p.set_defaults(func=module.run)
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except CommandError as e:  # user errors: one line on stderr, no traceback
        print(f"gpuaug {args.command}: error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print(f"gpuaug {args.command}: interrupted", file=sys.stderr)
        return 130
