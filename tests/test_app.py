"""The dashboard, driven page by page with Streamlit's AppTest: widgets set, runs clicked, figures checked.

The demo zoo is the one shipped in assets/zoo (a tiny one is built when it is missing); the
zest_core computations are real, with small N and L. Every page is visited, every figure's
Plotly spec is parsed and its traces checked, and bad input must give an ``st.error`` while the app
keeps working.
"""
from __future__ import annotations

import ast
import base64
import io
import json
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # the dashboard package sits next to app.py, where `streamlit run` finds it
    sys.path.insert(0, str(ROOT))

from streamlit.testing.v1 import AppTest  # noqa: E402

from dashboard.progress import RunProgress, format_seconds  # noqa: E402
from zest_core.explain import decide_related  # noqa: E402
from zest_core.studies import ReuseResult, summarize_reuse  # noqa: E402
from zest_core.studies.calibration import CalibrationResult, summarize_calibration  # noqa: E402
from zest_core.sources.endpoint import serve_model, serve_responder  # noqa: E402
from zest_core.explain import alignment_accuracy, comparison_weight_maps  # noqa: E402

from conftest import make_cnn  # noqa: E402

APP = str(ROOT / "app.py")
PAGES = {
    "overview": "pages/1_Overview.py",
    "superpixels": "pages/2_Super-pixels.py",
    "lime": "pages/3_LIME_heatmaps.py",
    "alignment": "pages/4_Class_alignment.py",
    "epoch": "pages/5_Distance_vs_epoch.py",
    "zoo": "pages/6_Zoo_and_reuse.py",
}
SMALL = {"n": 10, "num_samples": 80, "n_boot": 30, "budget": 0}  # small N and L, no budget: fractions of a second
TIMEOUT = 180


@pytest.fixture(scope="module")
def zoo_dir(tmp_path_factory):
    """The demo zoo shipped in assets/zoo; if it is missing, a tiny one built here (one architecture, seconds)."""
    from zest_core import zoo

    try:
        return zoo.load_zoo(zoo.ZOO_DIR).root
    except zoo.ZooError:
        config = zoo.ZooConfig.tiny(
            seed=0, architectures=("small_cnn",), train_size=128, test_size=64, transfer_fractions=(0.5,),
            prune_amounts=(0.5,), epochs=2, independent_per_arch=2,
        )
        return zoo.build_zoo(tmp_path_factory.mktemp("zoo"), config).root


@pytest.fixture
def with_zoo(zoo_dir, monkeypatch):
    monkeypatch.setenv("ZEST_ZOO_DIR", str(zoo_dir))
    return zoo_dir


@pytest.fixture
def without_zoo(tmp_path, monkeypatch):
    monkeypatch.setenv("ZEST_ZOO_DIR", str(tmp_path / "no-zoo"))


@pytest.fixture
def model_files(tmp_path):
    """TorchScript files of two unrelated small CNNs, and a state_dict of a 32×32 RGB ResNet-20."""
    from zest_core.sources.architectures import build_architecture

    paths = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracing warns about the input check it cannot trace
        for name, seed in (("a", 0), ("b", 1)):
            paths[name] = tmp_path / f"model_{name}.pt"
            torch.jit.trace(make_cnn(seed), torch.zeros(1, 1, 28, 28)).save(str(paths[name]))
    paths["resnet"] = tmp_path / "resnet20_weights.pt"
    torch.save(build_architecture("resnet20").state_dict(), paths["resnet"])
    return paths


def new_app(**values) -> AppTest:
    """The Setup page, run once, with the small settings (and any other widget values) set."""
    app = AppTest.from_file(APP, default_timeout=TIMEOUT)
    app.run()
    for key, value in {**SMALL, **values}.items():
        app.session_state[key] = value
    return app.run()


def assert_ok(app: AppTest) -> None:
    assert not app.exception, [e.message for e in app.exception]


def figures(app: AppTest) -> dict[str, dict]:
    """Every Plotly chart on the page, by widget key, as its parsed figure spec."""
    return {chart.key: json.loads(chart.proto.spec) for chart in app.get("plotly_chart")}


def values(data) -> np.ndarray:
    """A trace's array, whether listed or binary-encoded (Plotly 6+ sends numpy arrays as base64 typed arrays)."""
    if isinstance(data, dict) and "bdata" in data:
        array = np.frombuffer(base64.b64decode(data["bdata"]), dtype=np.dtype(data["dtype"]))
        shape = data.get("shape")
        if isinstance(shape, str):  # "28, 28"
            shape = [int(n) for n in shape.split(",")]
        return array.reshape(shape) if shape else array
    return np.asarray(data, dtype=float)


def _title(spec: dict) -> str:
    title = spec.get("layout", {}).get("title", {})
    return title.get("text", "") if isinstance(title, dict) else str(title)


def trace_types(spec: dict) -> list[str]:
    return [trace.get("type", "scatter") for trace in spec["data"]]


def run_comparison(app: AppTest) -> AppTest:
    app.button(key="run").click().run()
    assert_ok(app)
    return app


def errors(app: AppTest) -> str:
    return " | ".join(e.value for e in app.error)


# --------------------------------------------------------------------------------------------------
# The whole tour, with the demo zoo
# --------------------------------------------------------------------------------------------------


