"""Zoo and reuse: distances between many models as a clustered heatmap, and the calibrated reuse benchmark drawn."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import comparison, layout, reuse, services, state
from dashboard.setup import Setup
from dashboard.state import default
from dashboard.ui import compute_once, error_boundary, estimate_caption, show_figure, show_table
from zest_core import Zoo, figures, signature_distance_matrix
from zest_core.explain import cluster_models

DEFAULT_MODELS = 8


def distance_matrix(zoo: Zoo | None, zoo_message: str, setup: Setup) -> None:
    """The clustered distance matrix of the models chosen (the current comparison's and the zoo's)."""
    st.header("Distance matrix")
    st.caption("Signatures use the reference images and parameters set on Setup; rows and columns follow the "
               "dendrogram of average-linkage clustering.")
    specs = comparison.matrix_candidates(state.current_comparison(), zoo)
    if zoo is None:
        st.info(f"{zoo_message} The matrix can only hold the models of the current comparison.")
    if len(specs) < 2:
        st.info("Run a comparison on Setup, or build the demo zoo, to have models to compare.")
        return
    default("zoo_models", comparison.suggested_models(specs, zoo, DEFAULT_MODELS))
    # Forget models that are no longer offered (another comparison ran since).
    st.session_state["zoo_models"] = [n for n in st.session_state["zoo_models"] if n in specs]
    chosen = st.multiselect("Models", list(specs), key="zoo_models")
    if len(chosen) < 2:
        st.info("Choose at least two models.")
        return
    chosen_specs = {n: specs[n] for n in chosen}
    with error_boundary("Loading the reference images"):
        refset, config = setup.budgeted_inputs()  # the budget's N and L, as every other signature of this setup
    st.caption(estimate_caption(len(chosen), len(refset), config.num_samples, setup.budget))
    computed = compute_once(
        "Compute distance matrix", key="zoo_compute", token=setup.inputs_key(list(chosen_specs.values())),
        what="Computing the signatures", load_refset=lambda: refset,
        work=lambda images, sink: services.model_signatures(chosen_specs, images, config, sink),
    )
    if not computed:
        st.info(f"Press **Compute distance matrix** for {len(chosen)} models (cached signatures take no time).")
        return
    with error_boundary("Computing the distances"):
        signatures = services.model_signatures(chosen_specs, refset, config)
        matrix = signature_distance_matrix([signatures[n] for n in chosen], setup.metric, setup.align)
        clustering = cluster_models(matrix)
    show_figure(figures.clustered_heatmap(matrix, chosen, clustering, setup.metric), key="zoo_heatmap",
                filename="distance_matrix",
                how="dark cells are close models; the dendrogram order puts each lineage together.")
    order = [chosen[i] for i in clustering.order]
    ordered = pd.DataFrame(matrix, index=chosen, columns=chosen).loc[order, order]
    show_table(ordered.rename_axis("model").reset_index(), key="zoo_matrix_table", filename="distance_matrix")


def reuse_benchmark() -> None:
    """The calibrated reuse benchmark's report: matched-null boxes, ROC curves, rates, and its tables."""
    st.header("Reuse benchmark: calibrated against the matched null")
    path = st.text_input("Report file", value=str(reuse.SHIPPED_REPORT), key="reuse_path")
    with error_boundary("Reading the reuse report"):
        report, why_not = reuse.load_reuse_report(path)
    if report is None:
        st.info(why_not)
        return
    st.caption(reuse.describe(report))
    default("reuse_method", report["methods"][0], report["methods"])  # another report may lack the method chosen
    method = st.selectbox("Method", report["methods"], key="reuse_method")
    show_figure(figures.matched_null_figure(report, method), key="reuse_null", filename=f"matched_null_{method}",
                how="per relation, red points are children's distances to their source, grey the null's; "
                    "red below grey is detectable.")
    show_figure(figures.rates_figure(report), key="reuse_rates", filename="reuse_rates",
                how='one colour per method in every panel; the FPR bars must stay under the dotted α line.')
    show_figure(figures.roc_figure(report), key="reuse_roc", filename="reuse_roc",
                how="a curve in the top-left corner separates children from the null at every threshold; "
                    "the diagonal is chance.")
    st.subheader("False-positive rate and power per method")
    st.caption(f"FPR: the fraction of unrelated pairs called related at α = {report['alpha']:g} (Clopper–Pearson "
               "95% interval); it must stay at most α. TPR: the related pairs called related. The pooled AUC "
               "compares against every unrelated pair instead of the matched null (secondary).")
    show_table(reuse.overall_frame(report), key="reuse_overall", filename="reuse_overall")
    st.subheader("Per relation")
    show_table(reuse.relation_frame(report), key="reuse_table", filename="reuse_benchmark")


zoo, zoo_message, setup = layout.page("Zoo and reuse")
distance_matrix(zoo, zoo_message, setup)
reuse_benchmark()
