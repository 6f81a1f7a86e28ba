"""The calibrated reuse benchmark's report for the Zoo and reuse page: read, described, and as tables.

The report is the ``reuse.json`` that ``zest bench reuse`` writes (``CalibrationResult.to_dict()``),
read by :func:`zest_core.studies.read_reuse_report`; the figures are :mod:`zest_core.figures`'.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping

import pandas as pd
import streamlit as st

from zest_core.studies import OutdatedReuseReportError, read_reuse_report, reuse_overall_rows, reuse_rows

SHIPPED_REPORT = Path(__file__).resolve().parents[1] / "assets" / "reuse_report.json"
HOW_TO_MAKE = (
    "It is the reuse.json that `zest bench reuse --out DIR` writes (every zoo pair audited against its "
    f"matched null); save it as {SHIPPED_REPORT.relative_to(SHIPPED_REPORT.parents[1])} (or enter its path above) "
    "to see it here."
)


def load_reuse_report(path: str | os.PathLike) -> tuple[dict[str, Any] | None, str]:
    """The calibrated report at ``path``, or None and why not (no file; a report of the earlier benchmark).

    Raises
    ------
    ZestError
        For a file that is no reuse report at all (unreadable JSON, missing entries).
    """
    if not Path(path).is_file():
        return None, f"No reuse benchmark report at {path}. {HOW_TO_MAKE}"
    try:
        return read_reuse_report(path), ""
    except OutdatedReuseReportError:
        return None, (f"{path} is a report of the earlier, uncalibrated benchmark (the relative-distance rule); "
                      f"regenerate it with `zest bench reuse`. {HOW_TO_MAKE}")


def describe(report: Mapping[str, Any]) -> str:
    """What the report measured, in one caption."""
    meta = report.get("metadata", {})
    refset, config = meta.get("refset", {}), meta.get("config", {})
    return (
        f"{len(report['relations'])} relations, methods {', '.join(report['methods'])}, α = {report['alpha']:g}; "
        f"reference set: {refset.get('n', '?')} images ({refset.get('provenance', '?')}), "
        f"L = {config.get('num_samples', '?')}. Each child is audited against its source, judged against the "
        "distances from the source to models trained from scratch for the child's task with the child's "
        "architecture; the false-positive rate is measured on pairs of such models (leave one out)."
    )


def relation_frame(report: Mapping[str, Any]) -> pd.DataFrame:
    """Per relation and method: distances, matched AUC, TPR at α (and the pooled AUC, secondary)."""
    return pd.DataFrame(reuse_rows(report))


def overall_frame(report: Mapping[str, Any]) -> pd.DataFrame:
    """Per method: the measured FPR at α with its 95% interval, the overall TPR and AUC."""
    return pd.DataFrame(reuse_overall_rows(report))


def relation_benchmark(relation: str, method: str = "zest-cosine", path: str | os.PathLike = SHIPPED_REPORT) -> str | None:
    """How well the shipped benchmark detects ``relation`` with ``method``, in one sentence; None when it has no row."""
    try:
        report, _ = _cached_report(str(path), Path(path).stat().st_mtime if Path(path).is_file() else 0.0)
    except ValueError:  # a report that cannot be read says nothing about this pair
        return None
    if report is None or relation not in report["relations"] or method not in report["summary"]:
        return None
    row = report["summary"][method]["relations"][relation]
    tpr, auc = row["true_positive"], row["auc_matched"]
    auc_text = "n/a" if auc is None else f"{auc:.2f}"
    return (f"How well this kind of copy is caught: in the shipped benchmark (`zest bench reuse`), {method} called "
            f"{tpr['k']} of {tpr['n']} {relation} children related at α = {report['alpha']:g} (matched AUC "
            f"{auc_text}); this pair is one of them.")


@st.cache_data(show_spinner=False, max_entries=2)
def _cached_report(path: str, stamp: float) -> tuple[dict[str, Any] | None, str]:
    """:func:`load_reuse_report`, read again only when the file changes (``stamp``: its modification time)."""
    return load_reuse_report(path)
