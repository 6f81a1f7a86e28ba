"""Small summary statistics the studies share (a home below every study, so that none imports another for them)."""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np


def mean_std(values: Sequence[float]) -> dict[str, float | None]:
    """Mean and population std of the finite values (None, None when there are none)."""
    finite = [float(v) for v in values if math.isfinite(v)]
    if not finite:
        return {"mean": None, "std": None}
    return {"mean": float(np.mean(finite)), "std": float(np.std(finite))}