@dataclass
class Tour:
    """The default comparison of two zoo models, run once on Setup; each page then has its own test."""

    app: AppTest
    comparison: Any
    decision: Any
    expected_null: tuple
    suspect: str
    metrics: dict
    zoo: Any
    zoo_dir: Path


@pytest.fixture(scope="module")
def tour(zoo_dir, tmp_path_factory):
    """Setup: run the default comparison, and check its distance, its matched null and its verdict."""
    patch = pytest.MonkeyPatch()
    patch.setenv("ZEST_ZOO_DIR", str(zoo_dir))
    patch.setenv("ZEST_CACHE_DIR", str(tmp_path_factory.mktemp("tour-cache")))
    with_zoo = zoo_dir
    app = new_app()
    assert_ok(app)
    assert app.session_state["a_source"] == "Demo zoo"
    assert "Press **Run comparison**" in " ".join(i.value for i in app.info)
    run_comparison(app)
    metrics = {m.label: m.value for m in app.metric}
    distance = float(metrics["Zest distance"])
    assert 0 < distance < 2
    comparison = next(iter(app.session_state["zx_results"].values()))
    assert comparison.result.distance == pytest.approx(distance, abs=5e-5)
    # Two zoo models: the matched null is the manifest's, and it holds neither model nor a relative of theirs.
    from zest_core.zoo import family, load_zoo, matched_null

    zoo = load_zoo(with_zoo)
    a, b = (comparison.choices[s].spec.removeprefix("zoo:") for s in ("A", "B"))
    expected_null = matched_null(zoo, a, b).models
    assert comparison.null.automatic and tuple(comparison.null.specs) == expected_null
    assert not set(expected_null) & (family(zoo, a) | family(zoo, b))
    assert all(zoo.entries[u].task == zoo.entries[b].task and zoo.entries[u].arch == zoo.entries[b].arch
               for u in expected_null)
    decision = decide_related(distance=comparison.result.distance, null_distances=list(comparison.null_distances.values()))
    assert metrics["Verdict"] == decision.verdict and metrics["p-value"] == f"{decision.p_value:.3g}"
    suspect = f"B ({comparison.choices['B'].label})"  # the null chart names B, never just "suspect"
    assert figures(app)["setup_null"]["data"][1]["name"] == f"{suspect}: {decision.verdict}"
    yield Tour(app, comparison, decision, expected_null, suspect, metrics, zoo, zoo_dir)
    patch.undo()


def test_setup_runs_the_default_comparison(tour):
    """The fixture's checks ran on Setup; the comparison it left is the one every page shows."""
    assert tour.app.session_state["a_source"] == "Demo zoo"
    assert tour.comparison.result.distance == pytest.approx(float(tour.metrics["Zest distance"]), abs=5e-5)


