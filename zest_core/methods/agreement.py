"""Top-1 prediction agreement: the black-box baseline for model similarity.

It is what an auditor who sees only the labels two models return can compute, and a reference for
Zest and ModelDiff in the reuse benchmark (:mod:`zest_core.studies`).

References
----------
.. [1] Jia et al., "A Zest of LIME: Towards Architecture-Independent Model Distances", ICLR 2023
   (prediction agreement as a baseline).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from ..errors import ZestError
from ..pipeline.queries import ModelFn, query_scores
from ..pipeline.reference import ReferenceSet, check_refset
from .class_mapping import ClassMapping, resolve_class_mapping


def agreement_rate(
    predictions_a: np.ndarray,
    predictions_b: np.ndarray,
    *,
    class_mapping: np.ndarray | Sequence[int] | None = None,
) -> float:
    """The fraction of images on which two models predict the same class.

    Parameters
    ----------
    predictions_a, predictions_b : ndarray of int, shape (n,)
        Each model's top-1 class per image.
    class_mapping : array-like of int, shape (C_A,), optional
        Class of B that each class of A corresponds to, -1 for none. Without it, class indices are
        compared directly. A prediction of A whose class has no counterpart in B counts as a
        disagreement.

    Returns
    -------
    float in [0, 1]
    """
    a = np.asarray(predictions_a)
    b = np.asarray(predictions_b)
    if a.ndim != 1 or a.shape != b.shape or a.size == 0:
        raise ZestError(
            f"predictions_b: expected the shape of predictions_a, a non-empty (n,) = {a.shape}, got {b.shape}"
        )
    if class_mapping is not None:
        mapping = np.asarray(class_mapping, dtype=np.int64)
        if a.min() < 0 or a.max() >= len(mapping):
            raise ZestError(
                f"class_mapping: expected one entry per class of A (at least {a.max() + 1}), got {len(mapping)}"
            )
        a = mapping[a]
    return float(np.mean((a == b) & (a >= 0)))


def prediction_agreement(
    model_a: ModelFn,
    model_b: ModelFn,
    refset: ReferenceSet,
    *,
    class_mapping: ClassMapping | None = None,
    batch_size: int | None = None,
    device: str | torch.device = "auto",
) -> float:
    """Top-1 prediction agreement of two black-box models over a reference set.

    Parameters
    ----------
    model_a, model_b : callable
        Images [B, C, H, W] in [0, 1] → scores [B, classes].
    refset : ReferenceSet
    class_mapping : mapping or array-like of int, optional
        Which class of B each class of A is; without it the classes are matched by name, else by
        index (see :func:`~zest_core.methods.class_mapping.resolve_class_mapping`).
    batch_size : int, optional
    device : {"auto", "cpu", "cuda"} or torch.device

    Returns
    -------
    float in [0, 1]

    Raises
    ------
    NotComparableError, ZestError
        As :func:`~zest_core.methods.class_mapping.resolve_class_mapping` raises them.

    References
    ----------
    .. [1] Jia et al., "A Zest of LIME", ICLR 2023 (the prediction-agreement baseline).
    """
    check_refset(refset)
    images = refset.as_tensor()
    scores_a = query_scores(model_a, images, batch_size=batch_size, device=device)
    scores_b = query_scores(model_b, images, batch_size=batch_size, device=device)
    mapping = resolve_class_mapping(model_a, model_b, scores_a.shape[1], scores_b.shape[1], class_mapping)
    return agreement_rate(scores_a.argmax(axis=1), scores_b.argmax(axis=1), class_mapping=mapping)
