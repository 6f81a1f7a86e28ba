"""The calibrated verdict as the Setup and Overview pages show it: the message, the matched null and its figure.

The verdict is zest_core's (:meth:`dashboard.comparison.PairComparison.audit`, which calls
:func:`zest_core.studies.audit_signatures`); this module only words and draws it. "Not detected" is
never shown as good news: failing to reject is not evidence that the models are unrelated. With too few
unrelated models it says plainly that there is no calibrated verdict, and draws no stand-in.
"""
from __future__ import annotations

import pandas as pd
import streamlit as st

from zest_core import figures
from zest_core.explain import MIN_NULL
from zest_core.studies import AuditResult, count_text, describe_entry

from .comparison import PairComparison
from .reuse import relation_benchmark
from .ui import show_figure, show_table

MESSAGES = {"related": st.warning}  # anything else ("not detected", "inconclusive"): st.info


def p_text(value: float | None) -> str:
    """A p-value for people: three significant digits, "n/a" when there is none."""
    return "n/a" if value is None else f"{value:.3g}"


def verdict_text(comparison: PairComparison, audit: AuditResult) -> str:
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


def show_verdict(comparison: PairComparison, audit: AuditResult, key: str) -> None:
    """The verdict's message, where its null comes from, and the null's distances with A vs B's among them."""
    MESSAGES.get(audit.decision.verdict, st.info)(verdict_text(comparison, audit))
    for warning in audit.warnings:
        st.caption(f"⚠ {warning}")
    picked = "picked from the demo zoo's manifest" if comparison.null.automatic else "named on Setup"
    st.caption(f"**Matched null** ({picked}): {comparison.null.reason}.")
    st.caption(query_text(audit))
    relation = (comparison.meta["B"].get("zoo") or {}).get("relation")
    source = (comparison.meta["B"].get("zoo") or {}).get("source")
    a_name = (comparison.meta["A"].get("zoo") or {}).get("name")
    if relation and a_name is not None and source == a_name:  # a zoo child audited against its own source
        sentence = relation_benchmark(relation, audit.method)
        if sentence:
            st.caption(sentence)
    if audit.null_models:
        show_figure(figures.audit_null_figure(audit.to_dict(), suspect=f"B ({comparison.choices['B'].label})"),
                    key=key, filename="matched_null")
        st.caption("How to read: each grey dot is an unrelated model's distance to A, the diamond is B's. B is called "
                   "related only when it sits left of the dashed line, closer to A than the null allows at α.")


def methods_table(audit: AuditResult) -> list[dict[str, object]]:
    """One row per method of an ``--method all`` audit: its verdict, p-value, Holm-adjusted p-value and threshold."""
    adjusted = (audit.combination or {}).get("adjusted", {})
    return [{"method": name, "verdict": d.verdict, "distance": d.distance, "p-value": d.p_value,
             "Holm-adjusted p": adjusted.get(name), "related below": d.detection_threshold}
            for name, d in audit.methods.items()]


def show_all_methods(comparison: PairComparison, alpha: float, key: str) -> None:
    """Every method on the same suspect, one verdict (Holm): run on request, since it queries every model again."""
    from .comparison import all_methods_audit

    store = st.session_state.setdefault("zx_all_methods", {})
    slot = (comparison.key, alpha)
    st.caption("Zest, ModelDiff, SAC-m and AKH on the same suspect and null, their p-values combined by Holm's rule "
               "(false positives at most α whatever their dependence). ModelDiff needs white-box access to A; AKH "
               "needs labelled reference images; a method that cannot run is inconclusive and left out.")
    if st.button("Run every method", key=f"{key}_run"):
        with st.spinner("ModelDiff, SAC-m and AKH on every model…"):
            try:
                store[slot] = all_methods_audit(comparison, alpha)
            except ValueError as error:  # zest_core's errors are ValueErrors (ZestError)
                st.error(f"Every method: {error}")
                return
    audit = store.get(slot)
    if audit is None:
        return
    MESSAGES.get(audit.decision.verdict, st.info)(
        f"**{audit.decision.verdict.capitalize()}** at α = {alpha:g} (combined p = {p_text(audit.decision.p_value)}). "
        f"{audit.decision.reason}.")
    show_table(pd.DataFrame(methods_table(audit)), key=f"{key}_table", filename="every_method")
