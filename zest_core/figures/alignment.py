"""Class matching: the class-by-class cost matrix and the matching as a bipartite diagram."""
from __future__ import annotations

from typing import Sequence

import numpy as np
import plotly.graph_objects as go

from ._style import MATCH_COLORS


def cost_matrix(cost: np.ndarray, pairs: np.ndarray, names_a: Sequence[str], names_b: Sequence[str],
                correct: Sequence[bool | None], method: str) -> go.Figure:
    """The class-by-class cost (cosine distance of class rows) with the chosen matching marked."""
    cost = np.asarray(cost)
    rows = [f"A:{n}" for n in names_a]
    cols = [f"B:{n}" for n in names_b]
    fig = go.Figure(go.Heatmap(
        z=cost, x=cols, y=rows, colorscale="Viridis", name="cost",
        colorbar={"title": {"text": "cosine distance"}},
        hovertemplate="%{y} vs %{x}: %{z:.4f}<extra></extra>",
    ))
    for flag in (True, False, None):
        chosen = [k for k, c in enumerate(correct) if c is flag]
        if not chosen:
            continue
        label = {True: "matched (correct)", False: "matched (wrong)", None: "matched"}[flag]
        fig.add_trace(go.Scatter(
            x=[cols[pairs[k, 1]] for k in chosen], y=[rows[pairs[k, 0]] for k in chosen], mode="markers",
            name=label, marker={"symbol": "square-open", "size": 22, "line": {"width": 3},
                                "color": MATCH_COLORS[flag]},
            hovertemplate=f"{label}: %{{y}} ↔ %{{x}}<extra></extra>",
        ))
    fig.update_yaxes(autorange="reversed", type="category")
    fig.update_xaxes(type="category", side="top")
    fig.update_layout(
        title=f"Class cost matrix with the {method} matching", height=max(380, 34 * len(rows) + 160),
        legend={"orientation": "h", "y": -0.05}, margin={"l": 10, "r": 10, "t": 90, "b": 40},
    )
    return fig


def bipartite(pairs: np.ndarray, cost: np.ndarray, names_a: Sequence[str], names_b: Sequence[str],
              correct: Sequence[bool | None], method: str) -> go.Figure:
    """The matching as a bipartite diagram: A's classes left, B's right, one line per matched pair."""
    fig = go.Figure()
    for flag in (True, False, None):
        chosen = [k for k, c in enumerate(correct) if c is flag]
        if not chosen:
            continue
        xs, ys = [], []
        for k in chosen:
            xs += [0, 1, None]
            ys += [pairs[k, 0], pairs[k, 1], None]
        label = {True: "correct", False: "wrong", None: "matched"}[flag]
        fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", name=label, hoverinfo="skip",
                                 line={"color": MATCH_COLORS[flag], "width": 2}))
    costs = [float(cost[i, j]) for i, j in pairs]
    fig.add_trace(go.Scatter(
        x=[0] * len(names_a), y=list(range(len(names_a))), mode="markers+text", text=list(names_a),
        textposition="middle left", name="A's classes", marker={"size": 14, "color": "#1f77b4"},
        hovertemplate="A: %{text}<extra></extra>",
    ))
    fig.add_trace(go.Scatter(
        x=[1] * len(names_b), y=list(range(len(names_b))), mode="markers+text", text=list(names_b),
        textposition="middle right", name="B's classes", marker={"size": 14, "color": "#9467bd"},
        hovertemplate="B: %{text}<extra></extra>",
    ))
    fig.add_trace(go.Scatter(
        x=[0.5] * len(pairs), y=[(i + j) / 2 for i, j in pairs], mode="markers", name="matching cost",
        marker={"size": 7, "color": costs, "colorscale": "Viridis", "showscale": True, "opacity": 0.8,
                "colorbar": {"title": {"text": "cost"}, "thickness": 10, "len": 0.6}},
        showlegend=False,  # its colour bar says what the colours mean; a legend dot could not
        text=[f"{names_a[i]} ↔ {names_b[j]}: cost {c:.4f}" for (i, j), c in zip(pairs, costs)],
        hovertemplate="%{text}<extra></extra>",
    ))
    height = max(len(names_a), len(names_b))
    fig.update_xaxes(visible=False, range=[-0.4, 1.4])
    fig.update_yaxes(visible=False, autorange="reversed")
    fig.update_layout(
        title=f"{method.capitalize()} matching of A's classes to B's", height=max(320, 34 * height + 120),
        showlegend=True, legend={"orientation": "h", "y": -0.05}, margin={"l": 10, "r": 10, "t": 60, "b": 40},
    )
    return fig
