"""Colours and the template shared by the figures (one definition each, whichever page or file draws them)."""
from __future__ import annotations

DIVERGING = "RdBu_r"  # negative weights blue, positive red, white at 0
VERDICT_COLORS = {"related": "#d62728", "not detected": "#1f77b4", "inconclusive": "#ff7f0e", "unknown": "#7f7f7f"}
MATCH_COLORS = {True: "#2ca02c", False: "#d62728", None: "#1f77b4"}
TEMPLATE = "plotly_white"  # the studies' figures, written as HTML reports
