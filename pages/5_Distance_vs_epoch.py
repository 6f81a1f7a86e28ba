"""Distance vs epoch: how far apart checkpoints of one training run are, against an unrelated run (Zest Fig. 2)."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import comparison, layout, services, state, uploads
from dashboard.ui import compute_once, error_boundary, estimate_caption, need, show_figure, show_table
from zest_core import figures
from zest_core.explain import checkpoint_specs

SOURCES = ("Models A and B", "Demo zoo run", "Folder of checkpoints")
NONE = "(none)"

zoo, zoo_message, setup = layout.page("Distance vs epoch")
st.markdown(
    "A model is close to its own later checkpoints and far from an independently trained model at the same "
    "epoch. The first curve is checkpoint t of A's run against its checkpoint t+k; the second is checkpoint t of "
    "A's run against checkpoint t of B's (or of another run). Signatures use the reference images, parameters "
    "and query budget set on Setup."
)
pair = comparison.pair_series(state.current_comparison(), zoo)
source = st.radio("Checkpoint series", SOURCES, key="epoch_source", horizontal=True,
                  index=0 if pair else (1 if zoo is not None else 2))
series: dict[str, list[tuple[int, str]]] = {}
run_name, other_name, other_is_pair = None, None, False
if source == SOURCES[0]:
    comparison = state.current_comparison()
    need(comparison is not None, "Run a comparison on Setup first: this view draws the curves of its A and B.")
    need(pair is not None,
         f"A ({comparison.choices['A'].label}) and B ({comparison.choices['B'].label}) need per-epoch checkpoints "
         "(demo zoo runs with checkpoints: the seeds and independent models); one of them has none. Pick a run "
         "from the demo zoo or a folder of checkpoints above.")
    (run_name, run), (other_name, other) = pair.items()
    series = {run_name: run, other_name: other}
    other_is_pair = True
elif source == SOURCES[1]:
    need(zoo is not None, f"{zoo_message} Use a folder of checkpoints instead.")
    runs = [name for name in zoo.entries if services.zoo_checkpoints(zoo, name)]
    need(len(runs) > 0, "No model of the demo zoo has per-epoch checkpoints.")
    left, right = st.columns(2)
    run_name = left.selectbox("Run", runs, key="epoch_run_name", format_func=lambda n: services.zoo_label(zoo, n))
    others = [NONE] + [n for n in runs if n != run_name]
    unrelated_default = next((k for k, n in enumerate(others) if n != NONE and zoo.entries[n].source != run_name), 0)
    other_name = right.selectbox("Unrelated run", others, index=unrelated_default, key="epoch_other_name",
                                 format_func=lambda n: n if n == NONE else services.zoo_label(zoo, n))
    series[run_name] = services.zoo_series(zoo, run_name)
    if other_name != NONE:
        series[other_name] = services.zoo_series(zoo, other_name)
    else:
        other_name = None
else:
    left, middle, right = st.columns(3)
    folder = left.text_input("Folder of the run's checkpoints", key="epoch_folder",
                             placeholder="/path/to/run (files named like epoch_3.pt)")
    other = middle.text_input("Folder of an unrelated run (optional)", key="epoch_other_folder")
    arch = right.selectbox("Format", ["auto", *uploads.upload_architectures()], key="epoch_arch",
                           format_func=lambda a: "TorchScript or ONNX (auto)" if a == "auto" else f"state_dict of {a}")
    need(bool(folder.strip()),
         "Enter the folder of a training run's checkpoint files (the epoch is the last number in each name).")
    with error_boundary("Reading the checkpoint folder"):
        run_name = folder.strip()
        series[run_name] = checkpoint_specs(run_name, arch=None if arch == "auto" else arch)
        if other.strip():
            other_name = other.strip()
            series[other_name] = checkpoint_specs(other_name, arch=None if arch == "auto" else arch)

epochs = [t for t, _ in series[run_name]]
need(len(epochs) >= 2, f"{run_name} has {len(epochs)} checkpoint(s); the curves need at least two.")
if other_name is not None and [t for t, _ in series[other_name]][:len(epochs)] != epochs[:len(series[other_name])]:
    st.error(f"The unrelated run's checkpoints are at epochs {[t for t, _ in series[other_name]]}, the run's at "
             f"{epochs}: the unrelated curve compares checkpoints of the same epochs, so both runs need the same ones.")
    st.stop()
if len(epochs) > 2:
    k = st.slider("Checkpoint gap k", min_value=1, max_value=len(epochs) - 1, value=1, key="epoch_k",
                  help="The related curve compares each checkpoint with the k-th next one.")
else:
    k = 1
    st.caption("Two checkpoints: the gap k is 1.")

with error_boundary("Loading the reference images"):
    refset, config = setup.budgeted_inputs()  # the budget's N and L, as every other signature of this setup
checkpoints = sum(len(v) for v in series.values())
st.caption(estimate_caption(checkpoints, len(refset), config.num_samples, setup.budget))
computed = compute_once(
    "Compute checkpoint signatures", key="epoch_compute", token=setup.inputs_key(series),
    what="Computing the checkpoint signatures", load_refset=lambda: refset,
    work=lambda images, sink: services.series_signatures(series, images, config, sink),
)
need(computed, f"Press **Compute checkpoint signatures**: {checkpoints} checkpoints "
               "(signatures are cached, so only new ones take time).")

with error_boundary("Computing the distances"):
    curves = services.epoch_distance_curves(
        series[run_name], series.get(other_name) if other_name else None, refset, config,
        k=k, metric=setup.metric, align=setup.align,
    )
second = "B" if other_is_pair else "unrelated"
show_figure(figures.epoch_figure(curves, run=run_name, other=other_name, metric=setup.metric, other_role=second),
            key="epoch_figure", filename=f"distance_vs_epoch_k{k}")
st.caption("How to read: the solid curve is how far the run moves in k epochs; the dashed one how far the other "
           "run is at the same epoch. A derived model stays near the solid curve's scale; an independent one "
           "stays well above it.")
rows = [{"epoch t": t, "curve": f"{run_name}: t vs t+{k}", "distance": d}
        for t, d in zip(curves.related_epochs, curves.related)]
rows += [{"epoch t": t, "curve": f"{run_name} vs {other_name} ({second}), same t", "distance": d}
         for t, d in zip(curves.unrelated_epochs, curves.unrelated)]
show_table(pd.DataFrame(rows), key="epoch_table", filename=f"distance_vs_epoch_k{k}")
