"""zest_core.explain: exact decompositions, verdicts, painted weights, recomposed samples, matchings, reports."""
import json
import math
from dataclasses import replace

import numpy as np
import pytest
import torch

from zest_core import IncompatibleSignaturesError, ReferenceSet, Signature, ZestConfig, compute_signature, zest_distance
from zest_core.errors import ZestError
from zest_core.explain.uncertainty import bootstrap_distance_interval
from zest_core.explain import (
    alignment_accuracy,
    boundary_image,
    cluster_models,
    compare_alignments,
    compare_signatures,
    comparison_report,
    comparison_weight_maps,
    distance_contributions,
    paint_weights,
    perturbed_samples,
    segment_centroids,
    symmetric_limit,
    to_jsonable,
)
from zest_core.pipeline.probe import prepare_probe

from conftest import ScaledOutputs, SelectedOutputs, make_cnn

METRICS = ("cosine", "l1", "l2", "linf")
PERMUTATION = np.array([3, 0, 8, 1, 9, 2, 7, 4, 6, 5])


@pytest.fixture(scope="module")
def signatures(digits_refset):
    """Signatures of A, an unrelated model, A with classes permuted, A with logits scaled, and two baseline models."""
    # Logit targets: the scaled copy is at distance 0 only when the logits themselves are regressed.
    config = ZestConfig(num_samples=120, batch_size=60, device="cpu", targets="logits")
    base = make_cnn(0)
    models = {
        "A": base,
        "B": make_cnn(1),
        "A_permuted": SelectedOutputs(base, PERMUTATION),
        "A_scaled": ScaledOutputs(base, 4.0),
        "U1": make_cnn(2),
        "U2": make_cnn(3),
    }
    return {name: compute_signature(m, digits_refset, config, cache=False) for name, m in models.items()}


def tiny_signature(weights, segments, fingerprint="ref", config=None):
    """A hand-made signature: weights (C, K_n) per image over the given segments."""
    return Signature(
        weights=[np.asarray(w, dtype=float) for w in weights], intercepts=None,
        segments=np.asarray(segments, dtype=np.int32), config=config or ZestConfig(num_samples=10),
        model_fingerprint=None, refset_fingerprint=fingerprint,
    )


# --------------------------------------------------------------------------------------------------
# Contributions
# --------------------------------------------------------------------------------------------------


def test_contributions_of_a_hand_made_pair_match_the_formulas():
    segments = np.zeros((2, 2, 2), dtype=np.int32)
    segments[0, :, 1] = 1  # image 0 has two super-pixels, image 1 one
    a = tiny_signature([[[3.0, 0.0], [0.0, 0.0]], [[0.0], [4.0]]], segments)
    b = tiny_signature([[[3.0, 0.0], [0.0, 0.0]], [[4.0], [0.0]]], segments)
    cosine = distance_contributions(a, b, metric="cosine")
    # â = (3, 0, 0 | 0, 4)/5 over (rows, columns); b̂ = (3, 0, 4 | 0, 0)/5: d = 1 − 9/25 = 16/25.
    assert cosine.distance == pytest.approx(16 / 25)
    np.testing.assert_allclose(cosine.per_image, [0.0, 16 / 25])
    np.testing.assert_allclose(cosine.per_class, [8 / 25, 8 / 25])
    l1 = distance_contributions(a, b, metric="l1")
    np.testing.assert_allclose(l1.per_image, [0.0, 8.0])
    assert l1.distance == pytest.approx(8.0)
    l2 = distance_contributions(a, b, metric="l2")
    assert l2.distance == pytest.approx(math.sqrt(32))
    np.testing.assert_allclose(l2.per_class, [math.sqrt(32) / 2] * 2)
    linf = distance_contributions(a, b, metric="linf")
    np.testing.assert_allclose(linf.per_image, [0.0, 4.0])
    assert linf.distance == pytest.approx(4.0) and not linf.additive


@pytest.mark.parametrize("metric", METRICS)
def test_contributions_add_up_to_the_zest_distance(signatures, metric):
    result = distance_contributions(signatures["A"], signatures["B"], metric=metric)
    expected = zest_distance(signatures["A"], signatures["B"], metric=metric)
    assert result.distance == pytest.approx(expected, rel=1e-12)
    assert result.per_image.shape == (signatures["A"].num_images,)
    assert result.per_class.shape == (10,)
    assert np.all(result.per_entry >= 0)
    combine = np.max if metric == "linf" else np.sum
    for parts in (result.per_image, result.per_class, result.per_entry):
        assert combine(parts) == pytest.approx(expected, rel=1e-9)
    assert result.image_shares().sum() == pytest.approx(1.0)


