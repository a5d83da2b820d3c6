"""Significance tests between training conditions (augmentation policies) over folds / seeds.

:func:`paired_ttests` pairs the per-fold (or per-seed) scores of two conditions, e.g. the UAR
of each of the 5 IEMOCAP sessions under "no augmentation" and under "noise + reverb", and
runs a two-sided paired t-test (``scipy.stats.ttest_rel``) with a Bonferroni correction over
all the comparisons made in the call.
"""
from __future__ import annotations

import itertools
import math
from typing import Mapping, Sequence

__all__ = ["paired_ttests"]


def paired_ttests(scores: Mapping[str, Sequence[float]], baseline: str | None = None,
                  alpha: float = 0.05) -> list[dict]:
    """Paired t-tests between conditions with Bonferroni-corrected p-values.

    Args:
        scores: condition name -> scores, one per fold / seed, in the same fold order for
            every condition (pairing is by position).
        baseline: compare every other condition with this one (``m = len(scores) - 1``
            tests); None: every unordered pair in ``scores``' order (``m = K (K - 1) / 2``).
        alpha: family-wise significance level.

    Returns:
        One dict per comparison, in order: ``a``, ``b`` (condition names; with a baseline,
        ``b`` is the baseline), ``n`` (pairs), ``mean_diff`` (mean of ``a - b``), ``t``, ``p``
        (two-sided, uncorrected, scipy's), ``p_bonferroni`` (``min(1, p * m)``), ``m``,
        ``significant`` (``p_bonferroni < alpha``). When every difference is equal (zero
        variance: scipy returns NaN for identical conditions), ``p``/``t`` are NaN and
        ``significant`` is False.

    Raises:
        ValueError: fewer than two conditions, an unknown baseline, unequal lengths, fewer
            than 2 pairs, non-finite scores, or ``alpha`` outside ``(0, 1)``.
    """
    from scipy import stats as sps  # lazy: scipy only when testing

    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must lie in (0, 1), got {alpha}")
    data = {str(k): [float(x) for x in v] for k, v in scores.items()}
    if len(data) < 2:
        raise ValueError(f"need at least two conditions, got {list(data)}")
    lengths = {k: len(v) for k, v in data.items()}
    if len(set(lengths.values())) != 1:
        raise ValueError(f"paired tests need the same number of scores per condition, got {lengths}")
    n = next(iter(lengths.values()))
    if n < 2:
        raise ValueError(f"paired t-tests need at least 2 paired scores per condition, got {n}")
    bad = [k for k, v in data.items() if not all(math.isfinite(x) for x in v)]
    if bad:
        raise ValueError(f"non-finite scores in {bad}")
    if baseline is not None:
        if baseline not in data:
            raise ValueError(f"baseline {baseline!r} is not a condition: {list(data)}")
        pairs = [(k, baseline) for k in data if k != baseline]
    else:
        pairs = list(itertools.combinations(data, 2))
    m = len(pairs)
    out = []
    for a, b in pairs:
        res = sps.ttest_rel(data[a], data[b])
        t, p = float(res.statistic), float(res.pvalue)
        p_corr = float("nan") if math.isnan(p) else min(1.0, p * m)
        out.append({"a": a, "b": b, "n": n, "mean_diff": math.fsum(x - y for x, y in zip(data[a], data[b])) / n,
                    "t": t, "p": p, "p_bonferroni": p_corr, "m": m,
                    "significant": bool(not math.isnan(p_corr) and p_corr < alpha)})
    return out
