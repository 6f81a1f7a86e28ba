"""Bad input gets a clear error; the signature cache is keyed on content and never trusts a bad file."""

import numpy as np
import pytest
import torch

from zest_core import (
    IncompatibleSignaturesError,
    ModelInputError,
    ModelOutputError,
    ReferenceSet,
    Signature,
    SignatureFileError,
    ZestConfig,
    compute_signature,
    zest_distance,
)

from conftest import make_cnn


# --- bad models ---------------------------------------------------------------------------------

@pytest.mark.parametrize("bad_value", [float("nan"), float("inf")])
def test_a_model_returning_nan_or_inf_is_refused(digits_refset, small_config, bad_value):
    def broken(x):
        scores = torch.zeros(x.shape[0], 10)
        scores[-1, 3] = bad_value
        return scores

    with pytest.raises(ModelOutputError, match="NaN or infinite"):
        compute_signature(broken, digits_refset, small_config)


def test_nan_in_a_later_batch_is_caught_before_a_signature_is_returned(digits_refset, small_config):
    calls = []

    def late_nan(x):
        calls.append(1)
        scores = torch.zeros(x.shape[0], 10)
        if len(calls) == 4:
            scores[0, 0] = float("nan")
        return scores

    with pytest.raises(ModelOutputError, match=r"1 NaN or infinite scores in the 720 perturbed images"):
        compute_signature(late_nan, digits_refset, small_config)


@pytest.mark.parametrize(
    "model, message",
    [
        (lambda x: torch.zeros(x.shape[0]), r"shape \(50,\)"),
        (lambda x: torch.zeros(x.shape[0] - 1, 10), r"shape \(49, 10\) for a batch of 50"),
        (lambda x: torch.zeros(x.shape[0], 2, 5), r"expected \[50, classes\]"),
        (lambda x: (torch.zeros(x.shape[0], 10),), "tuple"),
        (lambda x: "scores", "expected"),
    ],
)
def test_outputs_of_the_wrong_shape_are_refused(digits_refset, small_config, model, message):
    with pytest.raises(ModelOutputError, match=message):
        compute_signature(model, digits_refset, small_config)


def test_a_model_changing_its_class_count_is_refused(digits_refset, small_config):
    calls = []

    def unstable(x):
        calls.append(1)
        return torch.zeros(x.shape[0], 10 if len(calls) == 1 else 9)

    with pytest.raises(ModelOutputError, match="10 classes in earlier batches and 9"):
        compute_signature(unstable, digits_refset, small_config)


def test_a_model_for_other_image_sizes_gets_a_clear_error(digits_refset, small_config):
    from zest_core.sources.architectures import ResNet20

    with pytest.raises(ModelInputError, match=r"first batch.*1-channel 28×28"):
        compute_signature(ResNet20(), digits_refset, small_config)

    class Declared(torch.nn.Module):
        input_shape = (3, 32, 32)

        def forward(self, x):
            return torch.zeros(x.shape[0], 10)

    with pytest.raises(ModelInputError, match=r"expects inputs of shape \(3, 32, 32\).*\(1, 28, 28\)"):
        compute_signature(Declared(), digits_refset, small_config)


# --- bad reference sets and configs ----------------------------------------------------------------

def test_empty_and_malformed_reference_sets_are_refused():
    with pytest.raises(ValueError, match="empty"):
        ReferenceSet.from_arrays(np.zeros((0, 28, 28), np.uint8))
    with pytest.raises(ValueError, match="empty"):
        ReferenceSet.from_arrays([])
    with pytest.raises(ValueError, match="same size"):
        ReferenceSet.from_arrays([np.zeros((28, 28), np.uint8), np.zeros((32, 32), np.uint8)])
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        ReferenceSet.from_arrays(np.full((2, 8, 8), 3.0))
    with pytest.raises(ValueError, match="channels last"):
        ReferenceSet.from_arrays(np.zeros((2, 3, 8, 8), np.uint8))
    with pytest.raises(ValueError, match="labels"):
        ReferenceSet.from_arrays(np.zeros((2, 8, 8), np.uint8), labels=[1, 2, 3])


