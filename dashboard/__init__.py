"""Zest Explorer's Streamlit dashboard: what ``app.py`` and the pages in ``pages/`` share.

- :mod:`dashboard.services`: the calls into zest_core's public API that the pages make (cached model
  and reference-set loaders, signatures with progress);
- :mod:`dashboard.comparison`: a comparison of two models, with the matched null it is judged against;
- :mod:`dashboard.state`: session state (finished comparisons, widget values kept across pages);
- :mod:`dashboard.setup`: the Setup page's controls and the :class:`~dashboard.setup.Setup` they make;
- :mod:`dashboard.layout`: the frame of every page (config, sidebar with the significance level α, the
  current comparison and its calibrated verdict);
- :mod:`dashboard.verdict`: the calibrated verdict and its matched null, worded and drawn;
- :mod:`dashboard.reuse`: the calibrated reuse benchmark's report for the Zoo and reuse page;
- :mod:`dashboard.tables`, :mod:`dashboard.ui`, :mod:`dashboard.progress`: tables, widgets with
  downloads and error boundaries, and run progress.

The pages stay thin: they read the current comparison from session state, call zest_core through
:mod:`dashboard.services` (the science lives in :mod:`zest_core.explain`), and draw with
:mod:`zest_core.figures`. No Streamlit import reaches ``zest_core``.
"""
