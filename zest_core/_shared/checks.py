"""Argument checks in the one dialect of :mod:`zest_core.errors`: ``"name: expected …, got …"``."""
from __future__ import annotations

from typing import Any, Collection

import numpy as np

from ..errors import ZestError, ZestTypeError


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def check_int(name: str, value: Any, *, minimum: int | None = None, maximum: int | None = None) -> int:
    """``value`` as a Python int if it is an integer (not a bool; NumPy integers too) within [minimum, maximum].

    Indices and sizes often come out of NumPy (``argmax``, a table's row), so NumPy integers are
    taken and returned as Python ints.
    """
    if not _is_int(value):
        raise ZestTypeError(f"{name}: expected an integer, got {value!r}")
    value = int(value)
    if minimum is not None and value < minimum:
        raise ZestError(f"{name}: expected an integer ≥ {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ZestError(f"{name}: expected an integer ≤ {maximum}, got {value}")
    return value


def check_number(
    name: str, value: Any, *, minimum: float | None = None, maximum: float | None = None, strict: bool = False
) -> float:
    """``value`` as a float if it is a finite real number within the bounds (``strict``: exclusive)."""
    if not (isinstance(value, (int, float)) and not isinstance(value, bool)):
        raise ZestTypeError(f"{name}: expected a number, got {value!r}")
    value = float(value)
    if value != value or value in (float("inf"), float("-inf")):
        raise ZestError(f"{name}: expected a finite number, got {value}")
    if minimum is not None and (value <= minimum if strict else value < minimum):
        raise ZestError(f"{name}: expected a number {'>' if strict else '≥'} {minimum}, got {value}")
    if maximum is not None and (value >= maximum if strict else value > maximum):
        raise ZestError(f"{name}: expected a number {'<' if strict else '≤'} {maximum}, got {value}")
    return value


def check_choice(name: str, value: Any, choices: Collection[Any]) -> Any:
    """``value`` itself if it is one of ``choices``."""
    if value not in choices:
        raise ZestError(f"{name}: expected one of {', '.join(map(repr, choices))}, got {value!r}")
    return value


def check_type(name: str, value: Any, types: type | tuple[type, ...], what: str) -> Any:
    """``value`` itself if it is an instance of ``types`` (``what`` says it in words)."""
    if not isinstance(value, types):
        raise ZestTypeError(f"{name}: expected {what}, got {type(value).__name__}")
    return value


def check_index(name: str, value: Any, count: int) -> int:
    """``value`` as an int if it indexes one of ``count`` items (0 <= value < count)."""
    return check_int(name, value, minimum=0, maximum=count - 1)
