"""Plotly figures of the dashboard, built from zest_core.explain's results (drawing only, no science)."""
from __future__ import annotations

import base64
import io
import math
from typing import Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from zest_core.studies.benchmarks import EpochCurves
from zest_core.explain import Baseline, Clustering, WeightMaps, symmetric_limit, to_rgb

DIVERGING = "RdBu_r"  # negative weights blue, positive red, white at 0
VERDICT_COLORS = {"related": "#d62728", "unrelated": "#2ca02c", "inconclusive": "#ff7f0e", "unknown": "#7f7f7f"}
MATCH_COLORS = {True: "#2ca02c", False: "#d62728", None: "#1f77b4"}


def png_image(image: np.ndarray, **kwargs) -> go.Image:
    """An image trace holding the picture as a PNG data URI: far smaller to send and faster to draw than pixel lists."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(to_rgb(image)).save(buffer, format="PNG")
    return go.Image(source="data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode(), **kwargs)


def distance_context(
    distance: float, interval: tuple[float, float] | None, baseline: Baseline | None, verdict: str, metric: str
) -> go.Figure:
    """The pair's distance (with its interval) against the distances between unrelated models."""
    fig = go.Figure()
    if baseline is not None:
        labels = [f"{a} vs {b}" for a, b, _ in baseline.pairs]
        fig.add_trace(go.Scatter(
            x=baseline.distances, y=["unrelated pairs"] * len(labels), mode="markers", name="unrelated pairs",
            text=labels, hovertemplate="%{text}: %{x:.4f}<extra></extra>",
            marker={"color": "#7f7f7f", "size": 11, "symbol": "circle-open"},
        ))
        fig.add_vline(x=baseline.mean, line_dash="dash", line_color="#7f7f7f",
                      annotation_text=f"baseline mean {baseline.mean:.4f}", annotation_position="top")
    error = None
    if interval is not None:
        error = {"type": "data", "symmetric": False, "array": [interval[1] - distance],
                 "arrayminus": [distance - interval[0]], "thickness": 2, "width": 8}
    fig.add_trace(go.Scatter(
        x=[distance], y=["A vs B"], mode="markers", name="A vs B", error_x=error,
        hovertemplate="A vs B: %{x:.4f}<extra></extra>",
        marker={"color": VERDICT_COLORS.get(verdict, "#1f77b4"), "size": 14, "symbol": "diamond"},
    ))
    fig.update_layout(
        title="Distance of A and B against unrelated models", xaxis_title=f"Zest distance ({metric})",
        height=260, margin={"l": 10, "r": 10, "t": 60, "b": 40}, showlegend=False,
    )
    fig.update_xaxes(rangemode="tozero")
    return fig


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