def test_overview_shows_the_verdict_its_null_why_and_the_report(tour, tmp_path):
    app, comparison, decision, expected_null, suspect, zoo = (
        tour.app, tour.comparison, tour.decision, tour.expected_null, tour.suspect, tour.zoo)
    distance = comparison.result.distance
    # 1 Overview: the calibrated verdict against its matched null, contributions, model table, JSON report.
    app.switch_page(PAGES["overview"]).run()
    assert_ok(app)
    metrics = {m.label: m.value for m in app.metric}
    assert metrics["Verdict at α = 0.05"] == decision.verdict and metrics["p-value"] == f"{decision.p_value:.3g}"
    message = " ".join(m.value for m in [*app.warning, *app.success, *app.info])
    assert f"at α = 0.05 (p = {decision.p_value:.3g})" in message and f"{len(expected_null)} matched" in message
    assert any("picked from the demo zoo's manifest" in c.value for c in app.caption)
    charts = figures(app)
    assert set(charts) >= {"overview_null", "overview_images", "overview_classes"}
    null_chart = charts["overview_null"]
    assert [t.get("name") for t in null_chart["data"]] == ["unrelated", f"{suspect}: {decision.verdict}"]
    # One row per model (no overlapping labels), the closest first: each row's name with its own distance.
    drawn = dict(zip(null_chart["data"][0]["y"], values(null_chart["data"][0]["x"]).tolist()))
    assert drawn == pytest.approx(comparison.null_distances) and sorted(drawn) == sorted(expected_null)
    assert list(drawn.values()) == sorted(drawn.values())
    assert values(null_chart["data"][1]["x"]).tolist() == [pytest.approx(comparison.result.distance)]
    assert f"p = {decision.p_value:.3g}" in _title(null_chart)
    null_table = next(d.value for d in app.dataframe if "distance to A" in d.value.columns)
    assert sorted(null_table["unrelated model"]) == sorted(expected_null)
    # The queries behind the verdict, measured per signature: N × L images, and the first 16 once more.
    total = SMALL["n"] * SMALL["num_samples"]
    from zest_core.pipeline.device import effective_batch_size, resolve_device

    batch = effective_batch_size(comparison.config.batch_size, resolve_device(comparison.config.device), (1, 28, 28))
    first = min(total, batch, 16)
    entries = comparison.query_entries()
    assert set(entries) == {"Model A", "Model B", *expected_null}
    assert all(e["images"] == total + first for e in entries.values())
    assert any(c.value.startswith("**Queries**") and "Model B:" in c.value for c in app.caption)
    assert all("images in" in text for text in null_table["queries"])
    # Why the verdict: the strongest images, A, B and the closest unrelated model side by side (issue 20).
    from zest_core.explain import EVIDENCE_NOTE, image_evidence

    evidence = image_evidence(comparison.signatures["A"], comparison.signatures["B"], comparison.null_signatures)
    why = charts["overview_why_figure"]
    strongest = evidence.most(4)
    assert trace_types(why) == ["image", *["image", "heatmap"] * 3] * 4
    titles = [a["text"] for a in why["layout"]["annotations"]]
    assert [t for t in titles if t.startswith("image #")] == [
        f"image #{n} · z = {evidence.scores[n]:.2f}" for n in strongest]
    assert titles[3].startswith(evidence.closest_unrelated(strongest[0]))
    assert any(EVIDENCE_NOTE in c.value for c in app.caption)
    app.slider(key="overview_why_count").set_value(2).run()
    assert trace_types(figures(app)["overview_why_figure"]) == ["image", *["image", "heatmap"] * 3] * 2
    # The audit report the button downloads names a `zest audit` command, and `zest verify` accepts it.
    from zest_core import figures as drawing
    from zest_core.cli import main as zest

    record = comparison.audit_record(0.05, zoo)
    assert record["command"][:2] == ["zest", "audit"] and record["audit"]["verdict"] == decision.verdict
    report = tmp_path / "dashboard_report.html"
    report.write_text(drawing.audit_report_html(record, drawing.method_null_figures(record["audit"])))
    assert zest(["verify", str(report)]) == 0
    # Every method, one verdict: the engine's --method all, Holm over Zest, ModelDiff, SAC-m and AKH.
    app.button(key="overview_all_run").click().run()
    assert_ok(app)
    every = next(d.value for d in app.dataframe if "Holm-adjusted p" in d.value.columns)
    assert list(every["method"]) == ["zest-cosine", "modeldiff", "sac", "akh"]
    assert every.iloc[0]["p-value"] == pytest.approx(decision.p_value, rel=1e-6)  # the same Zest test
    tested = every["p-value"].dropna()
    combined = min(1.0, len(tested) * tested.min())
    assert any("Holm over" in m.value and f"combined p = {combined:.3g}" in m.value for m in [*app.warning, *app.info])
    # α is the sidebar's: a stricter one can only turn "related" into "not detected".
    app.sidebar.select_slider(key="alpha").set_value(0.001).run()
    assert_ok(app)
    strict = decide_related(comparison.result.distance, list(comparison.null_distances.values()), alpha=0.001)
    assert {m.label: m.value for m in app.metric}["Verdict at α = 0.001"] == strict.verdict
    assert "α = 0.001" in _title(figures(app)["overview_null"])
    app.sidebar.select_slider(key="alpha").set_value(0.05).run()
    charts = figures(app)
    assert trace_types(charts["overview_images"]) == ["bar"]
    bars = charts["overview_images"]["data"][0]
    assert values(bars["x"]).max() == pytest.approx(comparison.result.contributions.per_image.max())
    assert len(values(charts["overview_classes"]["data"][0]["x"])) == 10
    keys = {b.proto.id for b in app.get("download_button")}
    assert len(keys) >= 6  # HTML of each figure, CSV of each table, the JSON report
    report = comparison.report(0.05)
    again = json.loads(json.dumps(report, allow_nan=False))
    assert again["distance"] == pytest.approx(distance, abs=5e-5)
    assert again["models"]["A"]["label"] == comparison.choices["A"].label
    assert len(again["contributions"]["images"]) == SMALL["n"]
    assert again["verdict"] == decision.verdict and again["audit"]["p_value"] == pytest.approx(decision.p_value)
    assert list(again["audit"]["null"]["distances"]) == list(expected_null) and again["audit"]["null"]["automatic"]
    assert "relative_distance" not in again and "baseline" not in again
    assert again["audit"]["queries"]["per_model"]["Model B"]["images"] == total + first


def test_superpixels_page(tour):
    app, comparison = tour.app, tour.comparison
    # 2 Super-pixels: the gallery, one image's numbered super-pixels, samples with predictions.
    app.switch_page(PAGES["superpixels"]).run()
    assert_ok(app)
    charts = figures(app)
    assert trace_types(charts["superpixels_grid"]) == ["image"] * SMALL["n"]
    segments = comparison.signatures["A"].segments[0]
    numbered = charts["superpixels_numbered"]
    assert trace_types(numbered) == ["image", "scatter"]
    every = [str(k) for k in range(segments.max() + 1)]
    assert numbered["data"][1]["text"] == every  # each number on hover; written where it has room
    written = [a["text"] for a in numbered["layout"]["annotations"]]
    assert set(written) <= set(every) and len(written) >= len(every) // 2
    assert trace_types(charts["superpixels_samples"]) == ["image"] * 6
    titles = [a["text"] for a in charts["superpixels_samples"]["layout"]["annotations"]]
    assert titles[0].startswith("mask 1: A ") and ", B " in titles[0]
    app.selectbox(key="superpixels_image").set_value(3).run()
    app.slider(key="superpixels_count").set_value(3).run()
    assert_ok(app)
    assert trace_types(figures(app)["superpixels_samples"]) == ["image"] * 3


