"""Explanations of a Zest comparison: where a distance comes from, and what the signatures look like.

Everything the dashboard shows beyond the distance itself is computed here, as small pure functions of
signatures, reference sets and models (no Streamlit, no plotting):

* :func:`distance_contributions` splits a distance exactly into per-entry, per-image and per-class
  parts (cosine, L1 and L2 are sums of per-entry terms; L∞ is a maximum);
* :func:`unrelated_baseline`, :func:`decide` and :func:`compare_signatures` give the relative
  distance [1]_ (App. C), a bootstrap interval over reference images and a related/unrelated verdict;
* :func:`paint_weights` and :func:`comparison_weight_maps` paint the LIME weights [2]_ of each
  super-pixel onto its image; :func:`boundary_image` and :func:`segment_centroids` draw super-pixels;
* :func:`perturbed_samples` recomposes the exact perturbed images a signature was fitted on and runs
  the models on them;
* :func:`compare_alignments` and :func:`alignment_accuracy` score class matchings against known
  class names;
* :func:`cluster_models` (hierarchical ordering of a distance matrix), :func:`checkpoint_specs`
  (a training run's checkpoint files), :func:`read_reuse_report` and :func:`reuse_rows` (the reuse
  benchmark's report as a table) and :func:`comparison_report` (a JSON-ready dictionary).

References
----------
.. [1] Jia, Yaghini, Choquette-Choo, Dullerud, Thudi, Chandrasekaran & Papernot, "A Zest of LIME:
   Towards Architecture-Independent Model Distances", ICLR 2023.
.. [2] Ribeiro, Singh & Guestrin, "Why Should I Trust You?", KDD 2016 (LIME, arXiv:1602.04938).
.. [3] Li, Zhang, Liu, Yang & Liu, "ModelDiff: Testing-Based DNN Similarity Comparison for Model
   Reuse Detection", ISSTA 2021.
.. [4] Vedaldi & Soatto, "Quick Shift and Kernel Methods for Mode Seeking", ECCV 2008.
"""
from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import torch

from ..pipeline.alignment import ALIGN_METHODS, Alignment, align_classes
from .uncertainty import bootstrap_distance_interval
from ..pipeline.config import ZestConfig
from ..pipeline.distance import METRICS, alignment_method, check_compatible, zest_distance
from ..pipeline.perturbation import compose_samples, fill_images, image_masks
from ..pipeline.queries import check_outputs, prepared_model
from ..pipeline.reference import ReferenceSet
from ..pipeline.signature import Signature

VERDICTS = ("related", "unrelated", "inconclusive", "unknown")
CHECKPOINT_EXTENSIONS = (".pt", ".pth", ".ts", ".onnx", ".bin", ".ckpt")


# --------------------------------------------------------------------------------------------------
# Aligned signatures and where the distance comes from
# --------------------------------------------------------------------------------------------------


def aligned_pairs(sig_a: Signature, sig_b: Signature, align: str = "auto") -> tuple[np.ndarray, str | None]:
    """The class rows of A and B that :func:`zest_core.zest_distance` compares, and the matching used.

    Parameters
    ----------
    sig_a, sig_b : Signature
        Computed on the same reference set with the same config.
    align : {"auto", "none", "greedy", "hungarian"}
        As in :func:`zest_core.zest_distance`.

    Returns
    -------
    pairs : ndarray of int, shape (M, 2)
        (class of A, class of B) for each compared row, sorted by A's class; the identity when no
        matching runs.
    method : {"greedy", "hungarian"} or None
        The matching that ran, None when none did.

    Raises
    ------
    IncompatibleSignaturesError
        If the signatures come from different reference sets or configs.
    ValueError
        If ``align`` is unknown, or is "none" for models with different class counts.
    """
    check_compatible(sig_a, sig_b)
    method = alignment_method(align, sig_a.num_classes, sig_b.num_classes)
    if method is None:
        identity = np.arange(sig_a.num_classes)
        return np.stack([identity, identity], axis=1), None
    return align_classes(sig_a, sig_b, method).pairs, method


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


