"""One comparison of two signatures, whole: distance, contributions and interval.

Whether the pair is related is not decided here: that is the calibrated audit's question, against a
matched null (:func:`zest_core.studies.audit`, :func:`zest_core.studies.audit_signatures`).
"""
from __future__ import annotations

from dataclasses import dataclass

from .._shared.checks import check_int, check_number
from ..pipeline.alignment import Alignment
from ..pipeline.distance import compare
from ..pipeline.signature import Signature
from .contributions import Contributions, split_distance
from .uncertainty import bootstrap_distance_interval


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
    interval : (float, float) or None
        Bootstrap interval of the distance over reference images.
    level : float
        Its confidence level.
    n_boot : int
    alignment : Alignment or None
        The class matching itself (pairs and cost matrix), None when none ran.
    """

    distance: float
    metric: str
    align: str
    alignment_method: str | None
    contributions: Contributions
    interval: tuple[float, float] | None
    level: float
    n_boot: int
    alignment: Alignment | None = None


def compare_signatures(
    sig_a: Signature,
    sig_b: Signature,
    *,
    metric: str = "cosine",
    align: str = "auto",
    n_boot: int = 200,
    level: float = 0.95,
    seed: int = 0,
) -> ComparisonResult:
    """Compare two signatures: distance, contributions and interval.

    The pair is compared once (:func:`zest_core.pipeline.distance.compare`: one check, one class
    matching); the contributions split that comparison's distance. The bootstrap matches classes
    again on every resample, on purpose: the matching is part of the estimator it resamples.

    Parameters
    ----------
    sig_a, sig_b : Signature
        Computed on the same reference set with the same config.
    metric, align
        As in :func:`zest_core.zest_distance`.
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
        For invalid arguments (see :func:`zest_core.pipeline.distance.compare`).
    """
    check_number("level", level, minimum=0, maximum=1, strict=True)
    check_int("n_boot", n_boot, minimum=0)
    comparison = compare(sig_a, sig_b, metric=metric, align=align)
    contributions = split_distance(comparison)
    interval = None
    if n_boot > 0:
        interval = bootstrap_distance_interval(
            sig_a, sig_b, metric=metric, align=align, n_boot=n_boot, seed=seed, level=level
        )
    return ComparisonResult(
        distance=comparison.distance, metric=metric, align=align, alignment_method=comparison.method,
        contributions=contributions, interval=interval, level=level,
        n_boot=n_boot if interval is not None else 0, alignment=comparison.alignment,
    )
