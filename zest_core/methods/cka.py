"""Linear CKA: the white-box baseline for model similarity, on the models' internal representations.

It needs both models' internals, so in the reuse benchmark (:mod:`zest_core.studies`) it is an upper
reference for Zest and ModelDiff rather than a competitor.

References
----------
.. [1] Kornblith, Norouzi, Lee & Hinton, "Similarity of Neural Network Representations
   Revisited", ICML 2019 (linear CKA).
.. [2] Jia et al., "A Zest of LIME: Towards Architecture-Independent Model Distances", ICLR 2023
   (CKA as a baseline).
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from ..errors import NotComparableError, ZestError
from ..pipeline.counting import QueryCount
from ..pipeline.device import resolve_device
from ..pipeline.queries import ModelFn, query_scores
from ..pipeline.reference import ReferenceSet, check_refset
from ..sources.models.classifier import Classifier


def linear_cka(features_a: np.ndarray, features_b: np.ndarray) -> float:
    """Linear centred kernel alignment of two representations of the same n examples.

    ``CKA(X, Y) = ‖YᵀX‖²_F / (‖XᵀX‖_F ‖YᵀY‖_F)`` with the columns of X and Y centred [1]_: 1 for
    identical representations, invariant to orthogonal transforms and isotropic scaling of either.

    Parameters
    ----------
    features_a : ndarray, shape (n, p_a)
    features_b : ndarray, shape (n, p_b)

    Returns
    -------
    float in [0, 1]

    Raises
    ------
    ZestError
        If the example counts differ, n < 2, or a representation is constant over the examples.

    References
    ----------
    .. [1] Kornblith, Norouzi, Lee & Hinton, "Similarity of Neural Network Representations
       Revisited", ICML 2019, Eq. 5 (linear kernel).
    """
    x = np.asarray(features_a, dtype=np.float64)
    y = np.asarray(features_b, dtype=np.float64)
    x = x.reshape(x.shape[0], -1) if x.ndim > 1 else x[:, None]
    y = y.reshape(y.shape[0], -1) if y.ndim > 1 else y[:, None]
    if x.shape[0] != y.shape[0] or x.shape[0] < 2:
        raise ZestError(
            f"features_b: expected the {x.shape[0]} examples of features_a (at least 2), got {y.shape[0]}"
        )
    x = x - x.mean(axis=0)
    y = y - y.mean(axis=0)
    if x.shape[0] <= max(x.shape[1], y.shape[1]):
        gram_x, gram_y = x @ x.T, y @ y.T  # the n × n form is cheaper when n is small
        cross, norm_x, norm_y = float(np.sum(gram_x * gram_y)), np.linalg.norm(gram_x), np.linalg.norm(gram_y)
    else:
        cross = float(np.linalg.norm(y.T @ x) ** 2)
        norm_x, norm_y = np.linalg.norm(x.T @ x), np.linalg.norm(y.T @ y)
    if norm_x == 0:
        raise ZestError("features_a: constant over the examples; CKA is undefined")
    if norm_y == 0:
        raise ZestError("features_b: constant over the examples; CKA is undefined")
    return float(np.clip(cross / (norm_x * norm_y), 0.0, 1.0))


def model_features(
    model: ModelFn,
    images: torch.Tensor,
    *,
    batch_size: int | None = None,
    device: str | torch.device = "auto",
    name: str = "model",
    counter: QueryCount | None = None,
) -> np.ndarray:
    """A white-box model's representation of images: its ``features(x)`` when it has that method, else its scores.

    The module (or the ``nn.Module`` a :class:`~zest_core.Classifier` wraps, after the
    classifier's own normalisation) is asked for ``features``, as CIFAR and torchvision models
    often provide (the penultimate layer, or the convolutional trunk); its output is flattened.
    Without it, the output scores (logits) are the representation. ``counter`` counts the calls.

    Returns
    -------
    ndarray of float64, shape (n, p)

    Raises
    ------
    NotComparableError
        If the model is not an ``nn.Module`` (or a Classifier around one).
    ModelInputError, ModelOutputError
        If ``features`` fails on the first batch or returns non-finite values.
    """
    inner, normalize = _white_box(model, name)
    features = getattr(inner, "features", None)
    if not callable(features):
        return query_scores(model, images, batch_size=batch_size, device=device, counter=counter)
    target = resolve_device(device)
    prepare = (lambda x: x) if normalize is None else normalize.to(target)

    def representation(batch: torch.Tensor) -> torch.Tensor:
        return torch.flatten(features(prepare(batch)), 1)

    # The images keep their dtype: features() is called on the module itself, as its own forward would.
    return query_scores(
        model, images, batch_size=batch_size, device=target, dtype=None, forward=representation,
        name=f"{name}'s features()", counter=counter,
    )


def cka_similarity(
    model_a: ModelFn,
    model_b: ModelFn,
    refset: ReferenceSet,
    *,
    batch_size: int | None = None,
    device: str | torch.device = "auto",
) -> float:
    """Linear CKA of two white-box models' representations of the reference images.

    Each model's representation is that of :func:`model_features`: its ``features`` output when it
    has such a method (penultimate features), else its output logits. The two models need not share
    an architecture or a class count.

    Raises
    ------
    NotComparableError
        If a model is not an ``nn.Module`` (or a Classifier around one).

    References
    ----------
    .. [1] Kornblith et al., "Similarity of Neural Network Representations Revisited", ICML 2019.
    """
    check_refset(refset)
    images = refset.as_tensor()
    features_a = model_features(model_a, images, batch_size=batch_size, device=device, name="model_a")
    features_b = model_features(model_b, images, batch_size=batch_size, device=device, name="model_b")
    return linear_cka(features_a, features_b)


def _white_box(model: Any, name: str) -> tuple[nn.Module, nn.Module | None]:
    """The module to ask for features, and the normalisation to apply first (a Classifier's own)."""
    if isinstance(model, Classifier):
        if model.module is None:
            raise NotComparableError(f"{name}: CKA needs white-box access to an nn.Module; got {model!r}")
        return model.module, model.normalize
    if isinstance(model, nn.Module):
        return model, None
    raise NotComparableError(f"{name}: CKA needs white-box access to an nn.Module; got {type(model).__name__}")
