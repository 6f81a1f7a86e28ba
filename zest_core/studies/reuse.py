"""The reuse benchmark: every method's score on (parent, child, relation) pairs and on unrelated models.

For each method and each (parent, child, relation), :func:`reuse_benchmark` records

- the score of (parent, child): a distance for Zest (cosine or L2 between signatures, classes
  matched as ``align`` says), a similarity for ModelDiff (pairs generated on the parent, the child a
  black box), top-1 agreement and CKA;
- **ModelDiff's rule** [2]_: correct when the child is closer to the parent than every unrelated
  model is (``score(parent, child)`` beats ``score(parent, u)`` for every u in ``unrelated`` other
  than the parent and the child). The parent is the anchor because ModelDiff's pairs come from the
  parent, the model its owner has white-box access to;
- **Zest's rule** [1]_: relative distance ``d(parent, child) / mean d(u, v)`` below 1, the mean over
  the ordered pairs of distinct unrelated models other than the parent and the child (a parent
  listed among the unrelated models never sits in its own baseline). Similarities s are used as
  distances 1 − s.

Each ordered pair (a, b) of distinct unrelated models goes through the same two rules with a as the
parent and b as the child (so excluding both from the references and the baseline); a rule that
says "related" there is a false positive. Both rules are relative, and their false positive rates
are largely fixed by construction: with k unrelated models and no ties, the ModelDiff rule flags
exactly one of the k − 1 others per anchor (a rate of 1/(k − 1)), and the Zest rule flags the
unrelated pairs below the mean of the others (about half). ROC AUC, which compares the scores of
the related pairs with those of the unrelated pairs, has no threshold (ordered pairs, so for
symmetric methods each unordered pair counts twice, which leaves the AUC unchanged).

References
----------
.. [1] Jia et al., "A Zest of LIME", ICLR 2023 (reuse detection; Appendix C, relative distance).
.. [2] Li et al., "ModelDiff", ISSTA 2021 (correctness of reuse detection).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np

from .._shared.checks import check_type
from ..errors import ZestError
from ..explain import to_jsonable
from ..methods.modeldiff import search_params
from ..pipeline.config import ZestConfig
from ..pipeline.probe import ProgressFn
from ..pipeline.reference import ReferenceSet
from .rules import (
    DEFAULT_METHODS,
    METHOD_KINDS,
    METHODS,
    check_metric_align,
    modeldiff_rule,
    order_relations,
    roc_auc,
    zest_relative,
)
from .markdown import reuse_markdown
from .scoring import CacheArg, PairScorer, score_key
from .stats import mean_std


@dataclass(frozen=True)
class ReuseResult:
    """Scores and detection statistics of a reuse benchmark (see :func:`reuse_benchmark`).

    Attributes
    ----------
    methods : tuple of str
    relations : tuple of str
        The relations present, in report order (:data:`RELATION_ORDER`, then unknown ones as met).
    pairs : tuple of dict
        One record per (parent, child, relation) and method: ``score``, ``reference_scores`` (the
        parent's score with every unrelated model), ``modeldiff_rule`` (bool or None),
        ``relative_distance`` and ``zest_rule`` (relative distance < 1).
    unrelated_pairs : tuple of dict
        The same for every ordered pair (anchor, other) of distinct unrelated models, the anchor in
        the parent's place: a True rule there is a false positive.
    scores : dict
        ``(method, a, b) → score`` for every pair of models scored.
    summary : dict
        ``summary[method]["relations"][relation]`` and ``summary[method]["overall"]``, from
        :func:`summarize_reuse`.
    metadata : dict
        The config, the reference set, the ModelDiff options, the model lists, notes (e.g. a
        baseline that could not compare two models), and ``queries[method][model]``: the queries
        each method made of each model, measured (:meth:`~zest_core.studies.PairScorer.query_report`).
    """

    methods: tuple[str, ...]
    relations: tuple[str, ...]
    pairs: tuple[dict[str, Any], ...]
    unrelated_pairs: tuple[dict[str, Any], ...]
    scores: dict[tuple[str, str, str], float]
    summary: dict[str, Any]
    metadata: dict[str, Any] = field(default_factory=dict)

    def kind(self, method: str) -> str:
        """The method's kind: "distance" or "similarity"."""
        return METHOD_KINDS[method]

    def score(self, method: str, a: str, b: str) -> float:
        """The score of models ``a`` and ``b`` (``a`` the source, for ModelDiff) by ``method``."""
        return self.scores[score_key(method, a, b)]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable copy (NaN becomes None)."""
        return to_jsonable({
            "methods": list(self.methods),
            "kinds": {m: METHOD_KINDS[m] for m in self.methods},
            "relations": list(self.relations),
            "pairs": list(self.pairs),
            "unrelated_pairs": list(self.unrelated_pairs),
            "scores": [{"method": m, "a": a, "b": b, "score": s} for (m, a, b), s in self.scores.items()],
            "summary": self.summary,
            "metadata": self.metadata,
        })

    def to_markdown(self) -> str:
        """The report: scores, both rules' accuracies and false positives, and ROC AUC, one row per relation."""
        return reuse_markdown(self)


def reuse_benchmark(
    models: Mapping[str, Callable],
    pairs: Sequence[tuple[str, str, str]],
    unrelated: Sequence[str],
    refset: ReferenceSet,
    *,
    methods: Sequence[str] = DEFAULT_METHODS,
    config: ZestConfig | None = None,
    align: str = "auto",
    modeldiff_options: Mapping[str, Any] | None = None,
    groups: Mapping[str, str] | None = None,
    progress: ProgressFn | None = None,
    cache: CacheArg = None,
) -> ReuseResult:
    """Score reuse pairs and unrelated models with every method, and measure how well each detects reuse.

    The scores and the two decision rules are described in :mod:`zest_core.studies.reuse`.

    Parameters
    ----------
    models : mapping of str to callable
        Every model named in ``pairs`` and ``unrelated``: images [B, C, H, W] in [0, 1] → scores.
    pairs : sequence of (parent, child, relation)
        Relation names are free; :data:`RELATION_ORDER` orders the report.
    unrelated : sequence of str
        Independently trained models, at least 2 (parents may be among them). The ModelDiff rule
        needs one besides the parent and child of a pair, the Zest rule two.
    refset : ReferenceSet
        The reference images for Zest, the seeds for ModelDiff, the images for the baselines.
    methods : sequence of str
        Any of "zest-cosine", "zest-l2", "modeldiff", "agreement" and "cka" (white-box).
    config : ZestConfig, optional
        Zest's configuration (default ``ZestConfig()``); its ``batch_size`` and ``device`` are used
        by every method.
    align : {"auto", "none", "greedy", "hungarian"}, default "auto"
        Class matching of the Zest distances. "auto" matches classes only when their counts
        differ, so a class-permuted copy ("permuted") looks unrelated to Zest unless "greedy" or
        "hungarian" is asked for.
    modeldiff_options : mapping, optional
        ``epsilon``, ``steps``, ``step_size``, ``diversity``, ``seed`` of
        :func:`zest_core.methods.modeldiff.generate_pairs`.
    groups : mapping of str to str, optional
        A group (e.g. the architecture) for every model. When given, a pair is judged against
        matched unrelated models only: the ModelDiff rule's references are the unrelated models in
        the child's group, and the Zest rule's baseline is the mean over unrelated pairs (u, v) with
        u in the parent's group and v in the child's. Distances between unrelated models depend on
        their architectures, so a pooled baseline misjudges cross-architecture pairs (a stolen copy
        of another architecture). None pools every unrelated model.
    progress : callable (done, total, stage), optional
    cache : SignatureCache, PairsCache, folder, bool or None
        Where signatures and ModelDiff pairs are cached (None: the default folder, False: none).

    Returns
    -------
    ReuseResult
        A score that a baseline cannot compute (agreement of models whose classes cannot be
        matched, CKA of a model that is not an ``nn.Module``) is NaN, noted in the metadata and
        left out of the statistics.

    Raises
    ------
    ZestError
        Naming the argument, for unknown models or methods, malformed pairs, or fewer than two
        unrelated models.
    """
    methods = _check_methods(methods)
    pairs = _check_pairs(pairs, models)
    unrelated = _check_unrelated(unrelated, models)
    check_type("refset", refset, ReferenceSet, "a ReferenceSet")
    config = check_type("config", config or ZestConfig(), ZestConfig, "a ZestConfig")
    check_metric_align("cosine", align)
    options = search_params(**dict(modeldiff_options or {}))
    _check_groups(groups, models)
    scorer = PairScorer(models, refset, config, align, options, cache, progress)

    pair_records, unrelated_records = _score_jobs(scorer, methods, pairs, unrelated, groups, progress)
    relations = order_relations(r for _, _, r in pairs)
    metadata = {
        "config": config.to_dict(),
        "align": align,
        "refset": refset.describe(),
        "modeldiff_options": options,
        "models": sorted(set(name for p, c, _ in pairs for name in (p, c)) | set(unrelated)),
        "unrelated": list(unrelated),
        "groups": None if groups is None else dict(groups),
        "notes": scorer.notes,
        "queries": scorer.query_report(methods),
    }
    return ReuseResult(
        methods=methods, relations=relations, pairs=tuple(pair_records), unrelated_pairs=tuple(unrelated_records),
        scores=dict(scorer.memo), summary=summarize_reuse(methods, relations, pair_records, unrelated_records),
        metadata=metadata,
    )


def _score_jobs(
    scorer: PairScorer,
    methods: Sequence[str],
    pairs: Sequence[tuple[str, str, str]],
    unrelated: Sequence[str],
    groups: Mapping[str, str] | None,
    progress: ProgressFn | None,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The records of every (parent, child, relation), then of every ordered pair of distinct unrelated models."""
    pair_records: list[dict[str, Any]] = []
    unrelated_records: list[dict[str, Any]] = []
    jobs = [(p, c, r) for p, c, r in pairs] + [(a, b, None) for a in unrelated for b in unrelated if a != b]
    for index, (anchor, other, relation) in enumerate(jobs):
        references, baseline_pairs = _comparators(anchor, other, unrelated, groups)
        for method in methods:
            record = _judge(scorer, method, anchor, other, references, baseline_pairs)
            if relation is None:
                unrelated_records.append({"anchor": anchor, "other": other, **record})
            else:
                pair_records.append({"parent": anchor, "child": other, "relation": relation, **record})
        if progress is not None:
            progress(index + 1, len(jobs), "score pairs")
    return pair_records, unrelated_records


def _comparators(
    anchor: str, other: str, unrelated: Sequence[str], groups: Mapping[str, str] | None
) -> tuple[list[str], list[tuple[str, str]]]:
    """The ModelDiff rule's reference models and the Zest rule's baseline pairs for (anchor, other).

    Neither holds the anchor or the other model; with ``groups``, references come from the other's
    group and baseline pairs (u, v) have u in the anchor's group and v in the other's.
    """
    references = [u for u in unrelated if u not in (anchor, other)]
    baseline_pairs = [(u, v) for u in references for v in references if u != v]
    if groups is not None:
        baseline_pairs = [(u, v) for u, v in baseline_pairs if groups[u] == groups[anchor] and groups[v] == groups[other]]
        references = [u for u in references if groups[u] == groups[other]]
    return references, baseline_pairs


def _judge(
    scorer: PairScorer, method: str, anchor: str, other: str, references: Sequence[str],
    baseline_pairs: Sequence[tuple[str, str]],
) -> dict[str, Any]:
    """One method's record of (anchor, other): its score, the reference scores and both rules' outcomes."""
    kind = METHOD_KINDS[method]
    score = scorer.score(method, anchor, other)
    reference_scores = {u: scorer.score(method, anchor, u) for u in references}
    relative = zest_relative(score, [scorer.score(method, u, v) for u, v in baseline_pairs], kind)
    return {
        "method": method,
        "score": score,
        "reference_scores": reference_scores,
        "modeldiff_rule": modeldiff_rule(score, reference_scores.values(), kind),
        "relative_distance": relative,
        "zest_rule": None if relative is None else bool(relative < 1.0),
    }


def summarize_reuse(
    methods: Sequence[str],
    relations: Sequence[str],
    pair_records: Sequence[Mapping[str, Any]],
    unrelated_records: Sequence[Mapping[str, Any]],
) -> dict[str, Any]:
    """Per method: per relation (mean ± std, both rules' accuracies, AUC) and overall (false positives, AUC).

    Standard deviations are population ones (ddof=0). Undefined rules (None) and NaN scores are
    left out of the counts.
    """
    summary: dict[str, Any] = {}
    for method in methods:
        kind = METHOD_KINDS[method]
        records = [r for r in pair_records if r["method"] == method]
        negatives = [r for r in unrelated_records if r["method"] == method]
        negative_scores = [r["score"] for r in negatives]
        per_relation = {}
        for relation in relations:
            chosen = [r for r in records if r["relation"] == relation]
            scores = [r["score"] for r in chosen]
            per_relation[relation] = {
                "n": len(chosen),
                **mean_std(scores),
                **_rule_counts(chosen, "modeldiff_rule", "accuracy"),
                **_rule_counts(chosen, "zest_rule", "accuracy"),
                "mean_relative_distance": _mean([r["relative_distance"] for r in chosen]),
                "auc": roc_auc(scores, negative_scores, kind),
            }
        summary[method] = {
            "kind": kind,
            "relations": per_relation,
            "overall": {
                "n_related": len(records),
                "n_unrelated": len(negatives),
                "unrelated_scores": mean_std(negative_scores),
                **_rule_counts(records, "modeldiff_rule", "accuracy"),
                **_rule_counts(records, "zest_rule", "accuracy"),
                **_rule_counts(negatives, "modeldiff_rule", "false_positive_rate"),
                **_rule_counts(negatives, "zest_rule", "false_positive_rate"),
                "auc": roc_auc([r["score"] for r in records], negative_scores, kind),
            },
        }
    return summary



def _mean(values: Iterable[float | None]) -> float | None:
    finite = [float(v) for v in values if v is not None and math.isfinite(v)]
    return float(np.mean(finite)) if finite else None


def _rule_counts(records: Sequence[Mapping[str, Any]], rule: str, rate_name: str) -> dict[str, Any]:
    """``{rule}_{rate_name}`` (None when no record is defined), ``{rule}_positive`` and ``{rule}_evaluated``."""
    outcomes = [r[rule] for r in records if r[rule] is not None]
    positive = sum(bool(o) for o in outcomes)
    prefix = rule.removesuffix("_rule")
    suffix = "" if rate_name == "accuracy" else "_unrelated"
    return {
        f"{prefix}_{rate_name}": positive / len(outcomes) if outcomes else None,
        f"{prefix}_positive{suffix}": positive,
        f"{prefix}_evaluated{suffix}": len(outcomes),
    }


def _check_methods(methods: Sequence[str]) -> tuple[str, ...]:
    if isinstance(methods, str):
        methods = (methods,)
    chosen = tuple(methods)
    unknown = [m for m in chosen if m not in METHODS]
    if not chosen or unknown or len(set(chosen)) != len(chosen):
        raise ZestError(f"methods: expected distinct names among {', '.join(METHODS)}, got {list(chosen)}")
    return chosen


def _check_pairs(pairs: Sequence[Any], models: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    if not isinstance(models, Mapping) or not models:
        raise ZestError("models: expected a non-empty mapping of names to models")
    checked = []
    for entry in pairs:
        if not (isinstance(entry, (tuple, list)) and len(entry) == 3 and all(isinstance(v, str) for v in entry)):
            raise ZestError(f"pairs: expected (parent, child, relation) string triples, got {entry!r}")
        parent, child, relation = entry
        missing = [name for name in (parent, child) if name not in models]
        if missing:
            raise ZestError(f"pairs: {', '.join(missing)} not among the models ({', '.join(sorted(models))})")
        if parent == child or not relation:
            raise ZestError(f"pairs: expected a parent, a different child and a relation name, got {entry!r}")
        checked.append((parent, child, relation))
    if not checked:
        raise ZestError("pairs: expected at least one (parent, child, relation)")
    return checked


def _check_unrelated(unrelated: Sequence[str], models: Mapping[str, Any]) -> list[str]:
    names = list(unrelated)
    missing = [name for name in names if name not in models]
    if missing:
        raise ZestError(f"unrelated: {', '.join(map(str, missing))} not among the models")
    if len(names) < 2 or len(set(names)) != len(names):
        raise ZestError(f"unrelated: expected at least 2 distinct independently trained models, got {names}")
    return names


def _check_groups(groups: Mapping[str, str] | None, models: Mapping[str, Any]) -> None:
    if groups is None:
        return
    missing = sorted(set(models) - set(groups))
    if missing:
        raise ZestError(f"groups: expected a group for every model, missing {', '.join(missing[:5])}")
