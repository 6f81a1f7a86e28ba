"""Pictures: images as PNG traces, grids of images, and a segmentation with every super-pixel numbered."""
from __future__ import annotations

import base64
import io
import math
from typing import Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ..explain import to_rgb


def png_image(image: np.ndarray, **kwargs) -> go.Image:
    """An image trace holding the picture as a PNG data URI: far smaller to send and faster to draw than pixel lists."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(to_rgb(image)).save(buffer, format="PNG")
    return go.Image(source="data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode(), **kwargs)


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


def numbered_segments(image: np.ndarray, centroids: np.ndarray, *, scale: int, title: str,
                      areas: np.ndarray | None = None) -> go.Figure:
    """An image with boundaries drawn (already enlarged ``scale`` times) and each super-pixel's number.

    With many super-pixels (photographs get up to 60), a number is written only on a super-pixel with
    room for it (``areas``, in original pixels, at least 2 digits' worth once enlarged), in a smaller font;
    every super-pixel's number is also on hover, so none is lost.
    """
    centroids = np.asarray(centroids)
    count = len(centroids)
    font = 13 if count <= 30 else 10
    room = (font * 1.6) ** 2  # enlarged pixels a two-digit label needs
    fig = go.Figure(png_image(image, hoverinfo="skip"))
    xs, ys, labels = [], [], []
    for label, (row, col) in enumerate(centroids):
        if not np.isfinite(row):
            continue
        x, y = (col + 0.5) * scale - 0.5, (row + 0.5) * scale - 0.5
        xs.append(x), ys.append(y), labels.append(str(label))
        if areas is None or areas[label] * scale * scale >= room:
            fig.add_annotation(x=x, y=y, text=str(label), showarrow=False,
                               font={"color": "#ffff00", "size": font}, bgcolor="rgba(0,0,0,0.55)")
    fig.add_trace(go.Scatter(x=xs, y=ys, mode="markers", marker={"size": 6, "opacity": 0}, text=labels,
                             hovertemplate="super-pixel %{text}<extra></extra>", showlegend=False))
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    fig.update_layout(title=title, height=460, margin={"l": 5, "r": 5, "t": 50, "b": 5})
    return fig
