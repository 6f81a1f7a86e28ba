"""Zest Explorer: point-and-click comparison of two image classifiers (``streamlit run app.py``).

This is the Setup page: choose models A and B, the reference images and the parameters, then run.
The pages in ``pages/`` show what the comparison found.
"""
from __future__ import annotations

import streamlit as st

from dashboard import layout, state
from dashboard.comparison import run_comparison
from dashboard.setup import budget_plan, missing_inputs, null_count, render_controls
from dashboard.ui import error_boundary, estimate_caption, with_progress
from dashboard.verdict import p_text, show_verdict

zoo, zoo_message, _ = layout.page("Setup")
st.markdown(
    "Compare two image classifiers from their predictions alone with **Zest** (Jia et al., ICLR 2023): "
    "both models answer on the same masked super-pixel versions of N reference images, a linear model "
    "(LIME) is fitted per image, and the two sets of local models are compared by cosine distance. "
    "Whether B is derived from A is then tested against the distances from A to models trained independently "
    "for B's task (the matched null), at the significance level α set in the sidebar."
)
if zoo is None:
    st.info(f"{zoo_message} You can still compare model files, `ARCH:weights` specs or HTTP endpoints.")

setup = render_controls(zoo, zoo_message)
st.divider()

missing = missing_inputs(setup)
stored = state.stored_comparison(setup.key())
run = st.button("Run comparison", key="run", type="primary", disabled=bool(missing))
if state.autorun_once():  # `make run`: the first visit opens with the default comparison computed
    run = run or (stored is None and not missing)
if missing:
    st.info(f"Choose {', '.join(missing)} to run a comparison.")
    st.stop()
if stored is None and not run:  # before a run that may take a while: how much it asks, and for how long
    planned = budget_plan(setup)
    if planned or not setup.budget:
        n, samples = planned or (setup.refset.n, setup.config.num_samples)
        st.caption(estimate_caption(2 + null_count(setup, zoo), n, samples, setup.budget))

if stored is not None and not run:
    state.store_comparison(stored)  # revisiting a computed setup shows it at once
elif run:
    with error_boundary("Loading the reference images"):
        refset, config, plan = setup.budgeted(setup.refset.load())
    comparison = with_progress("The comparison", lambda sink: run_comparison(
        setup.key(), {"A": setup.model_a, "B": setup.model_b}, refset, config,
        metric=setup.metric, align=setup.align, unrelated=setup.unrelated, n_boot=setup.n_boot,
        level=setup.level, seed=setup.seed, zoo=zoo, sink=sink, budget=plan,
        audit_argv=setup.audit_argv(None if zoo is None else str(zoo.root)), adapt=setup.input_adapter,
    ))
    state.store_comparison(comparison)
    st.rerun()  # draw the page (and the sidebar's summary) again, now with the result

if stored is None:
    st.info("Press **Run comparison** to compute the signatures of both models (cached for the next time).")
    st.stop()

audit = layout.current_audit(stored)
if audit is None:
    st.stop()
left, middle, right = st.columns(3)
left.metric("Zest distance", f"{stored.result.distance:.4f}",
            help=f"{stored.result.metric} distance between the signatures")
middle.metric("p-value", p_text(audit.decision.p_value), help="is d(A, B) smaller than d(A, U) for unrelated U?")
right.metric("Verdict", audit.decision.verdict, help=f"at α = {audit.decision.alpha:g} (set it in the sidebar)")
show_verdict(stored, audit, key="setup_null")
st.success(
    f"{stored.title}: computed in {stored.timings.get('total_s', 0.0):.1f} s. "
    "The pages on the left explain the result."
)