def distance_contributions(
    sig_a: Signature, sig_b: Signature, *, metric: str = "cosine", align: str = "auto"
) -> Contributions:
    """Split the Zest distance between two signatures into per-image and per-class contributions.

    With â = a/‖a‖ and b̂ = b/‖b‖ the aligned, flattened signatures, the cosine distance is exactly
    ``1 − â·b̂ = ½ Σᵢ (âᵢ − b̂ᵢ)²``, a sum of non-negative per-entry terms. L1 is the sum of
    ``|aᵢ − bᵢ|``. For L2 each entry gets its share of the squared distance, scaled so that the parts
    sum to the distance: ``d · (aᵢ − bᵢ)² / Σⱼ (aⱼ − bⱼ)²``. L∞ is the largest ``|aᵢ − bᵢ|``; its
    parts are the per-entry absolute differences and a group's part is its maximum, so the distance is
    the maximum (not the sum) of the groups' parts.

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
    ValueError
        For an unknown metric or alignment, or a cosine distance of an all-zero signature.
    IncompatibleSignaturesError
        If the signatures come from different reference sets or configs.

    References
    ----------
    .. [1] Jia et al., "A Zest of LIME", ICLR 2023, §3 (the signature and its cosine distance).
    """
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {METRICS}; got {metric!r}")
    pairs, _ = aligned_pairs(sig_a, sig_b, align)
    a = sig_a.matrix()[pairs[:, 0]].astype(np.float64)
    b = sig_b.matrix()[pairs[:, 1]].astype(np.float64)
    if metric == "cosine":
        norm_a, norm_b = np.linalg.norm(a), np.linalg.norm(b)
        if norm_a == 0 or norm_b == 0:
            raise ValueError("cosine distance is undefined for an all-zero signature (a constant model?)")
        entries = 0.5 * (a / norm_a - b / norm_b) ** 2
    elif metric == "l1":
        entries = np.abs(a - b)
    elif metric == "l2":
        squared = (a - b) ** 2
        total = squared.sum()
        entries = squared * (math.sqrt(total) / total) if total > 0 else squared
    else:
        entries = np.abs(a - b)
    columns = sig_a.image_columns()
    if metric == "linf":
        per_image = np.maximum.reduceat(entries.max(axis=0), columns[:-1])
        per_class = entries.max(axis=1)
    else:
        per_image = np.add.reduceat(entries.sum(axis=0), columns[:-1])
        per_class = entries.sum(axis=1)
    distance = zest_distance(sig_a, sig_b, metric=metric, align=align)
    return Contributions(
        distance=distance,
        metric=metric,
        per_entry=entries,
        per_image=np.asarray(per_image, dtype=np.float64),
        per_class=np.asarray(per_class, dtype=np.float64),
        pairs=pairs,
        image_columns=columns,
    )


def _shares(parts: np.ndarray) -> np.ndarray:
    total = float(np.sum(parts))
    return parts / total if total > 0 else np.zeros_like(parts)


# --------------------------------------------------------------------------------------------------
# Relative distance, bootstrap interval and verdict
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Baseline:
    """Distances between models known to be unrelated, the yardstick of the relative distance.

    Attributes
    ----------
    names : list of str
        The unrelated models.
    pairs : list of (str, str, float)
        Every pair of them and its distance.
    """

    names: list[str]
    pairs: list[tuple[str, str, float]]

    @property
    def distances(self) -> np.ndarray:
        return np.array([d for _, _, d in self.pairs], dtype=np.float64)

    @property
    def mean(self) -> float:
        """The mean distance between the unrelated models (the relative distance's denominator)."""
        return float(self.distances.mean())


def unrelated_baseline(
    signatures: Mapping[str, Signature], *, metric: str = "cosine", align: str = "auto"
) -> Baseline:
    """The distances between every pair of independently trained (unrelated) models.

    Parameters
    ----------
    signatures : mapping of str to Signature
        At least two models, named, computed on the same reference set with the same config as the
        pair they serve as a baseline for.
    metric, align
        As in :func:`zest_core.zest_distance`; use the comparison's own.

    Returns
    -------
    Baseline

    Raises
    ------
    ValueError
        With fewer than two signatures, or if a baseline distance is not positive and finite.

    References
    ----------
    .. [1] Jia et al., "A Zest of LIME", ICLR 2023, App. C (relative distance).
    """
    names = list(signatures)
    if len(names) < 2:
        raise ValueError(f"signatures: need at least two unrelated models for a baseline, got {len(names)}")
    pairs = []
    for i, first in enumerate(names):
        for second in names[i + 1:]:
            d = zest_distance(signatures[first], signatures[second], metric=metric, align=align)
            pairs.append((first, second, d))
    baseline = Baseline(names=names, pairs=pairs)
    if not (np.isfinite(baseline.mean) and baseline.mean > 0):
        raise ValueError(f"the unrelated models' mean distance must be positive and finite, got {baseline.mean}")
    return baseline


