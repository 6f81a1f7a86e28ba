"""zest_core.studies.reuse_report: the calibrated reuse benchmark's JSON report, read back and flattened into rows."""
import json

import pytest

from zest_core.studies import OutdatedReuseReportError, ReuseResult, summarize_reuse
from zest_core.studies.calibration import CalibrationResult, summarize_calibration
from zest_core.studies.reuse_report import read_reuse_report, reuse_overall_rows, reuse_rows


def _record(method, reference, suspect, distance, null, verdict, p_value, relation=None):
    record = {"method": method, "reference": reference, "suspect": suspect, "distance": distance,
              "null": [f"u{k}" for k in range(len(null))], "null_distances": null, "p_value": p_value,
              "rank_p_value": None, "verdict": verdict}
    return record if relation is None else {"relation": relation, **record}


def calibrated_report() -> dict:
    """A calibrated report of one method and one relation, its summary computed by zest_core."""
    null = [0.4, 0.5, 0.6]
    related = [_record("zest-cosine", "p", "c1", 0.1, null, "related", 0.001, "prune-50"),
               _record("zest-cosine", "p", "c2", 0.45, null, "unrelated", 0.4, "prune-50")]
    negatives = [_record("zest-cosine", "p", f"n{k}", d, null, v, p)
                 for k, (d, v, p) in enumerate([(0.5, "unrelated", 0.5), (0.2, "related", 0.01),
                                                (0.55, "unrelated", 0.6), (0.6, "unrelated", 0.7)])]
    summary = summarize_calibration(["zest-cosine"], ["prune-50"], related, negatives, 0.05)
    return CalibrationResult(("zest-cosine",), ("prune-50",), 0.05, tuple(related), tuple(negatives), summary).to_dict()


def test_reuse_rows_read_the_calibrated_report(tmp_path):
    path = tmp_path / "reuse.json"
    path.write_text(json.dumps(calibrated_report()))
    report = read_reuse_report(path)
    (row,) = reuse_rows(report)
    assert (row["relation"], row["method"], row["pairs"], row["null models"]) == ("prune-50", "zest-cosine", 2, "3")
    assert row["distance mean"] == pytest.approx(0.275) and row["null distance mean"] == pytest.approx(0.5)
    # By hand: 0.1 is below all six null distances, 0.45 below four of them: (6 + 4) / 12.
    assert row["matched AUC"] == pytest.approx(10 / 12)
    assert row["TPR at α"] == 0.5 and row["TPR (k/n)"] == "1/2" and row["inconclusive"] == 0
    (overall,) = reuse_overall_rows(report)
    assert overall["FPR at α"] == 0.25 and overall["FPR (k/n)"] == "1/4"
    assert 0 < overall["FPR 95% low"] < 0.25 < overall["FPR 95% high"] < 1
    assert overall["TPR (k/n)"] == "1/2"


def test_outdated_and_broken_reports_are_refused_with_their_reason(tmp_path):
    records = [{"method": "zest-cosine", "relation": "prune-50", "score": 0.1, "modeldiff_rule": True,
                "zest_rule": True, "relative_distance": 0.2}]
    summary = summarize_reuse(["zest-cosine"], ["prune-50"], records, [])
    old = ReuseResult(("zest-cosine",), ("prune-50",), tuple(records), (), {}, summary, {})
    (tmp_path / "old.json").write_text(json.dumps(old.to_dict()))
    with pytest.raises(OutdatedReuseReportError, match="earlier benchmark .*regenerate it with `zest bench reuse`"):
        read_reuse_report(tmp_path / "old.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ValueError, match="expected a reuse report in JSON, got unreadable JSON"):
        read_reuse_report(tmp_path / "bad.json")
    (tmp_path / "other.json").write_text("[1, 2]")
    with pytest.raises(ValueError, match="expected a reuse benchmark report .*, got list"):
        read_reuse_report(tmp_path / "other.json")
    (tmp_path / "partial.json").write_text(json.dumps({"methods": []}))
    with pytest.raises(ValueError, match="got JSON without relations, alpha"):
        read_reuse_report(tmp_path / "partial.json")
    truncated = calibrated_report()
    del truncated["summary"]["zest-cosine"]["relations"]["prune-50"]
    (tmp_path / "truncated.json").write_text(json.dumps(truncated))
    with pytest.raises(ValueError, match="expected a summary of every method and relation"):
        read_reuse_report(tmp_path / "truncated.json")
    with pytest.raises(ValueError, match="expected a reuse report file, got no such file"):
        read_reuse_report(tmp_path / "missing.json")
