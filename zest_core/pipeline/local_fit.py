"""Local fits: the linear map from masks to model outputs, one per reference image.

Both fits are linear in the targets, so the part that depends only on the masks is computed once per
(reference set, config) as an operator R (K+1 × L). A model's local model is then ``R @ Z`` for its
outputs Z (L × C): row k < K holds super-pixel k's weight per class, the last row the intercept.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from .._shared.checks import check_choice
from ..errors import ZestError
from .designs import minimum_samples


def zest_operator(masks: np.ndarray) -> np.ndarray:
    """Least squares without intercept, as the authors' code fits it: W = pinv(XᵀX) Xᵀ Z.

    Parameters
    ----------
    masks : ndarray, shape (L, K), 0/1

    Returns
    -------
    operator : ndarray of float64, shape (K + 1, L); the intercept row is zero.

    References
    ----------
    .. [1] Jia et al., "A Zest of LIME: Towards Architecture-Independent Model Distances", ICLR 2023.
    """
    x = masks.astype(np.float64)
    weights = np.linalg.pinv(x.T @ x) @ x.T
    return np.vstack([weights, np.zeros((1, x.shape[0]))])


def lime_kernel_weights(masks: np.ndarray, kernel_width: float = 0.25) -> np.ndarray:
    """LIME's sample weights: sqrt(exp(-d²/width²)), d the cosine distance to the all-ones mask.

    An all-zero mask has cosine similarity 0 to every vector, as scikit-learn computes it.
    """
    x = masks.astype(np.float64)
    norms = np.linalg.norm(x, axis=1)
    similarity = np.divide(x.sum(axis=1), norms * np.sqrt(x.shape[1]), out=np.zeros_like(norms), where=norms > 0)
    distances = np.clip(1.0 - similarity, 0.0, 2.0)
    return np.sqrt(np.exp(-(distances**2) / kernel_width**2))


def lime_operator(masks: np.ndarray, kernel_width: float = 0.25, alpha: float = 1.0) -> np.ndarray:
    """Kernel-weighted Ridge with intercept, as the ``lime`` package's LimeBase fits it.

    Minimises Σᵢ wᵢ (zᵢ − b − xᵢβ)² + α‖β‖² with LIME's kernel weights wᵢ, which is what
    ``sklearn.linear_model.Ridge(alpha, fit_intercept=True).fit(X, z, sample_weight=w)`` solves:
    β = (X̃ᵀWX̃ + αI)⁻¹ X̃ᵀW z with X̃ the weighted-centred masks, and b = w̄ᵀz − x̄ᵀβ.

    Returns
    -------
    operator : ndarray of float64, shape (K + 1, L); the last row gives the intercept.

    References
    ----------
    .. [1] Ribeiro, Singh & Guestrin, "Why Should I Trust You?", KDD 2016 (arXiv:1602.04938).
    """
    x = masks.astype(np.float64)
    w = lime_kernel_weights(masks, kernel_width)
    w_normalised = w / w.sum()
    x_mean = w_normalised @ x
    centred = x - x_mean
    gram = centred.T @ (centred * w[:, None]) + alpha * np.eye(x.shape[1])
    coefficients = np.linalg.solve(gram, centred.T * w[None, :])
    intercept = w_normalised - x_mean @ coefficients
    return np.vstack([coefficients, intercept[None, :]])


def fit_operator(masks: np.ndarray, mode: str, *, kernel_width: float = 0.25, alpha: float = 1.0) -> np.ndarray:
    """The (K + 1) × L operator of the chosen mode ("zest" or "lime")."""
    check_choice("mode", mode, ("zest", "lime"))
    return zest_operator(masks) if mode == "zest" else lime_operator(masks, kernel_width, alpha)


def check_samples_determine_fits(num_segments: Sequence[int], num_samples: int, design: str = "bernoulli") -> None:
    """Raise ZestError unless every image's fit has more samples than unknowns: L ≥ K + 1 (Bernoulli masks).

    An image with K super-pixels has K unknown weights per class, and in ``mode="lime"`` an
    intercept too: K + 1 unknowns. With fewer samples the least-squares fit is underdetermined
    (``pinv`` then returns one of infinitely many exact fits, and the ridge fit one its penalty
    picks), so the signature describes the sampler more than the model. The bound is L ≥ K + 1 in
    both modes: the unknown count of the lime fit, and for the zest fit (K unknowns) one spare row,
    because L = K random 0/1 masks are singular with a probability that is far from negligible
    (two equal rows, or a column of zeros, suffice).

    Parameters
    ----------
    num_segments : sequence of int
        K of each reference image, in the reference set's order.
    num_samples : int
        L, the maskings per image.
    design : str
        The mask design; the antithetic and orthogonal ones need more (2K, and a whole block of at
        least 2K rows: :func:`~zest_core.pipeline.designs.minimum_samples`).

    Raises
    ------
    ZestError
        Naming the image with the most super-pixels among those that are short (its index in the
        reference set) and its K, and how many images are short.
    """
    counts = np.asarray(num_segments, dtype=np.int64)
    needed = np.array([minimum_samples(int(k), design) for k in counts], dtype=np.int64)
    short = np.flatnonzero(needed > num_samples)
    if short.size == 0:
        return
    worst = int(short[np.argmax(counts[short])])
    others = f" ({short.size} of the {counts.size} images are short)" if short.size > 1 else ""
    if design == "bernoulli":
        bound, why = f"K + 1 = {needed[worst]}", "a local fit needs more samples than unknowns"
    else:
        bound, why = f"{needed[worst]}", f"{design} masks determine a fit of K super-pixels only from that many"
    raise ZestError(
        f"num_samples: expected at least {bound} maskings per image, since image {worst} of the reference set has "
        f"K = {counts[worst]} super-pixels{others} and {why}, got {num_samples}"
    )
