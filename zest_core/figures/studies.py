"""The studies' figures: distances along training (Zest Fig. 2), against the reference-set size (Fig. 3),
after unlearning (§5.3), and the reuse benchmark's scores per relation.

The CLI writes them as self-contained HTML next to each study's JSON
(:func:`zest_core.figures.writers.write_study`); the dashboard draws :func:`epoch_figure`.
"""
from __future__ import annotations

from typing import Any

import plotly.graph_objects as go

from ..studies import EpochCurves, ReuseResult
from ._style import TEMPLATE, VERDICT_COLORS

RELATED_COLOR, UNRELATED_COLOR = "#1f77b4", "#d62728"
UNLEARNING_COLORS = {"exact": "#2ca02c", "approx": "#ff7f0e", "unrelated": "#7f7f7f"}
UNLEARNING_NAMES = {"exact": "exactly unlearned (retrained)", "approx": "approximately unlearned (gradient ascent)",
                    "unrelated": "unrelated"}


def epoch_figure(curves: EpochCurves, *, run: str, other: str | None, metric: str,
                 other_role: str = "unrelated") -> go.Figure:
    """Related (t vs t+k) and cross-run (a_t vs b_t) distance along training, as in Zest's Fig. 2.

    ``curves`` is :func:`~zest_core.studies.epoch_curves` of one run (``run``) and, optionally, another
    (``other``): an unrelated run, or ``other_role="B"`` for the suspect of a comparison, whose relation
    is the question (the curve is then not labelled unrelated). The dashboard's page 5 draws it.
    """
    fig = go.Figure()
    if curves.related:
        fig.add_trace(go.Scatter(
            x=list(curves.related_epochs), y=list(curves.related), mode="lines+markers",
            name=f"related: {run}, checkpoint t vs t+{curves.k}", line={"color": VERDICT_COLORS["related"]},
        ))
    if curves.unrelated:
        fig.add_trace(go.Scatter(
            x=list(curves.unrelated_epochs), y=list(curves.unrelated), mode="lines+markers",
            name=f"{other_role}: {run} vs {other}, same t", line={"color": "#2ca02c", "dash": "dash"},
        ))
    fig.update_layout(
        title="Distance between checkpoints during training", xaxis_title="epoch t",
        yaxis_title=f"Zest distance ({metric})", height=420, legend={"orientation": "h", "y": -0.2},
        margin={"l": 10, "r": 10, "t": 60, "b": 40},
    )
    fig.update_yaxes(rangemode="tozero")
    return fig


def epochs_figure(result: dict[str, Any]) -> go.Figure:
    """Related (t vs t+k) and unrelated (a_t vs u_t) curves of :func:`~zest_core.studies.epochs_study`.

    Thin lines per run, bold mean ± std.
    """
    figure = go.Figure()
    for group, colour in (("related", RELATED_COLOR), ("unrelated", UNRELATED_COLOR)):
        for label, curve in result[group].items():
            figure.add_trace(go.Scatter(x=curve["epochs"], y=curve["distance"], mode="lines", name=label,
                                        line={"color": colour, "width": 1}, opacity=0.35, legendgroup=group,
                                        showlegend=False))
        summary = result[f"{group}_summary"]
        title = f"related: epoch t vs t+{result['k']}" if group == "related" else "unrelated: a_t vs u_t"
        figure.add_trace(go.Scatter(
            x=summary["epochs"], y=summary["mean"], mode="lines+markers", name=f"{title} (mean ± std)",
            line={"color": colour, "width": 3}, legendgroup=group,
            error_y={"type": "data", "array": summary["std"], "visible": True},
        ))
    figure.update_layout(title="Zest distance along training (Zest Fig. 2)", xaxis_title="epoch t",
                         yaxis_title="Zest cosine distance", template=TEMPLATE)
    return figure


def refsize_figure(result: dict[str, Any]) -> go.Figure:
    """Mean ± std of the distance against the number of reference images (log scale), of
    :func:`~zest_core.studies.refsize_study_on_zoo`."""
    figure = go.Figure()
    for label, colour in (("related", RELATED_COLOR), ("unrelated", UNRELATED_COLOR)):
        data = result[label]
        figure.add_trace(go.Scatter(
            x=data["sizes"], y=data["mean"], mode="lines+markers", name=f"{label}: {' vs '.join(data['pair'])}",
            line={"color": colour}, error_y={"type": "data", "array": data["std"], "visible": True},
        ))
    figure.update_layout(title=f"Sensitivity to the reference-set size (Zest Fig. 3), {result['repeats']} draws per N",
                         xaxis={"title": "reference images N", "type": "log"}, yaxis_title="Zest cosine distance",
                         template=TEMPLATE)
    return figure


def unlearning_figure(result: dict[str, Any]) -> go.Figure:
    """Per source: distance to its exactly and approximately unlearned copies and to unrelated models, with 95% CIs.

    ``result`` is :func:`~zest_core.studies.unlearning_study`'s.
    """
    figure = go.Figure()
    for kind, colour in UNLEARNING_COLORS.items():
        xs, ys, lows, highs, texts = [], [], [], [], []
        for row in result["rows"]:
            for label, value in row.items():
                # A row holds "exact", "approx" and "unrelated <model>" entries, and other fields.
                if isinstance(value, dict) and "distance" in value and label.split()[0] == kind:
                    xs.append(row["source"])
                    ys.append(value["distance"])
                    lows.append(value["distance"] - value["ci95"][0])
                    highs.append(value["ci95"][1] - value["distance"])
                    texts.append(value["model"])
        figure.add_trace(go.Scatter(
            x=xs, y=ys, mode="markers", name=UNLEARNING_NAMES[kind], marker={"color": colour, "size": 10}, text=texts,
            error_y={"type": "data", "symmetric": False, "array": highs, "arrayminus": lows, "visible": True},
        ))
    figure.update_layout(title="Unlearning (Zest §5.3): distance to the source on the forget set, 95% bootstrap CI",
                         xaxis_title="source model", yaxis_title="Zest cosine distance", template=TEMPLATE)
    return figure


def reuse_figure(result: ReuseResult, method: str = "zest-cosine") -> go.Figure:
    """Per relation, the score of every (parent, child) pair against the unrelated pairs' range."""
    figure = go.Figure()
    records = [r for r in result.pairs if r["method"] == method]
    figure.add_trace(go.Box(x=[r["relation"] for r in records], y=[r["score"] for r in records], name="reuse pairs",
                            boxpoints="all", marker={"color": RELATED_COLOR}))
    unrelated = [r["score"] for r in result.unrelated_pairs if r["method"] == method]
    figure.add_trace(go.Box(x=["unrelated"] * len(unrelated), y=unrelated, name="unrelated pairs", boxpoints="all",
                            marker={"color": UNRELATED_COLOR}))
    figure.update_layout(title=f"Reuse detection: {method} per relation", yaxis_title=method, template=TEMPLATE)
    return figure
