"""Overview: the distance, the relative distance against unrelated models, the verdict, and where it comes from."""
from __future__ import annotations

import json

import streamlit as st

from dashboard import layout, tables
from dashboard.ui import show_figure, show_table
from zest_core import figures

layout.page("Overview")
comparison = layout.require_comparison()
result = comparison.result
verdict = result.verdict

left, middle, right, far = st.columns(4)
left.metric("Zest distance", f"{result.distance:.4f}", help=f"{result.metric} distance between the aligned signatures")
middle.metric("Relative distance", "n/a" if result.relative is None else f"{result.relative:.3f}",
              help="distance / mean distance between independently trained (unrelated) models")
interval = "n/a" if result.interval is None else f"{result.interval[0]:.3f}–{result.interval[1]:.3f}"
right.metric(f"{100 * result.level:g}% interval" if result.interval else "Interval", interval,
             help=f"bootstrap over reference images ({result.n_boot} resamples)")
far.metric("Verdict", verdict.label)
message = {"related": st.warning, "unrelated": st.success}.get(verdict.label, st.info)
message(f"**{verdict.label.capitalize()}.** {verdict.explanation}")

if result.baseline is None:
    st.info("No unrelated baseline: pick at least two independently trained zoo models on Setup "
            "(the demo zoo must be built) to get the relative distance and a verdict.")
else:
    st.caption(
        f"Baseline: mean distance {result.baseline.mean:.4f} over {len(result.baseline.pairs)} pairs of "
        f"independently trained zoo models ({', '.join(result.baseline.names)}), same reference images and config."
    )
show_figure(
    figures.distance_context(result.distance, result.interval, result.baseline, verdict.label, result.metric),
    key="overview_context", filename="distance_context",
)

st.header("The two models")
show_table(tables.model_table(comparison), key="overview_models", filename="models")

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
    )
with right:
    show_figure(
        figures.contribution_bars(classes["contribution"].to_numpy(), classes["classes"].tolist(),
                                  title="Classes contributing most", axis="contribution to the distance"),
        key="overview_classes", filename="class_contributions",
    )
top = images.head(8)
st.image([comparison.refset.images[i] for i in top["index"]], caption=top["image"].tolist(), width=84)
with st.expander("All images and classes"):
    show_table(images, key="overview_images_table", filename="image_contributions")
    show_table(classes, key="overview_classes_table", filename="class_contributions")

st.header("Report")
st.download_button(
    "Download the whole comparison (JSON)", data=lambda: json.dumps(comparison.report(), indent=1),
    file_name="zest_comparison.json", mime="application/json", key="overview_report", on_click="ignore",
)
