"""Why the verdict, as the Overview shows it: the images that carry the most evidence, and the report to hand over.

The evidence is zest_core's (:func:`zest_core.explain.image_evidence`, through
:meth:`dashboard.comparison.PairComparison.evidence`); the pictures are :func:`zest_core.figures.evidence_figure`;
the report is :func:`zest_core.figures.audit_report_html` of :meth:`PairComparison.audit_record`. This
module only lays them out.
"""
from __future__ import annotations

import pandas as pd
import streamlit as st

from zest_core import Zoo, figures
from zest_core.explain import EVIDENCE_NOTE

from .comparison import PairComparison
from .ui import show_figure, show_table


def show_why(comparison: PairComparison, key: str) -> None:
    """The strongest images side by side (reference image, A, B, the closest unrelated model) and their table."""
    evidence = comparison.evidence()
    if evidence is None:
        st.info("Why the verdict needs at least 2 unrelated models to compare B with, image by image.")
        return
    st.caption(
        "On each reference image, how unusually close B's local model is to A's compared with the unrelated "
        "models' (z: the gap in the null's standard deviations of log local distances). Red raises the class "
        "score, blue lowers it; A, B and the unrelated model share one colour scale."
    )
    st.caption(f"**{EVIDENCE_NOTE}**")
    count = st.slider("Images", min_value=1, max_value=min(8, evidence.num_images), value=min(4, evidence.num_images),
                      key=f"{key}_count", help="How many of the images with the most evidence to draw")
    views = comparison.evidence_views(evidence, count)
    names = (f"A ({comparison.choices['A'].label})", f"B ({comparison.choices['B'].label})")
    show_figure(figures.evidence_figure(comparison.refset.images, comparison.signatures["A"].segments, views,
                                        names=names), key=f"{key}_figure", filename="why_the_verdict")
    with st.expander("Every image's evidence"):
        rows = [{"image": n, "z": evidence.scores[n], "d(A, B) on the image": evidence.suspect_distances[n],
                 "unrelated at least as close": int(evidence.closer_nulls[n]),
                 "closest unrelated": evidence.closest_unrelated(n)} for n in evidence.most(evidence.num_images)]
        show_table(pd.DataFrame(rows), key=f"{key}_table", filename="image_evidence")


def report_button(comparison: PairComparison, alpha: float, zoo: Zoo | None, key: str) -> None:
    """A download button for the self-contained HTML audit report of the comparison at level ``alpha``."""
    def html() -> str:
        record = comparison.audit_record(alpha, zoo)
        drawn = figures.method_null_figures(record["audit"], suspect=f"B ({comparison.choices['B'].label})")
        evidence = comparison.evidence()
        if evidence is not None:
            drawn.append(figures.evidence_figure(
                comparison.refset.images, comparison.signatures["A"].segments, comparison.evidence_views(evidence, 4),
                names=("A (reference)", "B (suspect)")))
        return figures.audit_report_html(record, drawn)

    st.download_button(
        "Download the audit report (HTML)", data=html, file_name="zest_audit.html", mime="text/html",
        key=key, on_click="ignore",
        help="One self-contained file (opens offline): the verdict, the null, the evidence, fingerprints, config"
             + ("" if comparison.audit_argv is None else ", and the `zest audit` command that `zest verify` re-checks"),
    )
    if comparison.audit_argv is None:
        st.caption("This comparison's inputs (an upload, a folder, a seed other than 0, or the L1/L∞ metric) cannot "
                   "be named on the command line, so its report carries no command for `zest verify`.")
