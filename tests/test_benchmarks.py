"""Baselines (agreement, linear CKA) and the benchmarks: reuse detection, epochs, reference-set size, bootstrap."""
from __future__ import annotations

import copy
import json
import math

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from zest_core import Classifier, ZestConfig, compute_signature, zest_distance
from zest_core.errors import NotComparableError
from zest_core.methods import (
    agreement_rate,
    cka_similarity,
    class_mapping_by_names,
    linear_cka,
    prediction_agreement,
)
from zest_core.explain.uncertainty import bootstrap_distance_interval, bootstrap_distances
from zest_core.pipeline.signature import restrict_signature
from zest_core.studies import (
    RELATION_ORDER,
    epoch_curves,
    modeldiff_rule,
    refsize_study,
    reuse_benchmark,
    write_reuse_report,
    zest_relative,
)
from zest_core.sources.mnist import load_mnist
from zest_core.zoo.demo import PermutedClasses
from zest_core.methods.modeldiff import ModelDiff
from zest_core.zoo.training import train_classifier

from conftest import SelectedOutputs
from test_modeldiff import one_thread, tiny_cnn, trained_zoo

PERMUTATION = np.array([3, 0, 9, 1, 8, 2, 7, 4, 6, 5])


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    with one_thread():
        yield


@pytest.fixture(scope="module")
def zoo() -> dict[str, torch.nn.Module]:
    return trained_zoo()


@pytest.fixture(scope="module")
def config() -> ZestConfig:
    # Logit targets: these briefly trained toy runs were written against them (the paper's setting).
    return ZestConfig(num_samples=60, batch_size=256, device="cpu", targets="logits")


@pytest.fixture(scope="module")
def probe_set():
    return load_mnist(40, split="test", seed=2)


def predictions(model, refset) -> np.ndarray:
    with torch.no_grad():
        return model(refset.as_tensor()).argmax(dim=1).numpy()


# --- prediction agreement -----------------------------------------------------------------------


def test_agreement_equals_a_plain_numpy_transcription(zoo, probe_set):
    for other in ("A_ft", "B", "C"):
        expected = np.mean(predictions(zoo["A"], probe_set) == predictions(zoo[other], probe_set))
        assert prediction_agreement(zoo["A"], zoo[other], probe_set, device="cpu") == pytest.approx(expected, abs=1e-12)
    assert prediction_agreement(zoo["A"], zoo["A"], probe_set) == 1.0


def test_agreement_matches_classes_by_name_or_by_mapping(zoo, probe_set):
    digits = [str(k) for k in range(10)]
    permuted = PermutedClasses(zoo["A"], PERMUTATION)  # its output k is A's class PERMUTATION[k]
    named = Classifier(permuted, class_names=[digits[c] for c in PERMUTATION])
    assert prediction_agreement(Classifier(zoo["A"], class_names=digits), named, probe_set) == 1.0
    # Without names the indices are compared, and a permutation looks like disagreement.
    plain = np.mean(predictions(zoo["A"], probe_set) == predictions(permuted, probe_set))
    # On the CPU like predictions(): the same batch and kernels, so argmax near-ties cannot flip (device
    # "auto" would pick CUDA, with TF32 convolutions).
    assert prediction_agreement(zoo["A"], permuted, probe_set, device="cpu") == pytest.approx(plain)
    assert plain < 0.5
    inverse = {int(c): k for k, c in enumerate(PERMUTATION)}  # A's class c is the permuted model's output k
    assert prediction_agreement(zoo["A"], permuted, probe_set, class_mapping=inverse) == 1.0
    # Five of the ten classes: A's predictions of the other five count as disagreements.
    keep = np.array([7, 2, 5, 0, 9])
    subset = Classifier(SelectedOutputs(zoo["A"], keep), class_names=[digits[c] for c in keep])
    predicted = predictions(zoo["A"], probe_set)
    agreement = prediction_agreement(Classifier(zoo["A"], class_names=digits), subset, probe_set, device="cpu")
    sub_predictions = keep[predictions(SelectedOutputs(zoo["A"], keep), probe_set)]
    assert agreement == pytest.approx(np.mean(predicted == sub_predictions))
    assert agreement == pytest.approx(np.mean(np.isin(predicted, keep)))


