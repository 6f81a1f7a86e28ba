"""The reuse benchmark's JSON report, read back: checked on loading, and flattened into table rows.

References
----------
.. [1] Li, Zhang, Liu, Yang & Liu, "ModelDiff: Testing-Based DNN Similarity Comparison for Model
   Reuse Detection", ISSTA 2021.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Mapping

from ..errors import ZestError

REPORT_KEYS = ("methods", "relations", "summary")


def read_reuse_report(path: str | os.PathLike) -> dict[str, Any]:
    """A reuse benchmark report (Zest vs ModelDiff [1]_), as :func:`zest_core.studies.write_reuse_report` writes it.

    Parameters
    ----------
    path : str or path-like
        The report's JSON file (``ReuseResult.to_dict()``).

    Returns
    -------
    dict
        The report, with at least "methods", "relations" and "summary".

    Raises
    ------
    ZestError
        If the file is missing, is not JSON, or lacks the report's entries.
    """
    path = Path(path)
    if not path.is_file():
        raise ZestError(f"{path}: expected a reuse report file, got no such file")
    try:
        report = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ZestError(
            f"{path}: expected a reuse report in JSON, got unreadable JSON ({type(error).__name__}: {error})"
        ) from error
    missing = [k for k in REPORT_KEYS if not isinstance(report, Mapping) or k not in report]
    if missing:
        raise ZestError(
            f"{path}: expected a reuse benchmark report (with {', '.join(REPORT_KEYS)}), "
            f"got JSON without {', '.join(missing)}"
        )
    return report


def reuse_rows(report: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One row per (relation, method) of a reuse report, plus each method's overall and unrelated rows.

    Parameters
    ----------
    report : mapping
        As :func:`read_reuse_report` returns it.

    Returns
    -------
    list of dict
        Keys: relation, method, kind ("distance" or "similarity"), pairs, mean, std, zest_accuracy
        (relative distance < 1), modeldiff_accuracy (closer than every unrelated model), auc; for
        the "unrelated pairs" rows the accuracies are false-positive rates.

    Raises
    ------
    ZestError
        If the report's summary lacks a method or relation it lists.
    """
    rows = []
    try:
        for method in report["methods"]:
            rows.extend(_method_rows(method, report["summary"][method], report["relations"]))
    except (KeyError, TypeError, AttributeError) as error:
        raise ZestError(
            f"reuse report: expected a summary of every method and relation it lists, got {error!r} missing"
        ) from error
    return rows


def _method_rows(method: str, summary: Mapping[str, Any], relations: list[str]) -> list[dict[str, Any]]:
    """One method's rows: one per relation, then all related pairs, then the unrelated pairs."""
    kind = summary.get("kind")
    rows = []
    for relation in relations:
        stats = summary["relations"][relation]
        rows.append({
            "relation": relation, "method": method, "kind": kind, "pairs": stats.get("n"),
            "mean": stats.get("mean"), "std": stats.get("std"),
            "zest_accuracy": stats.get("zest_accuracy"), "modeldiff_accuracy": stats.get("modeldiff_accuracy"),
            "auc": stats.get("auc"),
        })
    overall = summary["overall"]
    rows.append({
        "relation": "all related pairs", "method": method, "kind": kind, "pairs": overall.get("n_related"),
        "mean": None, "std": None, "zest_accuracy": overall.get("zest_accuracy"),
        "modeldiff_accuracy": overall.get("modeldiff_accuracy"), "auc": overall.get("auc"),
    })
    unrelated = overall.get("unrelated_scores") or {}
    rows.append({
        "relation": "unrelated pairs (false positives)", "method": method, "kind": kind,
        "pairs": overall.get("n_unrelated"), "mean": unrelated.get("mean"), "std": unrelated.get("std"),
        "zest_accuracy": overall.get("zest_false_positive_rate"),
        "modeldiff_accuracy": overall.get("modeldiff_false_positive_rate"), "auc": None,
    })
    return rows
