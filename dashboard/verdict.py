"""The calibrated verdict as the Setup and Overview pages show it: the message, the matched null and its figure.

The verdict is zest_core's (:meth:`dashboard.comparison.Comparison.audit`, which calls
:func:`zest_core.studies.audit_signatures`); this module only words and draws it. "Not detected" is
never shown as good news: failing to reject is not evidence that the models are unrelated. With too few
unrelated models it says plainly that there is no calibrated verdict, and draws no stand-in.
"""
from __future__ import annotations

import streamlit as st

from zest_core import figures
from zest_core.explain import MIN_NULL
from zest_core.studies import AuditResult, count_text, describe_entry

from .comparison import Comparison
from .ui import show_figure

MESSAGES = {"related": st.warning}  # anything else ("not detected", "inconclusive"): st.info


def p_text(value: float | None) -> str:
    """A p-value for people: three significant digits, "n/a" when there is none."""
    return "n/a" if value is None else f"{value:.3g}"


def verdict_text(comparison: Comparison, audit: AuditResult) -> str:
    """One paragraph: the verdict at α with its p-value, zest_core's reason, and what to do when inconclusive."""
    decision = audit.decision
    if decision.verdict != "inconclusive":
        return f"**{decision.verdict.capitalize()}** at α = {decision.alpha:g} (p = {p_text(decision.p_value)}). " \
               f"{decision.reason}."
    if comparison.null.automatic:
        fix = (f"The demo zoo has fewer than {MIN_NULL} models trained from scratch for B's task with B's "
               "architecture outside both lineages; rebuild it with more (`zest zoo build`).")
    else:
        fix = (f"Name at least {MIN_NULL} models trained independently for B's task with B's architecture under "
               "**Unrelated models** on Setup, then run again.")
    reason = decision.reason[:1].upper() + decision.reason[1:]
    return f"**Inconclusive: no calibrated verdict.** {reason}. {fix}"


def query_text(audit: AuditResult) -> str:
    """The queries behind the verdict, measured: A's and B's, and in all (cached signatures made none now)."""
    queries = audit.queries
    pair = "; ".join(f"{name}: {describe_entry(queries['per_model'][name])}" for name in ("Model A", "Model B"))
    total = "not recorded for every model" if queries["total"] is None else count_text(queries["total"])
    return (f"**Queries** ({queries['detail']}): {pair}. All {len(queries['per_model'])} models: {total}; "
            f"made in this run: {count_text(queries['now'])}.")


def show_verdict(comparison: Comparison, audit: AuditResult, key: str) -> None:
    """The verdict's message, where its null comes from, and the null's distances with A vs B's among them."""
    MESSAGES.get(audit.decision.verdict, st.info)(verdict_text(comparison, audit))
    for warning in audit.warnings:
        st.caption(f"⚠ {warning}")
    picked = "picked from the demo zoo's manifest" if comparison.null.automatic else "named on Setup"
    st.caption(f"**Matched null** ({picked}): {comparison.null.reason}.")
    st.caption(query_text(audit))
    if audit.null_models:
        show_figure(figures.audit_null_figure(audit.to_dict()), key=key, filename="matched_null")