def test_agreement_refuses_classes_it_cannot_match(zoo, probe_set):
    subset = SelectedOutputs(zoo["A"], np.array([7, 2, 5, 0, 9]))
    with pytest.raises(NotComparableError, match="^class_mapping: the models have 10 and 5 classes"):
        prediction_agreement(zoo["A"], subset, probe_set)
    with pytest.raises(ValueError, match="^class_mapping: expected 10 integers"):
        prediction_agreement(zoo["A"], subset, probe_set, class_mapping=[0, 1])
    with pytest.raises(ValueError, match="^class_mapping: expected classes of B in -1..4"):
        prediction_agreement(zoo["A"], subset, probe_set, class_mapping=np.arange(10))
    with pytest.raises(ValueError, match="^names_b: expected distinct class names"):
        class_mapping_by_names(["a", "b"], ["a", "a"])
    with pytest.raises(ValueError, match="^predictions_b: expected the shape"):
        agreement_rate(np.zeros(3, int), np.zeros(4, int))
    with pytest.raises(ValueError, match="^refset: expected a ReferenceSet"):
        prediction_agreement(zoo["A"], zoo["B"], probe_set.images)


# --- linear CKA ---------------------------------------------------------------------------------


def hsic_cka(x: np.ndarray, y: np.ndarray) -> float:
    """CKA through HSIC with the centring matrix H, as Kornblith et al. define it (Eq. 3–4)."""
    n = x.shape[0]
    h = np.eye(n) - np.ones((n, n)) / n

    def hsic(k, l):
        return np.trace(k @ h @ l @ h) / (n - 1) ** 2

    k, l = x @ x.T, y @ y.T
    return hsic(k, l) / np.sqrt(hsic(k, k) * hsic(l, l))


@pytest.mark.parametrize("n, p_a, p_b", [(50, 8, 12), (10, 30, 5)])  # both the feature and the Gram form
def test_linear_cka_matches_the_hsic_definition_and_its_invariances(n, p_a, p_b):
    rng = np.random.default_rng(n)
    x = rng.normal(size=(n, p_a))
    y = x[:, :min(p_a, p_b)] @ rng.normal(size=(min(p_a, p_b), p_b)) + rng.normal(size=(n, p_b))
    assert linear_cka(x, y) == pytest.approx(hsic_cka(x, y), rel=1e-10)
    assert linear_cka(x, x) == pytest.approx(1.0, abs=1e-12)
    rotation, _ = np.linalg.qr(rng.normal(size=(p_a, p_a)))
    assert linear_cka(x @ rotation * 3.7 + 5.0, y) == pytest.approx(linear_cka(x, y), rel=1e-10)
    stretched = x * np.r_[10.0, np.ones(p_a - 1)]  # anisotropic scaling does change CKA
    assert abs(linear_cka(stretched, y) - linear_cka(x, y)) > 1e-3
    if n > p_a + p_b:  # with fewer examples than features, even independent data get a high CKA
        assert linear_cka(x, rng.normal(size=(n, p_b))) < 0.5 * linear_cka(x, y)


class WithFeatures(torch.nn.Module):
    """A model that exposes its penultimate features."""

    def __init__(self, seed: int) -> None:
        super().__init__()
        generator = torch.Generator().manual_seed(seed)
        self.register_buffer("projection", torch.randn(784, 6, generator=generator))
        self.register_buffer("head", torch.randn(6, 10, generator=generator))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(x.flatten(1) @ self.projection)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x) @ self.head


