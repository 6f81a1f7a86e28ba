"""One comparison of two signatures, whole: distance, contributions, baseline, interval and verdict."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

from .._shared.checks import check_int, check_number
from ..pipeline.alignment import Alignment
from ..pipeline.distance import compare
from ..pipeline.signature import Signature
from .contributions import Contributions, split_distance
from .uncertainty import bootstrap_distance_interval
from .verdict import Baseline, Verdict, decide, unrelated_baseline


@dataclass(frozen=True)
class ComparisonResult:
    """Everything one comparison of two signatures says, for the dashboard and its JSON report.

    Attributes
    ----------
    distance : float
    metric, align : str
        What was asked for.
    alignment_method : str or None
        The class matching that ran (None when none did).
    contributions : Contributions
    baseline : Baseline or None
    interval : (float, float) or None
        Bootstrap interval of the distance over reference images.
    level : float
        Its confidence level.
    n_boot : int
    verdict : Verdict
    alignment : Alignment or None
        The class matching itself (pairs and cost matrix), None when none ran.
    """

    distance: float
    metric: str
    align: str
    alignment_method: str | None
    contributions: Contributions
    baseline: Baseline | None
    interval: tuple[float, float] | None
    level: float
    n_boot: int
    verdict: Verdict
    alignment: Alignment | None = None

    @property
    def relative(self) -> float | None:
        return self.verdict.relative


def compare_signatures(
    sig_a: Signature,
    sig_b: Signature,
    *,
    metric: str = "cosine",
    align: str = "auto",
    baseline: Mapping[str, Signature] | None = None,
    n_boot: int = 200,
    level: float = 0.95,
    seed: int = 0,
) -> ComparisonResult:
    """Compare two signatures: distance, contributions, relative distance, interval and verdict.

    The pair is compared once (:func:`zest_core.pipeline.distance.compare`: one check, one class
    matching); the contributions split that comparison's distance. The bootstrap matches classes
    again on every resample, on purpose: the matching is part of the estimator it resamples.

    Parameters
    ----------
    sig_a, sig_b : Signature
        Computed on the same reference set with the same config.
    metric, align
        As in :func:`zest_core.zest_distance`.
    baseline : mapping of str to Signature, optional
        Independently trained models on the same reference set and config (at least two); None
        leaves the relative distance and the verdict unknown.
    n_boot : int
        Resamples of the reference images for the percentile bootstrap interval of the distance
        (:func:`zest_core.explain.uncertainty.bootstrap_distance_interval`); 0 skips the interval.
    level : float
        Confidence level of the interval, in (0, 1).
    seed : int
        Seed of the bootstrap.

    Returns
    -------
    ComparisonResult

    Raises
    ------
    ZestError
        For invalid arguments (see :func:`zest_core.pipeline.distance.compare`,
        :func:`zest_core.explain.verdict.unrelated_baseline`).
    """
    check_number("level", level, minimum=0, maximum=1, strict=True)
    check_int("n_boot", n_boot, minimum=0)
    comparison = compare(sig_a, sig_b, metric=metric, align=align)
    contributions = split_distance(comparison)
    unrelated = unrelated_baseline(baseline, metric=metric, align=align) if baseline else None
    interval = None
    if n_boot > 0:
        interval = bootstrap_distance_interval(
            sig_a, sig_b, metric=metric, align=align, n_boot=n_boot, seed=seed, level=level
        )
    verdict = decide(
        comparison.distance, None if unrelated is None else unrelated.mean, interval,
        level=level if interval is not None else None,
    )
    return ComparisonResult(
        distance=comparison.distance, metric=metric, align=align, alignment_method=comparison.method,
        contributions=contributions, baseline=unrelated, interval=interval, level=level,
        n_boot=n_boot if interval is not None else 0, verdict=verdict, alignment=comparison.alignment,
    )
