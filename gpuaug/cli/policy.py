"""``python -m gpuaug policy``: the perception rules with their sources, and the study table."""
from __future__ import annotations

import json

from ..policy.evaluate import columns
from ..policy.rules import NOISE_LEVEL_ROWS, RULES
from ..policy.table import DELTA_DISPUTES, study_rows

__all__ = ["add_arguments", "run", "rule_rows"]


def add_arguments(p) -> None:
    p.add_argument("--transform", help="only the rules of this transform (e.g. add_noise)")
    p.add_argument("--json", action="store_true", help="print the rules as JSON (one object per rule)")


def rule_rows(transform: str | None = None) -> list[dict]:
    """The rules as plain dicts, in evaluation order (what ``policy`` prints)."""
    col = columns()
    out = []
    for i, r in enumerate(RULES):
        if transform is not None and r.transform != transform:
            continue
        flip = float(col.flip_rate[i])
        out.append({"order": i, "transform": r.transform, "rule": r.id, "tag": r.tag, "family": r.family,
                    "evidence": r.evidence, "row": None if r.row is None else ":".join(x for x in r.row if x),
                    "flip_rate": None if flip != flip else flip,
                    "delta_valence_activation": None if r.row is None or col.delta[i].isnan().any()
                    else [float(x) for x in col.delta[i]], "source": r.source})
    return out


def run(args) -> int:
    rows = rule_rows(args.transform)
    if args.transform is not None and not rows:
        from .errors import UsageError

        raise UsageError(f"no rules for transform {args.transform!r}; transforms: "
                         f"{sorted({r.transform for r in RULES})}")
    if args.json:
        print(json.dumps(rows, indent=1, ensure_ascii=False))
        return 0
    print("Perception rules (gpuaug/policy/rules.py), first match per clip decides; no match: unverified.")
    for r in rows:
        extra = f"  row {r['row']} flip {r['flip_rate']:.2f}" if r["row"] else ""
        if r["delta_valence_activation"]:
            extra += f" delta(V, A) {r['delta_valence_activation']}"
        print(f"{r['order']:>3} {r['tag']:<10} [{r['evidence']}] {r['rule']}{extra}")
        print(f"      family {r['family']}; source: {r['source']}")
    if args.transform is None:
        print("\nNoise-level rows of the table read as SNR:",
              ", ".join(f"{v} = {k:g} dB" for k, v in NOISE_LEVEL_ROWS.items()))
        print("Disputed delta directions (relabel masks them by default):")
        for (aug, var), why in DELTA_DISPUTES.items():
            print(f"  {aug}{':' + var if var else ''}: {why}")
        print(f"\nStudy table (perception_study.csv): {len(study_rows())} rows")
        print(f"{'augmentation':<20}{'variant':<18}{'tag':<11}{'flip':>6}  source")
        for s in study_rows():
            print(f"{s.augmentation:<20}{s.variant:<18}{s.perception:<11}{s.flip_rate:6.2f}  {s.source}")
    return 0