def test_cka_of_models_uses_features_when_they_exist_else_logits(zoo, probe_set):
    images = probe_set.as_tensor()
    # Wrappers without a features() method: the logits are the representation.
    plain_a, plain_b = (SelectedOutputs(zoo[name], np.arange(10)) for name in ("A", "B"))
    with torch.no_grad():
        logits_a, logits_b = zoo["A"](images).double().numpy(), zoo["B"](images).double().numpy()
        features = [m.features(images).double().numpy() for m in (WithFeatures(0), WithFeatures(1))]
    # Strict, so on the CPU like the references (device "auto" would pick CUDA, other kernels): one batch of
    # 40 on both sides, the same kernels, bit-identical scores; only CKA's float64 arithmetic is compared.
    assert cka_similarity(plain_a, plain_b, probe_set, device="cpu") == pytest.approx(
        linear_cka(logits_a, logits_b), rel=1e-9
    )
    assert cka_similarity(WithFeatures(0), WithFeatures(1), probe_set, device="cpu") == pytest.approx(
        linear_cka(*features), rel=1e-9
    )
    assert cka_similarity(Classifier(zoo["A"]), zoo["A"], probe_set) == pytest.approx(1.0)
    with pytest.raises(NotComparableError, match="^model_b: CKA needs white-box access"):
        cka_similarity(zoo["A"], lambda x: zoo["A"](x), probe_set)
    with pytest.raises(ValueError, match="^features_a: constant"):
        linear_cka(np.ones((5, 3)), np.random.default_rng(0).normal(size=(5, 3)))


# --- decision rules -----------------------------------------------------------------------------


def test_decision_rules_on_known_numbers():
    assert modeldiff_rule(0.1, [0.2, 0.3], "distance") is True
    assert modeldiff_rule(0.25, [0.2, 0.3], "distance") is False
    assert modeldiff_rule(0.9, [0.8, 0.85], "similarity") is True
    assert modeldiff_rule(0.8, [0.8], "similarity") is False  # a tie is not closer
    assert modeldiff_rule(0.1, [], "distance") is None
    assert modeldiff_rule(math.nan, [0.2], "distance") is None
    assert zest_relative(0.1, [0.2, 0.4], "distance") == pytest.approx(1 / 3)
    assert zest_relative(0.9, [0.8, 0.6], "similarity") == pytest.approx(0.1 / 0.3)
    assert zest_relative(0.1, [], "distance") is None
    with pytest.raises(ValueError, match="^kind: expected one of 'distance', 'similarity', got 'angle'"):
        modeldiff_rule(0.1, [0.2], "angle")


# --- the reuse benchmark ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def benchmark(zoo, config, tmp_path_factory):
    models = dict(zoo)
    models["A_perm"] = PermutedClasses(zoo["A"], PERMUTATION)
    models["A_sub"] = SelectedOutputs(zoo["A"], np.array([7, 2, 5, 0, 9]))
    pairs = [("A", "A_ft", "finetune"), ("B", "B_ft", "finetune"), ("A", "A_perm", "permuted"),
             ("A", "A_sub", "class-subset")]
    refset = load_mnist(8, split="test", seed=3)
    stages = []
    result = reuse_benchmark(
        models, pairs, ["A", "B", "C", "D"], refset,
        methods=("zest-cosine", "zest-l2", "modeldiff", "agreement", "cka"), config=config,
        modeldiff_options={"steps": 6}, cache=tmp_path_factory.mktemp("bench-cache"),
        progress=lambda done, total, stage: stages.append(stage),
    )
    return result, models, refset, stages