@dataclass(frozen=True)
class Verdict:
    """Whether two models look related, from their distance, its interval and the unrelated baseline.

    Attributes
    ----------
    label : {"related", "unrelated", "inconclusive", "unknown"}
    relative : float or None
        distance / baseline mean; None without a baseline.
    relative_interval : (float, float) or None
        The bootstrap interval divided by the baseline mean.
    level : float or None
        Confidence level of the interval.
    explanation : str
        One sentence saying why, for people.
    """

    label: str
    relative: float | None
    relative_interval: tuple[float, float] | None
    level: float | None
    explanation: str


def decide(
    distance: float,
    baseline_mean: float | None,
    interval: tuple[float, float] | None = None,
    *,
    level: float | None = None,
) -> Verdict:
    """The verdict rule: compare the distance with the mean distance between unrelated models.

    The relative distance is ``distance / baseline_mean`` ([1]_, App. C); below 1 the pair is closer
    than unrelated models are on average. With a bootstrap interval the verdict is "related" when the
    whole interval lies below the baseline mean, "unrelated" when it lies wholly above, and
    "inconclusive" otherwise. Without an interval, the point estimate decides and the verdict says it
    has no confidence attached. Without a baseline it is "unknown".

    Parameters
    ----------
    distance : float
    baseline_mean : float or None
        Mean distance between unrelated models, positive.
    interval : (float, float), optional
        A confidence interval of ``distance`` (low <= high).
    level : float, optional
        The interval's confidence level, in (0, 1), for the explanation.

    Returns
    -------
    Verdict

    Raises
    ------
    ValueError
        If ``baseline_mean`` is not positive, or ``interval`` is not (low, high) with low <= high.

    References
    ----------
    .. [1] Jia et al., "A Zest of LIME", ICLR 2023.
    """
    if interval is not None:
        low, high = (float(v) for v in interval)
        if not low <= high:
            raise ValueError(f"interval: expected (low, high) with low <= high, got {interval!r}")
    if baseline_mean is None:
        return Verdict("unknown", None, None, level, "No unrelated baseline: the distance cannot be judged.")
    if not (np.isfinite(baseline_mean) and baseline_mean > 0):
        raise ValueError(f"baseline_mean: expected a positive number, got {baseline_mean!r}")
    relative = float(distance) / baseline_mean
    if interval is None:
        label = "related" if relative < 1 else "unrelated"
        side = "below" if relative < 1 else "not below"
        return Verdict(
            label, relative, None, None,
            f"The relative distance {relative:.3f} is {side} 1 (no confidence interval was computed).",
        )
    rel_low, rel_high = low / baseline_mean, high / baseline_mean
    percent = f"{100 * level:g}% " if level is not None else ""
    span = f"the {percent}interval of the relative distance, [{rel_low:.3f}, {rel_high:.3f}],"
    if rel_high < 1:
        label, text = "related", f"{span} lies below 1, the mean distance between unrelated models."
    elif rel_low > 1:
        label, text = "unrelated", f"{span} lies above 1, the mean distance between unrelated models."
    else:
        label, text = "inconclusive", f"{span} contains 1, the mean distance between unrelated models."
    return Verdict(label, relative, (rel_low, rel_high), level, text[0].upper() + text[1:])


@dataclass(frozen=True)
class ComparisonResult:
    """Everything one comparison of two signatures says, for the dashboard and its JSON report.

    Attributes
    ----------
    distance : float
    metric, align : str
        What was asked for.
    alignment_method : str or None
        The class matching that ran (None when none did).
    contributions : Contributions
    baseline : Baseline or None
    interval : (float, float) or None
        Bootstrap interval of the distance over reference images.
    level : float
        Its confidence level.
    n_boot : int
    verdict : Verdict
    """

    distance: float
    metric: str
    align: str
    alignment_method: str | None
    contributions: Contributions
    baseline: Baseline | None
    interval: tuple[float, float] | None
    level: float
    n_boot: int
    verdict: Verdict

    @property
    def relative(self) -> float | None:
        return self.verdict.relative