def test_invalid_config_values_are_named():
    with pytest.raises(ValueError, match="fill: expected one of"):
        ZestConfig(fill="zeros")
    with pytest.raises(ValueError, match="num_samples: expected an integer ≥ 2"):
        ZestConfig(num_samples=1)
    with pytest.raises(TypeError, match="batch_size: expected an integer"):
        ZestConfig(batch_size=2.5)


def test_signatures_from_different_reference_sets_or_configs_are_not_compared(digits_refset, mnist_digits, small_config):
    model = make_cnn(0)
    a = compute_signature(model, digits_refset, small_config, cache=False)
    other_refset = ReferenceSet.from_arrays(mnist_digits[0][100:106])
    with pytest.raises(IncompatibleSignaturesError, match="different reference sets"):
        zest_distance(a, compute_signature(model, other_refset, small_config, cache=False))
    with pytest.raises(IncompatibleSignaturesError, match="num_samples=120 vs 130"):
        zest_distance(a, compute_signature(model, digits_refset, small_config.replace(num_samples=130), cache=False))
    # Execution fields (batch size, device) do not change what a signature means.
    same = compute_signature(model, digits_refset, small_config.replace(batch_size=17), cache=False)
    # float32 across batch sizes (50 vs 17): kernels differ by CPU, but the cosine distance is quadratic in
    # the difference (1e-13 seen with other kernels), so abs=1e-9 holds on any CPU.
    assert zest_distance(a, same) == pytest.approx(0.0, abs=1e-9)


# --- the cache ----------------------------------------------------------------------------------

def test_a_second_computation_comes_from_the_cache(digits_refset, small_config, isolated_cache):
    model = make_cnn(0)
    first = compute_signature(model, digits_refset, small_config)
    assert len(list(isolated_cache.glob("*.zsig.npz"))) == 1

    def must_not_run(*_):
        raise AssertionError("the model was queried although the signature is cached")

    stages = []
    calls = []
    model.register_forward_hook(lambda *args: calls.append(1))
    cached = compute_signature(model, digits_refset, small_config, progress=lambda d, t, s: stages.append(s))
    assert calls == [] and stages == ["cached"]
    assert np.array_equal(cached.matrix(), first.matrix())


def test_any_change_of_model_refset_or_config_gives_a_new_key(digits_refset, mnist_digits, small_config, isolated_cache):
    model = make_cnn(0)
    compute_signature(model, digits_refset, small_config)
    compute_signature(model, digits_refset, small_config.replace(batch_size=51))
    compute_signature(model, ReferenceSet.from_arrays(mnist_digits[0][:6]), small_config)
    with torch.no_grad():
        model.fc2.bias[0] += 1e-3  # one weight changes: a different model
    compute_signature(model, digits_refset, small_config)
    assert len(list(isolated_cache.glob("*.zsig.npz"))) == 4