def test_contributions_follow_the_class_alignment(signatures):
    a, permuted = signatures["A"], signatures["A_permuted"]
    unaligned = distance_contributions(a, permuted, align="none")
    assert unaligned.distance > 0.5
    aligned = distance_contributions(a, permuted, align="hungarian")
    assert aligned.distance == pytest.approx(0.0, abs=1e-12)
    np.testing.assert_allclose(aligned.per_image, 0.0, atol=1e-12)
    # A's class i is the permuted model's class k with PERMUTATION[k] == i.
    np.testing.assert_array_equal(aligned.pairs[:, 1], np.argsort(PERMUTATION))


def test_contributions_refuse_bad_input(signatures, digits_refset):
    with pytest.raises(ValueError, match="metric: expected one of"):
        distance_contributions(signatures["A"], signatures["B"], metric="manhattan")
    other = compute_signature(make_cnn(0), digits_refset.subset([0, 1, 2]), ZestConfig(num_samples=120), cache=False)
    with pytest.raises(IncompatibleSignaturesError, match="different reference sets"):
        distance_contributions(signatures["A"], other)
    zero = tiny_signature([[[0.0]]], np.zeros((1, 2, 2)))
    with pytest.raises(ValueError, match="all-zero signature"):
        distance_contributions(zero, zero)


# --------------------------------------------------------------------------------------------------
# Interval (the verdict is the calibrated audit's: tests/test_significance.py, tests/test_audit.py)
# --------------------------------------------------------------------------------------------------


def test_compare_signatures_combines_the_pieces(signatures):
    a, b = signatures["A"], signatures["A_scaled"]
    result = compare_signatures(a, b, n_boot=60, seed=3, level=0.9)
    assert result.distance == pytest.approx(0.0, abs=1e-10)
    assert result.interval == pytest.approx(bootstrap_distance_interval(a, b, n_boot=60, seed=3, level=0.9))
    assert not hasattr(result, "verdict") and not hasattr(result, "relative")  # no uncalibrated rule
    unrelated = compare_signatures(a, signatures["B"], n_boot=0)
    assert unrelated.interval is None and unrelated.n_boot == 0
    with pytest.raises(ValueError, match="level"):
        compare_signatures(a, b, level=1.5)
    with pytest.raises(ValueError, match="n_boot"):
        compare_signatures(a, b, n_boot=-1)


# --------------------------------------------------------------------------------------------------
# Painted weights and super-pixels
# --------------------------------------------------------------------------------------------------


def test_paint_weights_puts_each_weight_on_its_super_pixel():
    segments = np.array([[0, 0, 1], [2, 2, 1]])
    painted = paint_weights(np.array([[1.0, -2.0, 3.0], [0.0, 5.0, 0.0]]), segments)
    np.testing.assert_array_equal(painted[0], [[1, 1, -2], [3, 3, -2]])
    np.testing.assert_array_equal(painted[1], [[0, 0, 5], [0, 0, 5]])
    with pytest.raises(ValueError, match=r"labels in \[0, 1\]"):
        paint_weights(np.array([1.0, 2.0]), segments)


def test_weight_maps_align_classes_and_put_both_models_on_the_cosine_scale(signatures):
    a = signatures["A"]
    maps = comparison_weight_maps(a, signatures["A_permuted"], 2, align="hungarian")
    np.testing.assert_allclose(maps.a, maps.b, atol=1e-12)  # a permuted copy paints the same maps
    scaled = comparison_weight_maps(a, signatures["A_scaled"], 2, align="none", unit_norm=True)
    np.testing.assert_allclose(scaled.a, scaled.b, atol=1e-12)
    raw = comparison_weight_maps(a, signatures["A_scaled"], 2, align="none", unit_norm=False)
    np.testing.assert_allclose(raw.b, 4.0 * raw.a, rtol=1e-5, atol=1e-9)
    expected = paint_weights(a.weights[2], a.segments[2])
    np.testing.assert_allclose(raw.a, expected)
    assert raw.limit() == pytest.approx(np.abs(raw.b).max())
    with pytest.raises(ValueError, match="image_index"):
        comparison_weight_maps(a, signatures["B"], a.num_images)


def test_symmetric_limit():
    assert symmetric_limit(np.array([-3.0, 1.0]), np.array([2.0])) == 3.0
    assert symmetric_limit(np.zeros(3)) == 1.0