def image_grid(images: Sequence[np.ndarray], titles: Sequence[str], *, columns: int = 8, title: str = "",
               tile: int = 110) -> go.Figure:
    """Images (uint8, greyscale or RGB) in a grid of small panels with titles."""
    count = len(images)
    columns = max(1, min(columns, count))
    rows = math.ceil(count / columns)
    fig = make_subplots(rows=rows, cols=columns, subplot_titles=list(titles), horizontal_spacing=0.01,
                        vertical_spacing=min(0.12, 0.35 / rows))
    for index, image in enumerate(images):
        fig.add_trace(png_image(image, hoverinfo="skip", name=str(titles[index])),
                      row=index // columns + 1, col=index % columns + 1)
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    fig.update_annotations(font_size=11)
    fig.update_layout(title=title or None, height=rows * tile + 80,
                      margin={"l": 5, "r": 5, "t": 60 if title else 30, "b": 5})
    return fig


def numbered_segments(image: np.ndarray, centroids: np.ndarray, *, scale: int, title: str) -> go.Figure:
    """An image with boundaries drawn (already enlarged ``scale`` times) and each super-pixel's number."""
    fig = go.Figure(png_image(image, hoverinfo="skip"))
    for label, (row, col) in enumerate(np.asarray(centroids)):
        if np.isfinite(row):
            fig.add_annotation(
                x=(col + 0.5) * scale - 0.5, y=(row + 0.5) * scale - 0.5, text=str(label), showarrow=False,
                font={"color": "#ffff00", "size": 13}, bgcolor="rgba(0,0,0,0.55)",
            )
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    fig.update_layout(title=title, height=460, margin={"l": 5, "r": 5, "t": 50, "b": 5})
    return fig


def _overlay(fig: go.Figure, image: np.ndarray, values: np.ndarray, *, row: int, col: int, coloraxis: str,
             name: str, opacity: float) -> None:
    grey = to_rgb(image).mean(axis=-1).astype(np.uint8)
    fig.add_trace(png_image(grey, hoverinfo="skip", name="image"), row=row, col=col)
    fig.add_trace(go.Heatmap(
        z=values, coloraxis=coloraxis, opacity=opacity, name=name, zsmooth=False,
        hovertemplate=f"{name}<br>x %{{x}}, y %{{y}}<br>weight %{{z:.4g}}<extra></extra>",
    ), row=row, col=col)


def weight_triptych(image: np.ndarray, maps: WeightMaps, row: int, *, names: tuple[str, str],
                    opacity: float = 0.75) -> go.Figure:
    """A's and B's weights of one class on one shared symmetric scale, and their difference on its own."""
    limit = maps.limit()
    difference = maps.difference[row]
    diff_limit = symmetric_limit(difference)
    titles = (f"A: class {names[0]}", f"B: class {names[1]}", "A − B")
    spacing = 0.1
    fig = make_subplots(rows=1, cols=3, subplot_titles=titles, horizontal_spacing=spacing)
    panel = (1 - 2 * spacing) / 3
    _overlay(fig, image, maps.a[row], row=1, col=1, coloraxis="coloraxis", name="A", opacity=opacity)
    _overlay(fig, image, maps.b[row], row=1, col=2, coloraxis="coloraxis", name="B", opacity=opacity)
    _overlay(fig, image, difference, row=1, col=3, coloraxis="coloraxis2", name="A − B", opacity=opacity)
    scale = "unit-norm signatures" if maps.unit_norm else "raw weights"
    fig.update_layout(
        coloraxis={"colorscale": DIVERGING, "cmin": -limit, "cmax": limit, "cmid": 0,
                   "colorbar": {"title": {"text": "A, B"}, "x": 2 * panel + spacing + 0.01, "xanchor": "left",
                                "len": 0.9, "thickness": 12}},
        coloraxis2={"colorscale": DIVERGING, "cmin": -diff_limit, "cmax": diff_limit, "cmid": 0,
                    "colorbar": {"title": {"text": "A − B"}, "x": 1.01, "xanchor": "left", "len": 0.9,
                                 "thickness": 12}},
        title=f"LIME weights per super-pixel, reference image #{maps.image_index} ({scale})",
        height=380, margin={"l": 5, "r": 60, "t": 70, "b": 5},
    )
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return fig


def weight_small_multiples(maps: WeightMaps, names_a: Sequence[str], names_b: Sequence[str]) -> go.Figure:
    """Every compared class: A's, B's and the difference of weights, in a grid (one column per class)."""
    count = maps.a.shape[0]
    limit = maps.limit()
    diff_limit = symmetric_limit(maps.difference)
    titles = [f"{names_a[i]}↔{names_b[j]}" for i, j in maps.pairs] + [""] * (2 * count)
    fig = make_subplots(rows=3, cols=count, subplot_titles=titles, horizontal_spacing=0.005, vertical_spacing=0.03,
                        row_titles=["A", "B", "A − B"])
    for m in range(count):
        rows = ((maps.a[m], "coloraxis", "A"), (maps.b[m], "coloraxis", "B"),
                (maps.difference[m], "coloraxis2", "A − B"))
        for row, (values, axis, name) in enumerate(rows, start=1):
            fig.add_trace(go.Heatmap(
                z=values, coloraxis=axis, zsmooth=False, name=f"{name} {titles[m]}",
                hovertemplate=f"{name}, class {titles[m]}<br>weight %{{z:.4g}}<extra></extra>",
            ), row=row, col=m + 1)
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False, autorange="reversed", scaleanchor="x", constrain="domain")
    fig.update_layout(
        coloraxis={"colorscale": DIVERGING, "cmin": -limit, "cmax": limit, "cmid": 0,
                   "colorbar": {"title": {"text": "A, B"}, "y": 0.66, "len": 0.6, "thickness": 12}},
        coloraxis2={"colorscale": DIVERGING, "cmin": -diff_limit, "cmax": diff_limit, "cmid": 0,
                    "colorbar": {"title": {"text": "A − B"}, "y": 0.15, "len": 0.3, "thickness": 12}},
        title="All classes (rows: A, B, A − B; A's and B's rows share one scale)",
        height=max(420, 1300 // max(count, 1) * 3 // 2), margin={"l": 30, "r": 80, "t": 80, "b": 5},
    )
    fig.update_annotations(font_size=10)
    return fig


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
        x=[0.5] * len(pairs), y=[(i + j) / 2 for i, j in pairs], mode="markers", name="cost",
        marker={"size": 6, "color": costs, "colorscale": "Viridis", "showscale": False, "opacity": 0.6},
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


def epoch_figure(curves: EpochCurves, *, run: str, other: str | None, metric: str) -> go.Figure:
    """Related (t vs t+k) and unrelated (a_t vs u_t) distance along training, as in Zest's Fig. 2."""
    fig = go.Figure()
    if curves.related:
        fig.add_trace(go.Scatter(
            x=list(curves.related_epochs), y=list(curves.related), mode="lines+markers",
            name=f"related: {run}, checkpoint t vs t+{curves.k}", line={"color": "#d62728"},
        ))
    if curves.unrelated:
        fig.add_trace(go.Scatter(
            x=list(curves.unrelated_epochs), y=list(curves.unrelated), mode="lines+markers",
            name=f"unrelated: {run} vs {other}, same t", line={"color": "#2ca02c", "dash": "dash"},
        ))
    fig.update_layout(
        title="Distance between checkpoints during training", xaxis_title="epoch t",
        yaxis_title=f"Zest distance ({metric})", height=420, legend={"orientation": "h", "y": -0.2},
        margin={"l": 10, "r": 10, "t": 60, "b": 40},
    )
    fig.update_yaxes(rangemode="tozero")
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
