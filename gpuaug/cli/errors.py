"""Errors a command raises for its user: ``gpuaug.cli.main`` prints them as one line on stderr.

* :class:`UsageError`: a bad argument (exit status 2, as argparse's own errors);
* :class:`CommandError`: the command could not do its work (unreadable input, ...; status 1).
"""
from __future__ import annotations


class CommandError(Exception):
    """The command failed for a reason the user can fix (exit status 1, no traceback)."""

    exit_code = 1


class UsageError(CommandError):
    """A bad command-line argument (exit status 2, no traceback)."""

    exit_code = 2
