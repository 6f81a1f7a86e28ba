"""zest_core.studies.reuse_report: the reuse benchmark's JSON report, read back and flattened into rows."""
import json

import pytest

from zest_core.studies import ReuseResult, summarize_reuse
from zest_core.studies.reuse_report import read_reuse_report, reuse_rows


def test_reuse_rows_read_the_benchmark_report(tmp_path):
    records = [
        {"method": "zest-cosine", "relation": "prune-50", "score": 0.1, "modeldiff_rule": True, "zest_rule": True,
         "relative_distance": 0.2},
        {"method": "zest-cosine", "relation": "prune-50", "score": 0.3, "modeldiff_rule": False, "zest_rule": True,
         "relative_distance": 0.6},
    ]
    negatives = [{"method": "zest-cosine", "relation": "unrelated", "score": 0.5, "modeldiff_rule": False,
                  "zest_rule": False, "relative_distance": 1.0}]
    summary = summarize_reuse(["zest-cosine"], ["prune-50"], records, negatives)
    result = ReuseResult(("zest-cosine",), ("prune-50",), tuple(records), tuple(negatives), {}, summary, {})
    path = tmp_path / "report.json"
    path.write_text(json.dumps(result.to_dict()))
    rows = reuse_rows(read_reuse_report(path))
    first = rows[0]
    assert (first["relation"], first["method"], first["pairs"]) == ("prune-50", "zest-cosine", 2)
    assert first["mean"] == pytest.approx(0.2) and first["zest_accuracy"] == 1.0 and first["modeldiff_accuracy"] == 0.5
    assert rows[1]["relation"] == "all related pairs" and rows[1]["auc"] == pytest.approx(1.0)
    assert rows[2]["relation"].startswith("unrelated") and rows[2]["zest_accuracy"] == 0.0
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ValueError, match="expected a reuse report in JSON, got unreadable JSON"):
        read_reuse_report(tmp_path / "bad.json")
    (tmp_path / "other.json").write_text("[1, 2]")
    with pytest.raises(ValueError, match="expected a reuse benchmark report .*, got JSON without methods"):
        read_reuse_report(tmp_path / "other.json")
    with pytest.raises(ValueError, match="expected a reuse report file, got no such file"):
        read_reuse_report(tmp_path / "missing.json")