def compare_signatures(
    sig_a: Signature,
    sig_b: Signature,
    *,
    metric: str = "cosine",
    align: str = "auto",
    baseline: Mapping[str, Signature] | None = None,
    n_boot: int = 200,
    level: float = 0.95,
    seed: int = 0,
) -> ComparisonResult:
    """Compare two signatures: distance, contributions, relative distance, interval and verdict.

    Parameters
    ----------
    sig_a, sig_b : Signature
        Computed on the same reference set with the same config.
    metric, align
        As in :func:`zest_core.zest_distance`.
    baseline : mapping of str to Signature, optional
        Independently trained models on the same reference set and config (at least two); None
        leaves the relative distance and the verdict unknown.
    n_boot : int
        Resamples of the reference images for the percentile bootstrap interval of the distance
        (:func:`zest_core.explain.uncertainty.bootstrap_distance_interval`); 0 skips the interval.
    level : float
        Confidence level of the interval, in (0, 1).
    seed : int
        Seed of the bootstrap.

    Returns
    -------
    ComparisonResult

    Raises
    ------
    ValueError
        For invalid arguments (see :func:`distance_contributions`, :func:`unrelated_baseline`).
    """
    if not 0 < level < 1:
        raise ValueError(f"level: expected a confidence level in (0, 1), got {level}")
    if isinstance(n_boot, bool) or not isinstance(n_boot, int) or n_boot < 0:
        raise ValueError(f"n_boot: expected a non-negative integer, got {n_boot!r}")
    contributions = distance_contributions(sig_a, sig_b, metric=metric, align=align)
    _, method = aligned_pairs(sig_a, sig_b, align)
    unrelated = unrelated_baseline(baseline, metric=metric, align=align) if baseline else None
    interval = None
    if n_boot > 0:
        interval = bootstrap_distance_interval(
            sig_a, sig_b, metric=metric, align=align, n_boot=n_boot, seed=seed, level=level
        )
    verdict = decide(
        contributions.distance, None if unrelated is None else unrelated.mean, interval,
        level=level if interval is not None else None,
    )
    return ComparisonResult(
        distance=contributions.distance, metric=metric, align=align, alignment_method=method,
        contributions=contributions, baseline=unrelated, interval=interval, level=level,
        n_boot=n_boot if interval is not None else 0, verdict=verdict,
    )


