"""Zest Explorer's Streamlit dashboard: UI helpers shared by ``app.py`` and the pages in ``pages/``.

The pages stay thin: they read the current comparison from session state, call ``zest_core``
(computations live in :mod:`zest_core.explain`) through the cached functions of
:mod:`dashboard.compute`, and draw with :mod:`dashboard.figures`. No Streamlit import reaches
``zest_core``.
"""
