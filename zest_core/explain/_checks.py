"""Argument checks shared by explain's modules (in the dialect of :mod:`zest_core._shared.checks`)."""
from __future__ import annotations

from typing import Any

import numpy as np

from .._shared.checks import check_int


def check_integer(name: str, value: Any, *, minimum: int | None = None, maximum: int | None = None) -> int:
    """:func:`check_int` that also takes NumPy integers, returned as a Python int."""
    # Indices and sizes often come out of NumPy (argmax, a table's row), which check_int refuses.
    if isinstance(value, np.integer):
        value = int(value)
    return check_int(name, value, minimum=minimum, maximum=maximum)


def check_index(name: str, value: Any, count: int) -> int:
    """``value`` as an int if it indexes one of ``count`` items (0 <= value < count)."""
    return check_integer(name, value, minimum=0, maximum=count - 1)