def test_reuse_benchmark_rules_follow_from_the_reported_scores(benchmark):
    result, _, _, stages = benchmark
    assert "score pairs" in stages
    unrelated = ["A", "B", "C", "D"]
    for method in result.methods:
        kind = result.kind(method)
        closer = (lambda s, r: s < r) if kind == "distance" else (lambda s, r: s > r)
        as_distance = (lambda s: s) if kind == "distance" else (lambda s: 1.0 - s)
        records = [r for r in result.pairs if r["method"] == method]
        assert len(records) == 4
        for record in records:
            parent, child = record["parent"], record["child"]
            score = result.score(method, parent, child)
            assert record["score"] == score or (math.isnan(score) and math.isnan(record["score"]))
            others = [u for u in unrelated if u not in (parent, child)]
            references = [result.score(method, parent, u) for u in others]
            baseline = [as_distance(result.score(method, u, v)) for u in others for v in others if u != v]
            if math.isnan(score):
                assert record["modeldiff_rule"] is None and record["zest_rule"] is None
                continue
            assert record["modeldiff_rule"] == all(closer(score, r) for r in references)
            assert record["relative_distance"] == pytest.approx(as_distance(score) / np.mean(baseline), rel=1e-12)
            assert record["zest_rule"] == (as_distance(score) < np.mean(baseline))
        for relation in result.relations:
            chosen = [r for r in records if r["relation"] == relation and r["modeldiff_rule"] is not None]
            stats = result.summary[method]["relations"][relation]
            if chosen:
                assert stats["modeldiff_accuracy"] == pytest.approx(np.mean([r["modeldiff_rule"] for r in chosen]))
                assert stats["zest_accuracy"] == pytest.approx(np.mean([r["zest_rule"] for r in chosen]))
        # False positives: every ordered pair of unrelated models, the first in the parent's place.
        negatives = [(a, b) for a in unrelated for b in unrelated if a != b]
        flagged = 0
        for a, b in negatives:
            score = result.score(method, a, b)
            rest = [u for u in unrelated if u not in (a, b)]
            flagged += all(closer(score, result.score(method, a, u)) for u in rest)
        overall = result.summary[method]["overall"]
        assert overall["modeldiff_positive_unrelated"] == flagged
        assert overall["modeldiff_evaluated_unrelated"] == len(negatives) == 12
        related_scores = [result.score(method, p, c) for p, c in
                          (("A", "A_ft"), ("B", "B_ft"), ("A", "A_perm"), ("A", "A_sub"))]
        related_scores = [s for s in related_scores if not math.isnan(s)]
        negative_scores = [result.score(method, a, b) for a, b in negatives]
        labels = [1] * len(related_scores) + [0] * len(negative_scores)
        values = np.array(related_scores + negative_scores)
        expected_auc = roc_auc_score(labels, -values if kind == "distance" else values)
        assert overall["auc"] == pytest.approx(expected_auc, abs=1e-12)


def test_matched_groups_judge_each_pair_against_its_own_kind(benchmark, config):
    """With groups, references are the child's group and the baseline pairs (parent's group, child's group)."""
    _, models, refset, _ = benchmark
    groups = {name: ("y" if name in ("B", "B_ft") else "x") for name in models}
    matched = reuse_benchmark(
        models, [("A", "B_ft", "cross"), ("A", "A_ft", "same")], ["A", "B", "C", "D"], refset,
        methods=("zest-cosine",), config=config, groups=groups, cache=False,
    )
    for record in matched.pairs:
        parent, child = record["parent"], record["child"]
        others = [u for u in ["A", "B", "C", "D"] if u not in (parent, child) and groups[u] == groups[child]]
        assert sorted(record["reference_scores"]) == sorted(others)
        baseline = [matched.score("zest-cosine", u, v) for u in ["B", "C", "D"] for v in ["B", "C", "D"]
                    if u != v and groups[u] == groups[parent] and groups[v] == groups[child]]
        expected = matched.score("zest-cosine", parent, child) / np.mean(baseline)
        assert record["relative_distance"] == pytest.approx(expected, rel=1e-9)
    assert matched.metadata["groups"] == groups
    with pytest.raises(ValueError, match="groups: expected a group for every model"):
        reuse_benchmark(models, [("A", "A_ft", "same")], ["A", "B", "C"], refset, groups={"A": "x"}, cache=False)


