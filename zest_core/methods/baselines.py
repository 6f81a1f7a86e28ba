"""Baselines for model similarity: top-1 prediction agreement (black-box) and linear CKA (white-box).

Both are references for Zest and ModelDiff in the reuse benchmark (:mod:`zest_core.studies.benchmarks`):
agreement is what an auditor with only the labels a model returns can compute; CKA needs both
models' internals, so it is an upper reference rather than a competitor.

References
----------
.. [1] Kornblith, Norouzi, Lee & Hinton, "Similarity of Neural Network Representations
   Revisited", ICML 2019 (linear CKA).
.. [2] Jia et al., "A Zest of LIME: Towards Architecture-Independent Model Distances", ICLR 2023
   (prediction agreement and CKA as baselines).
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np
import torch
from torch import nn

from ..errors import NotComparableError
from ..sources.models import Classifier
from .modeldiff import query_scores
from ..pipeline.queries import ModelFn, ModelInputError, check_outputs, effective_batch_size, prepared_model, resolve_device
from ..pipeline.reference import ReferenceSet


# --------------------------------------------------------------------------------------------------
# Prediction agreement
# --------------------------------------------------------------------------------------------------


def class_mapping_by_names(names_a: Sequence[str], names_b: Sequence[str]) -> np.ndarray:
    """For each class of A, the index of the class of B with the same name, or -1 when B has none.

    Raises
    ------
    ValueError
        If B names a class twice (the match would be ambiguous).
    """
    names_b = [str(name) for name in names_b]
    duplicates = sorted({name for name in names_b if names_b.count(name) > 1})
    if duplicates:
        raise ValueError(f"names_b: expected distinct class names, got {duplicates} more than once")
    position = {name: index for index, name in enumerate(names_b)}
    return np.array([position.get(str(name), -1) for name in names_a], dtype=np.int64)


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
        raise ValueError(
            f"predictions_b: expected the shape of predictions_a, a non-empty (n,) = {a.shape}, got {b.shape}"
        )
    if class_mapping is not None:
        mapping = np.asarray(class_mapping, dtype=np.int64)
        if a.min() < 0 or a.max() >= len(mapping):
            raise ValueError(
                f"class_mapping: expected one entry per class of A (at least {a.max() + 1}), got {len(mapping)}"
            )
        a = mapping[a]
    return float(np.mean((a == b) & (a >= 0)))


def prediction_agreement(
    model_a: ModelFn,
    model_b: ModelFn,
    refset: ReferenceSet,
    *,
    class_mapping: Mapping[int, int] | Sequence[int] | np.ndarray | None = None,
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
        Which class of B each class of A is (a dict A → B, or a sequence indexed by A's class, -1 for
        none). Without it, the classes are matched

        - by name, when both models have ``class_names`` and the lists differ (order or content):
          classes of A that B does not name count as disagreements;
        - else by index, which needs equal class counts.
    batch_size : int, optional
    device : {"auto", "cpu", "cuda"} or torch.device

    Returns
    -------
    float in [0, 1]

    Raises
    ------
    NotComparableError
        If the class counts differ and neither a mapping nor class names match the classes, or the
        class names have nothing in common.
    ValueError
        For a malformed ``class_mapping``.

    References
    ----------
    .. [1] Jia et al., "A Zest of LIME", ICLR 2023 (the prediction-agreement baseline).
    """
    _check_refset(refset)
    images = refset.as_tensor()
    scores_a = query_scores(model_a, images, batch_size=batch_size, device=device)
    scores_b = query_scores(model_b, images, batch_size=batch_size, device=device)
    mapping = resolve_class_mapping(model_a, model_b, scores_a.shape[1], scores_b.shape[1], class_mapping)
    return agreement_rate(scores_a.argmax(axis=1), scores_b.argmax(axis=1), class_mapping=mapping)


def resolve_class_mapping(
    model_a: Any, model_b: Any, classes_a: int, classes_b: int,
    class_mapping: Mapping[int, int] | Sequence[int] | np.ndarray | None = None,
) -> np.ndarray | None:
    """The A → B class mapping :func:`prediction_agreement` uses (None: compare indices)."""
    if class_mapping is not None:
        return _check_mapping(class_mapping, classes_a, classes_b)
    names_a = _names(model_a, classes_a)
    names_b = _names(model_b, classes_b)
    if names_a is not None and names_b is not None and names_a != names_b:
        mapping = class_mapping_by_names(names_a, names_b)
        if np.all(mapping < 0):
            raise NotComparableError(
                f"class_mapping: the models' class names have nothing in common ({names_a[:3]}… vs "
                f"{names_b[:3]}…); pass class_mapping"
            )
        return mapping
    if classes_a != classes_b:
        raise NotComparableError(
            f"class_mapping: the models have {classes_a} and {classes_b} classes and no class names to match "
            "them by; pass class_mapping"
        )
    return None


