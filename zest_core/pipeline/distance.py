"""Distances between aligned signatures, relative distances, and all-pairs matrices."""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from ..errors import IncompatibleSignaturesError
from .alignment import ALIGN_METHODS, align_classes
from .signature import Signature

METRICS = ("cosine", "l1", "l2", "linf")
ALIGN_CHOICES = ("auto", "none") + ALIGN_METHODS


def check_compatible(sig_a: Signature, sig_b: Signature) -> None:
    """Raise IncompatibleSignaturesError unless both signatures probe the same segments and masks."""
    if sig_a.refset_fingerprint != sig_b.refset_fingerprint:
        raise IncompatibleSignaturesError(
            "the signatures come from different reference sets "
            f"({sig_a.refset_fingerprint[:12]}… vs {sig_b.refset_fingerprint[:12]}…); compute both on the same one"
        )
    science_a, science_b = sig_a.config.science_dict(), sig_b.config.science_dict()
    differing = sorted(k for k in science_a if science_a[k] != science_b.get(k))
    if differing:
        details = ", ".join(f"{k}={science_a[k]!r} vs {science_b[k]!r}" for k in differing)
        raise IncompatibleSignaturesError(f"the signatures were computed with different configs: {details}")


def alignment_method(align: str, classes_a: int, classes_b: int) -> str | None:
    """The class-matching method that ``align`` runs for these class counts, or None when none runs.

    "auto" matches (greedily, as the paper does) only when the class counts differ.
    """
    if align not in ALIGN_CHOICES:
        raise ValueError(f"align must be one of {ALIGN_CHOICES}; got {align!r}")
    if align == "none" or (align == "auto" and classes_a == classes_b):
        if classes_a != classes_b:
            raise ValueError(
                f"the models have {classes_a} and {classes_b} classes; "
                "use align='auto', 'greedy' or 'hungarian' to match them"
            )
        return None
    return "greedy" if align == "auto" else align


def aligned_matrices(sig_a: Signature, sig_b: Signature, align: str = "auto") -> tuple[np.ndarray, np.ndarray]:
    """The two signature matrices with matched class rows in the same order."""
    check_compatible(sig_a, sig_b)
    method = alignment_method(align, sig_a.num_classes, sig_b.num_classes)
    matrix_a, matrix_b = sig_a.matrix(), sig_b.matrix()
    if method is None:
        return matrix_a, matrix_b
    pairs = align_classes(sig_a, sig_b, method).pairs
    return matrix_a[pairs[:, 0]], matrix_b[pairs[:, 1]]


def vector_distance(a: np.ndarray, b: np.ndarray, metric: str = "cosine") -> float:
    """Distance between two flattened signature matrices."""
    a, b = np.ravel(a).astype(np.float64), np.ravel(b).astype(np.float64)
    if metric == "cosine":
        norm_a, norm_b = np.linalg.norm(a), np.linalg.norm(b)
        if norm_a == 0 or norm_b == 0:
            raise ValueError("cosine distance is undefined for an all-zero signature (a constant model?)")
        return float(np.clip(1.0 - a @ b / (norm_a * norm_b), 0.0, 2.0))
    if metric == "l1":
        return float(np.abs(a - b).sum())
    if metric == "l2":
        return float(np.linalg.norm(a - b))
    if metric == "linf":
        return float(np.abs(a - b).max())
    raise ValueError(f"metric must be one of {METRICS}; got {metric!r}")


def zest_distance(sig_a: Signature, sig_b: Signature, metric: str = "cosine", align: str = "auto") -> float:
    """The Zest distance between two models, from their signatures.

    Parameters
    ----------
    sig_a, sig_b : Signature
        Computed on the same reference set with the same config (execution fields aside).
    metric : {"cosine", "l1", "l2", "linf"}
    align : {"auto", "none", "greedy", "hungarian"}
        "auto" matches classes (greedily, as the paper does) only when the class counts differ.

    Raises
    ------
    IncompatibleSignaturesError
        If the signatures come from different reference sets or configs.

    References
    ----------
    .. [1] Jia et al., "A Zest of LIME: Towards Architecture-Independent Model Distances", ICLR 2023.
    """
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {METRICS}; got {metric!r}")
    return vector_distance(*aligned_matrices(sig_a, sig_b, align), metric=metric)


def relative_distance(d: float, unrelated_distances: Sequence[float]) -> float:
    """``d`` divided by the mean distance between unrelated models (paper App. C); below 1 means related."""
    baseline = np.asarray(list(unrelated_distances), dtype=np.float64)
    if baseline.size == 0:
        raise ValueError("unrelated_distances: need at least one distance between unrelated models")
    if not np.all(np.isfinite(baseline)):
        raise ValueError("unrelated_distances: contain NaN or inf")
    mean = float(baseline.mean())
    if mean <= 0:
        raise ValueError(f"unrelated_distances: their mean must be positive, got {mean}")
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
    refset,
    config=None,
    *,
    metric: str = "cosine",
    align: str = "auto",
    progress=None,
    cache=None,
) -> tuple[np.ndarray, list[Signature]]:
    """Distances between every pair of M models, computing each signature once (not M×(M−1) times).

    Returns the M × M matrix and the signatures.
    """
    from .signature import compute_signature

    signatures = []
    for index, model in enumerate(models):
        def report(done, total, stage, _index=index):
            if progress is not None:
                progress(done, total, f"model {_index + 1}/{len(models)}: {stage}")
        signatures.append(compute_signature(model, refset, config, report if progress else None, cache=cache))
    return signature_distance_matrix(signatures, metric, align), signatures