def test_reuse_benchmark_scores_are_the_methods_own(benchmark, config):
    result, models, refset, _ = benchmark
    # Strict and CPU-independent: the benchmark computed these with the same config, batches and kernels.
    sig = {name: compute_signature(models[name], refset, config, cache=False) for name in ("A", "A_ft", "A_sub")}
    assert result.score("zest-cosine", "A", "A_ft") == pytest.approx(zest_distance(sig["A"], sig["A_ft"]), rel=1e-9)
    assert result.score("zest-l2", "A_ft", "A") == pytest.approx(zest_distance(sig["A"], sig["A_ft"], "l2"), rel=1e-9)
    assert result.score("zest-cosine", "A", "A_sub") == pytest.approx(zest_distance(sig["A"], sig["A_sub"]), rel=1e-9)
    detector = ModelDiff(models["A"], refset, steps=6, cache=False, device="cpu")
    assert result.score("modeldiff", "A", "C") == pytest.approx(detector.compare(models["C"]), rel=1e-9)
    assert result.score("agreement", "A", "B") == pytest.approx(
        np.mean(predictions(models["A"], refset) == predictions(models["B"], refset))
    )
    # Classes that cannot be matched: agreement is NaN, noted, and left out.
    assert math.isnan(result.score("agreement", "A", "A_sub"))
    assert any("agreement(A, A_sub)" in note for note in result.metadata["notes"])
    assert result.summary["agreement"]["relations"]["class-subset"]["modeldiff_accuracy"] is None


def test_reuse_benchmark_detects_what_each_method_should(benchmark):
    result, _, _, _ = benchmark
    for method in ("zest-cosine", "modeldiff", "cka"):
        assert result.summary[method]["relations"]["finetune"]["modeldiff_accuracy"] == 1.0
        assert result.summary[method]["relations"]["finetune"]["zest_accuracy"] == 1.0
    # ModelDiff's DDV and Zest's alignment are blind to a permutation of the classes; agreement is not.
    assert result.score("modeldiff", "A", "A_perm") == pytest.approx(1.0, abs=1e-9)
    assert result.summary["agreement"]["relations"]["permuted"]["modeldiff_accuracy"] == 0.0
    # align="auto" matches classes only when their counts differ: the subset is aligned, the permutation not.
    assert result.score("zest-cosine", "A", "A_sub") < result.score("zest-cosine", "A", "B")
    assert result.score("zest-cosine", "A", "A_perm") > result.score("zest-cosine", "A", "B")


def test_reuse_report_orders_relations_and_serialises(benchmark, tmp_path):
    result, _, _, _ = benchmark
    assert result.relations == ("permuted", "finetune", "class-subset")  # RELATION_ORDER first, then as met
    assert RELATION_ORDER.index("permuted") > RELATION_ORDER.index("steal")
    markdown = result.to_markdown()
    positions = [markdown.index(f"| {relation} |") for relation in result.relations]
    assert positions == sorted(positions)
    assert "false positives" in markdown and "ROC AUC" in markdown and "n/a" in markdown
    paths = write_reuse_report(result, tmp_path / "report")
    assert paths["markdown"].read_text() == markdown
    loaded = json.loads(paths["json"].read_text())
    assert loaded == json.loads(json.dumps(result.to_dict(), allow_nan=False))
    assert loaded["summary"]["zest-cosine"]["overall"]["n_unrelated"] == 12
    assert not list((tmp_path / "report").glob(".*tmp"))


