"""The query-budget study (issue 12, item 4): one query pass serves every L, and the budget grid's bookkeeping.

The refitted signatures are compared with ``compute_signature`` run at each L on its own: an
independent path (its own probe, batches and streamed fit). The models run in float64 so that the two
paths' different batch compositions round alike (float32 outputs could differ in the last bits).
"""
from __future__ import annotations

import re

import numpy as np
import pytest
import torch

from zest_core import Signature, ZestConfig, ZestError, compute_signature, model_fingerprint
from zest_core.pipeline.designs import MASK_DESIGNS
from zest_core.studies.budget import auc_gap, cheapest_within, nested_signatures, zest_budget_curve
from zest_core.studies.calibration import calibrated_reuse_benchmark
from zest_core.studies.scoring import PairScorer
from zest_core.sources.mnist import load_mnist

from conftest import make_cnn


class CountingModel(torch.nn.Module):
    """A model that counts the images it is asked about."""

    def __init__(self, model):
        super().__init__()
        self.model = model
        self.images = 0
        self.fingerprint = model_fingerprint(model)  # the wrapped model's cache entries

    def forward(self, x):
        self.images += x.shape[0]
        return self.model(x)


@pytest.mark.parametrize("design", MASK_DESIGNS)
def test_refitted_prefix_signatures_equal_signatures_computed_at_each_l(digits_refset, tmp_path, design):
    model = make_cnn(3).double()
    config = ZestConfig(num_samples=64, batch_size=37, device="cpu", dtype="float64", mask_design=design)
    ls = (64, 100, 150)  # at least every design's fewest for these digits (K ≤ 28: 64 orthogonal rows)
    found = nested_signatures(model, digits_refset, config, ls, cache=tmp_path / "cache")
    for samples in ls:
        direct = compute_signature(model, digits_refset, config.replace(num_samples=samples), cache=False)
        np.testing.assert_allclose(found[samples].matrix(), direct.matrix(), rtol=1e-9, atol=1e-12)
        assert found[samples].config == direct.config
        repeat_check = 16 if samples == max(ls) else 0  # the pass itself, as measured
        assert found[samples].recorded_queries().images == len(digits_refset) * samples + repeat_check
    # The refitted signatures sit under compute_signature's own cache keys: reading them queries nothing.
    counting = CountingModel(model)
    for samples in ls:
        compute_signature(counting, digits_refset, config.replace(num_samples=samples), cache=tmp_path / "cache")
    assert counting.images == 0


def test_one_query_pass_serves_every_l(digits_refset):
    counting = CountingModel(make_cnn(1))
    config = ZestConfig(num_samples=50, batch_size=64, device="cpu")
    nested_signatures(counting, digits_refset, config, (30, 60, 90), cache=False)
    repeat_check = 16  # the first 16 images are asked twice
    assert counting.images == len(digits_refset) * 90 + repeat_check
    found = nested_signatures(counting, digits_refset, config, (30, 60, 90), cache=False)
    assert found[90].recorded_queries().images == len(digits_refset) * 90 + repeat_check  # the pass, measured
    assert found[30].recorded_queries().to_dict() == {"calls": 0, "images": len(digits_refset) * 30}


def test_auc_gap_and_cheapest_point_by_hand():
    full = {"queries": 1000, "auc": {"prune": 1.0, "steal": 0.90}}
    points = [
        {"queries": 100, "images": 4, "auc": {"prune": 1.0, "steal": 0.85}},
        {"queries": 200, "images": 8, "auc": {"prune": 0.99, "steal": 0.89}},
        {"queries": 200, "images": 4, "auc": {"prune": 0.99, "steal": 0.95}},
        {"queries": 50, "images": 2, "refused": "L < K + 1"},
    ]
    assert auc_gap(points[0], full) == pytest.approx(0.05)
    assert auc_gap(points[2], full) == pytest.approx(0.01)
    assert auc_gap(points[3], full) is None
    assert cheapest_within(points, full, 0.02) is points[1]  # same queries: more images first
    assert cheapest_within(points, full, 0.001) is None


def test_budget_curve_point_equals_the_calibrated_benchmark_of_ordinary_signatures(tiny_zoo):
    refset = load_mnist(8, split="test")
    config = ZestConfig(num_samples=40, batch_size=256, device="cpu")
    points = zest_budget_curve(tiny_zoo, refset, config, image_counts=(8,), sample_counts=(20, 40), cache=False)
    refused, full = points
    assert refused["samples"] == 20 and "refused" in refused
    models = {name: tiny_zoo.load(name) for name in tiny_zoo.entries}
    scorer = PairScorer(models, refset, config, "greedy", {}, False, None)
    expected = calibrated_reuse_benchmark(tiny_zoo, scorer, methods=["zest-cosine"], image_test=False)
    relations = expected.summary["zest-cosine"]["relations"]
    assert full["queries"] == 8 * 40
    for relation, summary in relations.items():
        assert full["auc"][relation] == pytest.approx(summary["auc_matched"], abs=1e-9)
    assert full["fpr"]["k"] == expected.summary["zest-cosine"]["overall"]["false_positive"]["k"]


def test_budget_curve_refuses_more_images_than_the_reference_set(tiny_zoo):
    with pytest.raises(ZestError, match="image_counts"):
        zest_budget_curve(tiny_zoo, load_mnist(4, split="test"), ZestConfig(), image_counts=(8,), cache=False)


