"""ModelDiff's decision distance vectors (DDVs) and their similarity: the black-box half of the method.

A model M's DDV on n pairs (x_i, x'_i) is ``DDV(M)_i = cos_dist(p_M(x_i), p_M(x'_i))``, normalised
to unit L2 norm; two models' similarity is the cosine similarity of their DDVs [1]_.

References
----------
.. [1] Li, Zhang, Liu, Yang & Liu, "ModelDiff: Testing-Based DNN Similarity Comparison for Model
   Reuse Detection", ISSTA 2021 (the decision distance vector).
"""
from __future__ import annotations

import numpy as np
import torch

from ...errors import ModelOutputError, ZestError, ZestTypeError
from ...pipeline.counting import QueryCount
from ...pipeline.queries import ModelFn, check_model, query_scores
from ...pipeline.scores import model_outputs, scores_to_probabilities
from .pairs import InputPairs

# Decision distances at or below this are rounding noise of 1 - cos (float64), not a change of decision.
ZERO_DISTANCE = 1e-12


def to_probabilities(scores: np.ndarray, outputs: str = "logits") -> np.ndarray:
    """Class probabilities from a model's scores, as NumPy float64 (see :func:`~zest_core.pipeline.queries.scores_to_probabilities`).

    Parameters
    ----------
    scores : ndarray, shape (B, C)
    outputs : {"logits", "probabilities"}
        What the scores are (a :class:`~zest_core.Classifier`'s ``outputs``): logits go through a
        softmax, probabilities are used as they are.
    """
    tensor = torch.from_numpy(np.asarray(scores, dtype=np.float64))
    return scores_to_probabilities(tensor, outputs).numpy()


def decision_distances(outputs_seed: np.ndarray, outputs_perturbed: np.ndarray) -> np.ndarray:
    """Cosine distance between a model's outputs on each seed and on its perturbed image.

    Parameters
    ----------
    outputs_seed, outputs_perturbed : ndarray, shape (n, C)
        The model's output vectors (probabilities) on x_i and on x'_i.

    Returns
    -------
    ndarray of float64, shape (n,)
        ``1 - <a_i, b_i> / (|a_i| |b_i|)``, in [0, 2] ([0, 1] for non-negative outputs): the DDV of
        [1]_ before normalisation.

    Raises
    ------
    ZestError
        If the shapes differ; ModelOutputError if an output vector is all zero (its cosine distance
        is undefined).

    References
    ----------
    .. [1] Li et al., "ModelDiff", ISSTA 2021 (the decision distance vector).
    """
    a = np.asarray(outputs_seed, dtype=np.float64)
    b = np.asarray(outputs_perturbed, dtype=np.float64)
    if a.ndim != 2 or a.shape != b.shape:
        raise ZestError(
            f"outputs_perturbed: expected the shape of outputs_seed, (n, C) = {a.shape}, got {b.shape}"
        )
    norms = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    if np.any(norms == 0):
        raise ModelOutputError(
            f"the model returned an all-zero output vector on {int(np.sum(norms == 0))} of the {len(a)} "
            "pairs; the cosine distance of its decisions is undefined"
        )
    return np.clip(1.0 - np.einsum("ij,ij->i", a, b) / norms, 0.0, 2.0)


def normalize_ddv(distances: np.ndarray) -> np.ndarray:
    """The decision distance vector scaled to unit L2 norm.

    Raises
    ------
    ZestError
        If every distance is zero (up to ``1e-12``, the rounding noise of ``1 - cos``): the model
        decides the same on both images of every pair (a constant model?), and the cosine
        similarity of its DDV is undefined.
    """
    vector = np.asarray(distances, dtype=np.float64)
    norm = float(np.linalg.norm(vector))
    if not np.isfinite(norm):
        raise ZestError("distances: expected finite decision distances, got NaN or inf")
    if norm == 0 or np.abs(vector).max() <= ZERO_DISTANCE:
        raise ZestError(
            f"distances: all {vector.size} decision distances are zero (the model's outputs do not change on "
            "any pair, a constant model?); the DDV similarity is undefined"
        )
    return vector / norm


def ddv_similarity(ddv_a: np.ndarray, ddv_b: np.ndarray) -> float:
    """Cosine similarity of two decision distance vectors, ModelDiff's model similarity.

    In [0, 1] for DDVs of non-negative distances; 1 when one DDV is a positive multiple of the other.

    Raises
    ------
    ZestError
        If the DDVs differ in length (they must come from the same pairs) or one is all zero.
    """
    a = np.ravel(np.asarray(ddv_a, dtype=np.float64))
    b = np.ravel(np.asarray(ddv_b, dtype=np.float64))
    if a.shape != b.shape:
        raise ZestError(f"ddv_b: expected {a.size} decision distances (the pairs of ddv_a), got {b.size}")
    return float(np.clip(normalize_ddv(a) @ normalize_ddv(b), -1.0, 1.0))


def decision_distance_vector(
    model: ModelFn,
    pairs: InputPairs,
    *,
    batch_size: int | None = None,
    device: str | torch.device = "auto",
    counter: QueryCount | None = None,
) -> np.ndarray:
    """A model's decision distance vector on ModelDiff pairs, normalised to unit L2 norm.

    The model is a black box: it is only run on the 2n images of the pairs.

    Parameters
    ----------
    model : callable
        Images [B, C, H, W] in [0, 1] → scores [B, classes]; any class count. Logits are turned into
        probabilities by a softmax (a model declaring ``outputs="probabilities"`` is used as it is).
    pairs : InputPairs
    batch_size : int, optional
    device : {"auto", "cpu", "cuda"} or torch.device
    counter : QueryCount, optional
        The model's calls (2n images in all) are added to it.

    Returns
    -------
    ndarray of float64, shape (n,)
        ``DDV_i = cos_dist(p(x_i), p(x'_i)) / ‖·‖₂``.

    Raises
    ------
    ZestTypeError
        If ``pairs`` is not InputPairs.
    ZestError
        If the model's decisions change on no pair.
    ModelInputError, ModelOutputError
        If the model cannot take the images or returns bad scores.

    References
    ----------
    .. [1] Li et al., "ModelDiff", ISSTA 2021 (the decision distance vector).
    """
    check_model("model", model)
    if not isinstance(pairs, InputPairs):
        raise ZestTypeError(f"pairs: expected InputPairs (from generate_pairs), got {type(pairs).__name__}")
    scores = query_scores(model, pairs.images(), batch_size=batch_size, device=device, counter=counter)
    probabilities = to_probabilities(scores, model_outputs(model))
    n = len(pairs)
    return normalize_ddv(decision_distances(probabilities[:n], probabilities[n:]))