def test_reuse_benchmark_arguments_are_checked(zoo, probe_set):
    models = {"A": zoo["A"], "B": zoo["B"], "C": zoo["C"]}
    good = ([("A", "B", "x")], ["B", "C"])
    with pytest.raises(ValueError, match="^methods: expected distinct names"):
        reuse_benchmark(models, *good, probe_set, methods=("zest", "agreement"))
    with pytest.raises(ValueError, match="^pairs: Z not among the models"):
        reuse_benchmark(models, [("A", "Z", "x")], ["B", "C"], probe_set)
    with pytest.raises(ValueError, match="^pairs: expected \\(parent, child, relation\\)"):
        reuse_benchmark(models, [("A", "B")], ["B", "C"], probe_set)
    with pytest.raises(ValueError, match="^unrelated: expected at least 2"):
        reuse_benchmark(models, good[0], ["C"], probe_set)
    with pytest.raises(ValueError, match="^epsilon: expected"):
        reuse_benchmark(models, *good, probe_set, modeldiff_options={"epsilon": 2.0})
    with pytest.raises(ValueError, match="^align: expected"):
        reuse_benchmark(models, *good, probe_set, align="best")


# --- epochs, reference-set size, bootstrap ------------------------------------------------------


def test_epoch_curves_compare_the_right_checkpoints(config, probe_set):
    train = load_mnist(200, split="train", seed=4)
    refset = load_mnist(6, split="test", seed=5)

    def run(seed: int) -> list[torch.nn.Module]:
        model, checkpoints = tiny_cnn(seed), []
        for epoch in range(3):
            checkpoints.append(train_classifier(model, train.images, train.labels, epochs=1, lr=3e-3, seed=epoch))
            model = type(model)(width=8)
            model.load_state_dict(checkpoints[-1].state_dict())
        return checkpoints

    a, u = run(0), run(1)
    curves = epoch_curves(a, u, refset, config, k=1, epochs=[1, 2, 3], cache=False)
    # rtol=1e-9 below is CPU-independent: the same config, so the same batches through the same kernels.
    sigs_a = [compute_signature(m, refset, config, cache=False) for m in a]
    sigs_u = [compute_signature(m, refset, config, cache=False) for m in u]
    assert curves.related_epochs == (1, 2) and curves.unrelated_epochs == (1, 2, 3)
    np.testing.assert_allclose(curves.related, [zest_distance(sigs_a[t], sigs_a[t + 1]) for t in range(2)], rtol=1e-9)
    np.testing.assert_allclose(curves.unrelated, [zest_distance(sigs_a[t], sigs_u[t]) for t in range(3)], rtol=1e-9)
    assert max(curves.related[1:]) < min(curves.unrelated[1:])  # later checkpoints of one run stay close
    json.dumps(curves.to_dict(), allow_nan=False)
    with pytest.raises(ValueError, match="^k: expected"):
        epoch_curves(a, u, refset, config, k=3)


def test_restricting_a_signature_equals_computing_it_on_the_images(zoo):
    refset = load_mnist(10, split="test", seed=6)
    # float64 end to end: the full set's 600 images run in batches of 256, 256, 88 and the subset's 240 in
    # one, and float32 kernels differ by batch size and CPU. This test is about which images and columns
    # are kept, so it computes in float64 and stays strict.
    model = copy.deepcopy(zoo["A"]).double()
    for fill in ("mean_color", "constant"):
        cfg = ZestConfig(num_samples=60, batch_size=256, device="cpu", fill=fill, dtype="float64")
        full = compute_signature(model, refset, cfg, cache=False)
        direct = compute_signature(model, refset.subset(range(4)), cfg, cache=False)
        restricted = restrict_signature(full, range(4))
        np.testing.assert_allclose(restricted.matrix(), direct.matrix(), rtol=1e-9, atol=1e-12)
        np.testing.assert_array_equal(restricted.segments, direct.segments)
    # The documented provisos: a dataset-mean fill is the full set's, and masks follow positions.
    cfg = ZestConfig(num_samples=60, batch_size=256, device="cpu", fill="dataset_mean")
    full = compute_signature(zoo["A"], refset, cfg, cache=False)
    direct = compute_signature(zoo["A"], refset.subset(range(4)), cfg, cache=False)
    assert not np.allclose(restrict_signature(full, range(4)).matrix(), direct.matrix())
    with pytest.raises(ValueError, match="^indices: expected values in \\[0, 9\\]"):
        restrict_signature(full, [3, 10])


