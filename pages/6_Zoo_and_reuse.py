"""Zoo and reuse: distances between many models as a clustered heatmap, and the reuse benchmark's report."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pandas as pd
import streamlit as st

from dashboard import compute, figures, layout
from dashboard.ui import default, error_boundary, need, show_figure, show_table
from zest_core import signature_distance_matrix
from zest_core.explain import cluster_models, read_reuse_report, reuse_rows

REUSE_REPORT = Path(__file__).resolve().parents[1] / "assets" / "reuse_report.json"
MATRIX_KEY = "zx_matrix_done"
DEFAULT_MODELS = 8

zoo, zoo_message, setup = layout.page("Zoo and reuse")

st.header("Distance matrix")
st.caption("Signatures use the reference images and parameters set on Setup; rows and columns follow the "
           "dendrogram of average-linkage clustering.")
comparison = compute.current_comparison()
specs: dict[str, str] = {}
if comparison is not None:
    for slot in ("A", "B"):
        specs[f"{slot}: {comparison.choices[slot].label}"] = comparison.choices[slot].spec
if zoo is not None:
    for name in zoo.entries:
        if f"zoo:{name}" not in specs.values():  # A or B already is this zoo model
            specs[name] = f"zoo:{name}"
else:
    st.info(f"{zoo_message} The matrix can only hold the models of the current comparison.")
need(len(specs) >= 2, "Run a comparison on Setup, or build the demo zoo, to have models to compare.")
suggested = [name for name in specs if name.startswith(("A: ", "B: "))]  # the current comparison's models
if zoo is not None:  # then some independently trained models, and the first source's children (digits task)
    suggested += [n for n in zoo.independent() if n in specs][:DEFAULT_MODELS // 2]
    suggested += [c for _, c, _ in zoo.pairs() if c in specs and zoo.entries[c].task == "digits"]
suggested = list(dict.fromkeys(suggested))[:DEFAULT_MODELS]
default("zoo_models", suggested)
# Forget models that are no longer offered (another comparison ran since).
st.session_state["zoo_models"] = [n for n in st.session_state["zoo_models"] if n in specs]
chosen = st.multiselect("Models", list(specs), key="zoo_models")
need(len(chosen) >= 2, "Choose at least two models.")

key = hashlib.sha256(json.dumps([[specs[n] for n in chosen], setup.refset.__dict__, setup.config.to_dict()],
                                default=str, sort_keys=True).encode()).hexdigest()[:24]
done = st.session_state.setdefault(MATRIX_KEY, set())
if st.button("Compute distance matrix", key="zoo_compute", type="primary") and key not in done:
    with error_boundary("Loading the reference images"):
        refset = setup.refset.load()
    bar = st.progress(0.0, text="Starting…")
    with error_boundary("Computing the signatures"):
        try:
            compute.model_signatures({n: specs[n] for n in chosen}, refset, setup.config,
                                     lambda p: bar.progress(p.fraction(), text=p.text()))
        finally:
            bar.empty()
    done.add(key)
if key in done:
    with error_boundary("Computing the distances"):
        signatures = compute.model_signatures({n: specs[n] for n in chosen}, setup.refset.load(), setup.config)
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
        "`zest_core.studies.benchmarks.write_reuse_report` writes for `reuse_benchmark` over the demo zoo's "
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
