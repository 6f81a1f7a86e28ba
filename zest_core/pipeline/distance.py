"""Distances between aligned signatures, relative distances, and all-pairs matrices.

:func:`compare` is the one place where two signatures are checked, their classes matched and their
distance computed; :func:`zest_distance` and the explanations of :mod:`zest_core.explain` are built
on it, so that one comparison aligns the classes once.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

from .._shared.checks import check_choice
from ..errors import IncompatibleSignaturesError, ZestError
from .alignment import ALIGN_METHODS, Alignment, align_matrices
from .config import ZestConfig
from .probe import ProgressFn
from .reference import ReferenceSet
from .signature import Signature, compute_signature

METRICS = ("cosine", "l1", "l2", "linf")
ALIGN_CHOICES = ("auto", "none") + ALIGN_METHODS


def check_compatible(sig_a: Signature, sig_b: Signature) -> None:
    """Raise IncompatibleSignaturesError unless both signatures probe the same segments and masks (same super-pixels)."""
    if sig_a.refset_fingerprint != sig_b.refset_fingerprint:
        raise IncompatibleSignaturesError(
            "sig_a, sig_b: the signatures come from different reference sets "
            f"({sig_a.refset_fingerprint[:12]}… vs {sig_b.refset_fingerprint[:12]}…); compute both on the same one"
        )
    science_a, science_b = sig_a.config.science_dict(), sig_b.config.science_dict()
    differing = sorted(k for k in science_a if science_a[k] != science_b.get(k))
    if differing:
        details = ", ".join(f"{k}={science_a[k]!r} vs {science_b[k]!r}" for k in differing)
        raise IncompatibleSignaturesError(f"sig_a, sig_b: the signatures were computed with different configs: {details}")
    same_segments = sig_a.segments is sig_b.segments or (
        sig_a.segments.shape == sig_b.segments.shape and np.array_equal(sig_a.segments, sig_b.segments))
    if not same_segments:  # the same config, segmented by another rule (another version, another scale)
        raise IncompatibleSignaturesError(
            "sig_a, sig_b: the signatures' super-pixels differ (segmented by another rule or version); compute both "
            "with the same version"
        )


def alignment_method(align: str, classes_a: int, classes_b: int) -> str | None:
    """The class-matching method that ``align`` runs for these class counts, or None when none runs.

    "auto" matches (greedily, as the paper does) only when the class counts differ.

    Raises
    ------
    ZestError
        For an unknown ``align``, or ``align="none"`` with different class counts.
    """
    check_choice("align", align, ALIGN_CHOICES)
    if align == "none" or (align == "auto" and classes_a == classes_b):
        if classes_a != classes_b:
            raise ZestError(
                f"align: expected 'auto', 'greedy' or 'hungarian' to match the models' classes, got 'none' "
                f"(the models have {classes_a} and {classes_b} classes)"
            )
        return None
    return "greedy" if align == "auto" else align


@dataclass(frozen=True)
class Comparison:
    """One comparison of two signatures: the distance, the class matching, and the rows it compared.

    Attributes
    ----------
    distance : float
    metric : {"cosine", "l1", "l2", "linf"}
    alignment : Alignment or None
        The class matching that ran; None when the classes were compared in their own order.
    pairs : ndarray of int, shape (M, 2)
        (class of A, class of B) of each compared row, sorted by A's class (the identity without a
        matching).
    matrix_a, matrix_b : ndarray, shape (M, ΣK)
        The compared rows of each signature matrix, row m of both being ``pairs[m]``.
    image_columns : ndarray of int, shape (N + 1,)
        Start column of each reference image in the matrices.
    """

    distance: float
    metric: str
    alignment: Alignment | None
    pairs: np.ndarray
    matrix_a: np.ndarray
    matrix_b: np.ndarray
    image_columns: np.ndarray

    @property
    def method(self) -> str | None:
        """The matching that ran ("greedy" or "hungarian"), None when none did."""
        return None if self.alignment is None else self.alignment.method


def match_signatures(sig_a: Signature, sig_b: Signature, align: str = "auto") -> Alignment | None:
    """Check that two signatures are comparable and match their classes as ``align`` says.

    Returns the matching, or None when the classes are compared in their own order. Use
    :func:`compare` for a distance: this is for callers that need only the matched rows.
    """
    check_compatible(sig_a, sig_b)
    method = alignment_method(align, sig_a.num_classes, sig_b.num_classes)
    return None if method is None else align_matrices(sig_a.matrix(), sig_b.matrix(), method)


def compared_pairs(alignment: Alignment | None, num_classes: int) -> np.ndarray:
    """The (class of A, class of B) rows a comparison compares: the matching's, else the identity."""
    if alignment is not None:
        return alignment.pairs
    identity = np.arange(num_classes)
    return np.stack([identity, identity], axis=1)


