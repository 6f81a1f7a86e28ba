"""Small Streamlit building blocks: figures and tables with downloads, error boundaries, runs with progress."""
from __future__ import annotations

import contextlib
import re
from typing import TYPE_CHECKING, Any, Callable, Iterator, TypeVar

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from zest_core import ZestError

from .state import done_tokens

if TYPE_CHECKING:
    from zest_core import ReferenceSet

    from .progress import RunProgress

T = TypeVar("T")

# What bad input raises; caught at the UI boundary and shown with st.error. Every error zest_core
# raises on purpose is a ZestError (ModelLoadError, ModelInputError, EndpointError, ...); ValueError
# also covers what libraries below it raise for malformed files.
INPUT_ERRORS = (ZestError, ValueError)


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


def show_figure(fig: go.Figure, key: str, filename: str | None = None, *, how: str | None = None) -> None:
    """Draw a Plotly figure (PNG export from its modebar) with a button to download it as HTML.

    ``how`` is the one line under the figure that says how to read it. The HTML holds plotly.js
    itself, so it opens offline; it is built only when the button is clicked (Streamlit's deferred download).
    """
    name = slug(filename or key)
    st.plotly_chart(fig, key=key, config=figure_config(name))
    if how:
        st.caption(f"How to read: {how}")
    st.download_button(
        "Download figure (HTML)",
        data=lambda: fig.to_html(include_plotlyjs=True, full_html=True, config=figure_config(name)),
        file_name=f"{name}.html",
        mime="text/html",
        key=f"{key}__html",
        on_click="ignore",
    )


def show_table(frame: pd.DataFrame, key: str, filename: str | None = None, *, wrap: bool = False,
               **kwargs: Any) -> None:
    """Show a table with a button to download it as CSV.

    ``wrap``: a static table whose cells wrap, for a few rows of long text (fingerprints, descriptions)
    that an interactive table would cut off.
    """
    if wrap:
        st.table(frame.set_index(frame.columns[0]))
    else:
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


def need(condition: bool, message: str) -> None:
    """``st.info(message)`` and stop the page unless ``condition`` holds."""
    if not condition:
        st.info(message)
        st.stop()


def with_progress(what: str, work: Callable[[Callable[["RunProgress"], None]], T]) -> T:
    """Run ``work(sink)`` under a progress bar that ``sink`` updates, inside :func:`error_boundary`.

    The bar is removed when the work ends, whether it succeeded or not.
    """
    bar = st.progress(0.0, text="Starting…")
    with error_boundary(what):
        try:
            return work(lambda progress: bar.progress(progress.fraction(), text=progress.text()))
        finally:
            bar.empty()


def estimate_caption(models: int, images: int, samples: int, budget: int) -> str:
    """Before a long button: the queries it will make and, from the current comparison's measured throughput, the time.

    ``models`` signatures of ``images`` × ``samples`` queries each (cached ones take none).
    """
    from . import state

    queries = models * images * samples
    comparison = state.current_comparison()
    rate = None if comparison is None else comparison.throughput()
    how = f"N = {images} × L = {samples}" + (f" (the budget of {budget:,} per model)" if budget else "")
    if rate is None:
        return (f"{models} signatures × {how} = {queries:,} queries (cached signatures take none); no throughput "
                "was measured in this session yet, so no time estimate.")
    return (f"{models} signatures × {how} = {queries:,} queries: about {queries / rate:.0f} s at the "
            f"{rate:,.0f} images/s measured in this session's last comparison (cached signatures take none).")


def compute_once(
    label: str,
    *,
    key: str,
    token: str,
    what: str,
    load_refset: Callable[[], "ReferenceSet"],
    work: Callable[["ReferenceSet", Callable[["RunProgress"], None]], object],
) -> bool:
    """A primary button that runs ``work(refset, sink)`` under a progress bar, once per ``token``.

    Pages that compute many signatures wait for this button, and draw their results only once it
    has run for the current ``token`` (a hash of the models, the reference images and the config);
    later reruns find the signatures in the cache.

    Returns
    -------
    bool
        Whether the work has run for ``token`` in this session.
    """
    done = done_tokens(f"{key}__done")
    if st.button(label, key=key, type="primary") and token not in done:
        with error_boundary("Loading the reference images"):
            refset = load_refset()
        with_progress(what, lambda sink: work(refset, sink))
        done.add(token)
    return token in done
