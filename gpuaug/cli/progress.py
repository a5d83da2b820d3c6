"""A dependency-free progress bar on stderr (a line per update when stderr is not a terminal)."""
from __future__ import annotations

import sys
import time


def progress(iterable, total: int | None = None, desc: str = "", every_s: float = 0.5):
    """Yield from ``iterable`` while showing ``desc  done/total  rate``."""
    total = total if total is not None else (len(iterable) if hasattr(iterable, "__len__") else None)
    tty = sys.stderr.isatty()
    start = last = time.perf_counter()
    done = 0
    for x in iterable:
        yield x
        done += 1
        now = time.perf_counter()
        if now - last >= every_s or done == total:
            last = now
            of = f"/{total}" if total else ""
            bar = ""
            if total:
                filled = int(24 * done / total)
                bar = "[" + "#" * filled + "." * (24 - filled) + "] "
            line = f"{desc} {bar}{done}{of} ({done / max(now - start, 1e-9):.1f}/s)"
            sys.stderr.write(("\r" + line) if tty else (line + "\n"))
            sys.stderr.flush()
    if tty:
        sys.stderr.write("\n")
