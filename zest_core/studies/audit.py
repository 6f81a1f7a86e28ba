"""One audit: is the suspect derived from the reference model? A calibrated verdict against a matched null.

The audit scores the reference model P against the suspect S and against every unrelated model Uⱼ
(trained independently for S's task, with S's architecture) with one method, and hands the
distances to :func:`zest_core.explain.significance.decide_related`. For zoo models the unrelated
models are picked from the manifest (:func:`audit_zoo_models`); otherwise the caller names them.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping

from .._shared.checks import check_choice
from ..errors import ZestError
from ..explain.significance import DEFAULT_ALPHA, Decision, decide_related
from ..methods.modeldiff import search_params
from ..pipeline.config import ZestConfig
from ..pipeline.reference import ReferenceSet
from ..zoo.nulls import MatchedNull, matched_null
from .accounting import queries_report, signature_query_detail
from .rules import METHOD_KINDS, as_distance
from .scoring import PairScorer

AUDIT_METHODS = ("zest-cosine", "zest-l2", "modeldiff", "sac", "agreement")
REFERENCE, SUSPECT = "reference", "suspect"


@dataclass(frozen=True)
class AuditResult:
    """What ``zest audit`` prints: the verdict, its p-value, the null it used and the queries it made.

    Attributes
    ----------
    decision : Decision
    method : str
    null_models : tuple of str
        The unrelated models, by the names the caller gave.
    null_reason : str
        Why these models are the null.
    queries : dict
        The queries the method made, measured: ``per_model`` (name → ``{"calls", "images", "now",
        "cached"}``, plus ``"http"`` for an endpoint: the requests its client sent), ``total``,
        ``now`` and ``detail`` (:func:`~zest_core.studies.accounting.queries_report`). A cached
        signature counts what computing it took, and makes no query now.
    """

    decision: Decision
    method: str
    null_models: tuple[str, ...]
    null_reason: str
    queries: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        d = self.decision
        return {
            "verdict": d.verdict, "p_value": d.p_value, "rank_p_value": d.rank_p_value, "alpha": d.alpha,
            "distance": d.distance, "method": self.method, "reason": d.reason,
            "null": {
                "models": list(self.null_models), "distances": dict(zip(self.null_models, d.null_distances)),
                "reason": self.null_reason,
            },
            "queries": self.queries,
        }


def audit(
    reference: Callable,
    suspect: Callable,
    unrelated: Mapping[str, Callable],
    refset: ReferenceSet,
    *,
    method: str = "zest-cosine",
    config: ZestConfig | None = None,
    alpha: float = DEFAULT_ALPHA,
    align: str = "auto",
    null_reason: str | None = None,
    modeldiff_options: Mapping[str, Any] | None = None,
    sac_options: Mapping[str, Any] | None = None,
    cache: Any = None,
    progress: Callable[[int, int, str], None] | None = None,
) -> AuditResult:
    """Audit ``suspect`` against ``reference`` with ``method``, judged against ``unrelated``.

    Parameters
    ----------
    reference, suspect : callable
        Black-box models: images [B, C, H, W] in [0, 1] → class scores.
    unrelated : mapping of str to callable
        Models trained independently for the suspect's task with the suspect's architecture, none of
        them derived from the reference. Fewer than 3 give an "inconclusive" verdict.
    refset : ReferenceSet
    method : {"zest-cosine", "zest-l2", "modeldiff", "sac", "agreement"}
    config : ZestConfig, optional
    alpha : float, default 0.05
    align : {"auto", "none", "greedy", "hungarian"}
    null_reason : str, optional
        Why the unrelated models match (shown with the result); default: "named by the caller".
    modeldiff_options, cache, progress
        As in :func:`zest_core.studies.reuse_benchmark`.
    sac_options : mapping, optional
        SAC's ``num_images``, ``seed``, ``cut_ratio`` (:class:`zest_core.methods.SAC`).

    Returns
    -------
    AuditResult
    """
    check_choice("method", method, AUDIT_METHODS)
    clash = {REFERENCE, SUSPECT} & set(unrelated)
    if clash:
        raise ZestError(f"unrelated: expected names other than {sorted(clash)}, got {sorted(unrelated)}")
    config = config or ZestConfig()
    models = {REFERENCE: reference, SUSPECT: suspect, **unrelated}
    scorer = PairScorer(models, refset, config, align, search_params(**dict(modeldiff_options or {})), cache, progress,
                        sac_options=sac_options)
    kind = METHOD_KINDS[method]
    distance = as_distance(scorer.score(method, REFERENCE, SUSPECT), kind)
    null = [as_distance(scorer.score(method, REFERENCE, name), kind) for name in unrelated]
    decision = decide_related(distance, null, alpha=alpha)
    return AuditResult(
        decision, method, tuple(unrelated), null_reason or "named by the caller", _queries(method, refset, config, scorer),
    )


def audit_zoo_models(
    zoo: Any, reference: str, suspect: str, refset: ReferenceSet, **options: Any
) -> tuple[AuditResult, MatchedNull]:
    """:func:`audit` of two zoo models, against the matched null the manifest gives (:func:`matched_null`)."""
    null = matched_null(zoo, reference, suspect)
    result = audit(
        zoo.load(reference), zoo.load(suspect), {name: zoo.load(name) for name in null.models}, refset,
        null_reason=null.reason, **options,
    )
    return result, null


def _queries(method: str, refset: ReferenceSet, config: ZestConfig, scorer: PairScorer) -> dict[str, Any]:
    """The queries each model was asked, as measured (:func:`~zest_core.studies.accounting.queries_report`)."""
    per_model = {name: scorer.queries(method, name) for name in scorer.models}
    return queries_report(per_model, _query_detail(method, refset, config, scorer))


def _query_detail(method: str, refset: ReferenceSet, config: ZestConfig, scorer: PairScorer) -> str:
    """What one model's queries are: N × L for Zest, 2 per ModelDiff pair, the CutMix images for SAC, N for agreement."""
    n = len(refset)
    if method.startswith("zest"):
        detail = signature_query_detail(n, config.num_samples)
    elif method == "modeldiff":
        detail = (f"{n} seed images and their {n} generated partners per suspect; the reference also took the "
                  "white-box pair search's forward passes")
    elif method == "sac":
        per_model, calls = scorer.sac_queries[SUSPECT].images, scorer.sac_queries[SUSPECT].calls
        detail = f"{per_model} CutMix images of the {n} reference images, in {calls} call{'s' * (calls != 1)}"
    else:
        detail = f"the {n} reference images"
    return detail
