"""LIME weights painted on the reference image: one class of A and B side by side, and every class at once."""
from __future__ import annotations

from typing import Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ..explain import WeightMaps, symmetric_limit, to_rgb
from ._style import DIVERGING
from .images import png_image


def overlay_weights(fig: go.Figure, image: np.ndarray, values: np.ndarray, *, row: int, col: int, coloraxis: str,
             name: str, opacity: float) -> None:
    grey = to_rgb(image).mean(axis=-1).astype(np.uint8)
    fig.add_trace(png_image(grey, hoverinfo="skip", name="image"), row=row, col=col)
    fig.add_trace(go.Heatmap(
        z=values, coloraxis=coloraxis, opacity=opacity, name=name, zsmooth=False,
        hovertemplate=f"{name}<br>x %{{x}}, y %{{y}}<br>weight %{{z:.4g}}<extra></extra>",
    ), row=row, col=col)


def weight_triptych(image: np.ndarray, maps: WeightMaps, row: int, *, names: tuple[str, str],
                    opacity: float = 0.75, shared_difference_scale: bool = False) -> go.Figure:
    """A's and B's weights of one class on one shared symmetric scale, and their difference on its own.

    With ``shared_difference_scale`` the difference is drawn on A's and B's scale too, so that a
    small difference looks small (on its own scale any difference fills the colour range).
    """
    limit = maps.limit()
    difference = maps.difference[row]
    diff_limit = limit if shared_difference_scale else symmetric_limit(difference)
    titles = (f"A: class {names[0]}", f"B: class {names[1]}", "A − B")
    spacing = 0.1
    fig = make_subplots(rows=1, cols=3, subplot_titles=titles, horizontal_spacing=spacing)
    panel = (1 - 2 * spacing) / 3
    overlay_weights(fig, image, maps.a[row], row=1, col=1, coloraxis="coloraxis", name="A", opacity=opacity)
    overlay_weights(fig, image, maps.b[row], row=1, col=2, coloraxis="coloraxis", name="B", opacity=opacity)
    overlay_weights(fig, image, difference, row=1, col=3, coloraxis="coloraxis2", name="A − B", opacity=opacity)
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
    fig.update_xaxes(visible=False, constrain="domain")
    fig.update_yaxes(visible=False, autorange="reversed", constrain="domain")
    for index in range(1, 3 * count + 1):  # each tile square against its own x axis, not the first tile's
        fig.layout[f"yaxis{'' if index == 1 else index}"].scaleanchor = f"x{'' if index == 1 else index}"
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
