"""Pictures of a signature: LIME weights painted on their super-pixels, boundaries, and centroids.

References
----------
.. [1] Ribeiro, Singh & Guestrin, "Why Should I Trust You?", KDD 2016 (LIME, arXiv:1602.04938).
.. [2] Vedaldi & Soatto, "Quick Shift and Kernel Methods for Mode Seeking", ECCV 2008.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ..errors import ZestError
from ..pipeline.distance import compared_pairs, match_signatures
from ..pipeline.signature import Signature
from .._shared.checks import check_index, check_int


def paint_weights(weights: np.ndarray, segments: np.ndarray) -> np.ndarray:
    """Paint per-super-pixel values onto the pixels of their super-pixels.

    Parameters
    ----------
    weights : ndarray, shape (K,) or (C, K)
        A value per super-pixel (per class).
    segments : ndarray of int, shape (H, W)
        Super-pixel labels 0..K-1.

    Returns
    -------
    ndarray, shape (H, W) or (C, H, W)
        ``weights[..., segments]``.

    Raises
    ------
    ZestError
        If the segments use labels outside ``0..K-1``.
    """
    weights = np.asarray(weights)
    segments = np.asarray(segments)
    count = weights.shape[-1]
    if segments.min() < 0 or segments.max() >= count:
        raise ZestError(
            f"segments: expected labels in [0, {count - 1}] for {count} weights per row, "
            f"got labels in [{segments.min()}, {segments.max()}]"
        )
    return weights[..., segments]


@dataclass(frozen=True)
class WeightMaps:
    """Two signatures' LIME weights of one reference image, painted on it, classes aligned.

    Attributes
    ----------
    a, b : ndarray, shape (M, H, W)
        A's and B's weights of every compared class row (row m of ``b`` is B's class ``pairs[m, 1]``).
    pairs : ndarray of int, shape (M, 2)
    image_index : int
    unit_norm : bool
        Whether each signature was divided by its norm first (the scale the cosine distance sees).
    """

    a: np.ndarray
    b: np.ndarray
    pairs: np.ndarray
    image_index: int
    unit_norm: bool

    @property
    def difference(self) -> np.ndarray:
        return self.a - self.b

    def limit(self) -> float:
        """A symmetric colour limit for ``a`` and ``b`` together: their largest absolute value (>0)."""
        return symmetric_limit(self.a, self.b)


def symmetric_limit(*arrays: np.ndarray) -> float:
    """The largest absolute value over ``arrays``, for a diverging colour scale centred on 0 (1 if all zero)."""
    largest = max((float(np.max(np.abs(a))) for a in arrays if np.size(a)), default=0.0)
    return largest if largest > 0 else 1.0


def comparison_weight_maps(
    sig_a: Signature, sig_b: Signature, image_index: int, *, align: str = "auto", unit_norm: bool = True,
    pairs: np.ndarray | None = None, rows: Sequence[int] | None = None,
) -> WeightMaps:
    """A's and B's per-super-pixel weights of one reference image, painted on it, with classes aligned.

    Parameters
    ----------
    sig_a, sig_b : Signature
        Computed on the same reference set with the same config.
    image_index : int
        Which reference image, 0 <= image_index < N.
    align : {"auto", "none", "greedy", "hungarian"}
        How class rows are matched, as in :func:`zest_core.zest_distance`.
    unit_norm : bool
        Divide each aligned signature by its Frobenius norm first, so that both are on the scale the
        cosine distance compares them at (models with larger logits otherwise dominate).
    pairs : ndarray of int, shape (M, 2), optional
        The matched class rows, when the caller already has them (matching is computed once per
        pair of signatures, and costs seconds at 1000 classes); by default matched here.
    rows : sequence of int, optional
        Paint only these of the M matched rows (the scale still comes from all of them). A
        1000-class signature of 224-px images is 400 MB per image painted whole.

    Returns
    -------
    WeightMaps

    Raises
    ------
    ZestError
        If ``image_index`` is out of range, or the signatures cannot be compared.
    """
    check_index("image_index", image_index, sig_a.num_images)
    # Only the matched rows are needed here, not a distance (which an all-zero signature would refuse).
    if pairs is None:
        pairs = compared_pairs(match_signatures(sig_a, sig_b, align), sig_a.num_classes)
    scale_a = scale_b = 1.0
    if unit_norm:
        scale_a = _norm_or_one(sig_a.matrix()[pairs[:, 0]])
        scale_b = _norm_or_one(sig_b.matrix()[pairs[:, 1]])
    if rows is not None:
        pairs = pairs[np.asarray(rows, dtype=int)]
    segments = sig_a.segments[image_index]
    maps_a = paint_weights(sig_a.weights[image_index][pairs[:, 0]] / scale_a, segments)
    maps_b = paint_weights(sig_b.weights[image_index][pairs[:, 1]] / scale_b, segments)
    return WeightMaps(a=maps_a, b=maps_b, pairs=pairs, image_index=int(image_index), unit_norm=unit_norm)


def _norm_or_one(matrix: np.ndarray) -> float:
    norm = float(np.linalg.norm(matrix))
    return norm if norm > 0 else 1.0


def boundary_image(
    image: np.ndarray, segments: np.ndarray, *, scale: int = 1, color: Sequence[int] = (255, 60, 60)
) -> np.ndarray:
    """An image with its super-pixel boundaries drawn on it as one-pixel lines, in RGB.

    A pixel is on a boundary when its right or lower neighbour belongs to another super-pixel, so
    each boundary is one pixel wide (on its upper/left side).

    Parameters
    ----------
    image : ndarray of uint8, shape (H, W) or (H, W, 3)
    segments : ndarray of int, shape (H, W)
    scale : int
        Enlarge image and segments ``scale`` times (nearest neighbour) before drawing, so that
        boundaries are thin on small images (28×28 digits).
    color : (int, int, int)
        RGB colour of the boundaries.

    Returns
    -------
    ndarray of uint8, shape (H·scale, W·scale, 3)

    Raises
    ------
    ZestError
        If the image and the segments differ in size, or ``scale`` < 1.

    References
    ----------
    .. [1] Vedaldi & Soatto, "Quick Shift and Kernel Methods for Mode Seeking", ECCV 2008.
    """
    image, segments = np.asarray(image), np.asarray(segments)
    if image.shape[:2] != segments.shape:
        raise ZestError(f"segments: expected the image's size {image.shape[:2]}, got {segments.shape}")
    scale = check_int("scale", scale, minimum=1)
    rgb = to_rgb(image)
    if scale > 1:
        rgb = rgb.repeat(scale, axis=0).repeat(scale, axis=1)
        segments = segments.repeat(scale, axis=0).repeat(scale, axis=1)
    edge = np.zeros(segments.shape, dtype=bool)
    edge[:, :-1] |= segments[:, :-1] != segments[:, 1:]
    edge[:-1, :] |= segments[:-1, :] != segments[1:, :]
    drawn = rgb.copy()
    drawn[edge] = np.asarray(color, dtype=np.uint8)
    return drawn


def to_rgb(image: np.ndarray) -> np.ndarray:
    """A uint8 image (H, W) or (H, W, 3) as RGB (H, W, 3)."""
    image = np.asarray(image, dtype=np.uint8)
    return np.repeat(image[..., None], 3, axis=-1) if image.ndim == 2 else image


def segment_centroids(segments: np.ndarray) -> np.ndarray:
    """The centre (row, column) of every super-pixel, for numbering them on a picture.

    Parameters
    ----------
    segments : ndarray of int, shape (H, W), labels 0..K-1

    Returns
    -------
    ndarray of float, shape (K, 2)
        Mean row and column of each label's pixels (NaN for an unused label).
    """
    segments = np.asarray(segments)
    count = int(segments.max()) + 1
    rows, cols = np.indices(segments.shape)
    sizes = np.bincount(segments.ravel(), minlength=count).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_rows = np.bincount(segments.ravel(), rows.ravel(), minlength=count) / sizes
        mean_cols = np.bincount(segments.ravel(), cols.ravel(), minlength=count) / sizes
    return np.stack([mean_rows, mean_cols], axis=1)