def compare(sig_a: Signature, sig_b: Signature, *, metric: str = "cosine", align: str = "auto") -> Comparison:
    """Compare two signatures: check them, match their classes once, and compute the distance.

    Parameters
    ----------
    sig_a, sig_b : Signature
        Computed on the same reference set with the same config (execution fields aside).
    metric : {"cosine", "l1", "l2", "linf"}
    align : {"auto", "none", "greedy", "hungarian"}
        "auto" matches classes (greedily, as the paper does) only when the class counts differ.

    Returns
    -------
    Comparison

    Raises
    ------
    ZestError
        For an unknown metric or alignment, ``align="none"`` with different class counts, or a
        cosine distance of an all-zero signature.
    IncompatibleSignaturesError
        If the signatures come from different reference sets or configs.

    References
    ----------
    .. [1] Jia et al., "A Zest of LIME: Towards Architecture-Independent Model Distances", ICLR 2023.
    """
    check_choice("metric", metric, METRICS)
    alignment = match_signatures(sig_a, sig_b, align)
    matrix_a, matrix_b = sig_a.matrix(), sig_b.matrix()
    if alignment is not None:
        matrix_a, matrix_b = matrix_a[alignment.pairs[:, 0]], matrix_b[alignment.pairs[:, 1]]
    return Comparison(
        distance=vector_distance(matrix_a, matrix_b, metric),
        metric=metric,
        alignment=alignment,
        pairs=compared_pairs(alignment, sig_a.num_classes),
        matrix_a=matrix_a,
        matrix_b=matrix_b,
        image_columns=sig_a.image_columns(),
    )


def vector_distance(a: np.ndarray, b: np.ndarray, metric: str = "cosine") -> float:
    """Distance between two flattened signature matrices.

    Raises
    ------
    ZestError
        For an unknown metric, or a cosine distance of an all-zero signature.
    """
    check_choice("metric", metric, METRICS)
    a, b = np.ravel(a).astype(np.float64), np.ravel(b).astype(np.float64)
    if metric == "cosine":
        return float(cosine_from_products(a @ b, a @ a, b @ b))
    if metric == "l1":
        return float(np.abs(a - b).sum())
    if metric == "l2":
        return float(np.linalg.norm(a - b))
    return float(np.abs(a - b).max())


def zest_distance(sig_a: Signature, sig_b: Signature, metric: str = "cosine", align: str = "auto") -> float:
    """The Zest distance between two models, from their signatures: ``compare(...).distance``.

    ``metric`` is "cosine", "l1", "l2" or "linf"; ``align`` is "auto" (match classes, greedily as
    the paper does, only when the class counts differ), "none", "greedy" or "hungarian". See
    :func:`compare` for the errors it raises (IncompatibleSignaturesError for signatures from other
    reference sets or configs).

    References
    ----------
    .. [1] Jia et al., "A Zest of LIME: Towards Architecture-Independent Model Distances", ICLR 2023.
    """
    return compare(sig_a, sig_b, metric=metric, align=align).distance


def relative_distance(d: float, unrelated_distances: Sequence[float]) -> float:
    """``d`` divided by the mean distance between unrelated models (paper App. C); below 1 means related."""
    baseline = np.asarray(list(unrelated_distances), dtype=np.float64)
    if baseline.size == 0:
        raise ZestError("unrelated_distances: expected at least one distance between unrelated models, got none")
    if not np.all(np.isfinite(baseline)):
        raise ZestError(f"unrelated_distances: expected finite distances, got {baseline.tolist()}")
    mean = float(baseline.mean())
    if mean <= 0:
        raise ZestError(f"unrelated_distances: expected a positive mean, got {mean}")
    return float(d) / mean


def signature_distance_matrix(
    signatures: Sequence[Signature], metric: str = "cosine", align: str = "auto"
) -> np.ndarray:
    """All-pairs distance matrix (M × M, symmetric, zero diagonal) from precomputed signatures."""
    count = len(signatures)
    result = np.zeros((count, count))
    for i in range(count):
        for j in range(i + 1, count):
            result[i, j] = result[j, i] = zest_distance(signatures[i], signatures[j], metric, align)
    return result


def distance_matrix(
    models: Sequence[Callable],
    refset: ReferenceSet,
    config: ZestConfig | None = None,
    *,
    metric: str = "cosine",
    align: str = "auto",
    progress: ProgressFn | None = None,
    cache: Any = None,
) -> tuple[np.ndarray, list[Signature]]:
    """Distances between every pair of M models, computing each signature once (not M×(M−1) times).

    ``cache`` is passed to :func:`compute_signature` (a SignatureCache, a folder, True/None for the
    default one, False for none). Returns the M × M matrix and the signatures.
    """
    signatures = []
    for index, model in enumerate(models):
        def report(done, total, stage, _index=index):
            if progress is not None:
                progress(done, total, f"model {_index + 1}/{len(models)}: {stage}")
        signatures.append(compute_signature(model, refset, config, report if progress else None, cache=cache))
    return signature_distance_matrix(signatures, metric, align), signatures


def cosine_from_products(dot: Any, squared_a: Any, squared_b: Any) -> np.ndarray:
    """``1 − ⟨a, b⟩ / (‖a‖ ‖b‖)`` from the inner products, clipped to [0, 2]; elementwise over arrays.

    The one cosine distance of signatures: :func:`vector_distance` gives it the products of two
    flattened matrices, :func:`zest_core.hub.hub_distance_matrix` the sums of matched rows' products
    of many pairs at once.

    Raises
    ------
    ZestError
        If a signature is all zero (its squared norm is 0): a constant model has no cosine distance.
    """
    dot, squared_a, squared_b = (np.asarray(v, dtype=np.float64) for v in (dot, squared_a, squared_b))
    if np.any(squared_a == 0) or np.any(squared_b == 0):
        raise ZestError(
            "signature: expected a nonzero signature for the cosine distance, got an all-zero signature "
            "(a constant model?)"
        )
    return np.clip(1.0 - dot / np.sqrt(squared_a * squared_b), 0.0, 2.0)
