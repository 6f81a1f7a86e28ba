"""Distances along training: checkpoints t and t+k of one run, and checkpoint t of two unrelated runs.

References
----------
.. [1] Jia et al., "A Zest of LIME: Towards Architecture-Independent Model Distances", ICLR 2023
   (distances along training, Fig. 2).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from .._shared.checks import check_int
from ..cache.store import SignatureCache
from ..errors import ZestError
from ..explain import to_jsonable
from ..pipeline.config import ZestConfig
from ..pipeline.distance import zest_distance
from ..pipeline.probe import ProgressFn
from ..pipeline.reference import ReferenceSet
from ..pipeline.signature import Signature, compute_signature
from .rules import check_metric_align


@dataclass(frozen=True)
class EpochCurves:
    """Distances along training (see :func:`epoch_curves`).

    Attributes
    ----------
    related_epochs, related : tuple
        Epoch label t and d(a_t, a_{t+k}) for every t with a checkpoint t + k.
    unrelated_epochs, unrelated : tuple
        Epoch label t and d(a_t, u_t) for every t both runs have.
    k : int
    metric, align : str
    """

    related_epochs: tuple[int, ...]
    related: tuple[float, ...]
    unrelated_epochs: tuple[int, ...]
    unrelated: tuple[float, ...]
    k: int
    metric: str
    align: str

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable copy (NaN becomes None)."""
        return to_jsonable(self.__dict__)


def epoch_curves(
    checkpoints_a: Sequence[Callable],
    checkpoints_unrelated: Sequence[Callable],
    refset: ReferenceSet,
    config: ZestConfig | None = None,
    *,
    k: int = 1,
    metric: str = "cosine",
    align: str = "auto",
    epochs: Sequence[int] | None = None,
    cache: SignatureCache | str | os.PathLike | bool | None = None,
    progress: ProgressFn | None = None,
) -> EpochCurves:
    """Zest distance between checkpoints t and t+k of one run, and between checkpoint t of two unrelated runs.

    The Zest paper's training-dynamics study [1]_: consecutive checkpoints of one run stay close
    while checkpoints of independently trained runs are far apart, from early epochs on.

    Parameters
    ----------
    checkpoints_a : sequence of callable
        Checkpoints of one training run, in order (T of them).
    checkpoints_unrelated : sequence of callable
        The same epochs of an independent run (same checkpoint schedule).
    refset : ReferenceSet
    config : ZestConfig, optional
    k : int, default 1
        Epoch lag of the related curve, 1 <= k < T.
    metric : {"cosine", "l1", "l2", "linf"}
    align : {"auto", "none", "greedy", "hungarian"}
    epochs : sequence of int, optional
        The epoch of each checkpoint of ``checkpoints_a`` (default 0, 1, ...).
    cache, progress
        As in :func:`~zest_core.compute_signature`; each checkpoint's signature is computed once.

    Returns
    -------
    EpochCurves

    Raises
    ------
    ZestError
        Naming the argument: no checkpoints, ``k`` out of range, as many ``epochs`` as checkpoints
        not given, an unknown metric or alignment.
    """
    first, second = list(checkpoints_a), list(checkpoints_unrelated)
    if not first:
        raise ZestError("checkpoints_a: expected at least one checkpoint, got none")
    check_int("k", k, minimum=1)
    if k >= len(first):
        raise ZestError(f"k: expected 1 <= k < {len(first)} (the checkpoints of run a), got {k}")
    labels = list(range(len(first))) if epochs is None else [int(e) for e in epochs]
    if len(labels) != len(first):
        raise ZestError(f"epochs: expected {len(first)} labels (one per checkpoint of run a), got {len(labels)}")
    check_metric_align(metric, align)
    config = config or ZestConfig()
    count = len(first) + min(len(first), len(second))

    def signature(model: Callable, index: int) -> Signature:
        result = compute_signature(model, refset, config, cache=cache)
        if progress is not None:
            progress(index + 1, count, "epoch signatures")
        return result

    sigs_a = [signature(m, i) for i, m in enumerate(first)]
    sigs_u = [signature(m, len(first) + i) for i, m in enumerate(second[:len(first)])]
    related = [zest_distance(sigs_a[t], sigs_a[t + k], metric, align) for t in range(len(first) - k)]
    unrelated = [zest_distance(sigs_a[t], sigs_u[t], metric, align) for t in range(len(sigs_u))]
    return EpochCurves(
        related_epochs=tuple(labels[:len(related)]), related=tuple(related),
        unrelated_epochs=tuple(labels[:len(unrelated)]), unrelated=tuple(unrelated),
        k=int(k), metric=metric, align=align,
    )