def test_lime_heatmaps_page(tour):
    app, comparison = tour.app, tour.comparison
    # 3 LIME heatmaps: A, B on one symmetric scale, their difference on its own; all classes below.
    app.switch_page(PAGES["lime"]).run()
    assert_ok(app)
    charts = figures(app)
    triptych = charts["lime_triptych"]
    assert trace_types(triptych) == ["image", "heatmap"] * 3
    heatmaps = [t for t in triptych["data"] if t["type"] == "heatmap"]
    assert [h["coloraxis"] for h in heatmaps] == ["coloraxis", "coloraxis", "coloraxis2"]
    for axis in ("coloraxis", "coloraxis2"):
        scale = triptych["layout"][axis]
        assert scale["cmin"] == pytest.approx(-scale["cmax"]) and scale["cmax"] > 0
    a_values, b_values = (values(h["z"]) for h in heatmaps[:2])
    maps = comparison_weight_maps(comparison.signatures["A"], comparison.signatures["B"], 0, align="auto")
    assert triptych["layout"]["coloraxis"]["cmax"] == pytest.approx(maps.limit())  # one scale for every class
    assert charts["lime_grid"]["layout"]["coloraxis"]["cmax"] == pytest.approx(maps.limit())
    assert max(np.abs(a_values).max(), np.abs(b_values).max()) <= maps.limit() + 1e-12
    np.testing.assert_allclose(values(heatmaps[2]["z"]), a_values - b_values, atol=1e-9)
    assert trace_types(charts["lime_grid"]) == ["heatmap"] * 30
    app.selectbox(key="lime_image").set_value(1).run()
    assert_ok(app)
    app.checkbox(key="lime_unit").uncheck().run()
    assert_ok(app)


def test_class_alignment_page(tour):
    app, comparison = tour.app, tour.comparison
    # 4 Class alignment: cost matrix with the matching marked, bipartite diagram, correct matches.
    app.switch_page(PAGES["alignment"]).run()
    assert_ok(app)
    charts = figures(app)
    cost = charts["alignment_cost"]
    assert trace_types(cost)[0] == "heatmap" and values(cost["data"][0]["z"]).shape == (10, 10)
    marked = sum(len(t["x"]) for t in cost["data"][1:])
    assert marked == 10
    bipartite = charts["alignment_bipartite"]
    assert {"A's classes", "B's classes"} <= {t.get("name") for t in bipartite["data"]}
    summaries = comparison.alignments(True)
    expected = alignment_accuracy(summaries["greedy"].alignment.pairs, comparison.class_names("A"),
                                  comparison.class_names("B"))
    assert {m.label: m.value for m in app.metric}["Greedy"] == f"{expected[0]}/{expected[1]} correct"
    app.radio(key="alignment_method").set_value("hungarian").run()
    assert_ok(app)
    assert "hungarian matching" in _title(figures(app)["alignment_cost"])


def test_distance_vs_epoch_page(tour):
    app, with_zoo = tour.app, tour.zoo_dir
    # 5 Distance vs epoch: the zoo's checkpointed runs.
    app.switch_page(PAGES["epoch"]).run()
    assert_ok(app)
    assert "Compute checkpoint signatures" in " ".join(i.value for i in app.info)
    app.button(key="epoch_compute").click().run()
    assert_ok(app)
    curve = figures(app)["epoch_figure"]
    assert [t["name"].split(":")[0] for t in curve["data"]] == ["related", "unrelated"]
    from zest_core.zoo import load_zoo

    entries = load_zoo(with_zoo).entries
    run = sorted(entries[app.session_state["epoch_run_name"]].checkpoints)
    other = sorted(entries[app.session_state["epoch_other_name"]].checkpoints)
    assert values(curve["data"][0]["x"]).tolist() == run[:-1]  # t vs t+1
    assert values(curve["data"][1]["x"]).tolist() == [t for t in run if t in other]


def test_zoo_and_reuse_page(tour, tmp_path):
    app = tour.app
    # 6 Zoo and reuse: clustered distance matrix; the reuse report once there is one.
    app.switch_page(PAGES["zoo"]).run()
    assert_ok(app)
    # assets/reuse_report.json, written by `zest bench reuse`: drawn when calibrated, explained when outdated.
    shipped = json.loads((ROOT / "assets" / "reuse_report.json").read_text())
    if "negatives" in shipped:
        assert {"reuse_null", "reuse_roc", "reuse_rates"} <= set(figures(app))
    else:
        assert any("earlier, uncalibrated benchmark" in i.value for i in app.info)
    app.session_state["zoo_models"] = app.session_state["zoo_models"][:4]
    app.button(key="zoo_compute").click().run()
    assert_ok(app)
    heatmap = figures(app)["zoo_heatmap"]
    matrix = values([t for t in heatmap["data"] if t["type"] == "heatmap"][0]["z"])
    assert matrix.shape == (4, 4) and np.allclose(np.diag(matrix), 0) and np.allclose(matrix, matrix.T)
    assert sum(t["type"] == "scatter" for t in heatmap["data"]) == 3  # the dendrogram's three links
    check_reuse_benchmark(app, tmp_path)


def test_back_on_setup_the_comparison_is_shown_without_a_run(tour):
    app, metrics = tour.app, tour.metrics
    # Back on Setup, the computed comparison is shown without running it again.
    app.switch_page("app.py").run()
    assert_ok(app)
    assert {m.label: m.value for m in app.metric}["Zest distance"] == metrics["Zest distance"]


