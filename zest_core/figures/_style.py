"""Colours and the template shared by the figures (one definition each, whichever page or file draws them)."""
from __future__ import annotations

DIVERGING = "RdBu_r"  # negative weights blue, positive red, white at 0
VERDICT_COLORS = {"related": "#d62728", "not detected": "#1f77b4", "inconclusive": "#ff7f0e", "unknown": "#7f7f7f"}
MATCH_COLORS = {True: "#2ca02c", False: "#d62728", None: "#1f77b4"}
TEMPLATE = "plotly_white"  # the studies' figures, written as HTML reports
# One colour per similarity method, in every figure that draws methods side by side (rates, ROC, budget).
METHOD_COLORS = {
    "zest-cosine": "#1f77b4", "zest-l2": "#aec7e8", "modeldiff": "#9467bd", "sac": "#8c564b", "akh": "#17becf",
    "agreement": "#bcbd22", "cka": "#e377c2", "all": "#2ca02c",
}
OTHER_COLOR = "#7f7f7f"


def method_color(method: str) -> str:
    """The colour of ``method`` (grey for one without its own)."""
    return METHOD_COLORS.get(method, OTHER_COLOR)
