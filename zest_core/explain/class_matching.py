"""Class matchings scored against known class names: how often greedy and Hungarian matching are right."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ..errors import ZestError
from ..pipeline.alignment import ALIGN_METHODS, Alignment, align_matrices
from ..pipeline.distance import check_compatible
from ..pipeline.signature import Signature


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
    ZestError
        If a pair indexes past the class names.
    """
    pairs = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    if pairs.size and (pairs[:, 0].max() >= len(names_a) or pairs[:, 1].max() >= len(names_b)):
        raise ZestError(
            f"pairs: expected class indices below the class names' counts ({len(names_a)} for A, "
            f"{len(names_b)} for B), got an index past the class names"
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
    ZestError
        For an unknown method, or class names that do not match the class counts.
    IncompatibleSignaturesError
        If the signatures come from different reference sets or configs.

    References
    ----------
    .. [1] Jia et al., "A Zest of LIME", ICLR 2023, Appendix B (greedy matching).
    """
    check_compatible(sig_a, sig_b)
    truth = names_a is not None and names_b is not None
    if truth and (len(names_a) != sig_a.num_classes or len(names_b) != sig_b.num_classes):
        raise ZestError(
            f"class names: expected {sig_a.num_classes} for A and {sig_b.num_classes} for B, "
            f"got {len(names_a)} and {len(names_b)}"
        )
    matrix_a, matrix_b = sig_a.matrix(), sig_b.matrix()
    summaries = {}
    for method in methods:
        alignment = align_matrices(matrix_a, matrix_b, method)
        correct, comparable = alignment_accuracy(alignment.pairs, names_a, names_b) if truth else (None, None)
        summaries[method] = AlignmentSummary(alignment, correct, comparable)
    return summaries