def test_boundaries_are_drawn_between_super_pixels():
    image = np.full((4, 4), 100, dtype=np.uint8)
    segments = np.zeros((4, 4), dtype=np.int32)
    segments[:, 2:] = 1
    segments[3, 2:] = 2
    drawn = boundary_image(image, segments, color=(255, 0, 0))
    assert drawn.shape == (4, 4, 3)
    red = np.all(drawn == [255, 0, 0], axis=-1)
    expected = np.zeros((4, 4), dtype=bool)
    expected[:, 1] = True  # the vertical edge between columns 1 and 2, drawn on its left side
    expected[2, 2:] = True  # the horizontal edge between rows 2 and 3, drawn above it
    np.testing.assert_array_equal(red, expected)
    assert np.all(drawn[~red] == 100)
    enlarged = boundary_image(image, segments, scale=3)
    assert enlarged.shape == (12, 12, 3)
    red = np.all(enlarged == [255, 60, 60], axis=-1)
    assert red[:6, :].sum(axis=1).tolist() == [1] * 6  # one thin line per row above the horizontal edge
    with pytest.raises(ValueError, match="image's size"):
        boundary_image(image, segments[:3])
    with pytest.raises(ValueError, match="scale"):
        boundary_image(image, segments, scale=0)


def test_segment_centroids():
    segments = np.array([[0, 0, 1], [0, 0, 1], [2, 2, 2]])
    np.testing.assert_allclose(segment_centroids(segments), [[0.5, 0.5], [0.5, 2.0], [2.0, 1.0]])


# --------------------------------------------------------------------------------------------------
# Perturbed samples
# --------------------------------------------------------------------------------------------------


class Recorder(torch.nn.Module):
    """A model that keeps every batch it receives (and answers with fixed logits)."""

    def __init__(self, logits):
        super().__init__()
        self.register_buffer("logits", torch.as_tensor(logits, dtype=torch.float32))
        self.seen = []

    def forward(self, x):
        self.seen.append(x.detach().clone())
        return self.logits.expand(x.shape[0], -1)


@pytest.mark.parametrize("fill", ["dataset_mean", "mean_color"])
def test_perturbed_samples_are_exactly_what_the_models_received(digits_refset, fill):
    # L = 30 ≥ K + 1 for these digits (K ≤ 28). The first batch's first 16 images are asked twice (the determinism check).
    config = ZestConfig(num_samples=30, batch_size=7, device="cpu", fill=fill)
    recorder = Recorder([0.0, math.log(3.0)])
    signature = compute_signature(recorder, digits_refset, config, cache=False)
    queried = torch.cat([recorder.seen[0], *recorder.seen[2:]])  # N×L samples, image by image
    recorder.seen.clear()
    image, chosen = 3, [0, 5, 29]
    samples = perturbed_samples(digits_refset, signature, image, {"A": recorder, "B": make_cnn(0)}, chosen)
    expected = queried[image * 30 + np.array(chosen), 0]
    np.testing.assert_array_equal(samples.images, (expected * 255).round().to(torch.uint8).numpy())
    np.testing.assert_allclose(torch.cat(recorder.seen)[:, 0].numpy(), expected.numpy())
    probe = prepare_probe(digits_refset, config, torch.device("cpu"))
    np.testing.assert_array_equal(samples.masks, probe.masks[image][chosen])
    assert samples.masks[0].all()  # mask 0 keeps every super-pixel: the reference image itself
    np.testing.assert_array_equal(samples.images[0], digits_refset.images[image])
    assert samples.predictions("A") == [("1", pytest.approx(0.75))] * 3
    assert samples.class_names["B"] == [str(k) for k in range(10)]


def test_perturbed_samples_refuse_another_refset_and_bad_masks(digits_refset, signatures):
    model = {"A": make_cnn(0)}
    with pytest.raises(ValueError, match="mask_indices"):
        perturbed_samples(digits_refset, signatures["A"], 0, model, [120])
    with pytest.raises(ValueError, match="image_index"):
        perturbed_samples(digits_refset, signatures["A"], 6, model, [0])
    other = ReferenceSet.from_arrays(digits_refset.images[::-1].copy())
    with pytest.raises(ValueError, match="the reference set the signature was computed on"):
        perturbed_samples(other, signatures["A"], 0, model, [0])


def test_perturbed_samples_come_from_the_signatures_own_probe(digits_refset, signatures):
    image = np.int64(2)  # an index straight out of NumPy is an index
    samples = perturbed_samples(digits_refset, signatures["A"], image, {"A": make_cnn(0)}, [0, 3])
    probe = prepare_probe(digits_refset, signatures["A"].config, torch.device("cpu"))
    np.testing.assert_array_equal(samples.masks, probe.masks[2][[0, 3]])
    assert samples.images.flags["C_CONTIGUOUS"] and samples.probabilities["A"].shape == (2, 10)
    moved = replace(signatures["A"], segments=np.roll(signatures["A"].segments, 1, axis=0))
    with pytest.raises(ZestError, match="super-pixels"):
        perturbed_samples(digits_refset, moved, 0, {"A": make_cnn(0)}, [0])


# --------------------------------------------------------------------------------------------------
# Class alignment
# --------------------------------------------------------------------------------------------------


