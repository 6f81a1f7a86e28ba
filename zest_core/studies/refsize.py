"""The distance as a function of the number of reference images, over repeated random draws.

References
----------
.. [1] Jia et al., "A Zest of LIME: Towards Architecture-Independent Model Distances", ICLR 2023
   (number of reference images, Fig. 3).
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

from .._shared.checks import check_choice, check_int, check_type
from ..cache.store import SignatureCache
from ..errors import ZestError
from ..explain import to_jsonable
from ..pipeline.config import ZestConfig
from ..pipeline.distance import zest_distance
from ..pipeline.probe import ProgressFn
from ..pipeline.reference import ReferenceSet, draw_indices
from ..pipeline.signature import compute_signature, restrict_signature
from .rules import check_metric_align

REFSIZE_METHODS = ("restrict", "recompute")


@dataclass(frozen=True, eq=False)
class RefsizeStudy:
    """Distances of two models over repeated draws of N reference images (see :func:`refsize_study`).

    Attributes
    ----------
    sizes : tuple of int
    distances : ndarray, shape (len(sizes), repeats)
    metric, align, method : str
    """

    sizes: tuple[int, ...]
    distances: np.ndarray
    metric: str
    align: str
    method: str

    @property
    def mean(self) -> np.ndarray:
        """Mean over the repeats, one per size."""
        return self.distances.mean(axis=1)

    @property
    def std(self) -> np.ndarray:
        """Population standard deviation over the repeats (ddof=0)."""
        return self.distances.std(axis=1)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable copy (NaN becomes None)."""
        return to_jsonable({
            "sizes": list(self.sizes), "distances": self.distances, "mean": self.mean, "std": self.std,
            "metric": self.metric, "align": self.align, "method": self.method,
        })


def refsize_study(
    model_a: Callable,
    model_b: Callable,
    refset: ReferenceSet,
    config: ZestConfig | None = None,
    *,
    sizes: Sequence[int] | None = None,
    repeats: int = 5,
    seed: int = 0,
    metric: str = "cosine",
    align: str = "auto",
    method: str = "restrict",
    cache: SignatureCache | str | os.PathLike | bool | None = None,
    progress: ProgressFn | None = None,
) -> RefsizeStudy:
    """Zest distance of two models over ``repeats`` random draws of N reference images, for each N.

    The Zest paper's reference-set-size study [1]_. The draws of size N, repeat r, come from
    ``numpy.random.default_rng([seed, N, r])`` through :func:`zest_core.pipeline.reference.draw_indices`
    (stratified by class when the images have labels, without replacement).

    Parameters
    ----------
    model_a, model_b : callable
    refset : ReferenceSet
        The pool the images are drawn from.
    config : ZestConfig, optional
    sizes : sequence of int, optional
        Values of N, each in [1, len(refset)]; default the powers of two up to len(refset).
    repeats : int, default 5
    seed : int, default 0
    metric : {"cosine", "l1", "l2", "linf"}
    align : {"auto", "none", "greedy", "hungarian"}
    method : {"restrict", "recompute"}
        "restrict" (default) computes each model's signature once on the whole pool and keeps the
        drawn images' local models (:func:`~zest_core.pipeline.signature.restrict_signature`): as
        many queries as one signature. The drawn images keep the masks of their place in the pool
        and, with ``fill="dataset_mean"``, the pool's mean fill: a fixed fill, as in the authors'
        code, where hidden super-pixels are set to the training data's mean. "recompute" computes
        both signatures on every drawn set: exact for that set, ``len(sizes) * repeats`` times dearer.
    cache, progress
        As in :func:`~zest_core.compute_signature`.

    Returns
    -------
    RefsizeStudy
    """
    check_type("refset", refset, ReferenceSet, "a ReferenceSet")
    chosen = _check_sizes(sizes, len(refset))
    check_int("repeats", repeats, minimum=1)
    check_int("seed", seed, minimum=0)
    check_metric_align(metric, align)
    check_choice("method", method, REFSIZE_METHODS)
    config = config or ZestConfig()
    distances = np.empty((len(chosen), repeats))
    full = None
    if method == "restrict":
        full = [compute_signature(m, refset, config, cache=cache) for m in (model_a, model_b)]
    total = len(chosen) * repeats
    for row, n in enumerate(chosen):
        for r in range(repeats):
            index = draw_indices(len(refset), n, refset.labels, np.random.default_rng([seed, n, r]))
            if full is not None:
                sig_a, sig_b = (restrict_signature(s, index) for s in full)
            else:
                subset = refset.subset(index)
                sig_a, sig_b = (compute_signature(m, subset, config, cache=cache) for m in (model_a, model_b))
            distances[row, r] = zest_distance(sig_a, sig_b, metric, align)
            if progress is not None:
                progress(row * repeats + r + 1, total, "reference-set sizes")
    return RefsizeStudy(sizes=tuple(chosen), distances=distances, metric=metric, align=align, method=method)


def _check_sizes(sizes: Sequence[int] | None, pool: int) -> list[int]:
    """The sizes as ints in [1, pool]; default the powers of two up to the pool."""
    chosen = [2**e for e in range(int(math.log2(pool)) + 1)] if sizes is None else list(sizes)
    valid = [not isinstance(n, bool) and isinstance(n, (int, np.integer)) and 1 <= n <= pool for n in chosen]
    if not chosen or not all(valid):
        raise ZestError(f"sizes: expected integers in [1, {pool}] (the reference images), got {list(chosen)}")
    return [int(n) for n in chosen]
