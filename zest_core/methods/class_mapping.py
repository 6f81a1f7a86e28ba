"""Which class of one model is which class of another: by an explicit mapping, by name, or by index.

Prediction agreement (:mod:`.agreement`) and the reuse benchmark's scoring compare top-1 classes, so
they need the classes of model A matched to those of model B. An array ``mapping`` of length C_A holds,
for each class of A, the index of the class of B it corresponds to, or -1 for none.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

from ..errors import NotComparableError, ZestError

ClassMapping = Mapping[int, int] | Sequence[int] | np.ndarray


def class_mapping_by_names(names_a: Sequence[str], names_b: Sequence[str]) -> np.ndarray:
    """For each class of A, the index of the class of B with the same name, or -1 when B has none.

    Raises
    ------
    ZestError
        If B names a class twice (the match would be ambiguous).
    """
    names_b = [str(name) for name in names_b]
    duplicates = sorted({name for name in names_b if names_b.count(name) > 1})
    if duplicates:
        raise ZestError(f"names_b: expected distinct class names, got {duplicates} more than once")
    position = {name: index for index, name in enumerate(names_b)}
    return np.array([position.get(str(name), -1) for name in names_a], dtype=np.int64)


def resolve_class_mapping(
    model_a: Any, model_b: Any, classes_a: int, classes_b: int, class_mapping: ClassMapping | None = None,
) -> np.ndarray | None:
    """The A → B class mapping to compare two models' predictions with (None: compare indices).

    Parameters
    ----------
    model_a, model_b : callable
        Their ``class_names``, when they have as many as their scores have classes, match classes.
    classes_a, classes_b : int
        How many classes each model's scores have.
    class_mapping : mapping or array-like of int, optional
        Which class of B each class of A is (a dict A → B, or a sequence indexed by A's class, -1 for
        none). Without it, the classes are matched

        - by name, when both models have ``class_names`` and the lists differ (order or content):
          classes of A that B does not name map to -1;
        - else by index, which needs equal class counts.

    Returns
    -------
    ndarray of int64, shape (classes_a,), or None
        None when the classes are matched by index.

    Raises
    ------
    NotComparableError
        If the class counts differ and neither a mapping nor class names match the classes, or the
        class names have nothing in common.
    ZestError
        For a malformed ``class_mapping``.
    """
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
    """The model's class names when it declares one per class of its scores, else None."""
    names = getattr(model, "class_names", None)
    if names is None or isinstance(names, str) or len(names) != count:
        return None
    return [str(name) for name in names]


def _check_mapping(mapping: Any, classes_a: int, classes_b: int) -> np.ndarray:
    if isinstance(mapping, Mapping):
        array = np.full(classes_a, -1, dtype=np.int64)
        for key, value in mapping.items():
            if not 0 <= int(key) < classes_a:
                raise ZestError(f"class_mapping: expected classes of A in 0..{classes_a - 1}, got class {key}")
            array[int(key)] = int(value)
    else:
        array = np.asarray(mapping)
        if array.shape != (classes_a,) or not np.issubdtype(array.dtype, np.integer):
            raise ZestError(
                f"class_mapping: expected {classes_a} integers (a class of B, or -1, per class of A), "
                f"got shape {array.shape} of dtype {array.dtype}"
            )
        array = array.astype(np.int64)
    if array.min() < -1 or array.max() >= classes_b:
        raise ZestError(
            f"class_mapping: expected classes of B in -1..{classes_b - 1}, got {sorted(set(array.tolist()))}"
        )
    return array
