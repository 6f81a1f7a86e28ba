"""Small Streamlit building blocks: figures and tables with downloads, error boundaries, guarded state."""
from __future__ import annotations

import contextlib
import re
from typing import Any, Iterator, Sequence

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from zest_core import (
    EndpointError,
    IncompatibleSignaturesError,
    ModelInputError,
    ModelLoadError,
    ModelOutputError,
    SignatureFileError,
)

# What zest_core raises for bad input; caught at the UI boundary and shown with st.error.
INPUT_ERRORS = (
    ModelLoadError,
    ModelInputError,
    ModelOutputError,
    EndpointError,
    IncompatibleSignaturesError,
    SignatureFileError,
    ValueError,
)


@contextlib.contextmanager
def error_boundary(what: str) -> Iterator[None]:
    """Show zest_core's input errors raised in the block as ``st.error`` and stop the page, not the app.

    Parameters
    ----------
    what : str
        What was being done, e.g. "Loading model A", for the message.
    """
    try:
        yield
    except INPUT_ERRORS as error:
        st.error(f"{what} failed: {error}")
        st.stop()


ROW_HEIGHT = 35  # pixels per dataframe row (Streamlit's default)
MAX_FULL_ROWS = 20


def figure_config(filename: str) -> dict[str, Any]:
    """Plotly modebar settings: PNG export named after the figure, no Plotly logo."""
    return {
        "displaylogo": False,
        "toImageButtonOptions": {"format": "png", "filename": filename, "scale": 2},
    }


def show_figure(fig: go.Figure, key: str, filename: str | None = None) -> None:
    """Draw a Plotly figure (PNG export from its modebar) with a button to download it as HTML.

    The HTML holds plotly.js itself, so it opens offline; it is built only when the button is
    clicked (Streamlit's deferred download).
    """
    name = slug(filename or key)
    st.plotly_chart(fig, key=key, config=figure_config(name))
    st.download_button(
        "Download figure (HTML)",
        data=lambda: fig.to_html(include_plotlyjs=True, full_html=True, config=figure_config(name)),
        file_name=f"{name}.html",
        mime="text/html",
        key=f"{key}__html",
        on_click="ignore",
    )


def show_table(frame: pd.DataFrame, key: str, filename: str | None = None, **kwargs: Any) -> None:
    """Show a table with a button to download it as CSV."""
    if "height" not in kwargs and len(frame) <= MAX_FULL_ROWS:  # short tables show every row, no scrolling
        kwargs["height"] = ROW_HEIGHT * (len(frame) + 1) + 3
    st.dataframe(frame, key=key, hide_index=True, **kwargs)
    st.download_button(
        "Download table (CSV)",
        data=frame.to_csv(index=False).encode(),
        file_name=f"{slug(filename or key)}.csv",
        mime="text/csv",
        key=f"{key}__csv",
        on_click="ignore",
    )


def slug(text: str) -> str:
    """A file-name-safe version of ``text``."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_") or "figure"


def keep_widget_state(keys: Sequence[str]) -> None:
    """Keep widget values across pages.

    Streamlit forgets a widget's value when a page without that widget runs; writing the value back
    into session state makes it ordinary state, which a widget with the same key picks up again.
    """
    for key in keys:
        if key in st.session_state:
            st.session_state[key] = st.session_state[key]


def default(key: str, value: Any, options: Sequence[Any] | None = None) -> None:
    """Give a widget's key its default value (once), or again when it is no longer among ``options``."""
    if key not in st.session_state or (options is not None and st.session_state[key] not in options):
        st.session_state[key] = value


def need(condition: bool, message: str) -> None:
    """``st.info(message)`` and stop the page unless ``condition`` holds."""
    if not condition:
        st.info(message)
        st.stop()
