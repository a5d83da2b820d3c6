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
    p = sub.add_parser("demo", help="augment the built-in corpus with DataLoader workers; print a summary")
    demo.add_arguments(p)
    p.set_defaults(func=demo.run)
    p = sub.add_parser("augment", help="augment files (or the built-in corpus) and write wavs + params.json")
    augment.add_arguments(p)
    p.set_defaults(func=augment.run)
    p = sub.add_parser("policy", help="print the perception rules with their sources, and the study table")
    policy.add_arguments(p)
    p.set_defaults(func=policy.run)
    p = sub.add_parser("train", help="train and evaluate a SER model on a corpus with on-the-fly augmentation")
    train.add_arguments(p)
    p.set_defaults(func=train.run)
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except CommandError as e:  # user errors: one line on stderr, no traceback
        print(f"gpuaug {args.command}: error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print(f"gpuaug {args.command}: interrupted", file=sys.stderr)
        return 130
