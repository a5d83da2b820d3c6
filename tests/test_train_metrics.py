"""UAR / WA / macro-F1 / confusion against hand-computed values; mean_std; paired t-tests."""
from __future__ import annotations

import math

import pytest
import torch

from gpuaug.train.metrics import confusion_matrix, macro_f1, mean_std, scores, scores_from_confusion, uar, wa
from gpuaug.train.stats import paired_ttests


def _from_confusion(c):
    """(y_true, y_pred) lists realising confusion matrix ``c`` (rows truth)."""
    y_true, y_pred = [], []
    for i, row in enumerate(c):
        for j, n in enumerate(row):
            y_true += [i] * n
            y_pred += [j] * n
    return y_true, y_pred


C3 = [[5, 2, 3],
      [1, 6, 1],
      [0, 2, 8]]


def test_three_class_scores_by_hand():
    y_true, y_pred = _from_confusion(C3)
    assert confusion_matrix(y_true, y_pred, 3).tolist() == C3
    # recalls 5/10, 6/8, 8/10; accuracy 19/28; F1 = 2tp / (true + predicted) = 10/16, 12/18, 16/22
    assert uar(y_true, y_pred, 3) == pytest.approx((0.5 + 0.75 + 0.8) / 3)
    assert wa(y_true, y_pred, 3) == pytest.approx(19 / 28)
    assert macro_f1(y_true, y_pred, 3) == pytest.approx((5 / 8 + 2 / 3 + 8 / 11) / 3)
    s = scores(torch.tensor(y_true), torch.tensor(y_pred), 3)
    assert s["confusion"].dtype == torch.int64 and s["confusion"].tolist() == C3
    assert {k: v for k, v in s.items() if k != "confusion"} == {
        "uar": pytest.approx(0.6833333333), "wa": pytest.approx(0.6785714286), "macro_f1": pytest.approx(0.6729797980)}
    from_c = scores_from_confusion(C3)
    assert from_c["confusion"].tolist() == C3
    assert all(from_c[k] == s[k] for k in ("uar", "wa", "macro_f1"))


C4 = [[3, 0, 0, 1],   # class 3 predicted once, never true; class 2 neither true nor predicted
      [1, 2, 0, 0],
      [0, 0, 0, 0],
      [0, 0, 0, 0]]


@pytest.mark.filterwarnings("ignore:y_pred contains classes not in y_true")
def test_absent_classes_conventions():
    y_true, y_pred = _from_confusion(C4)
    # UAR over classes present in y_true (0, 1): (3/4 + 2/3) / 2
    assert uar(y_true, y_pred, 4) == pytest.approx(17 / 24)
    assert wa(y_true, y_pred, 4) == pytest.approx(5 / 7)
    # macro-F1 over classes in y_true or y_pred (0, 1, 3): (6/8 + 4/5 + 0) / 3; class 2 left out
    assert macro_f1(y_true, y_pred, 4) == pytest.approx((0.75 + 0.8 + 0.0) / 3)
    skm = pytest.importorskip("sklearn.metrics")
    assert macro_f1(y_true, y_pred, 4) == pytest.approx(skm.f1_score(y_true, y_pred, average="macro"))
    assert uar(y_true, y_pred, 4) == pytest.approx(skm.balanced_accuracy_score(y_true, y_pred))
    assert skm.confusion_matrix(y_true, y_pred, labels=range(4)).tolist() == C4


def test_perfect_and_all_wrong_and_errors():
    assert scores([0, 1, 2], [0, 1, 2], 3)["uar"] == 1.0
    s = scores([0, 0, 1, 1], [1, 1, 0, 0], 2)
    assert s["uar"] == 0.0 and s["wa"] == 0.0 and s["macro_f1"] == 0.0
    with pytest.raises(ValueError, match="lie in"):
        confusion_matrix([0, 3], [0, 1], 3)
    with pytest.raises(ValueError, match="labels"):
        confusion_matrix([0, 1], [0], 3)
    with pytest.raises(ValueError, match="no labels"):
        scores([], [], 3)


def test_mean_std_sample_std():
    m, s = mean_std([0.6, 0.7, 0.8])
    assert m == pytest.approx(0.7) and s == pytest.approx(0.1)
    m, s = mean_std([1, 2, 3, 4])
    assert m == 2.5 and s == pytest.approx(math.sqrt(5 / 3))  # ddof=1: 5 / (4 - 1)
    assert mean_std([0.42]) == (0.42, 0.0)
    with pytest.raises(ValueError):
        mean_std([])


SCORES = {"none": [0.59, 0.60, 0.57, 0.62, 0.58],
          "noise": [0.61, 0.64, 0.58, 0.66, 0.60],
          "reverb": [0.62, 0.61, 0.60, 0.65, 0.63]}


def test_paired_ttests_all_pairs_match_scipy_with_bonferroni():
    from scipy import stats as sps

    res = paired_ttests(SCORES)
    assert [(r["a"], r["b"]) for r in res] == [("none", "noise"), ("none", "reverb"), ("noise", "reverb")]
    for r in res:
        ref = sps.ttest_rel(SCORES[r["a"]], SCORES[r["b"]])
        assert r["t"] == pytest.approx(ref.statistic) and r["p"] == pytest.approx(ref.pvalue)
        assert r["p_bonferroni"] == pytest.approx(min(1.0, 3 * ref.pvalue)) and r["m"] == 3 and r["n"] == 5
        assert r["significant"] == (min(1.0, 3 * ref.pvalue) < 0.05)
    # by hand: noise - none = [.02, .04, .01, .04, .02], mean .026, sd sqrt(720e-6 / 4), t = .026 / (sd / sqrt 5) = 13/3
    r = res[0]
    assert r["mean_diff"] == pytest.approx(-0.026) and r["t"] == pytest.approx(-13 / 3)
    assert r["p"] == pytest.approx(2 * sps.t.sf(13 / 3, df=4))


def test_paired_ttests_against_baseline():
    from scipy import stats as sps

    res = paired_ttests(SCORES, baseline="none", alpha=0.1)
    assert [(r["a"], r["b"]) for r in res] == [("noise", "none"), ("reverb", "none")]
    p = sps.ttest_rel(SCORES["noise"], SCORES["none"]).pvalue
    assert res[0]["mean_diff"] == pytest.approx(0.026) and res[0]["t"] == pytest.approx(13 / 3)
    assert res[0]["p_bonferroni"] == pytest.approx(min(1.0, 2 * p)) and res[0]["m"] == 2
    assert res[0]["significant"] == (2 * p < 0.1)


def test_paired_ttests_errors_and_degenerate():
    with pytest.raises(ValueError, match="same number"):
        paired_ttests({"a": [1, 2, 3], "b": [1, 2]})
    with pytest.raises(ValueError, match="at least 2"):
        paired_ttests({"a": [1.0], "b": [2.0]})
    with pytest.raises(ValueError, match="two conditions"):
        paired_ttests({"a": [1.0, 2.0]})
    with pytest.raises(ValueError, match="baseline"):
        paired_ttests(SCORES, baseline="speed")
    r = paired_ttests({"a": [0.5, 0.6, 0.7], "b": [0.5, 0.6, 0.7]})[0]
    assert math.isnan(r["p"]) and math.isnan(r["p_bonferroni"]) and r["significant"] is False
