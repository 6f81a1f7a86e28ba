"""Every Plotly figure of Zest Explorer: the dashboard draws them, and the CLI writes them as HTML files.

Drawing only, no science: each function takes a result of :mod:`zest_core.explain` or
:mod:`zest_core.studies` and returns a ``plotly.graph_objects.Figure``. This is the only place in
``zest_core`` that imports Plotly (``tests/test_architecture.py`` checks it), so ``import zest_core``
does not need it.

- :mod:`~zest_core.figures.distances`: a pair's distance against unrelated models, contributions,
  the clustered distance matrix.
- :mod:`~zest_core.figures.images`, :mod:`~zest_core.figures.weights`: reference images, super-pixels,
  LIME weights.
- :mod:`~zest_core.figures.alignment`: class matching.
- :mod:`~zest_core.figures.calibration`: the calibrated reuse benchmark and one audit's null.
- :mod:`~zest_core.figures.budget`: the query-budget study.
- :mod:`~zest_core.figures.report`: why the verdict (the evidence figure) and the self-contained HTML
  audit report.
- :mod:`~zest_core.figures.studies`: the papers' studies (epochs, reference size, unlearning, reuse).
"""
from ._style import DIVERGING, MATCH_COLORS, VERDICT_COLORS
from .alignment import bipartite, cost_matrix
from .budget import budget_figure, budget_relations_figure
from .calibration import ablation_figure, audit_null_figure, calibration_figures, matched_null_figure, rates_figure, roc_figure
from .distances import clustered_heatmap, contribution_bars
from .images import image_grid, numbered_segments, png_image
from .report import audit_report_html, evidence_figure, method_null_figures
from .studies import epoch_figure, epochs_figure, refsize_figure, reuse_figure, unlearning_figure
from .weights import weight_small_multiples, weight_triptych
from .writers import write_calibration, write_html, write_reuse, write_study

__all__ = [
    "DIVERGING",
    "MATCH_COLORS",
    "VERDICT_COLORS",
    "ablation_figure",
    "audit_null_figure",
    "audit_report_html",
    "evidence_figure",
    "method_null_figures",
    "bipartite",
    "budget_figure",
    "budget_relations_figure",
    "calibration_figures",
    "clustered_heatmap",
    "contribution_bars",
    "cost_matrix",
    "epoch_figure",
    "epochs_figure",
    "image_grid",
    "numbered_segments",
    "matched_null_figure",
    "png_image",
    "rates_figure",
    "roc_figure",
    "refsize_figure",
    "reuse_figure",
    "unlearning_figure",
    "weight_small_multiples",
    "weight_triptych",
    "write_calibration",
    "write_html",
    "write_reuse",
    "write_study",
]