def test_a_corrupt_cache_file_is_recomputed_with_a_warning(digits_refset, small_config, isolated_cache):
    model = make_cnn(0)
    first = compute_signature(model, digits_refset, small_config)
    (path,) = isolated_cache.glob("*.zsig.npz")
    for damage in (b"garbage", path.read_bytes()[: path.stat().st_size // 2]):
        path.write_bytes(damage)
        with pytest.warns(UserWarning, match="corrupt signature cache file"):
            again = compute_signature(model, digits_refset, small_config)
        assert np.array_equal(again.matrix(), first.matrix())
        assert Signature.load(path).matrix().shape == first.matrix().shape  # rewritten, readable


def test_an_altered_signature_file_fails_its_checksum(digits_refset, small_config, tmp_path):
    signature = compute_signature(make_cnn(0), digits_refset, small_config, cache=False)
    path = signature.save(tmp_path / "a.npz")
    data = dict(np.load(path))
    data["matrix"] = data["matrix"] * 1.01
    np.savez(path, **data)
    with pytest.raises(SignatureFileError, match="checksum"):
        Signature.load(path)
    with pytest.raises(SignatureFileError, match="no such"):
        Signature.load(tmp_path / "missing.npz")


def test_save_and_load_round_trip(digits_refset, tmp_path):
    config = ZestConfig(num_samples=60, mode="lime", device="cpu")
    signature = compute_signature(make_cnn(0), digits_refset, config, cache=False)
    loaded = Signature.load(signature.save(tmp_path / "sig.npz"))
    assert np.array_equal(loaded.matrix(), signature.matrix())
    assert np.array_equal(loaded.intercepts, signature.intercepts)
    assert np.array_equal(loaded.segments, signature.segments)
    assert loaded.config == config and loaded.model_fingerprint == signature.model_fingerprint
    assert not list(tmp_path.glob(".*.tmp"))  # no temporary file left behind


def test_bare_callables_are_computed_but_never_cached(digits_refset, small_config, isolated_cache):
    model = make_cnn(0)
    compute_signature(lambda x: model(x), digits_refset, small_config)
    assert not isolated_cache.exists() or not list(isolated_cache.glob("*.zsig.npz"))


def test_the_callers_module_is_restored(digits_refset, small_config):
    model = make_cnn(0).train()
    compute_signature(model, digits_refset, small_config, cache=False)
    assert model.training


def test_segmentations_are_cached_on_disk_and_checked(digits_refset, small_config, isolated_cache, monkeypatch):
    import zest_core.pipeline.probe as probe_module

    probe_module._PROBES.clear()  # other tests may have left this probe in memory
    first = compute_signature(make_cnn(0), digits_refset, small_config)
    (segments_file,) = isolated_cache.glob("*.segments.npz")
    probe_module._PROBES.clear()  # as in a new process

    def must_not_segment(*args, **kwargs):
        raise AssertionError("segmented again although the segments are cached")

    monkeypatch.setattr(probe_module, "segment_reference_set", must_not_segment)
    other = compute_signature(make_cnn(1), digits_refset, small_config)
    assert np.array_equal(other.segments, first.segments)

    monkeypatch.undo()
    monkeypatch.setenv("ZEST_CACHE_DIR", str(isolated_cache))
    probe_module._PROBES.clear()
    segments_file.write_bytes(b"not a zip file")
    with pytest.warns(UserWarning, match="corrupt segmentation cache file"):
        again = compute_signature(make_cnn(2), digits_refset, small_config)
    assert np.array_equal(again.segments, first.segments)


# --- the one checked npz format, the one store, the one cache argument ----------------------------

def test_the_checked_npz_format_round_trips_and_refuses_damage(tmp_path):
    from zest_core._shared.npzfile import NpzFormat, NpzRecord
    from zest_core.errors import ZestError

    kind = NpzFormat("test record", ".test.npz", checksummed=("a",), version=3)
    arrays = {"a": np.arange(6.0).reshape(2, 3), "b": np.array(["x", "y"])}
    path = kind.write(tmp_path / "r", NpzRecord(arrays=arrays, meta={"k": [1, 2]}))
    assert path == tmp_path / "r"  # the name is used as given
    record = kind.read(path)
    assert np.array_equal(record.arrays["a"], np.arange(6.0).reshape(2, 3)) and record.meta == {"k": [1, 2]}
    data = dict(np.load(path))
    damaged = tmp_path / "damaged.npz"
    np.savez(damaged, **{**data, "a": data["a"] + 1})
    with pytest.raises(ZestError, match=r"damaged.npz: checksum mismatch"):
        kind.read(damaged)
    with pytest.raises(ZestError, match=r"expected format version 4, got 3"):
        NpzFormat("test record", ".test.npz", checksummed=("a",), version=4).read(damaged)
    with pytest.raises(ZestError, match="no such test record file"):
        kind.read(tmp_path / "absent.npz")
    (tmp_path / "junk.npz").write_bytes(b"junk")
    with pytest.raises(ZestError, match="junk.npz: not a readable test record file"):
        kind.read(tmp_path / "junk.npz")
    with pytest.raises(ZestError, match="names other than the format's own"):
        kind.write(tmp_path / "x.npz", NpzRecord(arrays={"meta": np.zeros(1)}, meta={}))
    assert not list(tmp_path.glob(".*.tmp"))


def test_a_segment_cache_file_of_the_first_format_still_loads(tmp_path):
    from zest_core.cache import SEGMENTS_FILE, SignatureCache, array_checksum
    from zest_core.pipeline.probe import _decode_segments

    segments = np.arange(2 * 4 * 4, dtype=np.int32).reshape(2, 4, 4) % 5
    store = SignatureCache(tmp_path)
    with open(store.path("old", SEGMENTS_FILE), "wb") as stream:  # as the code before issue 10 wrote it
        np.savez(stream, segments=segments, checksum=np.array(array_checksum(segments)))
    assert np.array_equal(store.load("old", SEGMENTS_FILE, _decode_segments), segments)


def test_the_cache_argument_has_one_meaning(tmp_path, monkeypatch):
    from zest_core.cache import SignatureCache, resolve_cache

    monkeypatch.setenv("ZEST_CACHE_DIR", str(tmp_path / "default"))
    assert resolve_cache(False) is None
    assert resolve_cache(None).root == resolve_cache(True).root == tmp_path / "default"
    assert resolve_cache(str(tmp_path)).root == tmp_path
    store = SignatureCache(tmp_path)
    assert resolve_cache(store) is store
    with pytest.raises(TypeError, match="^cache: expected None, a bool, a folder or a SignatureCache"):
        resolve_cache(3)


# --- the one query loop and the one meaning of "scores to probabilities" ---------------------------

def test_scores_become_probabilities_as_the_model_declares_them():
    from zest_core import Classifier
    from zest_core.pipeline.scores import model_outputs, scores_to_probabilities

    logits = torch.tensor([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]])
    np.testing.assert_allclose(scores_to_probabilities(logits, "logits"), torch.softmax(logits.double(), 1))
    probabilities = torch.softmax(logits, 1)
    assert scores_to_probabilities(probabilities, "probabilities").dtype == torch.float64
    np.testing.assert_array_equal(scores_to_probabilities(probabilities, "probabilities"), probabilities.double())
    with pytest.raises(ModelOutputError, match="expected probabilities"):
        scores_to_probabilities(logits, "probabilities")  # logits declared as probabilities
    with pytest.raises(ValueError, match="^outputs: expected one of 'logits', 'probabilities'"):
        scores_to_probabilities(logits, "scores")
    assert model_outputs(Classifier(lambda x: x, outputs="probabilities")) == "probabilities"
    assert model_outputs(lambda x: x) == "logits"


def test_the_query_loop_checks_every_batch_and_names_the_first_failure():
    from zest_core.pipeline.queries import query_scores

    calls = []

    def late_nan(x):
        calls.append(x.shape[0])
        scores = torch.zeros(x.shape[0], 3)
        if len(calls) == 3:
            scores[0, 1] = float("inf")
        return scores

    images = torch.rand(10, 1, 8, 8)
    with pytest.raises(ModelOutputError, match="1 NaN or infinite scores in the 10 images"):
        query_scores(late_nan, images, batch_size=4, device="cpu")
    assert calls == [4, 4, 2]
    with pytest.raises(ModelInputError, match=r"first batch, of shape \(4, 1, 8, 8\).*1-channel 8×8"):
        query_scores(lambda x: x.view(x.shape[0], 3, -1), images, batch_size=4, device="cpu")
    with pytest.raises(ValueError, match="^batch_size: expected None or an integer ≥ 1"):
        query_scores(late_nan, images, batch_size=0, device="cpu")
