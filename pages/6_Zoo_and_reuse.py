"""Zoo and reuse: distances between many models as a clustered heatmap, and the reuse benchmark's report."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

from dashboard import layout, services, state
from dashboard.state import default
from dashboard.ui import compute_once, error_boundary, need, show_figure, show_table
from zest_core import figures, signature_distance_matrix
from zest_core.explain import cluster_models
from zest_core.studies import read_reuse_report, reuse_rows

REUSE_REPORT = Path(__file__).resolve().parents[1] / "assets" / "reuse_report.json"
DEFAULT_MODELS = 8

zoo, zoo_message, setup = layout.page("Zoo and reuse")

st.header("Distance matrix")
st.caption("Signatures use the reference images and parameters set on Setup; rows and columns follow the "
           "dendrogram of average-linkage clustering.")
specs = services.matrix_candidates(state.current_comparison(), zoo)
if zoo is None:
    st.info(f"{zoo_message} The matrix can only hold the models of the current comparison.")
need(len(specs) >= 2, "Run a comparison on Setup, or build the demo zoo, to have models to compare.")
default("zoo_models", services.suggested_models(specs, zoo, DEFAULT_MODELS))
# Forget models that are no longer offered (another comparison ran since).
st.session_state["zoo_models"] = [n for n in st.session_state["zoo_models"] if n in specs]
chosen = st.multiselect("Models", list(specs), key="zoo_models")
need(len(chosen) >= 2, "Choose at least two models.")

chosen_specs = {n: specs[n] for n in chosen}
computed = compute_once(
    "Compute distance matrix", key="zoo_compute", token=setup.inputs_key(list(chosen_specs.values())),
    what="Computing the signatures", load_refset=setup.refset.load,
    work=lambda refset, sink: services.model_signatures(chosen_specs, refset, setup.config, sink),
)
if computed:
    with error_boundary("Computing the distances"):
        signatures = services.model_signatures(chosen_specs, setup.refset.load(), setup.config)
        matrix = signature_distance_matrix([signatures[n] for n in chosen], setup.metric, setup.align)
        clustering = cluster_models(matrix)
    show_figure(figures.clustered_heatmap(matrix, chosen, clustering, setup.metric), key="zoo_heatmap",
                filename="distance_matrix")
    order = [chosen[i] for i in clustering.order]
    ordered = pd.DataFrame(matrix, index=chosen, columns=chosen).loc[order, order]
    show_table(ordered.rename_axis("model").reset_index(), key="zoo_matrix_table", filename="distance_matrix")
else:
    st.info(f"Press **Compute distance matrix** for {len(chosen)} models (cached signatures take no time).")

st.header("Reuse benchmark: Zest vs ModelDiff")
path = st.text_input("Report file", value=str(REUSE_REPORT), key="reuse_path")
if not Path(path).is_file():
    st.info(
        f"No reuse benchmark report at {path}. It is the report.json that "
        "`zest_core.studies.write_reuse_report` writes for `reuse_benchmark` over the demo zoo's "
        f"(source, child, relation) pairs; save it as {REUSE_REPORT.relative_to(REUSE_REPORT.parents[1])} "
        "(or enter its path above) to see it here."
    )
else:
    with error_boundary("Reading the reuse report"):
        report = read_reuse_report(path)
        rows = pd.DataFrame(reuse_rows(report))
    refset = report.get("metadata", {}).get("refset", {})
    st.caption(
        f"{len(report['relations'])} relations, methods {', '.join(report['methods'])}; reference set: "
        f"{refset.get('n', '?')} images ({refset.get('provenance', '?')}). Zest rule: relative distance < 1; "
        "ModelDiff rule: closer to the parent than every unrelated model. On the unrelated rows the two "
        "accuracy columns are false-positive rates."
    )
    show_table(rows, key="reuse_table", filename="reuse_benchmark")
