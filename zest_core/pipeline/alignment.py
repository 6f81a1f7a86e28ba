"""Class alignment: match the class rows of two signatures when their classes differ in number or order."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment

from .._shared.checks import check_choice
from ..errors import IncompatibleSignaturesError

ALIGN_METHODS = ("greedy", "hungarian")


@dataclass(frozen=True)
class Alignment:
    """A matching between the class rows of two signatures.

    Attributes
    ----------
    pairs : ndarray of int, shape (M, 2)
        Matched (class of A, class of B), M = min(C_A, C_B), sorted by A's class.
    cost : ndarray, shape (C_A, C_B)
        Cosine distance between every class row of A and every class row of B.
    method : {"greedy", "hungarian"}
    """

    pairs: np.ndarray
    cost: np.ndarray
    method: str

    @property
    def total_cost(self) -> float:
        return float(self.cost[self.pairs[:, 0], self.pairs[:, 1]].sum())

    def permutation(self) -> dict[int, int]:
        """Class of A → matched class of B."""
        return {int(a): int(b) for a, b in self.pairs}


def class_cost_matrix(matrix_a: np.ndarray, matrix_b: np.ndarray) -> np.ndarray:
    """Cosine distance between every row of ``matrix_a`` and every row of ``matrix_b``.

    Raises
    ------
    IncompatibleSignaturesError
        If the matrices have different column counts (other reference sets or configs).
    """
    if matrix_a.shape[1] != matrix_b.shape[1]:
        raise IncompatibleSignaturesError(
            f"signature columns: expected equal counts (the same reference set and config), "
            f"got {matrix_a.shape[1]} and {matrix_b.shape[1]}"
        )
    norms_a = np.linalg.norm(matrix_a, axis=1, keepdims=True)
    norms_b = np.linalg.norm(matrix_b, axis=1, keepdims=True)
    unit_a = np.divide(matrix_a, norms_a, out=np.zeros_like(matrix_a, dtype=float), where=norms_a > 0)
    unit_b = np.divide(matrix_b, norms_b, out=np.zeros_like(matrix_b, dtype=float), where=norms_b > 0)
    return 1.0 - unit_a @ unit_b.T


def match_classes(cost: np.ndarray, method: str = "greedy") -> np.ndarray:
    """Match rows to columns of ``cost``; returns (min(R, C), 2) index pairs sorted by row.

    ``"greedy"`` repeatedly takes the smallest remaining entry of the whole matrix and removes its row
    and column, as the authors' code does; ``"hungarian"`` minimises the total cost
    (scipy.optimize.linear_sum_assignment). Rows or columns left over are dropped.

    Raises
    ------
    ZestError
        For an unknown ``method``.
    """
    check_choice("method", method, ALIGN_METHODS)
    rows, cols = batched_matching(np.asarray(cost, dtype=float)[None], method)
    pairs = np.stack([rows[0], cols[0]], axis=1).astype(np.int64).reshape(-1, 2)
    return pairs[np.argsort(pairs[:, 0])]


def batched_matching(cost: np.ndarray, method: str = "greedy") -> tuple[np.ndarray, np.ndarray]:
    """:func:`match_classes` of P cost matrices (P, C_A, C_B) at once: the (P, min(C_A, C_B)) rows and columns.

    ``"greedy"``: for each matrix, take the smallest remaining entry (the first in row-major order
    among equals, as ``np.argmin`` does), remove its row and column, min(C_A, C_B) times; the
    pairs come in the order taken. All P matrices advance together, one vectorised step at a time
    (a hub's distance matrix matches thousands of pairs). ``"hungarian"``:
    ``scipy.optimize.linear_sum_assignment`` of each.
    """
    if method == "hungarian":
        matched = [linear_sum_assignment(matrix) for matrix in cost]
        return np.stack([r for r, _ in matched]), np.stack([c for _, c in matched])
    remaining = np.array(cost, dtype=np.float64, copy=True)
    count, classes_a, classes_b = remaining.shape
    steps = min(classes_a, classes_b)
    rows, cols = np.empty((count, steps), dtype=np.int64), np.empty((count, steps), dtype=np.int64)
    every = np.arange(count)
    for step in range(steps):
        rows[:, step], cols[:, step] = np.divmod(np.argmin(remaining.reshape(count, -1), axis=1), classes_b)
        remaining[every, rows[:, step], :] = np.inf
        remaining[every, :, cols[:, step]] = np.inf
    return rows, cols


def align_matrices(matrix_a: np.ndarray, matrix_b: np.ndarray, method: str = "greedy") -> Alignment:
    """Match the rows of two signature matrices (C_A × ΣK and C_B × ΣK) by their cosine distance.

    Parameters
    ----------
    matrix_a, matrix_b : ndarray
        :meth:`Signature.matrix` of each model.
    method : {"greedy", "hungarian"}

    Returns
    -------
    Alignment
    """
    cost = class_cost_matrix(matrix_a, matrix_b)
    return Alignment(pairs=match_classes(cost, method), cost=cost, method=method)


def align_classes(sig_a, sig_b, method: str = "greedy") -> Alignment:
    """Match the class rows of two signatures by the cosine distance of their local-model weights.

    Parameters
    ----------
    sig_a, sig_b : Signature
    method : {"greedy", "hungarian"}

    Returns
    -------
    Alignment

    References
    ----------
    .. [1] Jia et al., "A Zest of LIME", ICLR 2023, §3 and Appendix B.
    """
    return align_matrices(sig_a.matrix(), sig_b.matrix(), method)
