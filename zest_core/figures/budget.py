"""Figures of the query-budget study: matched AUC and TPR against the queries each suspect model costs."""
from __future__ import annotations

from typing import Any, Mapping

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ..pipeline.budget import BUDGET_SAMPLES
from ._style import TEMPLATE, method_color

DASHES = {"bernoulli": "solid", "antithetic": "dash", "orthogonal": "dot"}
DESIGN_COLORS = {"bernoulli": "#1f77b4", "antithetic": "#2ca02c", "orthogonal": "#ff7f0e"}


def _series(points: list[Mapping[str, Any]]) -> dict[str, list[Mapping[str, Any]]]:
    """One line per method, and for Zest one per (design, L) at the budget rule's L and at Bernoulli's largest L.

    Along a line only N changes, so no point is picked as the best of several: every point drawn is one
    measured configuration.
    """
    zest = [p for p in points if p["method"] == "zest-cosine" and "auc" in p]
    largest = max((p["samples"] for p in zest if p["design"] == "bernoulli"), default=None)
    lines: dict[str, list[Mapping[str, Any]]] = {}
    for p in points:
        if "auc" not in p:
            continue
        if p["method"] != "zest-cosine":
            lines.setdefault(p["method"], []).append(p)
        elif p["samples"] == BUDGET_SAMPLES or (p["design"] == "bernoulli" and p["samples"] == largest):
            lines.setdefault(f"zest {p['design']} L={p['samples']}", []).append(p)
    return {label: sorted(line, key=lambda p: p["queries"]) for label, line in lines.items()}


def _mean(point: Mapping[str, Any]) -> float:
    values = [a for a in point["auc"].values() if a is not None]
    return sum(values) / len(values) if values else 0.0


def _style(label: str) -> dict[str, Any]:
    design = label.removeprefix("zest ").split(" ")[0]
    color = DESIGN_COLORS.get(design) or method_color(label)
    dash = "longdashdot" if label.endswith(f"L={BUDGET_SAMPLES}") is False and label.startswith("zest") else None
    return {"color": color, "dash": dash or DASHES.get(design, "solid")}


def budget_figure(result: Mapping[str, Any]) -> go.Figure:
    """Mean matched AUC over relations, overall TPR at α and FPR against queries per model (log axis), per method."""
    figure = make_subplots(rows=1, cols=3, subplot_titles=(
        "matched AUC, mean over relations", f"TPR at α = {result['alpha']:g} (all relations)", "measured FPR"))
    for label, line in _series(result["points"]).items():
        x = [p["queries"] for p in line]
        text = [_describe(p) for p in line]
        style = _style(label)
        figure.add_trace(go.Scatter(x=x, y=[_mean(p) for p in line], mode="lines+markers", name=label, line=style,
                                    text=text, legendgroup=label), row=1, col=1)
        figure.add_trace(go.Scatter(x=x, y=[p["tpr_overall"] for p in line], mode="lines+markers", name=label,
                                    line=style, text=text, legendgroup=label, showlegend=False), row=1, col=2)
        figure.add_trace(go.Scatter(x=x, y=[p["fpr"]["rate"] for p in line], mode="lines+markers", name=label,
                                    line=style, text=text, legendgroup=label, showlegend=False), row=1, col=3)
    figure.add_hline(y=result["alpha"], line_dash="dot", line_color="#7f7f7f", row=1, col=3)
    figure.update_xaxes(type="log", title_text="queries per suspect model")
    figure.update_layout(template=TEMPLATE, height=420, title="Verdict quality against the query budget (shipped zoo)")
    return figure


def budget_relations_figure(result: Mapping[str, Any]) -> go.Figure:
    """Matched AUC per relation against queries per model, one panel per relation."""
    series = _series(result["points"])
    relations = sorted({r for line in series.values() for p in line for r in p["auc"]})
    columns = 4
    rows = -(-len(relations) // columns)
    figure = make_subplots(rows=rows, cols=columns, subplot_titles=relations, shared_yaxes=True)
    for label, line in series.items():
        for index, relation in enumerate(relations):
            figure.add_trace(go.Scatter(
                x=[p["queries"] for p in line], y=[p["auc"].get(relation) for p in line], mode="lines+markers",
                name=label, line=_style(label), legendgroup=label, showlegend=index == 0,
                text=[_describe(p) for p in line],
            ), row=index // columns + 1, col=index % columns + 1)
    figure.update_xaxes(type="log")
    figure.update_layout(template=TEMPLATE, height=260 * rows, title="Matched AUC per relation against queries per model")
    return figure


def _describe(point: Mapping[str, Any]) -> str:
    if point["method"] == "zest-cosine":
        return f"N = {point['images']}, L = {point['samples']}"
    return f"{point['images']} images"
