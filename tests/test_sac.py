"""SAC-m (Guan et al., NeurIPS 2022): CutMix images, sample correlation, distance; the scorer, audit, CLI and page."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from streamlit.testing.v1 import AppTest

from zest_core import ReferenceSet, ZestConfig, ZestError
from zest_core.cli.parser import build_parser
from zest_core.methods import SAC, cutmix_images, cutmix_plan, sac_distance, sac_params, sample_correlation
from zest_core.studies.audit import audit
from zest_core.studies.calibration import CalibrationResult, summarize_calibration
from zest_core.studies.scoring import PairScorer
from zest_core.zoo.demo import PermutedClasses

from conftest import make_cnn

SIDE = 30  # int(0.2 * 30) // 2 = 3: boxes of 6 × 6 pixels, centres in rows/columns {0..5} ∪ {25..29}


def reference_correlation(outputs: np.ndarray) -> np.ndarray:
    """The authors' ``correlation(m, m)`` (correlation_wrong.py), in torch and float64: (1 - cos) / 2."""
    m = F.normalize(torch.as_tensor(outputs, dtype=torch.float64), dim=-1)
    return ((1 - torch.mm(m, m.transpose(0, 1))) / 2).numpy()


def loop_distance(outputs_a: np.ndarray, outputs_b: np.ndarray) -> float:
    """A plain transcription of SAC's formula, one entry at a time: mean |C_A[i, j] - C_B[i, j]|."""
    n = len(outputs_a)

    def corr(o: np.ndarray, i: int, j: int) -> float:
        norm_i = max(math.sqrt(sum(float(v) ** 2 for v in o[i])), 1e-12)
        norm_j = max(math.sqrt(sum(float(v) ** 2 for v in o[j])), 1e-12)
        cos = sum(float(o[i, k]) * float(o[j, k]) for k in range(o.shape[1])) / (norm_i * norm_j)
        return (1.0 - cos) / 2.0

    total = 0.0
    for i in range(n):
        for j in range(n):
            total += abs(corr(outputs_a, i, j) - corr(outputs_b, i, j))
    return total / (n * n)


def constant_refset(count: int, side: int = SIDE, rgb: bool = False) -> ReferenceSet:
    """Image i is the constant 10 * (i + 1): every pixel tells which reference image it came from."""
    values = 10 * (np.arange(count, dtype=np.uint8) + 1)
    shape = (count, side, side, 3) if rgb else (count, side, side)
    images = np.broadcast_to(values.reshape((count,) + (1,) * (len(shape) - 1)), shape).copy()
    return ReferenceSet.from_arrays(images, provenance="constant images")


# --------------------------------------------------------------------------------------------------
# The formula
# --------------------------------------------------------------------------------------------------


def test_distance_matches_a_plain_transcription_of_the_formula():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(9, 4)), rng.normal(size=(9, 7))  # class counts may differ: rows are compared
    a[3] = 0.0  # a row of zeros: F.normalize's floor makes its cosine 0 (correlation 0.5)
    assert sample_correlation(a) == pytest.approx(reference_correlation(a), abs=1e-14)
    assert sac_distance(sample_correlation(a), sample_correlation(b)) == pytest.approx(loop_distance(a, b), abs=1e-14)
    corr = sample_correlation(b)
    assert np.allclose(corr, corr.T) and np.allclose(np.diag(corr), 0)
    assert -1e-15 < corr.min() and corr.max() < 1 + 1e-15  # in [0, 1] up to rounding


def test_correlation_ignores_the_order_of_the_classes():
    outputs = np.random.default_rng(1).normal(size=(12, 10))
    permuted = outputs[:, np.random.default_rng(2).permutation(10)]
    assert sac_distance(sample_correlation(outputs), sample_correlation(permuted)) == pytest.approx(0.0, abs=1e-15)


# --------------------------------------------------------------------------------------------------
# Models
# --------------------------------------------------------------------------------------------------