def check_reuse_benchmark(app: AppTest, tmp_path: Path) -> None:
    """The Zoo and reuse page draws a calibrated report (figures and tables), and explains an outdated one."""
    report = calibrated_report()
    path = tmp_path / "reuse.json"
    path.write_text(json.dumps(report))
    app.text_input(key="reuse_path").set_value(str(path)).run()
    assert_ok(app)
    charts = figures(app)
    boxes = charts["reuse_null"]
    assert trace_types(boxes) == ["box"] * 4  # per relation: the matched null and the related pairs
    assert "zest-cosine" in _title(boxes)
    related = [t for t in boxes["data"] if t["name"] == "related"]
    assert values(related[0]["y"]).tolist() == pytest.approx([0.1, 0.45])
    assert [t["name"].split(" ")[0] for t in charts["reuse_roc"]["data"]] == ["zest-cosine", "agreement", "chance"]
    # By hand: 0.1, 0.3 and 0.35 lie below all six null distances of their pairs, 0.45 below four: 22 / 24.
    assert "AUC 0.917" in charts["reuse_roc"]["data"][0]["name"]
    assert trace_types(charts["reuse_rates"]) == ["bar"] * 6
    tables = {tuple(d.value.columns): d.value for d in app.dataframe}
    per_relation = next(t for columns, t in tables.items() if "matched AUC" in columns and "relation" in columns)
    row = per_relation[(per_relation["relation"] == "prune-50") & (per_relation["method"] == "zest-cosine")].iloc[0]
    assert row["matched AUC"] == pytest.approx(10 / 12) and row["TPR (k/n)"] == "1/2"
    overall = next(t for columns, t in tables.items() if "FPR at α" in columns)
    assert overall.set_index("method").loc["zest-cosine", "FPR (k/n)"] == "1/4"
    assert overall.set_index("method").loc["zest-cosine", "FPR 95% high"] > 0.25
    app.selectbox(key="reuse_method").set_value("agreement").run()
    assert_ok(app)
    assert "agreement" in _title(figures(app)["reuse_null"])
    old = tmp_path / "old.json"
    old.write_text(json.dumps(_old_reuse_report().to_dict()))
    app.text_input(key="reuse_path").set_value(str(old)).run()
    assert_ok(app)
    assert any("earlier, uncalibrated benchmark" in i.value for i in app.info)
    assert "reuse_null" not in figures(app)
    app.text_input(key="reuse_path").set_value(str(tmp_path / "none.json")).run()
    assert any("No reuse benchmark report" in i.value for i in app.info)


def calibrated_report() -> dict:
    """A calibrated report (``CalibrationResult.to_dict()``) of two methods and two relations, summarised by zest_core."""
    null = [0.4, 0.5, 0.6]
    related, negatives = [], []
    for method, shift in (("zest-cosine", 0.0), ("agreement", 0.05)):
        for relation, distances in (("prune-50", (0.1, 0.45)), ("steal", (0.3, 0.35))):
            for k, d in enumerate(distances):
                verdict = "related" if d < 0.3 else "unrelated"
                related.append({"relation": relation, "method": method, "reference": "p", "suspect": f"{relation}{k}",
                                "distance": d + shift, "null": ["u0", "u1", "u2"], "null_distances": null,
                                "p_value": 0.01 if verdict == "related" else 0.3, "rank_p_value": 0.25,
                                "verdict": verdict})
        for k, (d, verdict) in enumerate([(0.5, "unrelated"), (0.2, "related"), (0.55, "unrelated"),
                                          (0.6, "unrelated")]):
            negatives.append({"method": method, "reference": "p", "suspect": f"n{k}", "distance": d,
                              "null": ["u0", "u1", "u2"], "null_distances": null, "p_value": 0.5,
                              "rank_p_value": 0.5, "verdict": verdict})
    methods, relations = ("zest-cosine", "agreement"), ("prune-50", "steal")
    summary = summarize_calibration(methods, relations, related, negatives, 0.05)
    result = CalibrationResult(methods, relations, 0.05, tuple(related), tuple(negatives), summary,
                               {"refset": {"n": 10, "provenance": "test"}, "config": {"num_samples": 80}})
    return result.to_dict()


def _old_reuse_report() -> ReuseResult:
    """A report of the earlier benchmark (relative-distance rule), which the page must not draw."""
    records = [{"method": "zest-cosine", "relation": "prune-50", "score": 0.1, "modeldiff_rule": True,
                "zest_rule": True, "relative_distance": 0.2}]
    negatives = [{"method": "zest-cosine", "relation": "unrelated", "score": 0.5, "modeldiff_rule": False,
                  "zest_rule": False, "relative_distance": 1.0}]
    summary = summarize_reuse(["zest-cosine"], ["prune-50"], records, negatives)
    return ReuseResult(("zest-cosine",), ("prune-50",), tuple(records), tuple(negatives), {}, summary, {})


def test_revisiting_a_computed_setup_shows_it_without_a_run(with_zoo):
    app = new_app()
    run_comparison(app)
    first = {m.label: m.value for m in app.metric}["Zest distance"]
    app.session_state["num_samples"] = 60
    app.run()
    assert_ok(app)
    assert not app.metric and "Press **Run comparison**" in " ".join(i.value for i in app.info)
    app.switch_page(PAGES["overview"]).run()
    assert any("setup has changed" in c.value for c in app.sidebar.caption)  # pages still show the last result
    app.switch_page("app.py").run()
    app.session_state["num_samples"] = SMALL["num_samples"]
    app.run()
    assert_ok(app)
    assert {m.label: m.value for m in app.metric}["Zest distance"] == first


