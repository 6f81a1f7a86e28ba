"""One audit: is the suspect derived from the reference model? A calibrated verdict against a matched null.

The audit scores the reference model P against the suspect S and against every unrelated model Uⱼ
(trained independently for S's task, with S's architecture) with one method, and hands the
distances to :func:`zest_core.explain.significance.decide_related`. For zoo models the unrelated
models are picked from the manifest (:func:`audit_zoo_models`); otherwise the caller names them.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from .._shared.checks import check_choice, check_number
from ..errors import NotComparableError, NullError, ZestError
from ..explain.significance import (DEFAULT_ALPHA, INCONCLUSIVE, NOT_DETECTED, RELATED, Decision, decide_related,
                                    holm_adjusted)
from ..methods.modeldiff import search_params
from ..pipeline.config import ZestConfig
from ..pipeline.distance import zest_distance
from ..pipeline.reference import ReferenceSet
from ..pipeline.signature import Signature
from ..zoo.nulls import UNRELATED_FLAG, MatchedNull, ModelFacts, check_null, matched_null, model_facts, resolve_null
from .accounting import queries_report, signature_query_detail
from .commitment import check_commitment, method_queries_digest
from .rules import METHOD_KINDS, as_distance
from .scoring import PairScorer

AUDIT_METHODS = ("zest-cosine", "zest-l2", "modeldiff", "sac", "akh", "agreement")
# ``--method all``: one method of each family, their p-values combined by Holm's rule.
COMBINED_METHODS = ("zest-cosine", "modeldiff", "sac", "akh")
ALL = "all"
REFERENCE, SUSPECT = "reference", "suspect"


@dataclass(frozen=True)
class AuditResult:
    """What ``zest audit`` prints: the verdict, its p-value, the null it used and the queries it made.

    Attributes
    ----------
    decision : Decision
        The verdict. For ``method="all"``, the combined one (:func:`combine_decisions`).
    method : str
        The method, or "all".
    null_models : tuple of str
        The unrelated models, by the names the caller gave.
    null_reason : str
        Why these models are the null.
    queries : dict
        The queries the method made, measured: ``per_model`` (name → ``{"calls", "images", "now",
        "cached"}``, plus ``"http"`` for an endpoint: the requests its client sent), ``total``,
        ``now`` and ``detail`` (:func:`~zest_core.studies.accounting.queries_report`). A cached
        signature counts what computing it took, and makes no query now. For ``method="all"``, one
        such report per method under ``"methods"``.
    methods : dict of str to Decision
        Every method's own decision (one entry for a single method).
    combination : dict or None
        For ``method="all"``: the rule, the number of methods tested, and each method's Holm-adjusted
        p-value.
    warnings : tuple of str
        What :func:`~zest_core.zoo.check_null` found unusual about the null (never a refusal).
    query_digests : dict of str to str
        Per method, the SHA-256 of the images every suspect was sent (:mod:`zest_core.studies.commitment`),
        computed before the suspect was queried.
    signatures : dict of str to Signature
        The Zest signatures behind a Zest method ("reference", "suspect" and each unrelated model's
        name), for the per-image evidence (:func:`zest_core.explain.image_evidence`); empty otherwise.
    """

    decision: Decision
    method: str
    null_models: tuple[str, ...]
    null_reason: str
    queries: dict[str, Any]
    methods: dict[str, Decision] = field(default_factory=dict)
    combination: dict[str, Any] | None = None
    warnings: tuple[str, ...] = ()
    query_digests: dict[str, str] = field(default_factory=dict)
    signatures: dict[str, Signature] = field(default_factory=dict, repr=False)

    def to_dict(self) -> dict[str, Any]:
        d = self.decision
        return {
            "verdict": d.verdict, "p_value": d.p_value, "rank_p_value": d.rank_p_value, "alpha": d.alpha,
            "distance": d.distance, "detection_threshold": d.detection_threshold, "method": self.method,
            "reason": d.reason,
            "methods": {name: decision.to_dict() for name, decision in self.methods.items()},
            "combination": self.combination,
            "null": {
                "models": list(self.null_models), "distances": dict(zip(self.null_models, d.null_distances)),
                "reason": self.null_reason, "warnings": list(self.warnings),
            },
            "queries": self.queries,
            "query_digests": self.query_digests,
        }


def combine_decisions(decisions: Mapping[str, Decision], alpha: float = DEFAULT_ALPHA) -> tuple[Decision, dict[str, Any]]:
    """One verdict from several methods' tests of the same suspect: Holm's rule, valid under any dependence.

    The methods' p-values share the suspect, the reference and the null models, so they are
    dependent in ways nobody knows. Holm's step-down rule keeps the family-wise error rate at most α
    whatever that dependence [1]_; for the global question "is the suspect related?" it rejects
    exactly when the smallest p-value is below α / k (Bonferroni), k the methods that could test (an
    "inconclusive" method, whose null cannot support a test, is not counted; that is decided by the
    null alone, before any p-value is seen). The combined p-value is ``min(1, k · min p)``; each
    method's Holm-adjusted p-value is reported beside it.

    Parameters
    ----------
    decisions : mapping of str to Decision
        Each method's decision at level ``alpha``.
    alpha : float, default 0.05

    Returns
    -------
    Decision
        "related" when the combined p-value is below α, "not detected" when not, "inconclusive"
        when no method could test. Its distance is NaN: there is no single distance.
    dict
        ``rule``, ``tested`` (k), ``adjusted`` (method → Holm-adjusted p-value or None).

    References
    ----------
    .. [1] Holm, "A Simple Sequentially Rejective Multiple Test Procedure", Scandinavian Journal of
       Statistics 6(2), 1979.
    """
    alpha = check_number("alpha", alpha, minimum=0.0, maximum=1.0, strict=True)
    if not decisions:
        raise ZestError("decisions: expected at least one method's decision, got none")
    tested = {name: d.p_value for name, d in decisions.items() if d.p_value is not None}
    k = len(tested)
    adjusted = holm_adjusted({name: d.p_value for name, d in decisions.items()})
    info = {"rule": "holm", "tested": k, "adjusted": adjusted}
    if k == 0:
        reasons = "; ".join(f"{name}: {d.reason}" for name, d in decisions.items())
        return Decision(INCONCLUSIVE, None, None, alpha, float("nan"), (), f"no method could test: {reasons}"), info
    p = min(1.0, k * min(tested.values()))
    best = min(tested, key=tested.get)
    verdict = RELATED if p < alpha else NOT_DETECTED
    reason = (f"Holm over {k} methods: the smallest p-value, {best}'s {tested[best]:.3g}, times {k} is {p:.3g} "
              f"{'<' if p < alpha else '≥'} α = {alpha:g}")
    if verdict == NOT_DETECTED:
        reason += "; not detected by any method, which is not evidence of independence (each method's threshold is shown)"
    return Decision(verdict, p, None, alpha, float("nan"), (), reason), info


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
    null: MatchedNull | None = None,
    null_reason: str | None = None,
    refsets: Mapping[str, ReferenceSet] | None = None,
    modeldiff_options: Mapping[str, Any] | None = None,
    sac_options: Mapping[str, Any] | None = None,
    akh_options: Mapping[str, Any] | None = None,
    cache: Any = None,
    progress: Callable[[int, int, str], None] | None = None,
    commitment: Mapping[str, Any] | None = None,
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
    method : {"zest-cosine", "zest-l2", "modeldiff", "sac", "akh", "agreement", "all"}
        "all" runs :data:`COMBINED_METHODS` and combines their p-values (:func:`combine_decisions`).
    config : ZestConfig, optional
    alpha : float, default 0.05
    align : {"auto", "none", "greedy", "hungarian"}
    null : MatchedNull, optional
        The null as :func:`~zest_core.zoo.resolve_null` resolved and checked it (its reason and
        warnings are reported). Without it, the models themselves are checked here
        (:func:`~zest_core.zoo.check_null` on their :func:`~zest_core.zoo.model_facts`).
    null_reason : str, optional
        Why the unrelated models match, when ``null`` is not given; default: "named by the caller".
    refsets : mapping of str to ReferenceSet, optional
        A reference set per method (a budget split among the methods of "all"); ``refset`` otherwise.
    modeldiff_options, cache, progress
        As in :func:`zest_core.studies.reuse_benchmark`.
    commitment : mapping, optional
        A commitment of ``zest commit`` (:func:`~zest_core.studies.commitment_record`): every method's
        queries are hashed, from the reference side alone, and checked against it before the suspect
        or any unrelated model is queried.
    sac_options : mapping, optional
        SAC's ``num_images``, ``seed``, ``cut_ratio`` (:class:`zest_core.methods.SAC`).
    akh_options : mapping, optional
        AKH's ``num_queries``, ``seed`` and ``pool`` (:class:`zest_core.studies.PairScorer`).

    Returns
    -------
    AuditResult

    Raises
    ------
    NullError
        For a null that would make the verdict wrong (the suspect in it, two models with the same
        weights, a model of another class count or input shape), naming ``--unrelated``.
    CommitmentError
        For queries other than the committed ones (before any of them is sent).
    """
    check_choice("method", method, (*AUDIT_METHODS, ALL))
    clash = {REFERENCE, SUSPECT} & set(unrelated)
    if clash:
        raise ZestError(f"unrelated: expected names other than {sorted(clash)}, got {sorted(unrelated)}")
    if null is None:
        warnings = check_null(model_facts(REFERENCE, reference), model_facts(SUSPECT, suspect),
                              [model_facts(name, model) for name, model in unrelated.items()])
        reason = null_reason or "named by the caller"
    else:
        warnings, reason = null.warnings, null.reason
    config = config or ZestConfig()
    models = {REFERENCE: reference, SUSPECT: suspect, **unrelated}
    names = COMBINED_METHODS if method == ALL else (method,)
    decisions: dict[str, Decision] = {}
    reports: dict[str, Any] = {}
    scorers = _scorers(models, names, refset, refsets, config, align, modeldiff_options, sac_options, akh_options,
                       cache, progress)
    digests = _digests(scorers)  # from the reference side alone: nothing is sent to the suspect yet
    if commitment is not None:
        check_commitment(commitment, digests, refset)
    for name, scorer in scorers.items():
        used = scorer.refset
        kind = METHOD_KINDS[name]
        try:
            distance = as_distance(scorer.score(name, REFERENCE, SUSPECT), kind)
            null_distances = [as_distance(scorer.score(name, REFERENCE, u), kind) for u in unrelated]
        except NotComparableError as error:
            if method != ALL:
                raise
            scorer.notes.append(str(error))  # one method that cannot compare these models does not stop the rest
            distance, null_distances = math.nan, []
        _check_classes(scorer, name, unrelated)
        if math.isfinite(distance) and all(math.isfinite(d) for d in null_distances):
            decisions[name] = decide_related(distance, null_distances, alpha=alpha)
        else:
            decisions[name] = Decision(INCONCLUSIVE, None, None, alpha, distance, tuple(null_distances),
                                       f"{name} could not compare these models: {'; '.join(scorer.notes)}")
        reports[name] = (_queries(name, used, config, scorer) if math.isfinite(distance)
                         else queries_report({}, "not computed"))
    if method == ALL:
        decision, combination = combine_decisions(decisions, alpha)
        queries = {"methods": reports, "total": _sum_totals(reports)}
    else:
        decision, combination, queries = decisions[method], None, reports[method]
    zest = next((scorer for name, scorer in scorers.items() if name.startswith("zest")), None)
    signatures = {} if zest is None else {name: zest.signature(name) for name in models}
    return AuditResult(decision, method, tuple(unrelated), reason, queries, decisions, combination, tuple(warnings),
                       digests, signatures)