# --------------------------------------------------------------------------------------------------
# Super-pixels and weights painted on images
# --------------------------------------------------------------------------------------------------


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
    ValueError
        If the segments use labels outside ``0..K-1``.
    """
    weights = np.asarray(weights)
    segments = np.asarray(segments)
    count = weights.shape[-1]
    if segments.min() < 0 or segments.max() >= count:
        raise ValueError(
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
    sig_a: Signature, sig_b: Signature, image_index: int, *, align: str = "auto", unit_norm: bool = True
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

    Returns
    -------
    WeightMaps

    Raises
    ------
    ValueError
        If ``image_index`` is out of range.
    """
    _check_index("image_index", image_index, sig_a.num_images)
    pairs, _ = aligned_pairs(sig_a, sig_b, align)
    scale_a = scale_b = 1.0
    if unit_norm:
        scale_a = _norm_or_one(sig_a.matrix()[pairs[:, 0]])
        scale_b = _norm_or_one(sig_b.matrix()[pairs[:, 1]])
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
    ValueError
        If the image and the segments differ in size, or ``scale`` < 1.

    References
    ----------
    .. [1] Vedaldi & Soatto, "Quick Shift and Kernel Methods for Mode Seeking", ECCV 2008.
    """
    image, segments = np.asarray(image), np.asarray(segments)
    if image.shape[:2] != segments.shape:
        raise ValueError(f"segments: expected the image's size {image.shape[:2]}, got {segments.shape}")
    if isinstance(scale, bool) or not isinstance(scale, (int, np.integer)) or scale < 1:
        raise ValueError(f"scale: expected a positive integer, got {scale!r}")
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


# --------------------------------------------------------------------------------------------------
# Perturbed samples, as the models saw them
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PerturbedSamples:
    """Some of the perturbed images one signature was fitted on, with every model's predictions.

    Attributes
    ----------
    image_index : int
    mask_indices : ndarray of int, shape (S,)
        Which of the image's L masks each sample is (mask 0 keeps every super-pixel).
    masks : ndarray of uint8, shape (S, K)
        1 keeps a super-pixel, 0 replaces it by the fill.
    images : ndarray of uint8, shape (S, H, W) or (S, H, W, 3)
        The perturbed images in pixel space, exactly as the models received them (rounded to uint8).
    probabilities : dict of str to ndarray, shape (S, C)
        Each model's class probabilities (softmax of its logits, or its own probabilities).
    class_names : dict of str to list of str
    """

    image_index: int
    mask_indices: np.ndarray
    masks: np.ndarray
    images: np.ndarray
    probabilities: dict[str, np.ndarray]
    class_names: dict[str, list[str]]

    def predictions(self, model: str) -> list[tuple[str, float]]:
        """(predicted class name, its probability) of every sample, for one model."""
        probabilities = self.probabilities[model]
        names = self.class_names[model]
        best = probabilities.argmax(axis=1)
        return [(names[k], float(probabilities[i, k])) for i, k in enumerate(best)]


def perturbed_samples(
    refset: ReferenceSet,
    signature: Signature,
    image_index: int,
    models: Mapping[str, Callable[[torch.Tensor], Any]],
    mask_indices: Sequence[int],
) -> PerturbedSamples:
    """Recompose perturbed images of one reference image, as the signature's queries did, and run the models.

    The masks, segments and fill are the signature's own (same seed, same L, same super-pixels), so
    sample ``mask_indices[i]`` is the image the models answered for mask ``mask_indices[i]`` of
    Algorithm 1 ([1]_) when the signature was computed.

    Parameters
    ----------
    refset : ReferenceSet
        The reference set the signature was computed on.
    signature : Signature
        Supplies segments and config (num_samples, seed, fill).
    image_index : int
        Which reference image, 0 <= image_index < N.
    models : mapping of str to callable
        Named models (images [B, C, H, W] in [0, 1] -> scores [B, classes]), e.g. {"A": ..., "B": ...}.
    mask_indices : sequence of int
        Which of the image's masks to show, each in [0, L).

    Returns
    -------
    PerturbedSamples

    Raises
    ------
    ValueError
        If the reference set is not the signature's, or an index is out of range.
    ModelOutputError
        If a model does not return finite scores [S, classes].

    References
    ----------
    .. [1] Jia et al., "A Zest of LIME", ICLR 2023, Algorithm 1.
    .. [2] Ribeiro et al., "Why Should I Trust You?", KDD 2016 (arXiv:1602.04938).
    """
    if refset.fingerprint() != signature.refset_fingerprint:
        raise ValueError(
            "refset: expected the reference set the signature was computed on "
            f"({signature.refset_fingerprint[:12]}…), got {refset.fingerprint()[:12]}…"
        )
    config: ZestConfig = signature.config
    _check_index("image_index", image_index, len(refset))
    chosen = np.asarray(list(mask_indices), dtype=np.int64)
    if chosen.ndim != 1 or chosen.size == 0 or chosen.min() < 0 or chosen.max() >= config.num_samples:
        raise ValueError(
            f"mask_indices: expected one or more indices in [0, {config.num_samples - 1}], got {chosen.tolist()}"
        )
    segments = signature.segments
    num_segments = segments.reshape(len(refset), -1).max(axis=1) + 1
    masks = image_masks(num_segments, config.num_samples, config.seed)[image_index][chosen]
    dtype = getattr(torch, config.dtype)
    images = refset.as_tensor("cpu", dtype)
    segments_t = torch.from_numpy(segments).long()
    fills = fill_images(images, segments_t, config.fill, config.fill_value)
    one = slice(image_index, image_index + 1)
    batch = compose_samples(
        images[one], fills[one], segments_t[one], torch.from_numpy(masks.astype(bool))[None],
        torch.zeros(len(chosen), dtype=torch.long), torch.arange(len(chosen)),
    )
    probabilities, names = {}, {}
    for name, model in models.items():
        with prepared_model(model, torch.device("cpu")) as ready, torch.inference_mode():
            scores = check_outputs(ready(batch), len(chosen), None).to(torch.float64)
        probabilities[name] = _to_probabilities(scores, getattr(model, "outputs", "logits")).numpy()
        declared = getattr(model, "class_names", None)
        count = scores.shape[1]
        known = declared is not None and len(declared) == count
        names[name] = list(declared) if known else [str(k) for k in range(count)]
    pixels = (batch.clamp(0, 1) * 255).round().to(torch.uint8)
    pixels = pixels[:, 0].numpy() if pixels.shape[1] == 1 else pixels.permute(0, 2, 3, 1).numpy()
    return PerturbedSamples(
        image_index=int(image_index), mask_indices=chosen, masks=masks, images=pixels,
        probabilities=probabilities, class_names=names,
    )


def _to_probabilities(scores: torch.Tensor, outputs: str) -> torch.Tensor:
    if outputs == "probabilities":
        total = scores.sum(dim=1, keepdim=True)
        return scores / torch.where(total > 0, total, torch.ones_like(total))
    return torch.softmax(scores, dim=1)


# --------------------------------------------------------------------------------------------------
# Class alignment against known class names
# --------------------------------------------------------------------------------------------------


def alignment_accuracy(
    pairs: np.ndarray, names_a: Sequence[str], names_b: Sequence[str]
) -> tuple[int, int]:
    """How many matched class pairs are right, when class names are the ground truth.

    A pair (i, j) is right iff ``names_a[i] == names_b[j]``. Only pairs whose A class has a
    namesake among B's classes can be right; they are the ones counted as comparable.

    Parameters
    ----------
    pairs : ndarray of int, shape (M, 2)
    names_a, names_b : sequence of str
        Class names of A and B, indexed by class.

    Returns
    -------
    (correct, comparable) : (int, int)

    Raises
    ------
    ValueError
        If a pair indexes past the class names.
    """
    pairs = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    if pairs.size and (pairs[:, 0].max() >= len(names_a) or pairs[:, 1].max() >= len(names_b)):
        raise ValueError(
            f"pairs: index past the class names ({len(names_a)} for A, {len(names_b)} for B)"
        )
    known = set(names_b)
    comparable = sum(1 for i, _ in pairs if names_a[i] in known)
    correct = sum(1 for i, j in pairs if names_a[i] == names_b[j])
    return correct, comparable


@dataclass(frozen=True)
class AlignmentSummary:
    """One class matching, with its total cost and, when class names are the truth, its accuracy.

    Attributes
    ----------
    alignment : Alignment
    correct, comparable : int or None
        See :func:`alignment_accuracy`; None when no ground truth is given.
    """

    alignment: Alignment
    correct: int | None
    comparable: int | None

    @property
    def method(self) -> str:
        return self.alignment.method

    @property
    def total_cost(self) -> float:
        return self.alignment.total_cost


def compare_alignments(
    sig_a: Signature,
    sig_b: Signature,
    *,
    names_a: Sequence[str] | None = None,
    names_b: Sequence[str] | None = None,
    methods: Sequence[str] = ALIGN_METHODS,
) -> dict[str, AlignmentSummary]:
    """Match the classes of A and B with each method, and score every matching against the names.

    Parameters
    ----------
    sig_a, sig_b : Signature
        Computed on the same reference set with the same config.
    names_a, names_b : sequence of str, optional
        Ground-truth class names (row i of A matches row j of B iff the names are equal); without
        both, matchings are not scored.
    methods : sequence of {"greedy", "hungarian"}

    Returns
    -------
    dict of str to AlignmentSummary

    Raises
    ------
    ValueError
        For an unknown method, or class names that do not match the class counts.

    References
    ----------
    .. [1] Jia et al., "A Zest of LIME", ICLR 2023, Appendix B (greedy matching).
    """
    check_compatible(sig_a, sig_b)
    truth = names_a is not None and names_b is not None
    if truth and (len(names_a) != sig_a.num_classes or len(names_b) != sig_b.num_classes):
        raise ValueError(
            f"class names: expected {sig_a.num_classes} for A and {sig_b.num_classes} for B, "
            f"got {len(names_a)} and {len(names_b)}"
        )
    summaries = {}
    for method in methods:
        alignment = align_classes(sig_a, sig_b, method)
        correct, comparable = alignment_accuracy(alignment.pairs, names_a, names_b) if truth else (None, None)
        summaries[method] = AlignmentSummary(alignment, correct, comparable)
    return summaries


# --------------------------------------------------------------------------------------------------
# Training runs, model collections and benchmark reports
# --------------------------------------------------------------------------------------------------


def checkpoint_specs(folder: str | os.PathLike, *, arch: str | None = None) -> list[tuple[int, str]]:
    """The checkpoint files of a training run in a folder, by epoch, as :func:`zest_core.load_model` specs.

    The epoch of a file is the last number in its name (``epoch_07.pt`` → 7, ``ckpt-3.onnx`` → 3).

    Parameters
    ----------
    folder : str or path-like
        A folder of model files ending in .pt, .pth, .ts, .onnx, .bin or .ckpt.
    arch : str, optional
        For state_dict files: their architecture; the specs become ``ARCH:PATH``.

    Returns
    -------
    list of (int, str)
        (epoch, spec), sorted by epoch.

    Raises
    ------
    ValueError
        If the folder does not exist, holds no numbered model files, or two files share an epoch.
    """
    path = Path(folder)
    if not path.is_dir():
        raise ValueError(f"{path}: no such folder (expected a folder of checkpoint files)")
    found: dict[int, Path] = {}
    for file in sorted(path.iterdir()):
        numbers = re.findall(r"\d+", file.stem)
        if not file.is_file() or file.suffix.lower() not in CHECKPOINT_EXTENSIONS or not numbers:
            continue
        epoch = int(numbers[-1])
        if epoch in found:
            raise ValueError(f"{path}: {found[epoch].name} and {file.name} are both epoch {epoch}")
        found[epoch] = file
    if not found:
        raise ValueError(
            f"{path}: no checkpoint files (expected names with an epoch number, ending in "
            f"{', '.join(CHECKPOINT_EXTENSIONS)})"
        )
    prefix = f"{arch}:" if arch else ""
    return [(epoch, f"{prefix}{found[epoch]}") for epoch in sorted(found)]


@dataclass(frozen=True)
class Clustering:
    """A hierarchical clustering of models from their distance matrix, for a clustered heatmap.

    Attributes
    ----------
    order : ndarray of int, shape (M,)
        The models in dendrogram leaf order.
    linkage : ndarray, shape (M - 1, 4)
        scipy's linkage matrix (empty for M < 2).
    icoord, dcoord : list of list of float
        The dendrogram's links as scipy draws them (x in leaf units of 10, starting at 5; y heights).
    """

    order: np.ndarray
    linkage: np.ndarray
    icoord: list[list[float]]
    dcoord: list[list[float]]


def cluster_models(matrix: np.ndarray, *, method: str = "average") -> Clustering:
    """Order models by average-linkage hierarchical clustering of their distances (optimal leaf order).

    Parameters
    ----------
    matrix : ndarray, shape (M, M)
        Symmetric, non-negative distances with a zero diagonal.
    method : str
        scipy.cluster.hierarchy linkage method ("average", "complete", "single"...).

    Returns
    -------
    Clustering

    Raises
    ------
    ValueError
        If ``matrix`` is not square, symmetric, non-negative and zero on the diagonal.
    """
    from scipy.cluster.hierarchy import dendrogram, linkage
    from scipy.spatial.distance import squareform

    matrix = np.asarray(matrix, dtype=np.float64)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
        raise ValueError(f"matrix: expected a square distance matrix, got shape {matrix.shape}")
    valid = np.all(np.isfinite(matrix)) and matrix.min() >= 0 and np.allclose(matrix, matrix.T)
    if not valid or np.any(np.diag(matrix)):
        raise ValueError("matrix: expected finite, non-negative, symmetric distances with a zero diagonal")
    count = matrix.shape[0]
    if count < 3:
        return Clustering(np.arange(count), np.empty((0, 4)), [], [])
    links = linkage(squareform(matrix, checks=False), method=method, optimal_ordering=True)
    tree = dendrogram(links, no_plot=True)
    return Clustering(np.asarray(tree["leaves"]), links, tree["icoord"], tree["dcoord"])


def read_reuse_report(path: str | os.PathLike) -> dict[str, Any]:
    """A reuse benchmark report (Zest vs ModelDiff [3]_), as :func:`zest_core.studies.benchmarks.write_reuse_report` writes it.

    Parameters
    ----------
    path : str or path-like
        The report's JSON file (``ReuseResult.to_dict()``).

    Returns
    -------
    dict
        The report, with at least "methods", "relations" and "summary".

    Raises
    ------
    ValueError
        If the file is missing, is not JSON, or lacks the report's entries.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: no such report file")
    try:
        report = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"{path}: not a readable JSON report ({type(error).__name__}: {error})") from error
    missing = [k for k in ("methods", "relations", "summary") if not isinstance(report, Mapping) or k not in report]
    if missing:
        raise ValueError(f"{path}: not a reuse benchmark report (it lacks {', '.join(missing)})")
    return report


