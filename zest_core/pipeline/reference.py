"""Reference data: the N images every model is probed on, in pixel space."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import torch

from ..errors import ZestError, ZestTypeError


@dataclass(frozen=True)
class ReferenceSet:
    """N reference images in pixel space.

    Attributes
    ----------
    images : ndarray, shape (N, H, W, 3) or (N, H, W), dtype uint8
        The images; greyscale images keep no channel axis.
    labels : ndarray of int, shape (N,), optional
        Their true classes, when known.
    provenance : str
        Where the images came from, for display and reports.
    class_names : tuple of str, optional
        The name of every class, indexed by label (e.g. an image folder's class subfolders).
    """

    images: np.ndarray
    labels: np.ndarray | None = None
    provenance: str = "arrays"
    class_names: tuple[str, ...] | None = None
    _fingerprint: str = field(default="", repr=False, compare=False)

    @classmethod
    def from_arrays(
        cls,
        images: np.ndarray | Sequence[np.ndarray],
        labels: np.ndarray | Sequence[int] | None = None,
        *,
        provenance: str = "arrays",
        class_names: Sequence[str] | None = None,
    ) -> "ReferenceSet":
        """Build a reference set from images in pixel space.

        Parameters
        ----------
        images : array-like, shape (N, H, W), (N, H, W, 1) or (N, H, W, 3)
            uint8 in [0, 255], or floats in [0, 1] (converted to uint8).
        labels : array-like of int, shape (N,), optional
        provenance : str
        class_names : sequence of str, optional
            The name of every class, indexed by label; needs labels, all in ``range(len(class_names))``.

        Raises
        ------
        ZestError
            If there are no images, they differ in size, have an unsupported shape or values out of
            range, or the labels or class names do not match them.
        """
        if isinstance(images, (list, tuple)):
            if len(images) == 0:
                raise ZestError("images: expected a non-empty reference set, got 0 images")
            shapes = {np.asarray(im).shape for im in images}
            if len(shapes) > 1:
                raise ZestError(f"images: expected images of the same size, got shapes {sorted(shapes)}")
            images = np.stack([np.asarray(im) for im in images])
        array = np.asarray(images)
        if array.ndim == 0 or array.shape[0] == 0:
            raise ZestError("images: expected a non-empty reference set, got 0 images")
        if array.ndim == 4 and array.shape[-1] == 1:
            array = array[..., 0]
        if not (array.ndim == 3 or (array.ndim == 4 and array.shape[-1] == 3)):
            raise ZestError(
                "images: expected shape (N, H, W) or (N, H, W, 3) in pixel space (channels last), "
                f"got {array.shape}"
            )
        array = _to_uint8(array)
        label_array = None
        if labels is not None:
            label_array = np.asarray(labels)
            if label_array.shape != (array.shape[0],) or not np.issubdtype(label_array.dtype, np.integer):
                raise ZestError(
                    f"labels: expected {array.shape[0]} integer labels, got shape {label_array.shape} "
                    f"of dtype {label_array.dtype}"
                )
        names = _check_class_names(class_names, label_array)
        array.setflags(write=False)
        return cls(images=array, labels=label_array, provenance=provenance, class_names=names)

    def __len__(self) -> int:
        return int(self.images.shape[0])

    @property
    def image_size(self) -> tuple[int, int]:
        return int(self.images.shape[1]), int(self.images.shape[2])

    @property
    def channels(self) -> int:
        return 1 if self.images.ndim == 3 else 3

    def fingerprint(self) -> str:
        """Content hash of the images (labels and provenance do not change a signature)."""
        if not self._fingerprint:
            digest = hashlib.sha256()
            digest.update(str(self.images.shape).encode())
            digest.update(np.ascontiguousarray(self.images).tobytes())
            object.__setattr__(self, "_fingerprint", digest.hexdigest()[:32])
        return self._fingerprint

    def subset(self, indices: Sequence[int], *, provenance: str | None = None) -> "ReferenceSet":
        """The images at ``indices``, in that order, with their labels and the class names."""
        index = np.asarray(indices, dtype=np.int64)
        labels = None if self.labels is None else self.labels[index]
        return ReferenceSet.from_arrays(
            self.images[index],
            labels,
            provenance=provenance or f"{self.provenance}[subset]",
            class_names=self.class_names,
        )

    def sample(self, n: int, seed: int = 0) -> "ReferenceSet":
        """A deterministic draw of ``n`` of the images, stratified by class when there are labels.

        Parameters
        ----------
        n : int
            How many images to draw, 1 <= n <= len(self).
        seed : int
            Seed of ``numpy.random.default_rng``; the same seed gives the same draw.

        Returns
        -------
        ReferenceSet
            The drawn images in drawing order. With labels, classes take turns (see
            :func:`stratified_indices`), so ``n`` = the number of classes gives one image of each;
            without labels, the first ``n`` of a seeded permutation.

        Raises
        ------
        ZestError
            If ``n`` is not in ``[1, len(self)]``.
        """
        index = draw_indices(len(self), n, self.labels, np.random.default_rng(seed))
        how = "stratified" if self.labels is not None else "at random"
        return self.subset(index, provenance=f"{self.provenance}, {n} drawn {how} with seed {seed}")

    def as_tensor(self, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """The images as a float tensor [N, C, H, W] in [0, 1]."""
        tensor = torch.from_numpy(np.array(self.images)).to(device=device)  # a writable copy
        tensor = tensor.unsqueeze(1) if self.images.ndim == 3 else tensor.permute(0, 3, 1, 2)
        return tensor.to(dtype) / 255.0

    def describe(self) -> dict[str, Any]:
        return {
            "n": len(self),
            "image_size": list(self.image_size),
            "channels": self.channels,
            "provenance": self.provenance,
            "fingerprint": self.fingerprint(),
        }


def check_refset(refset: Any, name: str = "refset") -> ReferenceSet:
    """``refset`` itself if it is a non-empty :class:`ReferenceSet`.

    Raises
    ------
    ZestTypeError
        If it is anything else (an array of images: wrap it with :meth:`ReferenceSet.from_arrays`).
    ZestError
        If it holds no image.
    """
    if not isinstance(refset, ReferenceSet):
        raise ZestTypeError(f"{name}: expected a ReferenceSet, got {type(refset).__name__}")
    if len(refset) == 0:
        raise ZestError(f"{name}: expected a non-empty reference set, got 0 images")
    return refset


def draw_indices(count: int, n: int, labels: np.ndarray | None, rng: np.random.Generator) -> np.ndarray:
    """Draw ``n`` of ``count`` positions without replacement: stratified by ``labels``, else permuted.

    Parameters
    ----------
    count : int
        How many items there are to draw from.
    n : int
        1 <= n <= count.
    labels : ndarray of int, shape (count,), optional
        The items' classes; None draws the first ``n`` of a permutation.
    rng : numpy.random.Generator

    Returns
    -------
    ndarray of int64, shape (n,)
        Positions in drawing order.
    """
    if labels is not None:
        return stratified_indices(labels, n, rng)
    _check_count(n, count)
    return rng.permutation(count)[:n].astype(np.int64)


def stratified_indices(labels: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """Draw ``n`` positions of ``labels`` without replacement, taking classes in turn.

    Parameters
    ----------
    labels : ndarray of int, shape (M,)
    n : int
        1 <= n <= M.
    rng : numpy.random.Generator
        Shuffles the classes' turn order and the members of each class.

    Returns
    -------
    ndarray of int64, shape (n,)
        Positions into ``labels``, in drawing order (the first k cover min(k, classes) classes).
        A class that runs out of members drops out of the rotation.
    """
    labels = np.asarray(labels)
    _check_count(n, len(labels))
    classes = np.unique(labels)
    pools = [rng.permutation(np.flatnonzero(labels == c)) for c in classes[rng.permutation(len(classes))]]
    # Interleave the pools round by round: position r of every pool that still has r+1 members.
    rounds = max(len(pool) for pool in pools)
    order = [pool[r] for r in range(rounds) for pool in pools if r < len(pool)]
    return np.asarray(order[:n], dtype=np.int64)


def _check_count(n: int, available: int) -> None:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
        raise ZestTypeError(f"n: expected an int, got {n!r}")
    if not 1 <= n <= available:
        raise ZestError(f"n: expected 1 <= n <= {available} (the number of images available), got {n}")


def _check_class_names(names: Sequence[str] | None, labels: np.ndarray | None) -> tuple[str, ...] | None:
    if names is None:
        return None
    names = tuple(names)
    if not all(isinstance(name, str) for name in names):
        raise ZestTypeError(f"class_names: expected strings, got {[type(name).__name__ for name in names]}")
    if labels is None:
        raise ZestError("class_names: expected labels to go with them, got no labels")
    if labels.min() < 0 or labels.max() >= len(names):
        raise ZestError(
            f"labels: expected values in [0, {len(names) - 1}] to index the {len(names)} class names, "
            f"got values in [{labels.min()}, {labels.max()}]"
        )
    return names


def _to_uint8(array: np.ndarray) -> np.ndarray:
    if array.dtype == np.uint8:
        return np.array(array, copy=True)
    if np.issubdtype(array.dtype, np.floating):
        if not np.all(np.isfinite(array)):
            raise ZestError("images: expected finite pixel values, got NaN or inf")
        low, high = float(array.min()), float(array.max())
        if low < 0.0 or high > 1.0:
            raise ZestError(
                f"images: expected float pixel values in [0, 1] (pixel space), got values in [{low:.3g}, {high:.3g}]"
            )
        return np.round(array * 255.0).astype(np.uint8)
    if np.issubdtype(array.dtype, np.integer):
        low, high = int(array.min()), int(array.max())
        if low < 0 or high > 255:
            raise ZestError(f"images: expected integer pixel values in [0, 255], got values in [{low}, {high}]")
        return array.astype(np.uint8)
    raise ZestTypeError(f"images: expected uint8, integer or float pixels, got dtype {array.dtype}")