def audit_query_digests(
    reference: Callable | None,
    refset: ReferenceSet,
    *,
    method: str = "zest-cosine",
    config: ZestConfig | None = None,
    refsets: Mapping[str, ReferenceSet] | None = None,
    modeldiff_options: Mapping[str, Any] | None = None,
    sac_options: Mapping[str, Any] | None = None,
    akh_options: Mapping[str, Any] | None = None,
    cache: Any = None,
) -> dict[str, str]:
    """The query digests :func:`audit` would check, from the reference side alone (what ``zest commit`` writes).

    ``reference`` may be None for Zest and SAC, whose queries depend on the reference images only.
    """
    check_choice("method", method, (*AUDIT_METHODS, ALL))
    names = COMBINED_METHODS if method == ALL else (method,)
    models = {} if reference is None else {REFERENCE: reference}
    return _digests(_scorers(models, names, refset, refsets, config or ZestConfig(), "auto", modeldiff_options,
                             sac_options, akh_options, cache, None))


def _scorers(models: Mapping[str, Callable], names: Sequence[str], refset: ReferenceSet,
             refsets: Mapping[str, ReferenceSet] | None, config: ZestConfig, align: str,
             modeldiff_options: Mapping[str, Any] | None, sac_options: Mapping[str, Any] | None,
             akh_options: Mapping[str, Any] | None, cache: Any, progress: Any) -> dict[str, PairScorer]:
    """One scorer per method, each on its own reference images (a budget split) or ``refset``."""
    return {name: PairScorer(models, (refsets or {}).get(name, refset), config, align,
                             search_params(**dict(modeldiff_options or {})), cache, progress,
                             sac_options=sac_options, akh_options=akh_options) for name in names}