def _names(model: Any, count: int) -> list[str] | None:
    names = getattr(model, "class_names", None)
    if names is None or isinstance(names, str) or len(names) != count:
        return None
    return [str(name) for name in names]


def _check_mapping(mapping: Any, classes_a: int, classes_b: int) -> np.ndarray:
    if isinstance(mapping, Mapping):
        array = np.full(classes_a, -1, dtype=np.int64)
        for key, value in mapping.items():
            if not 0 <= int(key) < classes_a:
                raise ValueError(f"class_mapping: class {key} of A is not in 0..{classes_a - 1}")
            array[int(key)] = int(value)
    else:
        array = np.asarray(mapping)
        if array.shape != (classes_a,) or not np.issubdtype(array.dtype, np.integer):
            raise ValueError(
                f"class_mapping: expected {classes_a} integers (a class of B, or -1, per class of A), "
                f"got shape {array.shape} of dtype {array.dtype}"
            )
        array = array.astype(np.int64)
    if array.min() < -1 or array.max() >= classes_b:
        raise ValueError(
            f"class_mapping: expected classes of B in -1..{classes_b - 1}, got {sorted(set(array.tolist()))}"
        )
    return array


# --------------------------------------------------------------------------------------------------
# Linear CKA
# --------------------------------------------------------------------------------------------------


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
    ValueError
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
        raise ValueError(
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
        raise ValueError("features_a: constant over the examples; CKA is undefined")
    if norm_y == 0:
        raise ValueError("features_b: constant over the examples; CKA is undefined")
    return float(np.clip(cross / (norm_x * norm_y), 0.0, 1.0))


def model_features(
    model: ModelFn,
    images: torch.Tensor,
    *,
    batch_size: int | None = None,
    device: str | torch.device = "auto",
    name: str = "model",
) -> np.ndarray:
    """A white-box model's representation of images: its ``features(x)`` when it has that method, else its scores.

    The module (or the ``nn.Module`` a :class:`~zest_core.Classifier` wraps, after the
    classifier's own normalisation) is asked for ``features``, as CIFAR and torchvision models
    often provide (the penultimate layer, or the convolutional trunk); its output is flattened.
    Without it, the output scores (logits) are the representation.

    Raises
    ------
    NotComparableError
        If the model is not an ``nn.Module`` (or a Classifier around one).
    """
    inner, normalize = _white_box(model, name)
    features = getattr(inner, "features", None)
    if not callable(features):
        return query_scores(model, images, batch_size=batch_size, device=device)
    target = resolve_device(device)
    size = effective_batch_size(batch_size, target, tuple(images.shape[1:]))
    rows = []
    with prepared_model(model, target), torch.inference_mode():
        for start in range(0, images.shape[0], size):
            batch = images[start:start + size].to(target)
            if normalize is not None:
                batch = normalize.to(target)(batch)
            try:
                out = features(batch)
            except Exception as error:
                raise ModelInputError(
                    f"{name}: its features() failed on images of shape {tuple(batch.shape)}: {error}"
                ) from error
            out = check_outputs(torch.flatten(out, 1), batch.shape[0], None)
            rows.append(out.detach().to("cpu", torch.float64))
    return torch.cat(rows).numpy()


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
    _check_refset(refset)
    images = refset.as_tensor()
    features_a = model_features(model_a, images, batch_size=batch_size, device=device, name="model_a")
    features_b = model_features(model_b, images, batch_size=batch_size, device=device, name="model_b")
    return linear_cka(features_a, features_b)


def _white_box(model: Any, name: str) -> tuple[nn.Module, nn.Module | None]:
    if isinstance(model, Classifier):
        if model.module is None:
            raise NotComparableError(f"{name}: CKA needs white-box access to an nn.Module; got {model!r}")
        return model.module, model.normalize
    if isinstance(model, nn.Module):
        return model, None
    raise NotComparableError(f"{name}: CKA needs white-box access to an nn.Module; got {type(model).__name__}")


def _check_refset(refset: Any) -> None:
    if not isinstance(refset, ReferenceSet):
        raise ValueError(f"refset: expected a ReferenceSet, got {type(refset).__name__}")
