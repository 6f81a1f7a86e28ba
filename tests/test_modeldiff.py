"""ModelDiff (Li et al., ISSTA 2021): pairs, decision distance vectors, similarity, and the pairs cache."""
from __future__ import annotations

import contextlib
import copy
import functools

import numpy as np
import pytest
import torch
from scipy.spatial import distance as scipy_distance
from scipy.special import softmax

from zest_core import Classifier, ModelInputError, ModelOutputError, ReferenceSet
from zest_core.sources.mnist import load_mnist
from zest_core.zoo.demo import PermutedClasses
from zest_core.methods.modeldiff import (
    InputPairs,
    ModelDiff,
    PairsCache,
    ddv_similarity,
    decision_distance_vector,
    decision_distances,
    generate_pairs,
    modeldiff_similarity,
    normalize_ddv,
    query_scores,
    to_probabilities,
)
from zest_core.sources.architectures import SmallCNN
from zest_core.zoo.training import train_classifier

from conftest import SelectedOutputs, make_cnn

FAST = {"steps": 8, "device": "cpu"}


@contextlib.contextmanager
def one_thread():
    """Run torch on one thread: on this project's shared 2-core machines, 2 threads measured 6× slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    with one_thread():
        yield


def tiny_cnn(seed: int) -> torch.nn.Module:
    """SmallCNN at half width (fast to train on 2 CPU cores), its weights fixed by ``seed``."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return SmallCNN(width=8)


@functools.lru_cache(maxsize=1)
def trained_zoo() -> dict[str, torch.nn.Module]:
    """Small CNNs trained for seconds on real MNIST digits: A, B, C, D independent, A_ft and B_ft lightly fine-tuned.

    Shared with test_benchmarks.py (which imports it), so the models are trained once per session.
    """
    train = load_mnist(500, split="train", seed=0)
    extra = load_mnist(200, split="train", seed=5)
    with one_thread():
        zoo = {
            name: train_classifier(tiny_cnn(seed), train.images, train.labels, epochs=2, lr=3e-3, seed=seed)
            for seed, name in enumerate("ABCD")
        }
        for name in ("A", "B"):
            zoo[f"{name}_ft"] = train_classifier(
                copy.deepcopy(zoo[name]), extra.images, extra.labels, epochs=1, lr=1e-4, seed=9
            )
    return zoo


@pytest.fixture(scope="module")
def zoo() -> dict[str, torch.nn.Module]:
    return trained_zoo()


@pytest.fixture(scope="module")
def seeds() -> ReferenceSet:
    return load_mnist(24, split="test", seed=1)


