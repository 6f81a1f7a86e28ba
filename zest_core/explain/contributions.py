"""Where a Zest distance comes from: its exact split into per-entry, per-image and per-class parts."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..pipeline.distance import Comparison, compare
from ..pipeline.signature import Signature


@dataclass(frozen=True)
class Contributions:
    """A distance split into the parts each reference image and each class row contribute.

    Attributes
    ----------
    distance : float
        The distance, equal to :func:`zest_core.zest_distance` for the same arguments.
    metric : str
    per_entry : ndarray, shape (M, ΣK)
        Contribution of every (class row, super-pixel column) of the aligned signature matrices.
    per_image : ndarray, shape (N,)
        Sum over image n's columns (maximum for ``linf``).
    per_class : ndarray, shape (M,)
        Sum over each compared class row (maximum for ``linf``).
    pairs : ndarray of int, shape (M, 2)
        The (class of A, class of B) of each row.
    image_columns : ndarray of int, shape (N + 1,)
        Start column of each image.
    """

    distance: float
    metric: str
    per_entry: np.ndarray
    per_image: np.ndarray
    per_class: np.ndarray
    pairs: np.ndarray
    image_columns: np.ndarray

    @property
    def additive(self) -> bool:
        """Whether the parts sum to the distance (every metric but ``linf``, whose parts are maxima)."""
        return self.metric != "linf"

    def image_shares(self) -> np.ndarray:
        """Each image's fraction of the distance (fractions of the sum of maxima for ``linf``)."""
        return _shares(self.per_image)

    def class_shares(self) -> np.ndarray:
        """Each compared class row's fraction of the distance."""
        return _shares(self.per_class)


def split_distance(comparison: Comparison) -> Contributions:
    """Split the distance of one :func:`~zest_core.pipeline.distance.compare` into its parts.

    With â = a/‖a‖ and b̂ = b/‖b‖ the aligned, flattened signatures, the cosine distance is exactly
    ``1 − â·b̂ = ½ Σᵢ (âᵢ − b̂ᵢ)²``, a sum of non-negative per-entry terms. L1 is the sum of
    ``|aᵢ − bᵢ|``. For L2 each entry gets its share of the squared distance, scaled so that the parts
    sum to the distance: ``d · (aᵢ − bᵢ)² / Σⱼ (aⱼ − bⱼ)²``. L∞ is the largest ``|aᵢ − bᵢ|``; its
    parts are the per-entry absolute differences and a group's part is its maximum, so the distance is
    the maximum (not the sum) of the groups' parts.

    Parameters
    ----------
    comparison : Comparison
        Its aligned matrices are split; its distance (computed by ``compare``, which already refused
        an all-zero signature for the cosine) is the one reported.

    Returns
    -------
    Contributions

    References
    ----------
    .. [1] Jia et al., "A Zest of LIME", ICLR 2023, §3 (the signature and its cosine distance).
    """
    a = comparison.matrix_a.astype(np.float64)
    b = comparison.matrix_b.astype(np.float64)
    metric = comparison.metric
    if metric == "cosine":
        entries = 0.5 * (a / np.linalg.norm(a) - b / np.linalg.norm(b)) ** 2
    elif metric == "l2":
        squared = (a - b) ** 2
        total = squared.sum()
        entries = squared * (math.sqrt(total) / total) if total > 0 else squared
    else:  # l1 and linf: both are built from the per-entry absolute differences
        entries = np.abs(a - b)
    columns = comparison.image_columns
    reduce = np.maximum if metric == "linf" else np.add
    per_image = reduce.reduceat(reduce.reduce(entries, axis=0), columns[:-1])
    per_class = reduce.reduce(entries, axis=1)
    return Contributions(
        distance=comparison.distance,
        metric=metric,
        per_entry=entries,
        per_image=np.asarray(per_image, dtype=np.float64),
        per_class=np.asarray(per_class, dtype=np.float64),
        pairs=comparison.pairs,
        image_columns=columns,
    )


def distance_contributions(
    sig_a: Signature, sig_b: Signature, *, metric: str = "cosine", align: str = "auto"
) -> Contributions:
    """Split the Zest distance between two signatures into per-image and per-class contributions.

    ``split_distance(compare(sig_a, sig_b, metric=metric, align=align))``; see :func:`split_distance`
    for how each metric splits.

    Parameters
    ----------
    sig_a, sig_b : Signature
        Computed on the same reference set with the same config.
    metric : {"cosine", "l1", "l2", "linf"}
    align : {"auto", "none", "greedy", "hungarian"}
        As in :func:`zest_core.zest_distance`.

    Returns
    -------
    Contributions

    Raises
    ------
    ZestError
        For an unknown metric or alignment, or a cosine distance of an all-zero signature.
    IncompatibleSignaturesError
        If the signatures come from different reference sets or configs.
    """
    return split_distance(compare(sig_a, sig_b, metric=metric, align=align))


def _shares(parts: np.ndarray) -> np.ndarray:
    total = float(np.sum(parts))
    return parts / total if total > 0 else np.zeros_like(parts)
