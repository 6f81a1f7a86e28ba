"""The calibrated reuse benchmark's JSON report, read back: checked on loading, and flattened into table rows.

``zest bench reuse`` writes ``reuse.json``, the ``to_dict()`` of a
:class:`~zest_core.studies.calibration.CalibrationResult`: every related pair audited against its
matched null, every unrelated pair audited the same way (the measured false-positive rate), and
per method the summary. Reports of the earlier benchmark (judged by the relative-distance rule,
with "scores" and "unrelated_pairs" entries) are recognised and refused with
:class:`OutdatedReuseReportError`, so that a reader can tell the user to regenerate the file.

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

REPORT_KEYS = ("methods", "relations", "alpha", "related", "negatives", "summary")
# Entries only the earlier report (the relative-distance rule, ``ReuseResult.to_dict()``) has.
OUTDATED_KEYS = ("scores", "unrelated_pairs")


class OutdatedReuseReportError(ZestError):
    """The file is a reuse report of the earlier, uncalibrated benchmark: regenerate it with ``zest bench reuse``."""


def read_reuse_report(path: str | os.PathLike) -> dict[str, Any]:
    """A calibrated reuse benchmark report, as ``zest bench reuse`` writes it (``CalibrationResult.to_dict()``).

    Parameters
    ----------
    path : str or path-like
        The report's JSON file.

    Returns
    -------
    dict
        The report, with at least the entries of :data:`REPORT_KEYS`.

    Raises
    ------
    OutdatedReuseReportError
        If the file is a report of the earlier benchmark (relative-distance rule).
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
    if not isinstance(report, Mapping):
        raise ZestError(f"{path}: expected a reuse benchmark report (a JSON object), got {type(report).__name__}")
    missing = [k for k in REPORT_KEYS if k not in report]
    if missing and any(k in report for k in OUTDATED_KEYS):
        raise OutdatedReuseReportError(
            f"{path}: expected a calibrated reuse report (with {', '.join(REPORT_KEYS)}), got a report of the "
            "earlier benchmark (relative-distance rule); regenerate it with `zest bench reuse`"
        )
    if missing:
        raise ZestError(
            f"{path}: expected a reuse benchmark report (with {', '.join(REPORT_KEYS)}), "
            f"got JSON without {', '.join(missing)}"
        )
    _check_summary(report, path)
    return dict(report)


def _check_summary(report: Mapping[str, Any], path: Path) -> None:
    """Raise ZestError unless the summary has every method and relation the report lists."""
    if not report["methods"] or not report["relations"]:
        raise ZestError(f"{path}: expected a reuse report of at least one method and relation, got none")
    try:
        for method in report["methods"]:
            summary = report["summary"][method]
            entries = [summary["overall"]["false_positive"]]
            entries += [summary["relations"][relation]["true_positive"] for relation in report["relations"]]
            if not all(isinstance(entry, Mapping) for entry in entries):
                raise ZestError(f"{path}: expected {method}'s rates as JSON objects, got other values")
    except (KeyError, TypeError) as error:  # a method or relation missing, or a summary that is no object
        raise ZestError(
            f"{path}: expected a summary of every method and relation the report lists, got {error!r} missing"
        ) from error


def reuse_rows(report: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One row per (relation, method) of a calibrated reuse report.

    Parameters
    ----------
    report : mapping
        As :func:`read_reuse_report` returns it.

    Returns
    -------
    list of dict
        Keys: relation, method, pairs, null models (the sizes of the pairs' nulls), distance mean,
        distance std, null distance mean, matched AUC, TPR at α, TPR (k/n), inconclusive, pooled
        AUC (secondary: against every unrelated pair, not the matched null).
    """
    rows = []
    for relation in report["relations"]:
        for method in report["methods"]:
            stats = report["summary"][method]["relations"][relation]
            tp = stats["true_positive"]
            rows.append({
                "relation": relation, "method": method, "pairs": stats.get("n"),
                "null models": _sizes(stats.get("null_sizes")),
                "distance mean": (stats.get("distance") or {}).get("mean"),
                "distance std": (stats.get("distance") or {}).get("std"),
                "null distance mean": (stats.get("null_distance") or {}).get("mean"),
                "matched AUC": stats.get("auc_matched"), "TPR at α": tp.get("rate"), "TPR (k/n)": _count(tp),
                "inconclusive": stats.get("inconclusive"), "pooled AUC (secondary)": stats.get("auc_pooled"),
            })
    return rows


def reuse_overall_rows(report: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One row per method of ``report`` (as for :func:`reuse_rows`): the measured FPR at α and the overall power.

    The keys are method, FPR at α, FPR (k/n), its 95% Clopper–Pearson interval (FPR 95% low, FPR 95%
    high), inconclusive negatives, TPR at α, TPR (k/n), matched AUC and pooled AUC (secondary).
    """
    rows = []
    for method in report["methods"]:
        overall = report["summary"][method]["overall"]
        fp, tp = overall["false_positive"], overall.get("true_positive") or {}
        low, high = fp.get("ci95") or (None, None)
        rows.append({
            "method": method, "FPR at α": fp.get("rate"), "FPR (k/n)": _count(fp), "FPR 95% low": low,
            "FPR 95% high": high, "inconclusive negatives": overall.get("inconclusive_negatives"),
            "TPR at α": tp.get("rate"), "TPR (k/n)": _count(tp), "matched AUC": overall.get("auc_matched"),
            "pooled AUC (secondary)": overall.get("auc_pooled"),
        })
    return rows


def _count(rate: Mapping[str, Any]) -> str:
    return f"{rate['k']}/{rate['n']}" if rate.get("n") else "—"


def _sizes(sizes: Any) -> str:
    return ", ".join(map(str, sizes)) if sizes else "—"