def test_a_model_and_its_class_permuted_copy_are_at_distance_zero(digits_refset):
    model = make_cnn(0)
    detector = SAC(model, digits_refset, num_images=40, device="cpu")
    assert detector.compare(model) == 0.0
    copy = PermutedClasses(model, np.random.default_rng(0).permutation(10))
    # The copy's float32 outputs are the model's, reordered: only float64 summation order differs.
    assert detector.compare(copy) == pytest.approx(0.0, abs=1e-12)
    assert detector.compare(make_cnn(1)) > 1e-3  # an independently initialised network


def test_models_compare_as_the_formula_says(digits_refset):
    a, b = make_cnn(0), make_cnn(3)
    detector = SAC(a, digits_refset, num_images=20, seed=5, device="cpu")
    expected = loop_distance(detector.outputs(a), detector.outputs(b))
    assert detector.compare(b) == pytest.approx(expected, abs=1e-12)


def test_the_correlation_does_not_depend_on_the_batch_size(digits_refset):
    model = make_cnn(0)
    whole = SAC(model, digits_refset, num_images=30, device="cpu").source_correlation
    batched = SAC(model, digits_refset, num_images=30, batch_size=7, device="cpu").source_correlation
    assert batched == pytest.approx(whole, abs=1e-6)  # float32 outputs of a conv net, batched differently


def test_queries_are_counted_per_call(digits_refset):
    model = make_cnn(0)
    detector = SAC(model, digits_refset, num_images=50, batch_size=16, device="cpu")
    detector.source_correlation
    assert detector.source_queries.to_dict() == {"calls": 4, "images": 50}


# --------------------------------------------------------------------------------------------------
# CutMix images
# --------------------------------------------------------------------------------------------------


def test_cutmix_images_are_determined_by_the_seed_and_nested(digits_refset):
    first = cutmix_images(digits_refset, 50, rng=3)
    assert torch.equal(first, cutmix_images(digits_refset, 50, rng=3))
    assert not torch.equal(first, cutmix_images(digits_refset, 50, rng=4))
    largest = cutmix_images(digits_refset, 200, rng=3)
    for n in (10, 25, 50, 100):
        assert torch.equal(cutmix_images(digits_refset, n, rng=3), largest[:n])


def test_one_query_pass_at_the_largest_budget_serves_every_smaller_one(digits_refset):
    model = make_cnn(0)
    outputs = SAC(model, digits_refset, num_images=200, seed=2, device="cpu").outputs(model)
    for n in (10, 25, 50, 100):
        small = SAC(model, digits_refset, num_images=n, seed=2, device="cpu").source_correlation
        # The same images; float32 conv outputs of a batch of 200 and of n differ in the last bits.
        assert sample_correlation(outputs[:n]) == pytest.approx(small, abs=1e-6)


@pytest.mark.parametrize("rgb", [False, True])
def test_cutmix_images_paste_a_corner_box_from_a_partner(rgb):
    count = 5
    refset = constant_refset(count, rgb=rgb)
    images = (cutmix_images(refset, 4 * count, rng=0) * 255).round().to(torch.int64).numpy()
    values = 10 * (np.arange(count) + 1)
    rounds_with_a_box = 0
    for start in range(0, 4 * count, count):  # one round: the reference images in order, one box, a permutation
        boxes, partners = set(), []
        for k in range(start, start + count):
            image = images[k]
            assert (image == image[:1]).all()  # every channel alike
            base = values[k - start]
            inside = image[0] != base
            partner = int(image[0][inside][0]) if inside.any() else base
            assert set(np.unique(image[0])) <= {base, partner}
            partners.append(partner)
            if inside.any():
                rows, cols = np.flatnonzero(inside.any(axis=1)), np.flatnonzero(inside.any(axis=0))
                top, bottom, left, right = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
                assert inside[top:bottom, left:right].all() and inside.sum() == (bottom - top) * (right - left)
                boxes.add((top, bottom, left, right))
        assert len(boxes) <= 1
        rounds_with_a_box += len(boxes)
        assert sorted(partners) == sorted(values)  # the partners are a permutation of the round
        for top, bottom, left, right in boxes:
            for low, high in ((top, bottom), (left, right)):
                assert high - low == 6 or low == 0 or high == SIDE  # 2 * (int(0.2 * 30) // 2), unless clipped
                assert high <= 5 + 3 or low >= 25 - 3  # centred in the outer sixth of each side
    assert rounds_with_a_box == 4


