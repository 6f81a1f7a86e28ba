"""The relative distance and the verdict: how a distance compares with the distances of unrelated models.

References
----------
.. [1] Jia et al., "A Zest of LIME: Towards Architecture-Independent Model Distances", ICLR 2023,
   App. C (the relative distance).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numpy as np

from ..errors import ZestError
from ..pipeline.distance import zest_distance
from ..pipeline.signature import Signature

VERDICTS = ("related", "unrelated", "inconclusive", "unknown")


@dataclass(frozen=True)
class Baseline:
    """Distances between models known to be unrelated, the yardstick of the relative distance.

    Attributes
    ----------
    names : list of str
        The unrelated models.
    pairs : list of (str, str, float)
        Every pair of them and its distance.
    """

    names: list[str]
    pairs: list[tuple[str, str, float]]

    @property
    def distances(self) -> np.ndarray:
        return np.array([d for _, _, d in self.pairs], dtype=np.float64)

    @property
    def mean(self) -> float:
        """The mean distance between the unrelated models (the relative distance's denominator)."""
        return float(self.distances.mean())


def unrelated_baseline(
    signatures: Mapping[str, Signature], *, metric: str = "cosine", align: str = "auto"
) -> Baseline:
    """The distances between every pair of independently trained (unrelated) models.

    Parameters
    ----------
    signatures : mapping of str to Signature
        At least two models, named, computed on the same reference set with the same config as the
        pair they serve as a baseline for.
    metric, align
        As in :func:`zest_core.zest_distance`; use the comparison's own.

    Returns
    -------
    Baseline

    Raises
    ------
    ZestError
        With fewer than two signatures, or if the mean baseline distance is not positive and finite.

    References
    ----------
    .. [1] Jia et al., "A Zest of LIME", ICLR 2023, App. C (relative distance).
    """
    names = list(signatures)
    if len(names) < 2:
        raise ZestError(f"signatures: expected at least two unrelated models for a baseline, got {len(names)}")
    pairs = []
    for i, first in enumerate(names):
        for second in names[i + 1:]:
            d = zest_distance(signatures[first], signatures[second], metric=metric, align=align)
            pairs.append((first, second, d))
    baseline = Baseline(names=names, pairs=pairs)
    if not (np.isfinite(baseline.mean) and baseline.mean > 0):
        raise ZestError(
            f"signatures: expected unrelated models with a positive, finite mean distance, got {baseline.mean}"
        )
    return baseline


@dataclass(frozen=True)
class Verdict:
    """Whether two models look related, from their distance, its interval and the unrelated baseline.

    Attributes
    ----------
    label : {"related", "unrelated", "inconclusive", "unknown"}
    relative : float or None
        distance / baseline mean; None without a baseline.
    relative_interval : (float, float) or None
        The bootstrap interval divided by the baseline mean.
    level : float or None
        Confidence level of the interval.
    explanation : str
        One sentence saying why, for people.
    """

    label: str
    relative: float | None
    relative_interval: tuple[float, float] | None
    level: float | None
    explanation: str


def decide(
    distance: float,
    baseline_mean: float | None,
    interval: tuple[float, float] | None = None,
    *,
    level: float | None = None,
) -> Verdict:
    """The verdict rule: compare the distance with the mean distance between unrelated models.

    The relative distance is ``distance / baseline_mean`` ([1]_, App. C); below 1 the pair is closer
    than unrelated models are on average. With a bootstrap interval the verdict is "related" when the
    whole interval lies below the baseline mean, "unrelated" when it lies wholly above, and
    "inconclusive" otherwise. Without an interval, the point estimate decides and the verdict says it
    has no confidence attached. Without a baseline it is "unknown".

    Parameters
    ----------
    distance : float
    baseline_mean : float or None
        Mean distance between unrelated models, positive.
    interval : (float, float), optional
        A confidence interval of ``distance`` (low <= high).
    level : float, optional
        The interval's confidence level, in (0, 1), for the explanation.

    Returns
    -------
    Verdict

    Raises
    ------
    ZestError
        If ``baseline_mean`` is not positive, or ``interval`` is not (low, high) with low <= high.

    References
    ----------
    .. [1] Jia et al., "A Zest of LIME", ICLR 2023.
    """
    if interval is not None:
        low, high = (float(v) for v in interval)
        if not low <= high:
            raise ZestError(f"interval: expected (low, high) with low <= high, got {interval!r}")
    if baseline_mean is None:
        return Verdict("unknown", None, None, level, "No unrelated baseline: the distance cannot be judged.")
    if not (np.isfinite(baseline_mean) and baseline_mean > 0):
        raise ZestError(f"baseline_mean: expected a positive number, got {baseline_mean!r}")
    relative = float(distance) / baseline_mean
    if interval is None:
        label = "related" if relative < 1 else "unrelated"
        side = "below" if relative < 1 else "not below"
        return Verdict(
            label, relative, None, None,
            f"The relative distance {relative:.3f} is {side} 1 (no confidence interval was computed).",
        )
    rel_low, rel_high = low / baseline_mean, high / baseline_mean
    percent = f"{100 * level:g}% " if level is not None else ""
    span = f"the {percent}interval of the relative distance, [{rel_low:.3f}, {rel_high:.3f}],"
    if rel_high < 1:
        label, where = "related", "lies below"
    elif rel_low > 1:
        label, where = "unrelated", "lies above"
    else:
        label, where = "inconclusive", "contains"
    text = f"{span} {where} 1, the mean distance between unrelated models."
    return Verdict(label, relative, (rel_low, rel_high), level, text[0].upper() + text[1:])
