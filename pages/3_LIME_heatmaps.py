"""LIME heatmaps: A's and B's per-super-pixel weights painted on a reference image, side by side."""
from __future__ import annotations

import streamlit as st

from dashboard import layout, tables
from dashboard.ui import error_boundary, show_figure
from zest_core import figures
from zest_core.explain import comparison_weight_maps, symmetric_limit

layout.page("LIME heatmaps")
comparison = layout.require_comparison()
refset = comparison.refset
names_a, names_b = comparison.class_names("A"), comparison.class_names("B")

left, middle, right = st.columns(3)
index = left.selectbox("Reference image", list(range(len(refset))), key="lime_image",
                       format_func=lambda i: tables.image_label(comparison, i))
unit = right.checkbox(
    "Scale as the cosine distance sees them", value=comparison.result.metric == "cosine", key="lime_unit",
    help="Divide each signature by its norm first, so that a model with larger logits does not dominate.",
)
with error_boundary("Painting the weights"):
    maps = comparison_weight_maps(
        comparison.signatures["A"], comparison.signatures["B"], index, align=comparison.result.align, unit_norm=unit
    )
pairs = maps.pairs
labels = [f"A:{names_a[i]} ↔ B:{names_b[j]}" for i, j in pairs]
default_row = 0
if refset.labels is not None:  # start on the image's own class when the names say which it is
    own = refset.class_names[refset.labels[index]] if refset.class_names else str(refset.labels[index])
    default_row = next((m for m, (i, _) in enumerate(pairs) if names_a[i] == own), 0)
row = middle.selectbox("Class", list(range(len(pairs))), index=default_row, key=f"lime_class_{index}",
                       format_func=lambda m: labels[m])
small = symmetric_limit(maps.difference[row]) < 0.25 * maps.limit()  # a small difference: shown small by default
shared = st.checkbox("A − B on A's and B's colour scale", value=small, key=f"lime_shared_{index}_{row}",
                     help="On its own scale any difference, however small, fills the colour range.")
st.caption(
    "Red: the super-pixel raises the class score when shown; blue: it lowers it. A and B share one colour "
    f"scale, symmetric around 0; A − B {'shares it' if shared else 'has its own'}. Classes are matched as the "
    f"distance matches them ({comparison.result.alignment_method or 'no matching: same class order'})."
)
show_figure(
    figures.weight_triptych(refset.images[index], maps, row, names=(names_a[pairs[row, 0]], names_b[pairs[row, 1]]),
                            shared_difference_scale=shared),
    key="lime_triptych", filename=f"lime_image{index}_class{row}",
    how="where A and B are painted alike, B kept A's reasoning on this image; A − B shows where they differ.",
)
show_figure(figures.weight_small_multiples(maps, names_a, names_b), key="lime_grid", filename=f"lime_image{index}_all",
            how='one column per matched class: rows A, B and their difference on one image.')