def test_budget_rule_by_hand():
    from zest_core.pipeline.budget import plan_budget

    plan = plan_budget(2000, [20] * 128, samples=64, design="orthogonal")
    assert (plan.images, plan.samples, plan.design) == (31, 64, "orthogonal") and plan.queries <= 2000
    # The reference set runs out: the rest of the budget buys maskings.
    assert (plan_budget(128_000, [20] * 128, samples=64).images, plan_budget(128_000, [20] * 128, samples=64).samples) \
        == (128, 1000)
    # Too small for L0 maskings of one image: one image with L = Q.
    assert (plan_budget(40, [30] * 8, samples=64).images, plan_budget(40, [30] * 8, samples=64).samples) == (1, 40)
    # An image with many super-pixels among the first N: fewer images, each with more maskings.
    plan = plan_budget(200, [10, 60, 10], samples=64)
    assert plan.images * plan.samples <= 200 and plan.samples >= 61


def test_a_budget_too_small_for_one_fit_is_refused():
    from zest_core.pipeline.budget import plan_budget

    with pytest.raises(ZestError, match=r"budget: expected at least K \+ 1 = 31 queries per model.*got 30"):
        plan_budget(30, [30, 5], samples=64)
    with pytest.raises(ZestError, match="budget"):
        plan_budget(0, [5])


def test_apply_budget_gives_a_signature_within_the_budget(digits_refset):
    from zest_core.pipeline.budget import apply_budget

    counting = CountingModel(make_cnn(2))
    images, config, plan = apply_budget(300, digits_refset, ZestConfig(device="cpu"), samples=64)
    signature = compute_signature(counting, images, config, cache=False)
    assert signature.num_images == plan.images == len(images) and config.num_samples == plan.samples
    assert counting.images == plan.queries <= 300 and plan.reserved == 16
    counting.images = 0
    images, config, plan = apply_budget(300, digits_refset, ZestConfig(device="cpu"), samples=64, repeat_check=False)
    compute_signature(counting, images, config, cache=False, allow_nondeterministic=True)
    # Without the check, 3 queries stay back for an endpoint's fingerprint probe, which a local model never spends.
    assert plan.reserved == 0 and plan.probe_reserve == 3 and plan.queries <= 300
    assert counting.images == plan.images * plan.samples == plan.queries - 3


def test_cli_budget_chooses_n_and_l_and_says_which(tmp_path, capsys):
    from zest_core.cli import main

    out = tmp_path / "s.npz"
    assert main(["signature", "zoo:cnn-s0", "--refset", "mnist:16", "--budget", "500", "--no-cache", "-o", str(out)]) == 0
    saved = Signature.load(out)
    budget = saved.metadata["budget"]
    assert budget["queries"] <= 500 and budget["images"] * budget["samples"] + budget["repeat_check"] == budget["queries"]
    assert saved.num_images == budget["images"] and saved.config.num_samples == budget["samples"]
    assert saved.config.mask_design == budget["design"]
    assert saved.recorded_queries().images == budget["queries"]
    assert "budget 500 queries per model" in capsys.readouterr().err


def test_cli_budget_errors_name_the_flag(tmp_path, capsys):
    from zest_core.cli import main

    base = ["signature", "zoo:cnn-s0", "--refset", "mnist:8", "--no-cache", "-o", str(tmp_path / "s.npz")]
    assert main([*base, "--budget", "20"]) == 2
    # 4 queries left after the check's 16: the message says so, with the total the user typed.
    err = capsys.readouterr().err
    assert "--budget: expected at least K + 1 + 16 = " in err and "determinism check" in err and "got 20" in err
    assert main([*base, "--budget", "10"]) == 2
    assert "--budget: expected more than the 16 queries" in capsys.readouterr().err
    assert main([*base, "--budget", "500", "--samples", "100"]) == 2
    assert "--budget, --samples: expected one of them" in capsys.readouterr().err


def test_bench_budget_writes_its_json_figures_and_table(tiny_zoo, tmp_path, capsys):
    import json

    from zest_core.cli import main

    out = tmp_path / "out"
    code = main(["bench", "budget", "--zoo", str(tiny_zoo.root), "--n", "8", "--samples", "40", "--methods",
                 "zest-cosine", "sac", "--out", str(out), "--cache-dir", str(tmp_path / "cache")])
    assert code == 0
    data = json.loads((out / "budget.json").read_text())
    zest = [p for p in data["points"] if p["method"] == "zest-cosine"]
    assert {(p["design"], p["images"], p["samples"]) for p in zest} == {
        (d, n, l) for d in ("bernoulli", "antithetic", "orthogonal") for n in (4, 8) for l in (32, 40)}
    assert all(p["queries"] == p["images"] * p["samples"] for p in zest)
    assert {p["images"] for p in data["points"] if p["method"] == "sac"} == {10, 25, 50, 100, 200}
    assert data["full_budget"] == {"design": "bernoulli", "images": 8, "samples": 40, "queries": 320}
    assert data["sequential"]["rule"]["blocks"] == [8]
    for name in ("budget.html", "budget_relations.html"):  # self-contained: plotly.js inside, no script fetched
        html = (out / name).read_text()
        assert "Plotly.newPlot" in html and not re.search(r"<script[^>]*\bsrc=", html)
    assert "Verdict quality against queries per suspect model" in capsys.readouterr().out


def test_matrix_and_search_take_the_budget_too(tmp_path, capsys):
    import json

    from zest_core.cli import main

    base = ["--refset", "mnist:16", "--budget", "600", "--cache-dir", str(tmp_path)]
    assert main(["matrix", "zoo:cnn-s0", "zoo:cnn-s0.prune50", *base, "--format", "json"]) == 0
    captured = capsys.readouterr()
    assert "budget 600 queries per model: N = 9 reference images × L = 64" in captured.err
    assert main(["search", "zoo:cnn-s0.prune50", "--hub", "assets/zoo", "--no-checkpoints", "--top", "1", "--json",
                 *base]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["budget"]["images"] == 9 and report["budget"]["queries"] <= 600