def reuse_rows(report: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One row per (relation, method) of a reuse report, plus each method's overall and unrelated rows.

    Parameters
    ----------
    report : mapping
        As :func:`read_reuse_report` returns it.

    Returns
    -------
    list of dict
        Keys: relation, method, kind ("distance" or "similarity"), pairs, mean, std, zest_accuracy
        (relative distance < 1), modeldiff_accuracy (closer than every unrelated model), auc; for
        the "unrelated pairs" rows the accuracies are false-positive rates.

    Raises
    ------
    ValueError
        If the report's summary lacks a method or relation it lists.
    """
    rows = []
    try:
        for method in report["methods"]:
            summary = report["summary"][method]
            kind = summary.get("kind")
            for relation in report["relations"]:
                stats = summary["relations"][relation]
                rows.append({
                    "relation": relation, "method": method, "kind": kind, "pairs": stats.get("n"),
                    "mean": stats.get("mean"), "std": stats.get("std"),
                    "zest_accuracy": stats.get("zest_accuracy"), "modeldiff_accuracy": stats.get("modeldiff_accuracy"),
                    "auc": stats.get("auc"),
                })
            overall = summary["overall"]
            rows.append({
                "relation": "all related pairs", "method": method, "kind": kind, "pairs": overall.get("n_related"),
                "mean": None, "std": None, "zest_accuracy": overall.get("zest_accuracy"),
                "modeldiff_accuracy": overall.get("modeldiff_accuracy"), "auc": overall.get("auc"),
            })
            unrelated = overall.get("unrelated_scores") or {}
            rows.append({
                "relation": "unrelated pairs (false positives)", "method": method, "kind": kind,
                "pairs": overall.get("n_unrelated"), "mean": unrelated.get("mean"), "std": unrelated.get("std"),
                "zest_accuracy": overall.get("zest_false_positive_rate"),
                "modeldiff_accuracy": overall.get("modeldiff_false_positive_rate"), "auc": None,
            })
    except (KeyError, TypeError, AttributeError) as error:
        raise ValueError(f"reuse report: its summary does not match its methods and relations ({error!r})") from error
    return rows


# --------------------------------------------------------------------------------------------------
# The JSON report
# --------------------------------------------------------------------------------------------------


def comparison_report(
    result: ComparisonResult,
    *,
    models: Mapping[str, Mapping[str, Any]],
    refset: ReferenceSet,
    config: ZestConfig,
    alignments: Mapping[str, AlignmentSummary] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Assemble a JSON-ready report of one comparison.

    Parameters
    ----------
    result : ComparisonResult
    models : mapping of str to mapping
        Metadata of model "A" and model "B" (source, classes, input shape, fingerprint...).
    refset : ReferenceSet
    config : ZestConfig
    alignments : mapping of str to AlignmentSummary, optional
        Greedy and Hungarian matchings (see :func:`compare_alignments`).
    extra : mapping, optional
        More top-level entries (timings, the app version...).

    Returns
    -------
    dict
        Plain Python values only (``json.dumps`` works on it as is).
    """
    contributions = result.contributions
    labels = refset.labels
    images = [
        {
            "index": int(n),
            "label": None if labels is None else int(labels[n]),
            "contribution": float(contributions.per_image[n]),
            "share": float(share),
        }
        for n, share in enumerate(contributions.image_shares())
    ]
    names_a = models.get("A", {}).get("class_names")
    names_b = models.get("B", {}).get("class_names")
    classes = [
        {
            "class_a": int(i),
            "class_b": int(j),
            "name_a": names_a[i] if names_a else str(i),
            "name_b": names_b[j] if names_b else str(j),
            "contribution": float(contributions.per_class[m]),
            "share": float(contributions.class_shares()[m]),
        }
        for m, (i, j) in enumerate(contributions.pairs)
    ]
    baseline = result.baseline
    verdict = result.verdict
    report: dict[str, Any] = {
        "report": "zest-explorer comparison",
        "references": ["Jia et al., A Zest of LIME, ICLR 2023", "Ribeiro et al., LIME, KDD 2016 (arXiv:1602.04938)"],
        "models": {name: dict(meta) for name, meta in models.items()},
        "reference_set": {**refset.describe(), "labels": None if labels is None else labels.tolist()},
        "config": config.to_dict(),
        "metric": result.metric,
        "align": result.align,
        "alignment_method": result.alignment_method,
        "distance": result.distance,
        "relative_distance": result.relative,
        "baseline": None if baseline is None else {
            "models": baseline.names,
            "pairs": [{"a": a, "b": b, "distance": d} for a, b, d in baseline.pairs],
            "mean": baseline.mean,
        },
        "interval": None if result.interval is None else {
            "low": result.interval[0], "high": result.interval[1], "level": result.level, "n_boot": result.n_boot,
            "method": "bootstrap over reference images",
        },
        "verdict": {
            "label": verdict.label,
            "relative_interval": None if verdict.relative_interval is None else list(verdict.relative_interval),
            "explanation": verdict.explanation,
        },
        "contributions": {"additive": contributions.additive, "images": images, "classes": classes},
    }
    if alignments:
        report["alignments"] = {
            method: {
                "pairs": summary.alignment.pairs.tolist(),
                "total_cost": summary.total_cost,
                "correct": summary.correct,
                "comparable": summary.comparable,
            }
            for method, summary in alignments.items()
        }
        first = next(iter(alignments.values()))
        report["class_cost_matrix"] = first.alignment.cost.tolist()
    if extra:
        report.update(extra)
    return to_jsonable(report)


def to_jsonable(value: Any) -> Any:
    """``value`` with numpy scalars and arrays, tuples and paths turned into plain JSON values (NaN → None)."""
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return to_jsonable(value.tolist())
    if isinstance(value, np.generic):
        return to_jsonable(value.item())
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, os.PathLike):
        return str(value)
    return value


def _check_index(name: str, value: Any, count: int) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 0 <= value < count:
        raise ValueError(f"{name}: expected an integer in [0, {count - 1}], got {value!r}")