def test_box_centres_are_the_ones_the_authors_rejection_loop_accepts():
    plan = cutmix_plan(1, (SIDE, 24), 400, rng=0)  # one image a round: 400 boxes
    # Their loop redraws while W/6 < cx < 5W/6 or H/6 < cy < 5H/6 (cut_mix.py, rand_bbox).
    accepted_rows = {c for c in range(SIDE) if not SIDE / 6 < c < 5 * SIDE / 6}
    accepted_cols = {c for c in range(24) if not 24 / 6 < c < 5 * 24 / 6}
    half_rows, half_cols = int(SIDE * 0.2) // 2, int(24 * 0.2) // 2
    rows = {bottom - half_rows if top == 0 else top + half_rows for top, bottom, _, _ in plan.boxes}
    cols = {right - half_cols if left == 0 else left + half_cols for _, _, left, right in plan.boxes}
    assert rows == accepted_rows and cols == accepted_cols
    for top, bottom, left, right in plan.boxes:
        cy = bottom - half_rows if top == 0 else top + half_rows
        assert (top, bottom) == (max(cy - half_rows, 0), min(cy + half_rows, SIDE))


# --------------------------------------------------------------------------------------------------
# Bad inputs
# --------------------------------------------------------------------------------------------------


def test_bad_inputs_are_refused_with_clear_messages(digits_refset):
    model = make_cnn(0)
    with pytest.raises(ZestError, match=r"num_images: expected an integer ≥ 2, got 1"):
        SAC(model, digits_refset, num_images=1)
    with pytest.raises(ZestError, match=r"num_images: expected an integer, got 2.5"):
        sac_params(num_images=2.5)
    with pytest.raises(ZestError, match=r"seed: expected an integer ≥ 0, got -1"):
        SAC(model, digits_refset, seed=-1)
    with pytest.raises(ZestError, match=r"cut_ratio: expected a box side in \(0, 1\]"):
        sac_params(cut_ratio=0)
    with pytest.raises(ZestError, match=r"cut_ratio: expected a number ≤ 1.0, got 1.5"):
        sac_params(cut_ratio=1.5)
    with pytest.raises(ZestError, match=r"image_size: expected at least 10 pixels a side .* got 8×8"):
        cutmix_images(constant_refset(3, side=8), 10)
    with pytest.raises(ZestError, match=r"source: expected a callable model"):
        SAC("model.pt", digits_refset)
    with pytest.raises(ZestError, match=r"refset: expected a ReferenceSet, got ndarray"):
        SAC(model, np.zeros((4, 28, 28)))
    with pytest.raises(ZestError, match=r"outputs: expected a \(samples, classes\) matrix with at least 2 samples, got "
                                        r"shape \(1, 10\)"):
        sample_correlation(np.ones((1, 10)))
    with pytest.raises(ZestError, match=r"outputs: expected finite model outputs"):
        sample_correlation(np.array([[1.0, np.nan], [0.0, 1.0]]))
    with pytest.raises(ZestError, match=r"corr_b: expected the shape of corr_a \(3, 3\) \(the same samples\), got "
                                        r"\(4, 4\)"):
        sac_distance(np.zeros((3, 3)), np.zeros((4, 4)))
    with pytest.raises(ZestError, match=r"corr_a: expected a square \(n, n\) correlation matrix"):
        sac_distance(np.zeros((3, 2)), np.zeros((3, 2)))


# --------------------------------------------------------------------------------------------------
# The scorer, the audit and the CLI
# --------------------------------------------------------------------------------------------------