def _digests(scorers: Mapping[str, PairScorer]) -> dict[str, str]:
    """Each method's query digest (:func:`~zest_core.studies.commitment.method_queries_digest`); NaN-safe."""
    digests = {}
    for name, scorer in scorers.items():
        try:
            digests[name] = method_queries_digest(scorer, name, REFERENCE)
        except NotComparableError:  # e.g. ModelDiff without white-box access: the method will say so
            digests[name] = "not computed"
    return digests


def audit_signatures(
    reference: Signature,
    suspect: Signature,
    unrelated: Mapping[str, Signature],
    *,
    metric: str = "cosine",
    align: str = "auto",
    alpha: float = DEFAULT_ALPHA,
    null_reason: str = "named by the caller",
    warnings: Sequence[str] = (),
    queries: dict[str, Any] | None = None,
) -> AuditResult:
    """The audit of precomputed signatures: d(reference, suspect) against d(reference, U) for each unrelated U.

    The same test as :func:`audit` with Zest (the dashboard's path, whose signatures are computed
    already). The null is checked on what signatures know: a signature of the suspect's or the
    reference's model (same model fingerprint), two of one model, or another class count are refused.

    Raises
    ------
    NullError
        As :func:`audit`.
    """
    facts = {name: ModelFacts(name, sig.model_fingerprint, sig.num_classes) for name, sig in unrelated.items()}
    found = check_null(ModelFacts(REFERENCE, reference.model_fingerprint, reference.num_classes),
                       ModelFacts(SUSPECT, suspect.model_fingerprint, suspect.num_classes), list(facts.values()))
    distance = zest_distance(reference, suspect, metric=metric, align=align)
    null_distances = [zest_distance(reference, sig, metric=metric, align=align) for sig in unrelated.values()]
    decision = decide_related(distance, null_distances, alpha=alpha)
    method = f"zest-{metric}"
    return AuditResult(decision, method, tuple(unrelated), null_reason, queries or {}, {method: decision}, None,
                       tuple(warnings) + found)


