"""Is a suspect closer to the reference model than unrelated models are? A p-value and a verdict.

The question an audit asks is one-sided: is ``d(P, S)``, the distance between the reference model P
and the suspect S, *smaller* than the distances that models trained independently for S's task, with
S's architecture, have to P? Those distances are the *matched null* (see
:mod:`zest_core.zoo.nulls` for how the demo zoo picks them, and ``zest audit --unrelated`` for user
models).

The test
--------
Under the null hypothesis, S is one more independent draw of the process that trained the unrelated
models U₁…Uₘ, so given P, ``d(P, S)`` is exchangeable with ``d(P, U₁) … d(P, Uₘ)``. Two p-values follow:

* the **rank p-value** ``(1 + #{j : d(P, Uⱼ) ≤ d(P, S)}) / (m + 1)`` is exact under exchangeability
  alone, but it can never be smaller than ``1 / (m + 1)``: with five unrelated models, 0.167;
* the **prediction p-value** gets the resolution an audit needs from one more assumption: the log
  distances of unrelated models are normal. Then ``log d(P, S)`` is a new draw from that normal, and
  ``t = (log d(P, S) − mean) / (sd · √(1 + 1/m))`` has Student's t distribution with m − 1 degrees of
  freedom exactly (the classical prediction interval), so ``p = F_t(t; m − 1)``.

Per-image evidence (the N local models) cannot replace unrelated models: every image of one suspect
shares that suspect's training run, so images are not independent draws under the null, and a test
that treats them as such rejects far more often than α (the leave-one-out calibration of
``zest bench reuse`` measures how often).

With fewer than ``min_null`` unrelated models, or a null with no spread, there is no calibrated
verdict: the result is "inconclusive", with the reason.

What a verdict can say
----------------------
A test either rejects or it does not. ``p < α`` gives **"related"**. ``p ≥ α`` gives **"not
detected"**, never "unrelated": failing to reject is no evidence of independence (a derived model
can sit as far from its source as independent models do). So a "not detected" always comes with its
power against this null, the **detection threshold**: the largest distance the test would have
called related at this α, ``exp(mean + t_α(m − 1) · sd · √(1 + 1/m))`` with ``t_α`` the α-quantile
of Student's t. An auditor sees how far off the suspect was, and what the test could have detected.

References
----------
Geisser, "Predictive Inference: An Introduction", 1993, §2 (the normal prediction interval).
Jia et al., "A Zest of LIME: Towards Architecture-Independent Model Distances", ICLR 2023 (the
distance; its README prescribes ≥ 5 pairs of independently trained models as the reference).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

from .._shared.checks import check_int, check_number
from ..errors import ZestError

RELATED, NOT_DETECTED, INCONCLUSIVE = "related", "not detected", "inconclusive"
VERDICT_LABELS = (RELATED, NOT_DETECTED, INCONCLUSIVE)
DEFAULT_ALPHA = 0.05
# Three unrelated models give two degrees of freedom: the fewest with which a t prediction test has
# finite variance. Fewer is "inconclusive".
MIN_NULL = 3


def rank_p_value(distance: float, null_distances: Sequence[float]) -> float:
    """``(1 + #{null ≤ distance}) / (m + 1)``: exact under exchangeability, never below ``1/(m + 1)``."""
    null = _check_null(null_distances, minimum=1, positive=False)
    return float((1 + np.count_nonzero(null <= float(distance))) / (null.size + 1))


def prediction_p_value(distance: float, null_distances: Sequence[float]) -> float:
    """One-sided p-value that ``distance`` is smaller than a new draw from the null (log-normal).

    Parameters
    ----------
    distance : float
        ``d(P, S)``, positive.
    null_distances : sequence of float
        ``d(P, Uⱼ)`` for the m ≥ 2 unrelated models, positive and not all equal.

    Returns
    -------
    float
        ``F_t((log d − mean) / (sd √(1 + 1/m)); m − 1)``, where mean and sd are those of the log null
        distances.

    Raises
    ------
    ZestError
        If a distance is not positive and finite, or the null has fewer than 2 values or no spread.
    """
    value = check_number("distance", distance, minimum=0.0, strict=True)
    null = np.log(_check_null(null_distances, minimum=2))
    spread = float(null.std(ddof=1))
    if not spread > 0:
        raise ZestError(f"null_distances: expected distances that are not all equal, got {null_distances!r}")
    m = null.size
    t = (np.log(value) - null.mean()) / (spread * np.sqrt(1 + 1 / m))
    from scipy import stats  # here, not at import: scipy.stats takes over a second to import

    return float(stats.t.cdf(t, df=m - 1))


def detection_threshold(null_distances: Sequence[float], alpha: float = DEFAULT_ALPHA) -> float:
    """The largest distance :func:`prediction_p_value` calls related at level ``alpha``: what the test can detect.

    ``prediction_p_value(d) < alpha`` exactly when ``d`` is below
    ``exp(mean + t_α(m − 1) · sd · √(1 + 1/m))``, where mean and sd are those of the log null
    distances and ``t_α(m − 1)`` is the α-quantile of Student's t with m − 1 degrees of freedom
    (negative for α < 1/2). A suspect at or beyond it is "not detected".

    Parameters
    ----------
    null_distances : sequence of float
        As in :func:`prediction_p_value`.
    alpha : float, default 0.05

    Returns
    -------
    float

    Raises
    ------
    ZestError
        As :func:`prediction_p_value`.
    """
    alpha = check_number("alpha", alpha, minimum=0.0, maximum=1.0, strict=True)
    null = np.log(_check_null(null_distances, minimum=2))
    spread = float(null.std(ddof=1))
    if not spread > 0:
        raise ZestError(f"null_distances: expected distances that are not all equal, got {list(null_distances)!r}")
    m = null.size
    from scipy import stats

    return float(np.exp(null.mean() + stats.t.ppf(alpha, df=m - 1) * spread * np.sqrt(1 + 1 / m)))


@dataclass(frozen=True)
class Decision:
    """The calibrated verdict of one comparison.

    Attributes
    ----------
    verdict : {"related", "not detected", "inconclusive"}
        "related" when ``p_value < alpha``; "not detected" when ``p_value ≥ alpha`` (never evidence
        that the models are unrelated); "inconclusive" when the null cannot support a test.
    p_value : float or None
        The prediction p-value (None when inconclusive for lack of a null).
    rank_p_value : float or None
        The assumption-free rank p-value, for reference (its floor is ``1/(m + 1)``).
    alpha : float
    distance : float
    null_distances : tuple of float
    reason : str
        One sentence for people: why this verdict.
    detection_threshold : float or None
        The largest distance this null calls related at ``alpha`` (:func:`detection_threshold`): the
        test's power. None when inconclusive.
    """

    verdict: str
    p_value: float | None
    rank_p_value: float | None
    alpha: float
    distance: float
    null_distances: tuple[float, ...]
    reason: str
    detection_threshold: float | None = None

    def to_dict(self) -> dict:
        return {
            "verdict": self.verdict, "p_value": self.p_value, "rank_p_value": self.rank_p_value,
            "alpha": self.alpha, "distance": self.distance, "null_distances": list(self.null_distances),
            "detection_threshold": self.detection_threshold, "reason": self.reason,
        }


def decide_related(
    distance: float,
    null_distances: Sequence[float],
    *,
    alpha: float = DEFAULT_ALPHA,
    min_null: int = MIN_NULL,
) -> Decision:
    """Test whether a suspect is closer to the reference than its matched unrelated models are.

    Parameters
    ----------
    distance : float
        ``d(P, S)``.
    null_distances : sequence of float
        The matched null: ``d(P, Uⱼ)`` for models Uⱼ trained independently for S's task with S's
        architecture (never S, P or anything derived from P).
    alpha : float, default 0.05
        Significance level, in (0, 1): the false-positive rate the verdict is allowed.
    min_null : int, default 3
        Fewer unrelated models than this give "inconclusive".

    Returns
    -------
    Decision
    """
    alpha = check_number("alpha", alpha, minimum=0.0, maximum=1.0, strict=True)
    check_int("min_null", min_null, minimum=2)
    distance = check_number("distance", distance, minimum=0.0)
    null = tuple(float(d) for d in null_distances)
    if len(null) < min_null:
        return Decision(
            INCONCLUSIVE, None, rank_p_value(distance, null) if null else None, alpha, distance, null,
            f"only {len(null)} matched unrelated model(s); a calibrated verdict needs at least {min_null}",
        )
    if not all(np.isfinite(d) and d >= 0 for d in null):
        raise ZestError(f"null_distances: expected finite distances ≥ 0, got {list(null)}")
    if min(null) == 0:
        return Decision(
            INCONCLUSIVE, None, rank_p_value(distance, null), alpha, distance, null,
            "an unrelated model is at distance 0: the method cannot tell models apart on these inputs",
        )
    if np.ptp(np.log(null)) == 0:
        return Decision(
            INCONCLUSIVE, None, rank_p_value(distance, null), alpha, distance, null,
            "the unrelated models are all at the same distance: the null has no spread to test against",
        )
    if distance == 0:
        p = 0.0  # the suspect answers exactly as the reference does: closer than any log-normal draw
    else:
        p = prediction_p_value(distance, null)
    rank = rank_p_value(distance, null)
    mean = float(np.exp(np.mean(np.log(null))))
    threshold = detection_threshold(null, alpha)
    if p < alpha:
        verdict, side = RELATED, "smaller than"
    else:
        verdict, side = NOT_DETECTED, "not significantly smaller than"
    reason = (
        f"d = {distance:.4g} is {side} the distances of {len(null)} matched unrelated models "
        f"(geometric mean {mean:.4g}): p = {p:.3g} {'<' if p < alpha else '≥'} α = {alpha:g}"
    )
    if verdict == NOT_DETECTED:
        reason += (f". Not detected is not evidence of independence: against this null, only a distance below "
                   f"{threshold:.4g} would have been called related ({distance / threshold:.3g}× farther)")
    return Decision(verdict, p, rank, alpha, distance, null, reason, threshold)


def holm_adjusted(p_values: Mapping[str, float | None]) -> dict[str, float | None]:
    """Holm's step-down adjusted p-values of several tests of one hypothesis family; None stays None.

    Sorted ascending, ``p̃₍ᵢ₎ = max_{j ≤ i} min(1, (k − j + 1) · p₍ⱼ₎)`` over the k p-values that are not
    None. Rejecting where ``p̃ < α`` keeps the family-wise error rate at most α whatever the tests'
    dependence; the smallest adjusted p-value, ``min(1, k · min p)``, is the global (Bonferroni) one.

    References
    ----------
    Holm, "A Simple Sequentially Rejective Multiple Test Procedure", Scand. J. Statist. 6(2), 1979.
    """
    tested = sorted(((p, name) for name, p in p_values.items() if p is not None))
    adjusted: dict[str, float | None] = {name: None for name in p_values}
    running = 0.0
    for rank, (p, name) in enumerate(tested):
        running = max(running, min(1.0, (len(tested) - rank) * float(p)))
        adjusted[name] = running
    return adjusted


def _check_null(null_distances: Sequence[float], *, minimum: int, positive: bool = True) -> np.ndarray:
    null = np.asarray(list(null_distances), dtype=np.float64)
    if null.ndim != 1 or null.size < minimum:
        raise ZestError(f"null_distances: expected at least {minimum} distances, got {null.size}")
    if not (np.all(np.isfinite(null)) and np.all(null > 0 if positive else null >= 0)):
        raise ZestError(f"null_distances: expected finite distances {'> 0' if positive else '≥ 0'}, got {null.tolist()}")
    return null
