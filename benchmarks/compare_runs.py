"""Compare two training runs (``gpuaug train --out A`` and ``--out B``) per test condition.

    python benchmarks/compare_runs.py RUN_A RUN_B [--out benchmarks/results/x.json]

Pairs the per-fold UARs of the (repetition, fold) pairs both runs have, for every test
condition both have, and runs paired t-tests (B against A) with a Bonferroni correction over
the conditions (:func:`gpuaug.train.stats.paired_ttests`). Prints a table and writes the
pooled metrics of both runs, the pairs and the tests as JSON.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path


def fold_uars(run: Path) -> dict[tuple[int, str], dict[str, float]]:
    """``{(repeat, fold): {condition: uar}}`` of a finished run."""
    results = json.loads((run / "results.json").read_text())
    return {(f["repeat"], f["fold"]): {c: v["uar"] for c, v in f["conditions"].items()} for f in results["folds"]}


def compare(a: Path, b: Path) -> dict:
    from gpuaug.train.stats import paired_ttests

    ua, ub = fold_uars(a), fold_uars(b)
    pairs = sorted(set(ua) & set(ub))
    conditions = [c for c in ua[pairs[0]] if c in ub[pairs[0]]]
    tests = []
    for cond in conditions:
        t = paired_ttests({"A": [ua[p][cond] for p in pairs], "B": [ub[p][cond] for p in pairs]}, baseline="A")[0]
        tests.append({"condition": cond, **t})
    m = len(tests)
    for t in tests:  # Bonferroni over the conditions (each test above was one comparison)
        t["p_bonferroni"] = min(1.0, t["p"] * m) if t["p"] == t["p"] else t["p"]
        t["significant"] = bool(t["p_bonferroni"] < 0.05)
        t["m"] = m
    pooled = {name: json.loads((run / "results.json").read_text())["pooled"] for name, run in (("A", a), ("B", b))}
    return {"A": str(a), "B": str(b), "pairs": [list(p) for p in pairs], "tests": tests,
            "pooled_uar": {name: {c: v["uar"] for c, v in p.items()} for name, p in pooled.items()}}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("a", type=Path)
    p.add_argument("b", type=Path)
    p.add_argument("--out", type=Path)
    args = p.parse_args(argv)
    result = compare(args.a, args.b)
    print(f"A = {args.a}, B = {args.b}: {len(result['pairs'])} (repetition, fold) pairs")
    print(f"{'test condition':<22} {'UAR A':>14} {'UAR B':>14} {'B - A':>7} {'p':>9} {'p Bonf.':>9}")
    for t in result["tests"]:
        c = t["condition"]
        a, b = result["pooled_uar"]["A"][c], result["pooled_uar"]["B"][c]
        print(f"{c:<22} {a['mean']:.3f} +- {a['std']:.3f} {b['mean']:.3f} +- {b['std']:.3f} {t['mean_diff']:+.3f} "
              f"{t['p']:9.2g} {t['p_bonferroni']:9.2g}{' *' if t['significant'] else ''}")
    if args.out:
        args.out.write_text(json.dumps(result, indent=1))
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