def test_a_query_budget_chooses_n_and_l_and_every_model_stays_within_it(with_zoo):
    """The budget control (issue 12): each model's queries, as the model itself received them, fit in it."""
    from zest_core import ZestConfig, apply_budget, load_mnist

    app = new_app(budget=700)
    run_comparison(app)
    comparison = next(iter(app.session_state["zx_results"].values()))
    plan = comparison.budget
    assert plan is not None and plan.budget == 700 and plan.queries <= 700
    # The plan is the engine's rule on the same digits, computed here on its own.
    _, _, expected = apply_budget(700, load_mnist(SMALL["n"], split="test", seed=0), ZestConfig())
    assert (plan.images, plan.samples, plan.design) == (expected.images, expected.samples, expected.design)
    assert len(comparison.refset) == plan.images and comparison.config.num_samples == plan.samples
    assert comparison.config.mask_design == plan.design
    assert all(entry["images"] == plan.queries for entry in comparison.query_entries().values())
    app.switch_page(PAGES["overview"]).run()
    assert_ok(app)
    assert any("budget 700 queries per model" in c.value for c in app.caption)


def test_make_run_opens_with_the_default_comparison_computed(with_zoo, monkeypatch):
    """`make run` sets ZEST_AUTORUN=1: the first visit computes the default zoo comparison, once per session."""
    monkeypatch.setenv("ZEST_AUTORUN", "1")
    app = AppTest.from_file(APP, default_timeout=TIMEOUT)
    app.session_state["num_samples"] = SMALL["num_samples"]  # the default pair and N, a smaller L to stay quick
    app.run()
    assert_ok(app)
    metrics = {m.label: m.value for m in app.metric}
    assert float(metrics["Zest distance"]) > 0 and metrics["Verdict"] in ("related", "unrelated", "inconclusive")
    app.session_state["num_samples"] = 60
    app.run()
    assert not app.metric  # a changed setup waits for Run: the automatic run happens once per session


def test_distance_vs_epoch_draws_the_chosen_pair_and_honours_the_budget(with_zoo):
    """A and B with checkpoints: the epoch page draws their own curves, at the budget's N and L, with an estimate."""
    from zest_core.zoo import load_zoo

    entries = load_zoo(with_zoo).entries
    runs = [name for name, entry in entries.items() if entry.checkpoints and entry.arch == "small_cnn"]
    if len(runs) < 2:
        pytest.skip("the zoo has fewer than two checkpointed runs of one architecture")
    a, b = runs[0], runs[1]
    app = new_app(budget=1200, n=8)
    app.session_state["a_zoo"], app.session_state["b_zoo"] = a, b
    app.run()
    run_comparison(app)
    comparison = next(iter(app.session_state["zx_results"].values()))
    budgeted_l = comparison.config.num_samples
    assert app.number_input(key="num_samples_budgeted").value == budgeted_l  # the L box shows the L used
    app.switch_page(PAGES["epoch"]).run()
    assert_ok(app)
    assert app.radio(key="epoch_source").value == "Models A and B"
    assert any("queries: about" in c.value and "images/s" in c.value for c in app.caption)
    app.button(key="epoch_compute").click().run()
    assert_ok(app)
    curve = figures(app)["epoch_figure"]
    assert [t["name"] for t in curve["data"]] == [f"related: {a}, checkpoint t vs t+1", f"B: {a} vs {b}, same t"]
    assert values(curve["data"][0]["x"]).tolist() == sorted(entries[a].checkpoints)[:-1]
    # The checkpoints' signatures are the budget's: the same N and L as the comparison's.
    assert budgeted_l != SMALL["num_samples"] and any(f"L = {budgeted_l}" in c.value for c in app.caption)


def test_the_first_visit_shows_the_default_verdict_from_the_shipped_signatures(with_zoo, monkeypatch, tmp_path):
    """The zoo ships the default comparison's signatures: a first visit from an empty cache queries no model."""
    from zest_core.zoo import SHIPPED_SIGNATURES

    if not (with_zoo / SHIPPED_SIGNATURES).is_dir():
        pytest.skip("a tiny zoo built here ships no signatures")
    monkeypatch.setenv("ZEST_AUTORUN", "1")
    monkeypatch.setenv("ZEST_CACHE_DIR", str(tmp_path / "empty-cache"))
    app = AppTest.from_file(APP, default_timeout=TIMEOUT)
    app.run()
    assert_ok(app)
    comparison = next(iter(app.session_state["zx_results"].values()))
    assert len(comparison.null_signatures) >= 3 and {m.label: m.value for m in app.metric}["Verdict"] == "related"
    # Every signature came from the shipped files, checked against their keys: no model was queried now.
    assert all(count.images == 0 for count in comparison.queries_now.values()), comparison.queries_now


# --------------------------------------------------------------------------------------------------
# Without the zoo: model files, endpoints, bad input
# --------------------------------------------------------------------------------------------------


