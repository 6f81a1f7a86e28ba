"""Uncertainty of a Zest distance: the percentile bootstrap over the reference images.

References
----------
Efron & Tibshirani, "An Introduction to the Bootstrap", 1993, ch. 13.
"""
from __future__ import annotations

import numpy as np

from .._shared.checks import check_choice, check_int
from ..errors import ZestError
from ..pipeline.alignment import align_matrices
from ..pipeline.distance import METRICS, alignment_method, check_compatible, vector_distance
from ..pipeline.signature import Signature


def bootstrap_distances(
    sig_a: Signature,
    sig_b: Signature,
    *,
    metric: str = "cosine",
    align: str = "auto",
    n_boot: int = 1000,
    seed: int = 0,
) -> np.ndarray:
    """The Zest distance on ``n_boot`` resamples of the reference images (with replacement).

    Each resample draws N images with replacement and keeps their column blocks of both
    signatures; classes are matched again on every resample when ``align`` matches them, so the
    whole estimator is resampled. Draws come from ``numpy.random.default_rng(seed)``.
    """
    check_compatible(sig_a, sig_b)
    check_choice("metric", metric, METRICS)
    check_int("n_boot", n_boot, minimum=1)
    check_int("seed", seed, minimum=0)
    method = alignment_method(align, sig_a.num_classes, sig_b.num_classes)
    matrix_a, matrix_b = sig_a.matrix(), sig_b.matrix()
    columns = sig_a.image_columns()
    blocks = [np.arange(columns[i], columns[i + 1]) for i in range(sig_a.num_images)]
    rng = np.random.default_rng(seed)
    values = np.empty(n_boot)
    for r in range(n_boot):
        chosen = np.concatenate([blocks[i] for i in rng.integers(0, sig_a.num_images, size=sig_a.num_images)])
        a, b = matrix_a[:, chosen], matrix_b[:, chosen]
        if method is not None:
            matched = align_matrices(a, b, method).pairs
            a, b = a[matched[:, 0]], b[matched[:, 1]]
        values[r] = vector_distance(a, b, metric)
    return values


def bootstrap_distance_interval(
    sig_a: Signature,
    sig_b: Signature,
    *,
    metric: str = "cosine",
    align: str = "auto",
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> tuple[float, float]:
    """Percentile bootstrap confidence interval of a Zest distance, resampling the reference images.

    Parameters
    ----------
    sig_a, sig_b : Signature
        Computed on the same reference set and config.
    metric : {"cosine", "l1", "l2", "linf"}
    align : {"auto", "none", "greedy", "hungarian"}
    n_boot : int, default 1000
    seed : int, default 0
    level : float, default 0.95
        Coverage, in (0, 1).

    Returns
    -------
    (low, high) : tuple of float
        The (1 − level)/2 and (1 + level)/2 quantiles of :func:`bootstrap_distances`.

    References
    ----------
    .. [1] Efron & Tibshirani, "An Introduction to the Bootstrap", 1993, ch. 13.
    """
    if isinstance(level, bool) or not isinstance(level, (int, float)) or not 0 < float(level) < 1:
        raise ZestError(f"level: expected a coverage in (0, 1), got {level!r}")
    values = bootstrap_distances(sig_a, sig_b, metric=metric, align=align, n_boot=n_boot, seed=seed)
    low, high = np.quantile(values, [(1 - level) / 2, (1 + level) / 2])
    return float(low), float(high)

