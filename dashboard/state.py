"""Session state: the finished comparisons, widget values kept across pages, and once-per-session flags.

Streamlit reruns a page's script on every interaction, so anything that must outlive one run lives
in ``st.session_state``. Every key the dashboard itself writes (as opposed to widget keys) is named
here.
"""
from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Sequence

import streamlit as st

if TYPE_CHECKING:  # services imports nothing from here; the type is only for the signatures
    from .comparison import PairComparison

RESULTS_KEY = "zx_results"
CURRENT_KEY = "zx_current"
AUTORUN_KEY = "autorun_done"
MAX_RESULTS = 12


def autorun_once() -> bool:
    """True on a session's first run when the app was started with ZEST_AUTORUN=1 (as `make run` does)."""
    if os.environ.get("ZEST_AUTORUN") != "1" or st.session_state.get(AUTORUN_KEY):
        return False
    st.session_state[AUTORUN_KEY] = True
    return True


# --------------------------------------------------------------------------------------------------
# Finished comparisons
# --------------------------------------------------------------------------------------------------


def store_comparison(comparison: "PairComparison") -> None:
    """Keep a finished comparison (the most recent :data:`MAX_RESULTS`) and make it the current one."""
    results: dict[str, PairComparison] = st.session_state.setdefault(RESULTS_KEY, {})
    results.pop(comparison.key, None)  # re-inserted last: the dict's order is the order of use
    results[comparison.key] = comparison
    while len(results) > MAX_RESULTS:
        results.pop(next(iter(results)))
    st.session_state[CURRENT_KEY] = comparison.key


def stored_comparison(key: str | None) -> "PairComparison | None":
    """A finished comparison by key, or None."""
    return st.session_state.get(RESULTS_KEY, {}).get(key) if key else None


def current_comparison() -> "PairComparison | None":
    """The comparison the pages show: the last one run or revisited."""
    return stored_comparison(st.session_state.get(CURRENT_KEY))


# --------------------------------------------------------------------------------------------------
# Widget values and flags
# --------------------------------------------------------------------------------------------------


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


def done_tokens(key: str) -> set[str]:
    """The tokens of the work already done under ``key`` in this session (a set the caller adds to)."""
    return st.session_state.setdefault(key, set())
