"""Markdown summary of a ``bench.py`` result: gpuaug's throughput and its ratio to each peer.

    python benchmarks/ratios.py benchmarks/results/cpu-2core-bench.json

One table per pipeline: a row per batch shape with ``gpuaug[auto]`` clips/s and x realtime,
then ``gpuaug[auto]`` clips/s divided by each other row's clips/s (the ``gpuaug_speedup`` the
JSON stores; > 1 means gpuaug is faster), ``n/a`` where that row did not run. A final line per
pipeline gives each ratio's range over the shapes. Where the JSON has CPU times (bench.py
since CPU-time measurement: ``cpu_ms_per_clip``, ``gpuaug_cpu_speedup``), gpuaug[auto]'s CPU
ms per clip is a column and each cell reads ``<wall ratio>x (cpu <CPU ratio>x)``, the CPU ratio
being the row's CPU time per clip over gpuaug[auto]'s (> 1: gpuaug uses less CPU; ``cpu -``
where the row has no CPU time, e.g. torch_audiomentations' subprocess). Older JSON files
give the wall ratios only. Reads the JSON only; measures nothing.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

REFERENCE = "gpuaug[auto]"


def tables(result: dict) -> str:
    """The markdown tables of one ``bench.py`` JSON (``measurements`` rows)."""
    rows = [r for r in result["measurements"] if r.get("status") == "ok"]
    order = ("audiomentations", "torch_audiomentations", "gpuaug[torch]", "gpuaug[loader]", "offline")
    peers = sorted({r["peer"] for r in rows if r["peer"] != REFERENCE},
                   key=lambda p: (next(i for i, o in enumerate(order) if p.startswith(o)), p))
    out = []
    for pipeline in dict.fromkeys(r["pipeline"] for r in rows):
        mine = [r for r in rows if r["pipeline"] == pipeline]
        shapes = sorted({(r["batch_size"], r["seconds"]) for r in mine}, key=lambda s: (s[1], s[0]))
        cols = [p for p in peers if any(r["peer"] == p for r in mine)]
        has_cpu = any(r.get("cpu_ms_per_clip") is not None for r in mine)
        what = "gpuaug[auto] clips/s / peer clips/s" + ("; cpu: peer CPU ms per clip / gpuaug[auto]'s" if has_cpu else "")
        out.append(f"\n**{pipeline}** ({what})\n")
        out.append("| B x s | gpuaug[auto] clips/s | x realtime | " + ("cpu ms/clip | " if has_cpu else "")
                   + " | ".join(cols) + " |")
        out.append("|---" * (3 + has_cpu + len(cols)) + "|")
        ranges: dict[str, list[float]] = {c: [] for c in cols}
        cpu_ranges: dict[str, list[float]] = {c: [] for c in cols}
        for b, s in shapes:
            ref = next((r for r in mine if r["peer"] == REFERENCE and (r["batch_size"], r["seconds"]) == (b, s)), None)
            if ref is None:
                continue
            cells = []
            for c in cols:
                row = next((r for r in mine if r["peer"] == c and (r["batch_size"], r["seconds"]) == (b, s)), None)
                if row is None or not row.get("gpuaug_speedup"):
                    cells.append("n/a")
                else:
                    ranges[c].append(row["gpuaug_speedup"])
                    cell = f"{row['gpuaug_speedup']:.2f}x"
                    if has_cpu:
                        cpu = row.get("gpuaug_cpu_speedup")
                        if cpu:
                            cpu_ranges[c].append(cpu)
                        cell += f" (cpu {cpu:.2f}x)" if cpu else " (cpu -)"
                    cells.append(cell)
            head = f"| {b} x {s:g} | {ref['clips_per_s']:.1f} | {ref['x_realtime']:.0f} | "
            if has_cpu:
                ms = ref.get("cpu_ms_per_clip")
                head += (f"{ms:.2f}" if ms is not None else "-") + " | "
            out.append(head + " | ".join(cells) + " |")
        spans = [f"{c} {min(v):.2f}-{max(v):.2f}x" for c, v in ranges.items() if v]
        out.append("\nRange: " + "; ".join(spans))
        cpu_spans = [f"{c} {min(v):.2f}-{max(v):.2f}x" for c, v in cpu_ranges.items() if v]
        if cpu_spans:
            out.append("\nCPU-time range: " + "; ".join(cpu_spans))
    return "\n".join(out)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("result", type=Path, help="a JSON written by benchmarks/bench.py")
    args = p.parse_args(argv)
    result = json.loads(args.result.read_text())
    print(f"{result['machine'].get('device_name') or result['machine'].get('device')}: `{result['command']}`")
    print(tables(result))


if __name__ == "__main__":
    main()
