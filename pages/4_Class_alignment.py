"""Class alignment: the class-by-class cost matrix, the greedy and Hungarian matchings, and how right they are."""
from __future__ import annotations

import streamlit as st

from dashboard import layout, tables
from dashboard.ui import error_boundary, show_figure, show_table
from zest_core import figures

layout.page("Class alignment")
comparison = layout.require_comparison()
names_a, names_b = comparison.class_names("A"), comparison.class_names("B")

st.markdown(
    "Each cell is the cosine distance between a class row of A's signature and one of B's. A model whose "
    "classes are renamed or reordered (or that has a subset of the classes) is matched back before the "
    "distance is taken: **greedy** (the authors' rule) repeatedly takes the smallest remaining cell, "
    "**Hungarian** minimises the total."
)
left, right = st.columns(2)
method = left.radio("Matching shown", ["greedy", "hungarian"], key="alignment_method", horizontal=True,
                    index=["greedy", "hungarian"].index(comparison.result.alignment_method or "greedy"))
truth = right.checkbox(
    "Class names are the ground truth", value=comparison.ground_truth, key="alignment_truth",
    help="True for demo-zoo models: a match is correct iff both classes have the same name.",
)
with error_boundary("Matching the classes"):
    summaries = comparison.alignments(truth)
summary = summaries[method]
pairs = summary.alignment.pairs
correct = [names_a[i] == names_b[j] if truth else None for i, j in pairs]

columns = st.columns(len(summaries))
for column, (name, item) in zip(columns, summaries.items()):
    value = f"{item.correct}/{item.comparable} correct" if item.correct is not None else f"cost {item.total_cost:.3f}"
    column.metric(name.capitalize(), value, help=f"total cost {item.total_cost:.4f}")
if not truth:
    st.info("Ground truth unknown: the class names of these models are not known to mean the same classes "
            "(tick the box above if they do).")
used = comparison.result.alignment_method
st.caption(
    f"The distance on the other pages used: {used + ' matching' if used else 'no matching (same classes, same order)'}"
    f" (alignment setting '{comparison.result.align}')."
)

left, right = st.columns([3, 2])
with left:
    show_figure(figures.cost_matrix(summary.alignment.cost, pairs, names_a, names_b, correct, method),
                key="alignment_cost", filename=f"class_cost_{method}",
                how="dark cells are class pairs whose local explanations agree; the marked cells are the "
                    "matching.")
with right:
    show_figure(figures.bipartite(pairs, summary.alignment.cost, names_a, names_b, correct, method),
                key="alignment_bipartite", filename=f"class_matching_{method}",
                how="each line matches one of A's classes to one of B's; green is right, red wrong when the "
                    "names are known.")
st.subheader("Greedy vs Hungarian")
st.caption(f"The two matchings differ for {tables.differing_pairs(summaries)} of A's {len(names_a)} classes.")
show_table(tables.alignment_table(summaries), key="alignment_methods", filename="greedy_vs_hungarian")
st.subheader(f"The {method} matching")
show_table(tables.pairs_table(summary, names_a, names_b, correct), key="alignment_pairs", filename=f"pairs_{method}")