def test_refsize_study_draws_subsets_and_converges_to_the_full_distance(zoo, config):
    refset = load_mnist(16, split="test", seed=7)
    study = refsize_study(zoo["A"], zoo["B"], refset, config, sizes=(2, 8, 16), repeats=3, seed=1, cache=False)
    full = zest_distance(*(compute_signature(m, refset, config, cache=False) for m in (zoo["A"], zoo["B"])))
    assert study.sizes == (2, 8, 16) and study.distances.shape == (3, 3)
    np.testing.assert_allclose(study.distances[2], full, rtol=1e-9)  # all 16 images, in any order
    assert study.std[2] == pytest.approx(0.0, abs=1e-12) and study.std[0] > 0
    np.testing.assert_allclose(study.mean, study.distances.mean(axis=1))
    again = refsize_study(zoo["A"], zoo["B"], refset, config, sizes=(2, 8, 16), repeats=3, seed=1, cache=False)
    np.testing.assert_array_equal(again.distances, study.distances)
    exact = refsize_study(zoo["A"], zoo["B"], refset, config, sizes=(4,), repeats=1, seed=1, method="recompute",
                          cache=False)
    from zest_core.pipeline.reference import draw_indices

    index = draw_indices(16, 4, refset.labels, np.random.default_rng([1, 4, 0]))
    subset = refset.subset(index)
    direct = zest_distance(*(compute_signature(zoo[n], subset, config, cache=False) for n in ("A", "B")))
    assert exact.distances[0, 0] == pytest.approx(direct, rel=1e-9)
    with pytest.raises(ValueError, match="^sizes: expected integers in \\[1, 16\\]"):
        refsize_study(zoo["A"], zoo["B"], refset, config, sizes=(0, 4))
    with pytest.raises(ValueError, match="^method: expected"):
        refsize_study(zoo["A"], zoo["B"], refset, config, method="fast")


def test_bootstrap_interval_holds_the_estimate_and_narrows_with_more_images(zoo, config):
    many = load_mnist(40, split="test", seed=8)
    few = many.subset(range(6))
    widths = []
    for refset in (few, many):
        sig_a, sig_b = (compute_signature(zoo[n], refset, config, cache=False) for n in ("A", "B"))
        point = zest_distance(sig_a, sig_b)
        low, high = bootstrap_distance_interval(sig_a, sig_b, n_boot=300, seed=0)
        assert low <= point <= high
        widths.append(high - low)
        assert bootstrap_distance_interval(sig_a, sig_b, n_boot=300, seed=0) == (low, high)
        assert bootstrap_distance_interval(sig_a, sig_a, n_boot=50) == pytest.approx((0.0, 0.0), abs=1e-12)
    assert widths[1] < widths[0]
    # One resample done by hand: images 0, 0, 5, ... and their column blocks.
    rng = np.random.default_rng(3)
    chosen = rng.integers(0, sig_a.num_images, size=sig_a.num_images)
    columns = sig_a.image_columns()
    keep = np.concatenate([np.arange(columns[i], columns[i + 1]) for i in chosen])
    by_hand = 1 - (sig_a.matrix()[:, keep].ravel() @ sig_b.matrix()[:, keep].ravel()) / (
        np.linalg.norm(sig_a.matrix()[:, keep]) * np.linalg.norm(sig_b.matrix()[:, keep]))
    assert bootstrap_distances(sig_a, sig_b, n_boot=1, seed=3)[0] == pytest.approx(by_hand, rel=1e-12)
    with pytest.raises(ValueError, match="^level: expected"):
        bootstrap_distance_interval(sig_a, sig_b, level=1.5)
    with pytest.raises(ValueError, match="^n_boot: expected"):
        bootstrap_distance_interval(sig_a, sig_b, n_boot=0)
