"""The frame of every page: page config, kept widget state, sidebar navigation and the current comparison."""
from __future__ import annotations

from pathlib import Path

import streamlit as st

from zest_core import Zoo

from . import services, state
from .comparison import Comparison
from .setup import SETUP_KEYS, Setup, current_setup

# The browser tab's icon, shipped with the app: a Material icon name here would make the browser
# fetch it from fonts.gstatic.com, and the dashboard must request nothing outside this machine.
PAGE_ICON = Path(__file__).resolve().parents[1] / "assets" / "icon.png"

# Material Symbols icons for the page links: Streamlit ships their font, so they render without any
# emoji font installed and without a request outside the machine.
PAGES = (
    ("app.py", "Setup", ":material/tune:"),
    ("pages/1_Overview.py", "Overview", ":material/straighten:"),
    ("pages/2_Super-pixels.py", "Super-pixels", ":material/grid_view:"),
    ("pages/3_LIME_heatmaps.py", "LIME heatmaps", ":material/thermostat:"),
    ("pages/4_Class_alignment.py", "Class alignment", ":material/compare_arrows:"),
    ("pages/5_Distance_vs_epoch.py", "Distance vs epoch", ":material/show_chart:"),
    ("pages/6_Zoo_and_reuse.py", "Zoo and reuse", ":material/hub:"),
)


def page(title: str) -> tuple[Zoo | None, str, Setup]:
    """Set up a page: config, widget state kept across pages, sidebar; returns (zoo, zoo message, setup)."""
    st.set_page_config(page_title=f"{title} · Zest Explorer", page_icon=str(PAGE_ICON), layout="wide")
    state.keep_widget_state(SETUP_KEYS)
    zoo, message = services.zoo_status()
    setup = current_setup(zoo)
    sidebar(setup)
    st.title(title)
    return zoo, message, setup


def sidebar(setup: Setup) -> None:
    """Page links and a summary of the comparison the pages show."""
    with st.sidebar:
        st.markdown("### Zest Explorer")
        st.caption("How similar are two image classifiers, from their predictions alone?")
        for path, label, icon in PAGES:
            st.page_link(path, label=label, icon=icon)
        st.divider()
        comparison = state.current_comparison()
        if comparison is None:
            st.caption("No comparison yet: choose two models on Setup and press Run.")
            return
        result = comparison.result
        st.markdown(f"**{comparison.choices['A'].label}** vs **{comparison.choices['B'].label}**")
        relative = "" if result.relative is None else f" · relative {result.relative:.3f}"
        st.caption(f"distance {result.distance:.4f}{relative} · {result.verdict.label}")
        if comparison.key != setup.key():
            st.caption("The setup has changed since this comparison ran; run it again on Setup.")


def require_comparison() -> Comparison:
    """The comparison the pages show, or ``st.info`` and stop when there is none."""
    comparison = state.current_comparison()
    if comparison is None:
        st.info("No comparison yet. Choose models A and B on the Setup page and press **Run comparison**.")
        st.page_link("app.py", label="Go to Setup", icon=":material/tune:")
        st.stop()
    st.caption(
        f"**{comparison.title}** · {comparison.refset.provenance} · L={comparison.config.num_samples}, "
        f"{comparison.config.segmentation}, fill={comparison.config.fill}, mode={comparison.config.mode}, "
        f"metric={comparison.result.metric}, align={comparison.result.align}"
    )
    return comparison