def test_scorer_and_audit_use_the_same_sac(digits_refset):
    models = {"reference": make_cnn(0), "suspect": PermutedClasses(make_cnn(0), np.arange(10)[::-1].copy()),
              **{f"u{k}": make_cnn(10 + k) for k in range(4)}}
    config = ZestConfig(device="cpu")
    options = {"num_images": 30, "seed": 1}
    scorer = PairScorer(models, digits_refset, config, "auto", {}, False, None, sac_options=options)
    detector = SAC(models["reference"], digits_refset, **options, device="cpu")
    assert scorer.score("sac", "reference", "u1") == pytest.approx(detector.compare(models["u1"]), abs=1e-15)
    assert scorer.score("sac", "u1", "reference") == scorer.score("sac", "reference", "u1")  # symmetric
    unrelated = {name: models[name] for name in ("u0", "u1", "u2", "u3")}
    result = audit(models["reference"], models["suspect"], unrelated, digits_refset, method="sac", config=config,
                   sac_options=options, cache=False)
    assert result.decision.distance == pytest.approx(0.0, abs=1e-12)
    assert result.decision.verdict == "related"
    assert scorer.sac_queries["u1"].to_dict() == {"calls": 1, "images": 30}


def test_the_cli_offers_sac():
    parser = build_parser()
    args = parser.parse_args(["audit", "zoo:a", "zoo:b", "--method", "sac", "--sac-images", "50"])
    assert (args.method, args.sac_images) == ("sac", 50)
    args = parser.parse_args(["bench", "reuse", "--methods", "sac", "zest-cosine"])
    assert args.methods == ["sac", "zest-cosine"] and args.sac_images == 100


def test_the_zoo_and_reuse_page_offers_sac_from_a_benchmark_report(tmp_path, monkeypatch):
    """A ``zest bench reuse --methods sac ...`` report: the page offers SAC and draws its matched null and ROC."""
    root = Path(__file__).resolve().parents[1]
    monkeypatch.syspath_prepend(str(root))  # the dashboard package sits next to app.py
    monkeypatch.setenv("ZEST_ZOO_DIR", str(tmp_path / "no-zoo"))
    methods, relations = ("zest-cosine", "sac"), ("prune-50",)
    null = [0.04, 0.05, 0.06]
    related = [{"relation": "prune-50", "method": m, "reference": "p", "suspect": f"c{k}", "distance": d,
                "null": ["u0", "u1", "u2"], "null_distances": null, "p_value": 0.01, "rank_p_value": 0.25,
                "verdict": "related"} for m in methods for k, d in enumerate((0.01, 0.02))]
    negatives = [{"method": m, "reference": "p", "suspect": "n0", "distance": 0.05, "null": ["u0", "u1", "u2"],
                  "null_distances": null, "p_value": 0.5, "rank_p_value": 0.5, "verdict": "unrelated"} for m in methods]
    summary = summarize_calibration(methods, relations, related, negatives, 0.05)
    report = CalibrationResult(methods, relations, 0.05, tuple(related), tuple(negatives), summary,
                               {"refset": {"n": 10, "provenance": "test"}, "config": {"num_samples": 80}})
    path = tmp_path / "reuse.json"
    path.write_text(json.dumps(report.to_dict()))
    app = AppTest.from_file(str(root / "app.py"), default_timeout=180)
    app.run()
    app.switch_page("pages/6_Zoo_and_reuse.py").run()
    app.text_input(key="reuse_path").set_value(str(path)).run()
    assert not app.exception and not app.error
    assert app.selectbox(key="reuse_method").options == ["zest-cosine", "sac"]
    app.selectbox(key="reuse_method").set_value("sac").run()
    charts = [json.loads(c.proto.spec) for c in app.get("plotly_chart")]
    titles = [c["layout"].get("title", {}).get("text", "") for c in charts]
    assert any("(sac)" in t for t in titles)  # the matched-null figure of SAC
    roc = next(c for c, t in zip(charts, titles) if t.startswith("ROC"))
    assert [d["name"].split(" ")[0] for d in roc["data"]] == ["zest-cosine", "sac", "chance"]