def audit_zoo_models(
    zoo: Any, reference: str, suspect: str, refset: ReferenceSet, **options: Any
) -> tuple[AuditResult, MatchedNull]:
    """:func:`audit` of two zoo models, against the matched null :func:`~zest_core.zoo.resolve_null` gives."""
    names = (reference, suspect, *matched_null(zoo, reference, suspect).models)
    models = {name: zoo.load(name) for name in dict.fromkeys(names)}  # each once; resolve_null checks them
    null = resolve_null(reference, suspect, zoo=zoo, models=models)
    result = audit(models[reference], models[suspect], {name: models[name] for name in null.models}, refset,
                   null=null, **options)
    return result, null


def _check_classes(scorer: PairScorer, method: str, unrelated: Mapping[str, Callable]) -> None:
    """A null model whose class count the scores reveal to differ from the suspect's is refused, after all."""
    if not method.startswith("zest"):
        return
    classes = scorer.signature(SUSPECT).num_classes
    for name in unrelated:
        theirs = scorer.signature(name).num_classes
        if theirs != classes:
            raise NullError(f"{UNRELATED_FLAG}: expected models of the suspect's class count ({classes}), got {name} "
                            f"with {theirs} classes: a matched null is trained for the suspect's task")


def _sum_totals(reports: Mapping[str, Any]) -> dict[str, int] | None:
    totals = [report.get("total") for report in reports.values()]
    if any(total is None for total in totals):
        return None
    return {key: int(np.sum([total[key] for total in totals])) for key in ("calls", "images")}


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
    elif method == "akh":
        images, _ = scorer.akh_reference(REFERENCE)
        detail = (f"{len(images)} images the reference model misclassifies (and their CutMix variants) per suspect; "
                  "the reference also labelled its pool")
    else:
        detail = f"the {n} reference images"
    return detail
