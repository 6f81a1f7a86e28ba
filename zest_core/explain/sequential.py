"""A sequential verdict: test after each round of reference images, stop as soon as the verdict is decided.

An audit that looks at its p-value after every round and stops when it is small has many chances to
be wrong: testing each of R looks at level α would call far more than α of unrelated suspects
related. This rule spends α across the R planned rounds (Bonferroni alpha spending): round r rejects
the null only if its p-value is below α / R. Whatever the dependence between the rounds' p-values,

    P(some round rejects | the suspect is unrelated) ≤ Σ_r P(p_r < α / R) ≤ R · α / R = α,

so the false-positive rate stays at most α under optional stopping, including stopping early for
"related". Stopping early with "not detected" (futility: a p-value above ``futility`` after a round) only
removes chances to reject, so it never raises the false-positive rate (a non-binding futility
bound); it costs some power, which the benchmark measures.

References
----------
Jennison & Turnbull, "Group Sequential Methods with Applications to Clinical Trials", 2000, §1.3 and
§7 (the Bonferroni bound; alpha spending, Lan & DeMets 1983); non-binding futility, §4.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

from .._shared.checks import check_int, check_number
from ..errors import ZestError
from .significance import DEFAULT_ALPHA, NOT_DETECTED, Decision, decide_related

DEFAULT_FUTILITY = 0.5


@dataclass(frozen=True)
class SequentialRule:
    """When a sequential audit stops.

    Attributes
    ----------
    rounds : int
        R, the rounds planned; each is tested at ``alpha / rounds``.
    alpha : float
        The false-positive rate the whole procedure is allowed.
    futility : float
        After a round whose p-value exceeds it, stop with "not detected" (1 never stops early).
    """

    rounds: int
    alpha: float = DEFAULT_ALPHA
    futility: float = DEFAULT_FUTILITY

    def __post_init__(self) -> None:
        check_int("rounds", self.rounds, minimum=1)
        check_number("alpha", self.alpha, minimum=0.0, maximum=1.0, strict=True)
        check_number("futility", self.futility, minimum=0.0, maximum=1.0)

    @property
    def round_alpha(self) -> float:
        return self.alpha / self.rounds

    def step(self, decision: Decision, round_number: int) -> str | None:
        """The final verdict if the audit stops after this round (1-based), else None.

        ``decision`` is the round's :func:`decide_related` at level ``round_alpha``.
        """
        if decision.verdict == "related":
            return "related"
        if decision.verdict == "inconclusive":
            return "inconclusive"
        if round_number >= self.rounds or (decision.p_value is not None and decision.p_value > self.futility):
            return NOT_DETECTED
        return None


@dataclass
class SequentialDecision:
    """The rounds a sequential audit looked at, and where it stopped.

    Attributes
    ----------
    verdict : {"related", "not detected", "inconclusive"}
    stopped_round : int
        1-based.
    decisions : list of Decision
        One per round looked at, each at level ``rule.round_alpha``.
    rule : SequentialRule
    """

    verdict: str
    stopped_round: int
    decisions: list[Decision]
    rule: SequentialRule
    sizes: list[int] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict, "stopped_round": self.stopped_round, "rounds": self.rule.rounds,
            "alpha": self.rule.alpha, "round_alpha": self.rule.round_alpha, "futility": self.rule.futility,
            "sizes": self.sizes, "p_values": [d.p_value for d in self.decisions],
            "distances": [d.distance for d in self.decisions],
        }


def decide_sequentially(rounds: Sequence[tuple[float, Sequence[float]]], rule: SequentialRule) -> SequentialDecision:
    """Run the rule over (distance, null distances) of each round, in order, until it stops.

    ``rounds`` may be lazy (a generator that computes the next round's signatures only when asked),
    so that the rounds after the stop are never queried.
    """
    decisions: list[Decision] = []
    for number, (distance, null) in enumerate(rounds, start=1):
        decisions.append(decide_related(distance, null, alpha=rule.round_alpha))
        verdict = rule.step(decisions[-1], number)
        if verdict is not None:
            return SequentialDecision(verdict, number, decisions, rule)
    if not decisions:
        raise ZestError("rounds: expected at least one round, got none")
    return SequentialDecision(NOT_DETECTED, len(decisions), decisions, rule)