class Counting(torch.nn.Module):
    """A model that counts its forward passes (its fingerprint is the wrapped weights')."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model
        self.calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return self.model(x)


def plain_ddv(model, pairs: InputPairs) -> np.ndarray:
    """The paper's DDV written out by hand: softmax, scipy's cosine distance per pair, unit norm."""
    with torch.no_grad():
        logits_x = model(torch.from_numpy(pairs.seeds)).double().numpy()
        logits_y = model(torch.from_numpy(pairs.perturbed)).double().numpy()
    p, q = softmax(logits_x, axis=1), softmax(logits_y, axis=1)
    ddv = np.array([scipy_distance.cosine(p[i], q[i]) for i in range(len(p))])
    return ddv / np.linalg.norm(ddv)


# --- known answers ------------------------------------------------------------------------------


def test_a_model_is_identical_to_itself_and_the_ddv_matches_a_plain_transcription(zoo, seeds):
    pairs = generate_pairs(zoo["A"], seeds, cache=False, **FAST)
    ddv = decision_distance_vector(zoo["A"], pairs, device="cpu")
    # float32 across batch sizes (one batch of 48 vs two of 24): MKL/oneDNN kernels differ by CPU, and a
    # pair whose decisions barely move (raw distance ~1e-5) turns 1e-7 score rounding into 2.4e-6 relative
    # here with other kernels; atol is float32's 1e-5 of the largest entry.
    np.testing.assert_allclose(ddv, plain_ddv(zoo["A"], pairs), rtol=1e-4, atol=1e-5 * np.abs(ddv).max())
    assert np.linalg.norm(ddv) == pytest.approx(1.0)
    assert ModelDiff(zoo["A"], pairs, device="cpu").compare(zoo["A"]) == pytest.approx(1.0, abs=1e-12)
    other = decision_distance_vector(zoo["B"], pairs, device="cpu")
    assert ddv_similarity(ddv, other) == pytest.approx(1.0 - scipy_distance.cosine(ddv, other), abs=1e-12)


def test_a_class_permuted_copy_has_the_same_ddv(zoo, seeds):
    pairs = generate_pairs(zoo["A"], seeds, cache=False, **FAST)
    permuted = PermutedClasses(zoo["A"], np.random.default_rng(4).permutation(10))
    np.testing.assert_allclose(
        decision_distance_vector(permuted, pairs, device="cpu"),
        decision_distance_vector(zoo["A"], pairs, device="cpu"),
        rtol=1e-9, atol=1e-12,
    )
    assert modeldiff_similarity(zoo["A"], permuted, pairs, device="cpu") == pytest.approx(1.0, abs=1e-9)


def test_a_fine_tuned_copy_is_more_similar_than_unrelated_models(zoo, seeds):
    for parent, others in (("A", "BCD"), ("B", "ACD")):
        detector = ModelDiff(zoo[parent], seeds, cache=False, device="cpu")
        fine_tuned = detector.compare(zoo[f"{parent}_ft"])
        unrelated = [detector.compare(zoo[name]) for name in others]
        assert 0.0 <= max(unrelated) < fine_tuned <= 1.0


def test_the_ddv_does_not_depend_on_the_class_count_or_the_output_kind(zoo, seeds):
    pairs = generate_pairs(zoo["A"], seeds, cache=False, **FAST)
    subset = SelectedOutputs(zoo["A"], np.array([7, 2, 5, 0, 9]))
    similarity = ModelDiff(zoo["A"], pairs, device="cpu").compare(subset)
    assert 0.0 < similarity < 1.0  # five classes of ten: defined, and not the same decisions
    as_probabilities = Classifier(lambda x: torch.softmax(zoo["A"](x), dim=1), outputs="probabilities")
    np.testing.assert_allclose(
        decision_distance_vector(as_probabilities, pairs, device="cpu"),
        decision_distance_vector(zoo["A"], pairs, device="cpu"), rtol=1e-5, atol=1e-7,
    )  # same batches and kernels; only the float32 softmax differs (2e-7 relative seen): 50x margin


def test_decision_distances_and_probabilities_match_scipy():
    rng = np.random.default_rng(0)
    logits_a, logits_b = rng.normal(size=(6, 4)) * 3, rng.normal(size=(6, 4)) * 3
    np.testing.assert_allclose(to_probabilities(logits_a), softmax(logits_a, axis=1), rtol=1e-12)
    p, q = to_probabilities(logits_a), to_probabilities(logits_b)
    expected = [scipy_distance.cosine(p[i], q[i]) for i in range(6)]
    np.testing.assert_allclose(decision_distances(p, q), expected, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(to_probabilities(p, "probabilities"), p)
    assert normalize_ddv(np.array([3.0, 4.0])) == pytest.approx([0.6, 0.8])


# --- the pair search ----------------------------------------------------------------------------


def test_pairs_stay_in_the_ball_and_in_pixel_range(zoo, seeds):
    epsilon = 0.07
    pairs = generate_pairs(zoo["A"], seeds, epsilon=epsilon, cache=False, **FAST)
    np.testing.assert_array_equal(pairs.seeds, seeds.as_tensor().numpy())
    assert pairs.perturbed.shape == pairs.seeds.shape == (24, 1, 28, 28)
    assert np.abs(pairs.perturbed - pairs.seeds).max() <= epsilon + 1e-6
    assert pairs.perturbed.min() >= 0.0 and pairs.perturbed.max() <= 1.0
    assert np.abs(pairs.perturbed - pairs.seeds).max() > epsilon / 2  # it did move


@pytest.mark.parametrize("diversity", [True, False])
def test_the_search_drives_the_source_decisions_apart(zoo, seeds, diversity):
    epsilon = 0.1
    pairs = generate_pairs(zoo["A"], seeds, epsilon=epsilon, diversity=diversity, cache=False, **FAST)

    def mean_source_distance(perturbed: np.ndarray) -> float:
        with torch.no_grad():
            p = softmax(zoo["A"](torch.from_numpy(pairs.seeds)).double().numpy(), axis=1)
            q = softmax(zoo["A"](torch.from_numpy(perturbed)).double().numpy(), axis=1)
        return float(np.mean([scipy_distance.cosine(p[i], q[i]) for i in range(len(p))]))

    noise = np.random.default_rng(0).uniform(-epsilon, epsilon, size=pairs.seeds.shape).astype(np.float32)
    random_pairs = np.clip(pairs.seeds + noise, 0.0, 1.0)
    searched = mean_source_distance(pairs.perturbed)
    assert searched > 20 * mean_source_distance(random_pairs)
    # float32 across batch sizes (the search's batches vs one of 24): a mean of distances, 2.3e-7 relative
    # seen with other batch sizes; rel=1e-5 leaves 40x for another CPU's kernels.
    assert searched == pytest.approx(pairs.metadata["source_mean_decision_distance"], rel=1e-5)
    assert pairs.metadata["score"] > pairs.metadata["initial_score"]
    # Larger balls reach further: the divergence grows with epsilon.
    wider = generate_pairs(zoo["A"], seeds, epsilon=0.2, diversity=diversity, cache=False, **FAST)
    assert wider.metadata["source_mean_decision_distance"] > searched


def test_the_search_is_deterministic_and_seeded(zoo, seeds):
    first = generate_pairs(zoo["A"], seeds, seed=3, cache=False, **FAST)
    again = generate_pairs(zoo["A"], seeds, seed=3, cache=False, **FAST)
    other = generate_pairs(zoo["A"], seeds, seed=4, cache=False, **FAST)
    np.testing.assert_array_equal(first.perturbed, again.perturbed)
    assert not np.array_equal(first.perturbed, other.perturbed)
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    generate_pairs(zoo["A"], seeds, seed=5, cache=False, **FAST)
    assert torch.equal(torch.rand(3), expected)  # the global generator is left alone


def test_the_batch_size_changes_only_rounding(zoo, seeds):
    whole = generate_pairs(zoo["A"], seeds, batch_size=1000, cache=False, **FAST)
    pieces = generate_pairs(zoo["A"], seeds, batch_size=5, cache=False, **FAST)
    # Sign steps amplify rounding where a gradient is ~0, so compare most pixels and the outcome.
    assert np.mean(whole.perturbed == pieces.perturbed) > 0.99
    assert pieces.metadata["score"] == pytest.approx(whole.metadata["score"], rel=0.02)


# --- the cache ----------------------------------------------------------------------------------


def test_pairs_are_cached_by_content_and_reused_without_queries(zoo, seeds, isolated_cache):
    model = Counting(zoo["A"])
    first = generate_pairs(model, seeds, **FAST)  # default cache: $ZEST_CACHE_DIR
    files = sorted(isolated_cache.glob("*.mdpairs.npz"))
    assert len(files) == 1
    calls = model.calls
    again = generate_pairs(model, seeds, **FAST)
    assert model.calls == calls  # read back, not searched again
    np.testing.assert_array_equal(first.perturbed, again.perturbed)
    np.testing.assert_array_equal(first.seeds, again.seeds)
    assert again.params == first.params and again.metadata == first.metadata
    # Every parameter is part of the key; the device and batch size are not.
    generate_pairs(model, seeds, batch_size=7, **FAST)
    assert model.calls == calls
    generate_pairs(model, seeds, epsilon=0.05, **FAST)
    assert model.calls > calls and len(list(isolated_cache.glob("*.mdpairs.npz"))) == 2
    generate_pairs(model, seeds.subset(range(10)), **FAST)
    assert len(list(isolated_cache.glob("*.mdpairs.npz"))) == 3


def test_a_corrupt_cache_file_is_recomputed_with_a_warning(zoo, seeds, tmp_path):
    cache = PairsCache(tmp_path / "pairs")
    first = generate_pairs(zoo["A"], seeds, cache=cache, **FAST)
    (path,) = list(cache.root.glob("*.mdpairs.npz"))
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.warns(UserWarning, match="corrupt ModelDiff pairs cache file"):
        again = generate_pairs(zoo["A"], seeds, cache=cache, **FAST)
    np.testing.assert_array_equal(first.perturbed, again.perturbed)
    assert InputPairs.load(path).params == first.params  # rewritten whole


def test_a_bare_callable_is_never_cached(zoo, seeds, isolated_cache):
    generate_pairs(lambda x: zoo["A"](x), seeds, **FAST)
    assert not list(isolated_cache.glob("*.mdpairs.npz"))


# --- bad input ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"epsilon": 0.0}, "epsilon"),
        ({"epsilon": 1.5}, "epsilon"),
        ({"epsilon": "0.1"}, "epsilon"),
        ({"steps": 0}, "steps"),
        ({"step_size": -0.1}, "step_size"),
        ({"seed": -1}, "seed"),
        ({"diversity": "yes"}, "diversity"),
        ({"batch_size": 0}, "batch_size"),
        ({"cache": 3}, "cache"),
    ],
)
def test_bad_search_arguments_name_the_argument(seeds, kwargs, message):
    with pytest.raises(ValueError, match=f"^{message}: expected"):
        generate_pairs(make_cnn(0), seeds, **kwargs)


def test_bad_models_and_inputs_get_clear_errors(zoo, seeds):
    with pytest.raises(ValueError, match="^refset: expected a ReferenceSet"):
        generate_pairs(zoo["A"], seeds.images)
    with pytest.raises(ValueError, match="^source_model: expected a callable"):
        generate_pairs("model.pt", seeds)
    with pytest.raises(ValueError, match="^source_model: its scores carry no gradient"):
        generate_pairs(lambda x: zoo["A"](x).detach().numpy(), seeds, cache=False, **FAST)
    pairs = generate_pairs(zoo["A"], seeds, cache=False, **FAST)
    with pytest.raises(ValueError, match="^pairs: expected InputPairs"):
        decision_distance_vector(zoo["A"], pairs.perturbed)
    with pytest.raises(ModelOutputError, match=r"shape \(48,\) for a batch of 48"):
        decision_distance_vector(lambda x: torch.zeros(x.shape[0]), pairs)
    from zest_core.sources.architectures import ResNet20

    with pytest.raises(ModelInputError, match="first batch"):
        decision_distance_vector(ResNet20(), pairs, device="cpu")
    with pytest.raises(ValueError, match="^distances: all 24 decision distances are zero"):
        decision_distance_vector(lambda x: torch.zeros(x.shape[0], 10), pairs)
    with pytest.raises(ValueError, match="^ddv_b: expected 3 decision distances"):
        ddv_similarity(np.ones(3), np.ones(4))
    with pytest.raises(TypeError, match="^ModelDiff: expected options among epsilon, steps"):
        ModelDiff(zoo["A"], pairs, epslon=0.1)


def test_queries_come_in_batches_with_the_last_one_partial(zoo, seeds):
    sizes = []

    def recording(x):
        sizes.append(x.shape[0])
        return zoo["A"](x)

    images = seeds.as_tensor()
    scores = query_scores(recording, images, batch_size=10, device="cpu")
    assert sizes == [10, 10, 4]
    with torch.no_grad():
        whole = zoo["A"](images).double().numpy()
    # float32 across batch sizes (10, 10, 4 vs 24): MKL and oneDNN pick kernels by CPU and batch size
    # (2.8e-5 relative seen on a Xeon; 5e-6 here with MKL_CBWR=COMPATIBLE), so the tolerance is float32's
    # over these ~10^4 MACs, scaled by the largest score. The exact bookkeeping is checked in float64 below.
    np.testing.assert_allclose(scores, whole, rtol=1e-4, atol=1e-5 * np.abs(whole).max())


def test_batched_queries_keep_every_score_in_place_in_float64(zoo, seeds):
    """Issue 9, item 1: the batching bookkeeping checked without float32's dependence on the CPU.

    In float64 the same CNN gives, per batch, exactly the scores of the same batch run by hand (same
    shapes, same kernels), and one batch of 24 agrees to float64 rounding, so a score in the wrong row
    or a dropped partial batch cannot hide inside a float32 tolerance.
    """
    model = copy.deepcopy(zoo["A"]).double()
    images = seeds.as_tensor().double()
    sizes = []

    def recording(x):
        sizes.append(x.shape[0])
        return model(x)

    scores = query_scores(recording, images, batch_size=10, device="cpu", dtype=torch.float64)
    assert sizes == [10, 10, 4] and scores.dtype == np.float64
    with torch.no_grad():
        by_hand = torch.cat([model(images[i:i + 10]) for i in range(0, 24, 10)]).numpy()
        whole = model(images).numpy()
    np.testing.assert_array_equal(scores, by_hand)
    np.testing.assert_allclose(scores, whole, rtol=1e-12, atol=1e-12 * np.abs(whole).max())