def test_without_the_zoo_files_and_endpoints_still_compare(without_zoo, model_files):
    app = new_app()
    assert_ok(app)
    assert any("demo zoo is not built" in i.value for i in app.info)
    assert app.session_state["a_source"] == "Path"
    assert app.button(key="run").disabled
    for page in PAGES.values():  # every page explains what is missing instead of failing
        app.switch_page(page).run()
        assert_ok(app)
        assert app.info
    app.switch_page("app.py").run()
    app.text_input(key="a_path").set_value(str(model_files["a"])).run()
    model = make_cnn(1)
    server, url = serve_model(model, input_shape=(1, 28, 28), class_names=[str(k) for k in range(10)])
    try:
        app.radio(key="b_source").set_value("HTTP endpoint").run()
        app.text_input(key="b_url").set_value(url).run()
        run_comparison(app)
    finally:
        server.shutdown()
    metrics = {m.label: m.value for m in app.metric}
    # No unrelated model named: no calibrated verdict, said plainly, and no stand-in null drawn.
    assert metrics["Verdict"] == "inconclusive" and metrics["p-value"] == "n/a"
    app.switch_page(PAGES["overview"]).run()
    assert_ok(app)
    assert any("no calibrated verdict" in i.value and "Name at least 3" in i.value for i in app.info)
    assert "overview_null" not in figures(app)
    app.switch_page(PAGES["alignment"]).run()
    assert_ok(app)
    assert any("Ground truth unknown" in i.value for i in app.info)


def test_models_outside_the_zoo_are_judged_against_the_unrelated_models_the_user_names(
    without_zoo, model_files, tmp_path
):
    """Named unrelated models give a calibrated verdict; model A or B named among them (or a copy) is refused."""
    unrelated = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for seed in (2, 3, 4):
            unrelated.append(tmp_path / f"unrelated_{seed}.pt")
            torch.jit.trace(make_cnn(seed), torch.zeros(1, 1, 28, 28)).save(str(unrelated[-1]))
    copy_of_b = tmp_path / "copy_of_b.pt"
    copy_of_b.write_bytes(model_files["b"].read_bytes())
    app = new_app(a_path=str(model_files["a"]), b_path=str(model_files["b"]))
    # Model A among them, or a copy of B under another name: refused by the engine, never silently dropped.
    for contaminated, culprit in ((model_files["a"], "model_a.pt"), (copy_of_b, "copy_of_b.pt")):
        app.text_area(key="null_specs").set_value("\n".join(map(str, [*unrelated[:2], contaminated]))).run()
        run_comparison(app)
        assert culprit in errors(app) and "Unrelated models (Setup)" in errors(app)
        assert "cannot be part of its own null" in errors(app)
    app.text_area(key="null_specs").set_value("\n".join(map(str, unrelated[:2]))).run()
    run_comparison(app)
    comparison = next(iter(app.session_state["zx_results"].values()))
    assert not comparison.null.automatic
    assert list(comparison.null.specs.values()) == [str(u) for u in unrelated[:2]]
    assert {m.label: m.value for m in app.metric}["Verdict"] == "inconclusive"  # two are too few

    app.text_area(key="null_specs").set_value("\n".join(map(str, unrelated))).run()
    run_comparison(app)
    comparison = app.session_state["zx_results"][app.session_state["zx_current"]]
    null = list(comparison.null_distances.values())
    assert len(null) == 3 and all(d > 0 for d in null)
    decision = decide_related(comparison.result.distance, null)
    metrics = {m.label: m.value for m in app.metric}
    assert metrics["Verdict"] == decision.verdict != "inconclusive" and metrics["p-value"] == f"{decision.p_value:.3g}"
    app.switch_page(PAGES["overview"]).run()
    assert_ok(app)
    assert any("named on Setup" in c.value and "your claim" in c.value for c in app.caption)
    assert sorted(figures(app)["overview_null"]["data"][0]["text"]) == sorted(u.name for u in unrelated)
    report = comparison.report(0.05)
    assert report["audit"]["null"]["models"] == [u.name for u in unrelated] and not report["audit"]["null"]["automatic"]


def test_bad_input_gets_a_clear_error_and_the_app_keeps_working(without_zoo, model_files, tmp_path):
    app = new_app()
    app.text_input(key="a_path").set_value(str(tmp_path / "missing.pt")).run()
    app.text_input(key="b_path").set_value(str(model_files["b"])).run()
    run_comparison(app)
    assert "no such file" in errors(app) and "Model A" in errors(app)

    # A file that is no model, uploaded.
    app.radio(key="a_source").set_value("Upload").run()
    app.file_uploader(key="a_upload").upload("garbage.pt", b"not a model at all").run()
    run_comparison(app)
    assert "garbage.pt" in errors(app) and "not a TorchScript model" in errors(app)
    # A torchvision state_dict uploaded as "auto": the advice is the form's (Format), with no staging path.
    import tempfile

    import torchvision

    assert "state_dict of resnet18" in app.selectbox(key="a_arch").options  # every architecture ARCH:PATH accepts
    buffer = io.BytesIO()
    torch.save(torchvision.models.mobilenet_v3_small(num_classes=10).state_dict(), buffer)
    app.file_uploader(key="a_upload").set_value(("weights.pt", buffer.getvalue(), "application/octet-stream")).run()
    app.selectbox(key="a_arch").set_value("auto").run()
    run_comparison(app)
    shown = errors(app)
    assert "weights.pt: holds a state_dict" in shown and "choose its architecture under Format" in shown
    assert "ARCH:" not in shown and tempfile.gettempdir() not in shown

    # A model whose input size does not match the reference images (a 32×32 RGB ResNet-20 state_dict).
    app.file_uploader(key="a_upload").set_value(
        ("resnet20_weights.pt", model_files["resnet"].read_bytes(), "application/octet-stream")
    ).run()
    app.selectbox(key="a_arch").set_value("resnet20").run()
    run_comparison(app)
    assert "takes 3-channel 32×32 images" in errors(app) and "1-channel 28×28" in errors(app)

    # An endpoint that refuses every request.
    server, url = serve_responder(lambda method, path, body: (400, b'{"error": "refused"}'))
    try:
        app.radio(key="a_source").set_value("HTTP endpoint").run()
        app.text_input(key="a_url").set_value(url).run()
        run_comparison(app)
        assert "Model A" in errors(app) and "refused" in errors(app)
    finally:
        server.shutdown()

    # A folder that does not exist as the reference set.
    app.radio(key="a_source").set_value("Path").run()
    app.text_input(key="a_path").set_value(str(model_files["a"])).run()
    app.radio(key="ref_source").set_value("Image folder").run()
    app.text_input(key="ref_folder").set_value(str(tmp_path / "no-images")).run()
    run_comparison(app)
    assert "no such folder" in errors(app)

    # And the app still works: good input gives a result.
    app.radio(key="ref_source").set_value("Built-in MNIST digits").run()
    run_comparison(app)
    assert not app.error
    assert float({m.label: m.value for m in app.metric}["Zest distance"]) > 0


