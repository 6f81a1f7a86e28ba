"""Figures of the calibrated reuse benchmark and of one audit: distances against their matched null, ROC, rates.

Each function takes the JSON form of the result (``CalibrationResult.to_dict()`` or
``AuditResult.to_dict()``), so the dashboard draws the shipped report file and the CLI the live result.
"""
from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ._style import TEMPLATE, VERDICT_COLORS, method_color

RELATED, NULL = "#d62728", "#7f7f7f"


def matched_null_figure(report: Mapping[str, Any], method: str = "zest-cosine") -> go.Figure:
    """Per relation, the related distances (red) beside the distances of their matched unrelated models (grey)."""
    records = [r for r in report["related"] if r["method"] == method]
    figure = go.Figure()
    for relation in report["relations"]:
        mine = [r for r in records if r["relation"] == relation]
        null = [d for r in mine for d in r["null_distances"]]
        figure.add_trace(go.Box(y=null, x=[relation] * len(null), name="matched null", marker_color=NULL,
                                boxpoints="all", jitter=0.4, pointpos=0, showlegend=relation == report["relations"][0],
                                offsetgroup="null", legendgroup="null"))
        figure.add_trace(go.Box(y=[r["distance"] for r in mine], x=[relation] * len(mine), name="related",
                                marker_color=RELATED, boxpoints="all", jitter=0.4, pointpos=0,
                                showlegend=relation == report["relations"][0], offsetgroup="related",
                                legendgroup="related",
                                text=[f"{r['reference']} → {r['suspect']}: p = {_p(r['p_value'])}" for r in mine]))
    figure.update_layout(boxmode="group", template=TEMPLATE, yaxis_title=f"{method} distance",
                         title=f"Related pairs against their matched null ({method})", height=460)
    return figure