def test_alignment_accuracy_counts_pairs_with_equal_names():
    assert alignment_accuracy(np.array([[0, 1], [1, 0], [2, 2]]), ["x", "y", "z"], ["y", "x", "w"]) == (2, 2)
    assert alignment_accuracy(np.array([[0, 0], [1, 1]]), ["a", "b"], ["b", "a"]) == (0, 2)
    with pytest.raises(ValueError, match="index past the class names"):
        alignment_accuracy(np.array([[0, 3]]), ["a"], ["a", "b"])


@pytest.mark.parametrize("method", ["greedy", "hungarian"])
def test_a_renamed_permutation_is_matched_correctly_by_name(signatures, method):
    names = [str(k) for k in range(10)]
    permuted_names = [names[k] for k in PERMUTATION]  # the permuted model's class k is A's class PERMUTATION[k]
    summaries = compare_alignments(signatures["A"], signatures["A_permuted"], names_a=names, names_b=permuted_names)
    assert (summaries[method].correct, summaries[method].comparable) == (10, 10)
    assert summaries[method].total_cost == pytest.approx(0.0, abs=1e-10)
    wrong = compare_alignments(signatures["A"], signatures["A_permuted"], names_a=names, names_b=names)
    assert wrong[method].correct == int(np.sum(PERMUTATION == np.arange(10)))
    unscored = compare_alignments(signatures["A"], signatures["B"], methods=[method])
    assert unscored[method].correct is None and list(unscored) == [method]
    with pytest.raises(ValueError, match="class names: expected 10"):
        compare_alignments(signatures["A"], signatures["B"], names_a=names[:3], names_b=names)


# --------------------------------------------------------------------------------------------------
# Collections, checkpoints, reports
# --------------------------------------------------------------------------------------------------


def test_clustering_puts_close_models_next_to_each_other():
    # Models 0, 2, 4 are close to each other, 1 and 3 too; the groups are far apart.
    group = np.array([0, 1, 0, 1, 0])
    matrix = np.where(group[:, None] == group[None, :], 0.1, 0.9)
    np.fill_diagonal(matrix, 0.0)
    clustering = cluster_models(matrix)
    ordered = group[clustering.order]
    assert sorted(clustering.order.tolist()) == [0, 1, 2, 3, 4]
    assert np.count_nonzero(np.diff(ordered)) == 1  # one switch between the two groups
    assert len(clustering.icoord) == 4 and clustering.linkage.shape == (4, 4)
    assert cluster_models(np.zeros((2, 2))).order.tolist() == [0, 1]
    with pytest.raises(ValueError, match="symmetric distances"):
        cluster_models(np.array([[0.0, 1.0], [2.0, 0.0]]))
    with pytest.raises(ValueError, match="square"):
        cluster_models(np.zeros((2, 3)))


def test_compare_signatures_matches_the_classes_once(signatures, monkeypatch):
    from zest_core.pipeline import distance

    calls = []
    real = distance.align_matrices
    monkeypatch.setattr(distance, "align_matrices", lambda *args: calls.append(args) or real(*args))
    result = compare_signatures(signatures["A"], signatures["A_permuted"], align="hungarian", n_boot=0)
    assert len(calls) == 1  # the distance, its contributions and the reported matching share one alignment
    assert result.alignment_method == result.alignment.method == "hungarian"
    np.testing.assert_array_equal(result.contributions.pairs, result.alignment.pairs)
    assert result.distance == result.contributions.distance == pytest.approx(0.0, abs=1e-10)


def test_the_report_is_plain_json_and_consistent(signatures, digits_refset):
    result = compare_signatures(signatures["A"], signatures["A_permuted"], align="greedy", n_boot=20)
    names = [str(k) for k in range(10)]
    alignments = compare_alignments(signatures["A"], signatures["A_permuted"], names_a=names,
                                    names_b=[names[k] for k in PERMUTATION])
    meta = {"A": {"label": "A", "class_names": names}, "B": {"label": "perm", "class_names": names}}
    report = comparison_report(result, models=meta, refset=digits_refset, config=signatures["A"].config,
                               alignments=alignments, extra={"timings_s": {"total_s": np.float64(1.5)}})
    text = json.dumps(report, allow_nan=False)
    again = json.loads(text)
    assert again["distance"] == pytest.approx(result.distance)
    assert "verdict" not in again and "relative_distance" not in again and "baseline" not in again
    assert sum(i["contribution"] for i in again["contributions"]["images"]) == pytest.approx(result.distance, abs=1e-12)
    assert again["alignments"]["hungarian"]["correct"] == 10
    assert len(again["class_cost_matrix"]) == 10
    assert again["reference_set"]["labels"] == digits_refset.labels.tolist()
    assert again["timings_s"]["total_s"] == 1.5


def test_to_jsonable():
    value = {"a": np.float32(1.5), "b": (np.int64(2), float("nan")), "c": np.arange(2), "d": []}
    assert to_jsonable(value) == {"a": 1.5, "b": [2, None], "c": [0, 1], "d": []}