def test_uploaded_reference_images_are_used(without_zoo, model_files, mnist_digits):
    from PIL import Image
    import io

    images, _ = mnist_digits
    uploads = []
    for index in range(4):
        buffer = io.BytesIO()
        Image.fromarray(images[index]).save(buffer, format="PNG")
        uploads.append((f"digit{index}.png", buffer.getvalue(), "image/png"))
    app = new_app(a_path=str(model_files["a"]), b_path=str(model_files["b"]), ref_source="Upload images")
    assert app.button(key="run").disabled
    app.file_uploader(key="ref_upload").set_value(uploads).run()
    run_comparison(app)
    comparison = next(iter(app.session_state["zx_results"].values()))
    assert len(comparison.refset) == 4 and comparison.refset.provenance.startswith("uploaded images")
    np.testing.assert_array_equal(comparison.refset.images[2], images[2])


# --------------------------------------------------------------------------------------------------
# Pieces
# --------------------------------------------------------------------------------------------------


def test_progress_reports_stage_fraction_and_eta():
    now = [0.0]
    progress = RunProgress(["Model A", "Model B"], clock=lambda: now[0])
    progress.start_job(0)
    assert progress.eta() is None and progress.fraction() == 0.0
    progress.update(3, 10, "segment")
    now[0] = 1.0
    progress.update(0, 1000, "query")
    now[0] = 3.0
    progress.update(500, 1000, "query")  # 2 s for half of job A's queries
    assert progress.fraction() == pytest.approx(0.25)
    assert progress.eta() == pytest.approx(2.0 + 5.0)  # 2 s left of A, then B at A's projected 5 s
    assert "Model A (1/2): querying perturbed images 500/1,000" in progress.text()
    now[0] = 5.0
    progress.update(1000, 1000, "query")
    progress.update(10, 10, "fit")
    progress.start_job(1)
    progress.update(1, 1, "cached")
    assert progress.fraction() == 1.0 and progress.eta() == 0.0
    assert format_seconds(125) == "2 min 05 s" and format_seconds(4.2) == "4 s"
    with pytest.raises(ValueError, match="at least one job"):
        RunProgress([])


def test_pages_are_thin_and_zest_core_has_no_streamlit():
    """Pages import the dashboard helpers and zest_core's API only; zest_core never imports Streamlit."""
    allowed = {"__future__", "hashlib", "json", "pathlib", "numpy", "pandas", "streamlit", "dashboard", "zest_core"}
    for path in [ROOT / "app.py", *sorted((ROOT / "pages").glob("*.py"))]:
        tree = ast.parse(path.read_text())
        modules = {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
        modules |= {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        assert modules <= allowed, (path.name, modules - allowed)
    for path in (ROOT / "zest_core").rglob("*.py"):
        assert "streamlit" not in path.read_text(), path.name


def test_the_dashboard_calls_zest_core_only_through_its_public_api():
    """app.py, pages/ and dashboard/ import zest_core or its subpackages, and only the names in their ``__all__``.

    The science is zest_core's; the dashboard only calls it, so a module moved inside zest_core never
    breaks a page, and nothing the dashboard needs hides in a private module.
    """
    import importlib
    import importlib.util

    wrong = []
    sources = [ROOT / "app.py", *sorted((ROOT / "pages").glob("*.py")), *sorted((ROOT / "dashboard").glob("*.py"))]
    for path in sources:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets = [(alias.name, None) for alias in node.names if alias.name.split(".")[0] == "zest_core"]
            elif isinstance(node, ast.ImportFrom) and not node.level and (node.module or "").startswith("zest_core"):
                targets = [(node.module, alias.name) for alias in node.names]
            else:
                continue
            where = f"{path.relative_to(ROOT)}:{node.lineno}"
            for module, name in targets:
                if module.count(".") > 1:
                    wrong.append(f"{where}: {module} is a module inside a subpackage, not zest_core's API")
                    break
                if name is None:
                    continue
                exported = getattr(importlib.import_module(module), "__all__", ())
                subpackage = module == "zest_core" and importlib.util.find_spec(f"zest_core.{name}") is not None
                if name not in exported and not subpackage:
                    wrong.append(f"{where}: {name} is not in {module}.__all__")
    assert not wrong, "\n".join(wrong)
