"""The files of the studies: their results as JSON or Markdown, and their figures as self-contained HTML.

The HTML writers live here, next to the figures they write (the studies draw nothing themselves);
the JSON and Markdown come from :mod:`zest_core.studies`. Every file is written atomically, and every
HTML file carries plotly.js inside, so it opens offline.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import plotly.graph_objects as go

from .._shared.atomic import atomic_write_bytes
from ..errors import ZestTypeError
from ..explain import to_jsonable
from ..studies import ReuseResult, write_reuse_report
from ..studies.calibration import CalibrationResult
from ..studies.markdown import calibration_markdown


def write_study(
    result: dict[str, Any], figure: go.Figure, out_dir: str | os.PathLike, name: str
) -> dict[str, Path]:
    """``<name>.json`` and ``<name>.html`` (the figure, self-contained so it works offline) in ``out_dir``.

    Parameters
    ----------
    result : dict
        A study's result, e.g. from :func:`epochs_study`.
    figure : plotly.graph_objects.Figure
        Its figure, e.g. from :func:`zest_core.figures.epochs_figure`.
    out_dir : path
    name : str
        The files' stem.
    """
    folder = Path(out_dir)
    paths = {"json": folder / f"{name}.json", "html": folder / f"{name}.html"}
    atomic_write_bytes(paths["json"], json.dumps(result, indent=1, default=_jsonable).encode())
    write_html(figure, paths["html"])
    return paths


def write_reuse(result: ReuseResult, figure: go.Figure, out_dir: str | os.PathLike) -> dict[str, Path]:
    """The reuse report (Markdown + JSON, :func:`~zest_core.studies.reuse.write_reuse_report`) and ``reuse.html``.

    ``figure`` is the result's figure, e.g. from :func:`zest_core.figures.reuse_figure`.
    """
    paths = write_reuse_report(result, out_dir)
    html = Path(out_dir) / "reuse.html"
    write_html(figure, html)
    return {**paths, "html": html}


def write_calibration(
    result: CalibrationResult, figures: Sequence[go.Figure], out_dir: str | os.PathLike
) -> dict[str, Path]:
    """``reuse.json``, ``reuse.md`` and ``reuse.html`` (the figures, one after another) in ``out_dir``, atomically."""
    folder = Path(out_dir)
    paths = {"json": folder / "reuse.json", "markdown": folder / "reuse.md", "html": folder / "reuse.html"}
    atomic_write_bytes(paths["json"], json.dumps(to_jsonable(result.to_dict()), indent=1, allow_nan=False).encode())
    atomic_write_bytes(paths["markdown"], calibration_markdown(result).encode())
    body = "\n".join(f.to_html(include_plotlyjs=k == 0, full_html=False) for k, f in enumerate(figures))
    html = f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>Reuse detection</title></head><body>{body}</body></html>"
    atomic_write_bytes(paths["html"], html.encode())
    return paths


def write_html(figure: go.Figure, path: Path) -> Path:
    """``figure`` as a self-contained HTML file at ``path``, written atomically."""
    # plotly.js goes inside the file, so it opens offline and keeps working if the CDN moves on.
    atomic_write_bytes(path, figure.to_html(include_plotlyjs=True, full_html=True).encode())
    return path


def _jsonable(value: Any) -> Any:
    """``json.dumps``'s ``default``: numpy scalars and arrays as plain values (NaN stays NaN, as it always has)."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise ZestTypeError(f"result: expected JSON values, numpy scalars or arrays, got {type(value).__name__}")