def roc_figure(report: Mapping[str, Any]) -> go.Figure:
    """ROC curves of every method: related distances against their matched null, all relations together."""
    figure = go.Figure()
    for method in report["methods"]:
        records = [r for r in report["related"] if r["method"] == method]
        if not any(r["null_distances"] for r in records):
            continue  # a combined verdict ("all") has p-values, no distances against a null
        fpr, tpr = roc_points([r["distance"] for r in records], [d for r in records for d in r["null_distances"]])
        auc = report["summary"][method]["overall"]["auc_matched"]
        figure.add_trace(go.Scatter(x=fpr, y=tpr, mode="lines", name=f"{method} (AUC {_number(auc)})",
                                    line={"color": method_color(method)}))
    figure.add_trace(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", line={"dash": "dot", "color": NULL}, name="chance"))
    figure.update_layout(template=TEMPLATE, xaxis_title="false-positive rate", yaxis_title="true-positive rate",
                         title="ROC against the matched null", height=460)
    return figure


def rates_figure(report: Mapping[str, Any]) -> go.Figure:
    """Matched AUC and TPR at α per relation and method, and each method's measured FPR with its interval."""
    figure = make_subplots(rows=1, cols=3, column_widths=[0.42, 0.42, 0.16],
                           subplot_titles=("matched AUC", f"TPR at α = {report['alpha']:g}", "measured FPR"))
    for method in report["methods"]:
        summary = report["summary"][method]
        relations = report["relations"]
        color = method_color(method)  # every bar of a method, in every panel, the colour of its legend entry
        figure.add_trace(go.Bar(x=relations, y=[summary["relations"][r]["auc_matched"] for r in relations],
                                name=method, legendgroup=method, marker_color=color), row=1, col=1)
        figure.add_trace(go.Bar(x=relations, y=[summary["relations"][r]["true_positive"]["rate"] for r in relations],
                                name=method, legendgroup=method, showlegend=False, marker_color=color), row=1, col=2)
        fp = summary["overall"]["false_positive"]
        low, high = fp["ci95"] or (None, None)
        figure.add_trace(go.Bar(x=[method], y=[fp["rate"]], name=method, legendgroup=method, showlegend=False,
                                marker_color=color,
                                error_y={"type": "data", "symmetric": False,
                                         "array": [None if high is None else high - fp["rate"]],
                                         "arrayminus": [None if low is None else fp["rate"] - low]}), row=1, col=3)
    figure.add_hline(y=report["alpha"], line_dash="dot", line_color=VERDICT_COLORS["related"], row=1, col=3)
    figure.update_layout(template=TEMPLATE, barmode="group", height=480, title="Reuse detection, calibrated")
    return figure


def calibration_figures(report: Mapping[str, Any], method: str = "zest-cosine") -> list[go.Figure]:
    """The figures of the HTML report, in order: the matched-null boxes, the ROC curves, the rates."""
    return [matched_null_figure(report, method), roc_figure(report), rates_figure(report)]


def audit_null_figure(audit: Mapping[str, Any], *, suspect: str = "suspect") -> go.Figure:
    """One audit as a dot plot: one row per unrelated model and one for the suspect, by distance to the reference.

    Each model has its own row, named on the axis, so that no two labels overlap however close their
    distances; the suspect's row is named ``suspect`` (the model's own name) and coloured by the
    verdict, and the dashed line is the detection threshold (only distances left of it are related).
    """
    null = dict(sorted(audit["null"]["distances"].items(), key=lambda item: item[1]))  # the closest first
    figure = go.Figure()
    figure.add_trace(go.Scatter(x=list(null.values()), y=list(null), mode="markers", text=list(null),
                                marker={"size": 11, "color": NULL}, name="unrelated",
                                hovertemplate="%{text}: %{x:.4g}<extra></extra>"))
    color = VERDICT_COLORS.get(audit["verdict"], NULL)
    figure.add_trace(go.Scatter(x=[audit["distance"]], y=[suspect], mode="markers", text=[suspect],
                                marker={"size": 15, "color": color, "symbol": "diamond"},
                                name=f"{suspect}: {audit['verdict']}", hovertemplate="%{text}: %{x:.4g}<extra></extra>"))
    threshold = audit.get("detection_threshold")
    if threshold is not None:
        # The test's power against this null: only distances left of this line are called related at α.
        figure.add_vline(x=threshold, line_dash="dash", line_color=VERDICT_COLORS["related"],
                         annotation_text=f"related below {threshold:.4g}", annotation_position="top left")
    figure.update_layout(template=TEMPLATE, height=120 + 22 * (len(null) + 1), xaxis_title="distance to the reference",
                         yaxis={"categoryorder": "array", "categoryarray": [suspect, *null], "autorange": "reversed"},
                         margin={"l": 10, "r": 10, "t": 60, "b": 40},
                         title=f"{audit['verdict']} · p = {_p(audit['p_value'])} · α = {audit['alpha']:g}")
    return figure


def roc_points(related: list[float], null: list[float]) -> tuple[np.ndarray, np.ndarray]:
    """(FPR, TPR) of the rule "related when distance ≤ t", for every threshold t."""
    thresholds = np.unique(np.concatenate([related, null, [-np.inf]]))
    related_, null_ = np.sort(related), np.sort(null)
    tpr = np.searchsorted(related_, thresholds, side="right") / related_.size
    fpr = np.searchsorted(null_, thresholds, side="right") / null_.size
    return fpr, tpr


def _p(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3g}"


def _number(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def ablation_figure(result: Mapping[str, Any]) -> go.Figure:
    """The ablation as a heatmap: variants down, relations across, the matched AUC in each cell."""
    rows, relations = result["rows"], result["relations"]
    z = [[row["relations"][r]["auc"] for r in relations] for row in rows]
    figure = go.Figure(go.Heatmap(z=z, x=relations, y=[row["variant"] for row in rows], zmin=0.5, zmax=1.0,
                                  colorscale="Viridis", text=[[f"{v:.2f}" for v in line] for line in z],
                                  texttemplate="%{text}", colorbar={"title": "matched AUC"}))
    figure.update_layout(template=TEMPLATE, height=120 + 40 * len(rows), yaxis={"autorange": "reversed"},
                         title=f"Ablation of {result['method']}: matched AUC per relation")
    return figure
