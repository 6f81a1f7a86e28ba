"""Distances: what contributes to a pair's distance, and a clustered distance matrix."""
from __future__ import annotations

from typing import Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ..explain import Clustering


def contribution_bars(values: np.ndarray, labels: Sequence[str], *, title: str, axis: str, top: int = 15) -> go.Figure:
    """The ``top`` largest contributions as horizontal bars, largest on top."""
    values = np.asarray(values, dtype=float)
    order = np.argsort(-values, kind="stable")[:top]
    fig = go.Figure(go.Bar(
        x=values[order][::-1], y=[labels[i] for i in order][::-1], orientation="h", marker_color="#d62728",
        hovertemplate="%{y}: %{x:.4g}<extra></extra>", name="contribution",
    ))
    fig.update_layout(
        title=title, xaxis_title=axis, height=max(260, 26 * len(order) + 100),
        margin={"l": 10, "r": 10, "t": 50, "b": 40},
    )
    fig.update_yaxes(type="category")
    return fig


def clustered_heatmap(matrix: np.ndarray, names: Sequence[str], clustering: Clustering, metric: str) -> go.Figure:
    """The distance matrix in dendrogram order, with the dendrogram above it."""
    order = clustering.order
    ordered = np.asarray(matrix)[np.ix_(order, order)]
    labels = [names[i] for i in order]
    fig = make_subplots(rows=2, cols=1, row_heights=[0.22, 0.78], shared_xaxes=False, vertical_spacing=0.02)
    for xs, ys in zip(clustering.icoord, clustering.dcoord):
        fig.add_trace(go.Scatter(
            x=[(x - 5) / 10 for x in xs], y=ys, mode="lines", line={"color": "#555", "width": 1.5},
            hoverinfo="skip", showlegend=False, name="dendrogram",
        ), row=1, col=1)
    fig.add_trace(go.Heatmap(
        z=ordered, x=list(range(len(labels))), y=list(range(len(labels))), colorscale="Viridis_r", name="distance",
        customdata=[[f"{a} vs {b}" for b in labels] for a in labels],
        hovertemplate="%{customdata}: %{z:.4f}<extra></extra>",
        colorbar={"title": {"text": metric}, "y": 0.39, "len": 0.78},
    ), row=2, col=1)
    ticks = {"tickmode": "array", "tickvals": list(range(len(labels))), "ticktext": labels}
    fig.update_xaxes(range=[-0.5, len(labels) - 0.5], visible=False, row=1, col=1)
    fig.update_yaxes(visible=False, row=1, col=1)
    fig.update_xaxes(range=[-0.5, len(labels) - 0.5], tickangle=-45, **ticks, row=2, col=1)
    fig.update_yaxes(autorange="reversed", **ticks, row=2, col=1)
    fig.update_layout(
        title="Zest distances, clustered (average linkage, optimal leaf order)",
        height=max(480, 30 * len(labels) + 300), margin={"l": 10, "r": 10, "t": 60, "b": 10},
    )
    return fig
