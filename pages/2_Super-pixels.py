"""Super-pixels: the reference images split into super-pixels, and perturbed samples as the models saw them."""
from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from dashboard import layout, tables
from dashboard.ui import error_boundary, show_figure, show_table
from zest_core import figures
from zest_core.explain import boundary_image, perturbed_samples, segment_centroids
from zest_core.pipeline import DESIGN_DESCRIPTIONS

SCALE = 8  # small images are enlarged (nearest neighbour) so that boundaries stay thin

layout.page("Super-pixels")
comparison = layout.require_comparison()
refset = comparison.refset
segments = comparison.signatures["A"].segments
count = len(refset)
scale = max(1, SCALE * 28 // max(refset.image_size))

counts = segments.reshape(count, -1).max(axis=1) + 1
st.caption(
    f"{comparison.config.segmentation} super-pixels: {int(np.median(counts))} per image (median), "
    f"{counts.min()}–{counts.max()}. Each of the L={comparison.config.num_samples} samples of an image "
    f"{DESIGN_DESCRIPTIONS[comparison.config.mask_design]}; a hidden super-pixel is filled with "
    f"{comparison.config.fill}."
)
shown = min(count, 48)
show_figure(
    figures.image_grid(
        [boundary_image(refset.images[i], segments[i], scale=max(1, scale // 2)) for i in range(shown)],
        [tables.image_label(comparison, i) for i in range(shown)], columns=8,
        title=f"Reference images with super-pixel boundaries ({shown} of {count})",
    ),
    key="superpixels_grid", filename="superpixel_grid",
    how="red lines bound the super-pixels Zest hides and shows; each image's local model has one weight per "
        "super-pixel.",
)

st.header("One image")
left, right = st.columns([1, 2])
index = left.selectbox("Reference image", list(range(count)), key="superpixels_image",
                       format_func=lambda i: tables.image_label(comparison, i))
samples_wanted = left.slider("Perturbed samples", min_value=1, max_value=12, value=6, key="superpixels_count")
first = left.number_input("First sample (mask number; 0 keeps every super-pixel)", min_value=0,
                          max_value=comparison.config.num_samples - 1, value=1, step=1, key="superpixels_first")
with left:
    show_figure(
        figures.numbered_segments(
            boundary_image(refset.images[index], segments[index], scale=scale), segment_centroids(segments[index]),
            scale=scale, title=f"{tables.image_label(comparison, index)}: {counts[index]} numbered super-pixels",
            areas=np.bincount(segments[index].ravel(), minlength=counts[index]),
        ),
        key="superpixels_numbered", filename=f"superpixels_{index}",
        how='the numbers name the super-pixels of the table beside; hover for one too small to label.',
    )

mask_indices = [int(m) for m in range(first, min(first + samples_wanted, comparison.config.num_samples))]
models = {slot: comparison.model(slot) for slot in ("A", "B")}  # as the comparison queried them
with error_boundary("Querying the models on the perturbed samples"):
    samples = perturbed_samples(refset, comparison.signatures["A"], index, models, mask_indices)
predictions = {slot: samples.predictions(slot) for slot in ("A", "B")}
titles = [
    f"mask {m}: A {predictions['A'][k][0]} ({predictions['A'][k][1]:.0%}), B {predictions['B'][k][0]} "
    f"({predictions['B'][k][1]:.0%})"
    for k, m in enumerate(samples.mask_indices)
]
with right:
    show_figure(
        figures.image_grid(list(samples.images), titles, columns=3, tile=190,
                           title="Perturbed samples as both models received them, with their predictions"),
        key="superpixels_samples", filename=f"perturbed_samples_{index}",
        how='each tile is one query as both models received it; the titles are what each predicted.',
    )
    hidden = [", ".join(str(k) for k in np.flatnonzero(mask == 0)) or "none" for mask in samples.masks]
    show_table(
        pd.DataFrame({  # the predictions first: the list of hidden super-pixels can be long (photographs)
            "mask": samples.mask_indices,
            "A predicts": [p[0] for p in predictions["A"]],
            "A probability": [p[1] for p in predictions["A"]],
            "B predicts": [p[0] for p in predictions["B"]],
            "B probability": [p[1] for p in predictions["B"]],
            "hidden": [f"{int((mask == 0).sum())} of {mask.size}" for mask in samples.masks],
            "hidden super-pixels": hidden,
        }),
        key="superpixels_table", filename=f"perturbed_samples_{index}",
    )
