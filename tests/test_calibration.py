"""The calibrated reuse benchmark's statistics, recomputed by hand from its per-pair records (issue 11)."""
from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from zest_core.studies.calibration import summarize_calibration


def by_hand_auc(related, null):
    """P(a related distance < a null distance), ties counting one half (Mann–Whitney)."""
    wins = sum((r < n) + 0.5 * (r == n) for r in related for n in null)
    return wins / (len(related) * len(null))


def records(rng):
    related, negatives = [], []
    for relation, shift in (("prune-20", 2.0), ("steal", 0.3)):
        for k in range(6):
            null = list(rng.normal(1.0, 0.1, size=4))
            distance = float(rng.normal(1.0 - 0.1 * shift, 0.1))
            verdict = "related" if distance < min(null) else "unrelated"
            related.append({"method": "zest-cosine", "relation": relation, "reference": f"p{k}", "suspect": f"c{k}",
                            "distance": distance, "null": ["u"] * 4, "null_distances": null, "verdict": verdict})
    for k in range(40):
        verdict = ("related", "unrelated", "inconclusive")[k % 7 == 0 and 0 or (2 if k % 11 == 0 else 1)]
        negatives.append({"method": "zest-cosine", "reference": "p", "suspect": f"s{k}",
                          "distance": float(rng.normal(1.0, 0.1)), "null": [], "null_distances": [], "verdict": verdict})
    return related, negatives


def test_auc_rates_and_intervals_agree_with_a_hand_count():
    related, negatives = records(np.random.default_rng(0))
    summary = summarize_calibration(["zest-cosine"], ["prune-20", "steal"], related, negatives, 0.05)["zest-cosine"]
    for relation in ("prune-20", "steal"):
        mine = [r for r in related if r["relation"] == relation]
        got = summary["relations"][relation]
        assert got["auc_matched"] == pytest.approx(
            by_hand_auc([r["distance"] for r in mine], [d for r in mine for d in r["null_distances"]]), abs=1e-12)
        assert got["true_positive"]["k"] == sum(r["verdict"] == "related" for r in mine)
        assert got["distance"]["mean"] == pytest.approx(np.mean([r["distance"] for r in mine]))
    decided = [r for r in negatives if r["verdict"] != "inconclusive"]
    k = sum(r["verdict"] == "related" for r in decided)
    fpr = summary["overall"]["false_positive"]
    assert (fpr["k"], fpr["n"]) == (k, len(decided))
    assert summary["overall"]["inconclusive_negatives"] == len(negatives) - len(decided)
    exact = stats.binomtest(k, len(decided)).proportion_ci(confidence_level=0.95, method="exact")
    assert fpr["ci95"] == pytest.approx([exact.low, exact.high], abs=1e-9)
    assert summary["overall"]["auc_pooled"] == pytest.approx(
        by_hand_auc([r["distance"] for r in related], [r["distance"] for r in negatives]), abs=1e-12)
