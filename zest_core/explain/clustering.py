"""Hierarchical clustering of models from their distance matrix, for a clustered heatmap."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.cluster.hierarchy import dendrogram, linkage
from scipy.spatial.distance import squareform

from ..errors import ZestError


@dataclass(frozen=True)
class Clustering:
    """A hierarchical clustering of models from their distance matrix, for a clustered heatmap.

    Attributes
    ----------
    order : ndarray of int, shape (M,)
        The models in dendrogram leaf order.
    linkage : ndarray, shape (M - 1, 4)
        scipy's linkage matrix (empty for M < 3).
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
        With fewer than three models there is nothing to cluster: the order is the given one.

    Raises
    ------
    ZestError
        If ``matrix`` is not square, symmetric, non-negative and zero on the diagonal.
    """
    matrix = np.asarray(matrix, dtype=np.float64)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
        raise ZestError(f"matrix: expected a square distance matrix, got shape {matrix.shape}")
    valid = np.all(np.isfinite(matrix)) and matrix.min() >= 0 and np.allclose(matrix, matrix.T)
    if not valid or np.any(np.diag(matrix)):
        raise ZestError(
            "matrix: expected finite, non-negative, symmetric distances with a zero diagonal, got other values"
        )
    count = matrix.shape[0]
    if count < 3:
        return Clustering(np.arange(count), np.empty((0, 4)), [], [])
    links = linkage(squareform(matrix, checks=False), method=method, optimal_ordering=True)
    tree = dendrogram(links, no_plot=True)
    return Clustering(np.asarray(tree["leaves"]), links, tree["icoord"], tree["dcoord"])
