"""Overview: the distance, the calibrated verdict against the matched null, and where the distance comes from."""
from __future__ import annotations

import json

import streamlit as st

from dashboard import layout, tables
from dashboard.ui import show_figure, show_table
from dashboard.verdict import p_text, show_all_methods, show_verdict
from dashboard.why import report_button, show_why
from zest_core import figures

zoo, _, _ = layout.page("Overview")
comparison = layout.require_comparison()
result = comparison.result
audit = layout.current_audit(comparison)
if audit is None:
    st.stop()
decision = audit.decision

left, middle, right, far = st.columns(4)
left.metric("Zest distance", f"{result.distance:.4f}", help=f"{result.metric} distance between the aligned signatures")
interval = "n/a" if result.interval is None else f"{result.interval[0]:.3f}–{result.interval[1]:.3f}"
middle.metric(f"{100 * result.level:g}% interval" if result.interval else "Interval", interval,
              help=f"bootstrap over reference images ({result.n_boot} resamples)")
right.metric("p-value", p_text(decision.p_value),
             help="One-sided prediction test on log distances: is d(A, B) smaller than a new draw of d(A, U) "
                  "for unrelated models U? (zest_core.explain.significance)")
far.metric(f"Verdict at α = {decision.alpha:g}", decision.verdict,
           help="related when p < α; not detected otherwise (never evidence of independence: see the threshold "
                "below); inconclusive when the null has too few models. Set α in the sidebar.")

st.header("The verdict against the matched null")
show_verdict(comparison, audit, key="overview_null")
if audit.null_models:
    st.caption(f"Rank p-value, free of the normality assumption: {p_text(decision.rank_p_value)} (it cannot be "
               f"below 1/(m + 1) = {1 / (len(audit.null_models) + 1):.3g} with m = {len(audit.null_models)} "
               "unrelated models). Same reference images, config, metric and class alignment as A vs B.")
    show_table(tables.null_table(comparison), key="overview_null_table", filename="matched_null")
    st.header("Why the verdict: where B kept A's reasoning and independent models did not")
    show_why(comparison, key="overview_why")
    st.header("Every method, one verdict")
    show_all_methods(comparison, decision.alpha, key="overview_all")

st.header("The two models")
show_table(tables.model_table(comparison), key="overview_models", filename="models", wrap=True)

st.header("What contributes to the distance")
contributions = result.contributions
how = ("Each part is exact: the parts sum to the distance." if contributions.additive
       else "L∞ is a maximum: each part is the largest weight difference in its group.")
st.caption(f"{how} Cosine: ½(â−b̂)² per signature entry, with â, b̂ the unit-norm signatures.")
images = tables.image_contributions(comparison)
classes = tables.class_contributions(comparison)
left, right = st.columns(2)
with left:
    show_figure(
        figures.contribution_bars(images["contribution"].to_numpy(), images["image"].tolist(),
                                  title="Reference images contributing most", axis="contribution to the distance"),
        key="overview_images", filename="image_contributions",
        how="each bar is one reference image's exact share of d(A, B); long bars are where the two models' local "
            "explanations differ most.",
    )
with right:
    show_figure(
        figures.contribution_bars(classes["contribution"].to_numpy(), classes["classes"].tolist(),
                                  title="Classes contributing most", axis="contribution to the distance"),
        key="overview_classes", filename="class_contributions",
        how="each bar is one matched class row's exact share of d(A, B).",
    )
top = images.head(8)
st.image([comparison.refset.images[i] for i in top["index"]], caption=top["image"].tolist(), width=84)
with st.expander("All images and classes"):
    show_table(images, key="overview_images_table", filename="image_contributions")
    show_table(classes, key="overview_classes_table", filename="class_contributions")

st.header("Report")
report_button(comparison, decision.alpha, zoo, key="overview_audit_report")
st.download_button(
    "Download the whole comparison (JSON)", data=lambda: json.dumps(comparison.report(decision.alpha), indent=1),
    file_name="zest_comparison.json", mime="application/json", key="overview_report", on_click="ignore",
)
