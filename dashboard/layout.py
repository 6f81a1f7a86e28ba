"""The frame of every page: page config, kept widget state, sidebar navigation and the current comparison."""
from __future__ import annotations

from pathlib import Path

import streamlit as st

from zest_core import Zoo
from zest_core.explain import DEFAULT_ALPHA
from zest_core.studies import AuditResult

from . import services, state
from .comparison import PairComparison
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
ALPHA_KEY = "alpha"
ALPHAS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.2)  # significance levels offered; 0.05 by default


def page(title: str) -> tuple[Zoo | None, str, Setup]:
    """Set up a page: config, widget state kept across pages, sidebar; returns (zoo, zoo message, setup)."""
    st.set_page_config(page_title=f"{title} · Zest Explorer", page_icon=str(PAGE_ICON), layout="wide")
    state.keep_widget_state((*SETUP_KEYS, ALPHA_KEY))
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
        st.markdown(f"**{comparison.choices['A'].label}** vs **{comparison.choices['B'].label}**")
        alpha()  # its default, before the widget reads it
        st.select_slider("Significance level α", options=ALPHAS, key=ALPHA_KEY,
                         help="The false-positive rate the verdict allows: 'related' when p < α.")
        audit = current_audit(comparison, quiet=True)
        if audit is not None:
            decision = audit.decision
            p_value = "" if decision.p_value is None else f" · p = {decision.p_value:.3g}"
            st.caption(f"distance {decision.distance:.4f} · {decision.verdict}{p_value} at α = {decision.alpha:g}")
        if comparison.key != setup.key():
            st.caption("The setup has changed since this comparison ran; run it again on Setup.")


def alpha() -> float:
    """The significance level α chosen in the sidebar (0.05 until one is chosen)."""
    state.default(ALPHA_KEY, DEFAULT_ALPHA, ALPHAS)
    return float(st.session_state[ALPHA_KEY])


def current_audit(comparison: PairComparison, *, quiet: bool = False) -> AuditResult | None:
    """The comparison's calibrated verdict at the sidebar's α, or None (after ``st.error`` unless quiet) if it fails."""
    try:
        return comparison.audit(alpha())
    except ValueError as error:  # zest_core's errors are ValueErrors (ZestError): e.g. a null distance of 0
        if not quiet:
            st.error(f"The calibrated verdict failed: {error}")
        return None


def require_comparison() -> PairComparison:
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
        + ("" if comparison.budget is None else f" · {comparison.budget.describe()}")
    )
    return comparison
