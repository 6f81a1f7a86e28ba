"""Benchmarks: reuse detection, and the Zest paper's studies of training epochs, reference-set size and uncertainty.

Every function here is a pure computation on models, reference sets and signatures that it is
given; where the models come from (a zoo, files, training) is the caller's business, and so are the
figures. The only I/O is :func:`write_reuse_report`.

- :func:`reuse_benchmark`: for (parent, child, relation) pairs and independently trained models,
  the score of every method on every pair, and how well each method tells reuse from independence
  (ModelDiff's and Zest's decision rules, false positives, ROC AUC).
- :func:`epoch_curves`: distance between checkpoints t and t+k of one training run, and between
  checkpoint t of two unrelated runs.
- :func:`refsize_study`: the distance as a function of the number of reference images.
- :func:`bootstrap_distance_interval`: a confidence interval for a distance, by resampling images.

References
----------
.. [1] Jia, Yaghini, Choquette-Choo, Dullerud, Thudi, Chandrasekaran & Papernot, "A Zest of LIME:
   Towards Architecture-Independent Model Distances", ICLR 2023 (reuse detection; App. C: relative distance).
.. [2] Li, Zhang, Liu, Yang & Liu, "ModelDiff: Testing-Based DNN Similarity Comparison for Model
   Reuse Detection", ISSTA 2021 (the reuse benchmark and its correctness rule).
.. [3] Efron & Tibshirani, "An Introduction to the Bootstrap", 1993 (percentile intervals).
"""
from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np

from ..pipeline.alignment import class_cost_matrix, match_classes
from ..methods.baselines import NotComparableError, linear_cka, model_features, resolve_class_mapping, agreement_rate
from ..cache.store import SignatureCache, atomic_write_bytes
from ..pipeline.config import ZestConfig
from ..pipeline.distance import METRICS, alignment_method, check_compatible, relative_distance, vector_distance, zest_distance
from ..methods.modeldiff import ModelDiff, PairsCache, query_scores, search_params
from ..pipeline.reference import ReferenceSet, draw_indices
from ..explain.uncertainty import bootstrap_distance_interval, bootstrap_distances  # noqa: F401 - re-exported
from ..pipeline.signature import Signature, compute_signature, restrict_signature

ProgressFn = Callable[[int, int, str], None]
CacheArg = SignatureCache | PairsCache | str | os.PathLike | bool | None

# The order of relations in reports: the Zest paper's and ModelDiff's reuse types.
RELATION_ORDER = (
    "transfer-10", "transfer-50", "transfer-100",
    "prune-20", "prune-50", "prune-80",
    "quantize", "distill", "steal",
    "transfer+prune", "transfer+quantize", "transfer+distill",
    "permuted", "unlearn-exact", "unlearn-approx",
)
METHODS = ("zest-cosine", "zest-l2", "modeldiff", "agreement", "cka")
DEFAULT_METHODS = ("zest-cosine", "zest-l2", "modeldiff", "agreement")
# A distance is smaller for related models, a similarity larger.
METHOD_KINDS = {
    "zest-cosine": "distance",
    "zest-l2": "distance",
    "modeldiff": "similarity",
    "agreement": "similarity",
    "cka": "similarity",
}


# --------------------------------------------------------------------------------------------------
# Decision rules (pure)
# --------------------------------------------------------------------------------------------------


def as_distance(score: float, kind: str) -> float:
    """A method's score as a distance: itself for a distance, ``1 - s`` for a similarity in [0, 1]."""
    if kind == "distance":
        return float(score)
    if kind == "similarity":
        return 1.0 - float(score)
    raise ValueError(f"kind: expected 'distance' or 'similarity', got {kind!r}")


def modeldiff_rule(score: float, reference_scores: Iterable[float], kind: str) -> bool | None:
    """ModelDiff's correctness rule: is the pair closer than the anchor is to every unrelated model?

    Parameters
    ----------
    score : float
        The method's score of (anchor, suspect), e.g. (parent, child).
    reference_scores : iterable of float
        Its scores of (anchor, u) for every unrelated model u.
    kind : {"distance", "similarity"}
        "Closer" is a strictly smaller distance, or a strictly larger similarity.

    Returns
    -------
    bool, or None when undefined (no reference, or a score that is not finite)
    """
    references = [float(r) for r in reference_scores]
    if not references or not math.isfinite(score) or not all(math.isfinite(r) for r in references):
        return None
    if kind == "distance":
        return bool(score < min(references))
    if kind == "similarity":
        return bool(score > max(references))
    raise ValueError(f"kind: expected 'distance' or 'similarity', got {kind!r}")


def zest_relative(score: float, baseline_scores: Iterable[float], kind: str) -> float | None:
    """Zest's relative distance: the pair's distance over the mean distance between unrelated models.

    Similarities are turned into distances ``1 - s`` first (:func:`as_distance`). Below 1 means
    related [1]_. None when undefined (no baseline, a score that is not finite, a zero mean).

    References
    ----------
    .. [1] Jia et al., "A Zest of LIME", ICLR 2023, Appendix C.
    """
    baseline = [as_distance(b, kind) for b in baseline_scores]
    if not baseline or not math.isfinite(score) or not all(math.isfinite(b) for b in baseline):
        return None
    if float(np.mean(baseline)) <= 0:
        return None
    return relative_distance(as_distance(score, kind), baseline)


def roc_auc(related: Sequence[float], unrelated: Sequence[float], kind: str) -> float | None:
    """ROC AUC of telling related pairs from unrelated ones by a score (None without both classes).

    Scores that are not finite are left out. A distance is negated so that a larger value means
    "related" for both kinds; ties count one half (``sklearn.metrics.roc_auc_score``).
    """
    from sklearn.metrics import roc_auc_score

    positives = [float(s) for s in related if math.isfinite(s)]
    negatives = [float(s) for s in unrelated if math.isfinite(s)]
    if not positives or not negatives:
        return None
    labels = np.r_[np.ones(len(positives)), np.zeros(len(negatives))]
    scores = np.r_[positives, negatives]
    return float(roc_auc_score(labels, -scores if kind == "distance" else scores))


# --------------------------------------------------------------------------------------------------
# The reuse benchmark
# --------------------------------------------------------------------------------------------------


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
        The config, the reference set, the ModelDiff options, the model lists, and notes (e.g. a
        baseline that could not compare two models).
    """

    methods: tuple[str, ...]
    relations: tuple[str, ...]
    pairs: tuple[dict[str, Any], ...]
    unrelated_pairs: tuple[dict[str, Any], ...]
    scores: dict[tuple[str, str, str], float]
    summary: dict[str, Any]
    metadata: dict[str, Any] = field(default_factory=dict)

    def kind(self, method: str) -> str:
        return METHOD_KINDS[method]

    def score(self, method: str, a: str, b: str) -> float:
        """The score of models ``a`` and ``b`` (``a`` the source, for ModelDiff) by ``method``."""
        return self.scores[_score_key(method, a, b)]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable copy (NaN becomes None)."""
        return _jsonable({
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
        return _reuse_markdown(self)


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

    For each method and each (parent, child, relation):

    - the score of (parent, child): a distance for Zest (cosine or L2 between signatures, classes
      matched as ``align`` says), a similarity for ModelDiff (pairs generated on the parent, the child a
      black box), top-1 agreement and CKA;
    - **ModelDiff's rule** [2]_: correct when the child is closer to the parent than every unrelated
      model is (``score(parent, child)`` beats ``score(parent, u)`` for every u in ``unrelated``
      other than the parent and the child). The parent is the anchor because ModelDiff's pairs
      come from the parent, the model its owner has white-box access to;
    - **Zest's rule** [1]_: relative distance ``d(parent, child) / mean d(u, v)`` below 1, the mean
      over the ordered pairs of distinct unrelated models other than the parent and the child (a
      parent listed among the unrelated models never sits in its own baseline). Similarities s are
      used as distances 1 − s.

    Each ordered pair (a, b) of distinct unrelated models goes through the same two rules with a
    as the parent and b as the child (so excluding both from the references and the baseline); a
    rule that says "related" there is a false positive. Both rules are relative, and their false
    positive rates are largely fixed by construction: with k unrelated models and no ties, the
    ModelDiff rule flags exactly one of the k − 1 others per anchor (a rate of 1/(k − 1)), and the
    Zest rule flags the unrelated pairs below the mean of the others (about half). ROC AUC, which
    compares the scores of the related pairs with those of the unrelated pairs, has no threshold
    (ordered pairs, so for symmetric methods each unordered pair counts twice, which leaves the
    AUC unchanged).

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
    ValueError
        Naming the argument, for unknown models or methods, malformed pairs, or fewer than two
        unrelated models.

    References
    ----------
    .. [1] Jia et al., "A Zest of LIME", ICLR 2023 (reuse detection; Appendix C, relative distance).
    .. [2] Li et al., "ModelDiff", ISSTA 2021 (correctness of reuse detection).
    """
    methods = _check_methods(methods)
    pairs = _check_pairs(pairs, models)
    unrelated = _check_unrelated(unrelated, models)
    if not isinstance(refset, ReferenceSet):
        raise ValueError(f"refset: expected a ReferenceSet, got {type(refset).__name__}")
    config = config or ZestConfig()
    if not isinstance(config, ZestConfig):
        raise ValueError(f"config: expected a ZestConfig, got {type(config).__name__}")
    _check_metric_align("cosine", align)
    options = search_params(**dict(modeldiff_options or {}))
    scorer = _Scorer(models, refset, config, align, options, cache, progress)

    pair_records: list[dict[str, Any]] = []
    unrelated_records: list[dict[str, Any]] = []
    jobs = [(p, c, r) for p, c, r in pairs] + [(a, b, None) for a in unrelated for b in unrelated if a != b]
    if groups is not None:
        missing = sorted(set(models) - set(groups))
        if missing:
            raise ValueError(f"groups: expected a group for every model, missing {', '.join(missing[:5])}")
    for index, (anchor, other, relation) in enumerate(jobs):
        others = [u for u in unrelated if u not in (anchor, other)]
        baseline_pairs = [(u, v) for u in others for v in others if u != v]
        if groups is not None:
            baseline_pairs = [(u, v) for u, v in baseline_pairs if groups[u] == groups[anchor] and groups[v] == groups[other]]
            others = [u for u in others if groups[u] == groups[other]]
        for method in methods:
            kind = METHOD_KINDS[method]
            score = scorer.score(method, anchor, other)
            references = {u: scorer.score(method, anchor, u) for u in others}
            relative = zest_relative(score, [scorer.score(method, u, v) for u, v in baseline_pairs], kind)
            record = {
                "method": method,
                "score": score,
                "reference_scores": references,
                "modeldiff_rule": modeldiff_rule(score, references.values(), kind),
                "relative_distance": relative,
                "zest_rule": None if relative is None else bool(relative < 1.0),
            }
            if relation is None:
                unrelated_records.append({"anchor": anchor, "other": other, **record})
            else:
                pair_records.append({"parent": anchor, "child": other, "relation": relation, **record})
        if progress is not None:
            progress(index + 1, len(jobs), "score pairs")

    relations = order_relations(r for _, _, r in pairs)
    summary = summarize_reuse(methods, relations, pair_records, unrelated_records)
    metadata = {
        "config": config.to_dict(),
        "align": align,
        "refset": refset.describe(),
        "modeldiff_options": options,
        "models": sorted(set(name for p, c, _ in pairs for name in (p, c)) | set(unrelated)),
        "unrelated": list(unrelated),
        "groups": None if groups is None else dict(groups),
        "notes": scorer.notes,
    }
    return ReuseResult(
        methods=methods, relations=relations, pairs=tuple(pair_records), unrelated_pairs=tuple(unrelated_records),
        scores=dict(scorer.memo), summary=summary, metadata=metadata,
    )


def order_relations(relations: Iterable[str]) -> tuple[str, ...]:
    """Distinct relation names in :data:`RELATION_ORDER`, unknown ones after, in the order met."""
    seen: list[str] = []
    for relation in relations:
        if relation not in seen:
            seen.append(relation)
    known = [r for r in RELATION_ORDER if r in seen]
    return tuple(known + [r for r in seen if r not in RELATION_ORDER])


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
                **_mean_std(scores),
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
                "unrelated_scores": _mean_std(negative_scores),
                **_rule_counts(records, "modeldiff_rule", "accuracy"),
                **_rule_counts(records, "zest_rule", "accuracy"),
                **_rule_counts(negatives, "modeldiff_rule", "false_positive_rate"),
                **_rule_counts(negatives, "zest_rule", "false_positive_rate"),
                "auc": roc_auc([r["score"] for r in records], negative_scores, kind),
            },
        }
    return summary


def write_reuse_report(result: ReuseResult, out_dir: str | os.PathLike) -> dict[str, Path]:
    """Write ``report.md`` and ``report.json`` into ``out_dir``, each atomically; returns their paths."""
    folder = Path(out_dir)
    paths = {"markdown": folder / "report.md", "json": folder / "report.json"}
    atomic_write_bytes(paths["markdown"], result.to_markdown().encode())
    atomic_write_bytes(paths["json"], json.dumps(result.to_dict(), indent=2, allow_nan=False).encode())
    return paths


class _Scorer:
    """Computes each (method, a, b) score once; signatures, ModelDiff detectors and model outputs once per model."""

    def __init__(self, models, refset, config, align, options, cache, progress) -> None:
        self.models = models
        self.refset = refset
        self.config = config
        self.align = align
        self.options = options
        self.cache = cache
        self.progress = progress
        self.memo: dict[tuple[str, str, str], float] = {}
        self.notes: list[str] = []
        self._signatures: dict[str, Signature] = {}
        self._detectors: dict[str, ModelDiff] = {}
        self._scores: dict[str, np.ndarray] = {}
        self._features: dict[str, np.ndarray] = {}

    def score(self, method: str, a: str, b: str) -> float:
        key = _score_key(method, a, b)
        if key not in self.memo:
            self.memo[key] = self._compute(method, a, b)
        return self.memo[key]

    def _compute(self, method: str, a: str, b: str) -> float:
        if method in ("zest-cosine", "zest-l2"):
            metric = "cosine" if method == "zest-cosine" else "l2"
            return zest_distance(self._signature(a), self._signature(b), metric=metric, align=self.align)
        if method == "modeldiff":
            return self._detector(a).compare(self.models[b])
        try:
            if method == "agreement":
                scores_a, scores_b = self._outputs(a), self._outputs(b)
                mapping = resolve_class_mapping(
                    self.models[a], self.models[b], scores_a.shape[1], scores_b.shape[1]
                )
                return agreement_rate(scores_a.argmax(axis=1), scores_b.argmax(axis=1), class_mapping=mapping)
            if method == "cka":
                return linear_cka(self._representation(a), self._representation(b))
        except NotComparableError as error:
            self.notes.append(f"{method}({a}, {b}): not computed: {error}")
            return math.nan
        raise ValueError(f"methods: unknown method {method!r}")

    def _signature(self, name: str) -> Signature:
        if name not in self._signatures:
            self._signatures[name] = compute_signature(
                self.models[name], self.refset, self.config, _staged(self.progress, f"signature {name}: "),
                cache=_signature_cache(self.cache),
            )
        return self._signatures[name]

    def _detector(self, name: str) -> ModelDiff:
        if name not in self._detectors:
            self._detectors[name] = ModelDiff(
                self.models[name], self.refset, **self.options, batch_size=self.config.batch_size,
                device=self.config.device, cache=self.cache, progress=_staged(self.progress, f"{name}: "),
            )
        return self._detectors[name]

    def _outputs(self, name: str) -> np.ndarray:
        if name not in self._scores:
            self._scores[name] = query_scores(
                self.models[name], self.refset.as_tensor(), batch_size=self.config.batch_size, device=self.config.device
            )
        return self._scores[name]

    def _representation(self, name: str) -> np.ndarray:
        if name not in self._features:
            self._features[name] = model_features(
                self.models[name], self.refset.as_tensor(), batch_size=self.config.batch_size,
                device=self.config.device, name=name,
            )
        return self._features[name]


def _score_key(method: str, a: str, b: str) -> tuple[str, str, str]:
    """ModelDiff is oriented (pairs come from ``a``); every other method is symmetric."""
    if method == "modeldiff":
        return (method, a, b)
    first, second = sorted((a, b))
    return (method, first, second)


def _signature_cache(cache: CacheArg) -> SignatureCache | str | os.PathLike | bool | None:
    return SignatureCache(cache.root) if isinstance(cache, PairsCache) else cache


def _staged(progress: ProgressFn | None, prefix: str) -> ProgressFn | None:
    if progress is None:
        return None
    return lambda done, total, stage: progress(done, total, f"{prefix}{stage}")


def _mean(values: Iterable[float | None]) -> float | None:
    finite = [float(v) for v in values if v is not None and math.isfinite(v)]
    return float(np.mean(finite)) if finite else None


def _mean_std(values: Sequence[float]) -> dict[str, float | None]:
    finite = [float(v) for v in values if math.isfinite(v)]
    if not finite:
        return {"mean": None, "std": None}
    return {"mean": float(np.mean(finite)), "std": float(np.std(finite))}


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
        raise ValueError(f"methods: expected distinct names among {', '.join(METHODS)}, got {list(chosen)}")
    return chosen


def _check_pairs(pairs: Sequence[Any], models: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    if not isinstance(models, Mapping) or not models:
        raise ValueError("models: expected a non-empty mapping of names to models")
    checked = []
    for entry in pairs:
        if not (isinstance(entry, (tuple, list)) and len(entry) == 3 and all(isinstance(v, str) for v in entry)):
            raise ValueError(f"pairs: expected (parent, child, relation) string triples, got {entry!r}")
        parent, child, relation = entry
        missing = [name for name in (parent, child) if name not in models]
        if missing:
            raise ValueError(f"pairs: {', '.join(missing)} not among the models ({', '.join(sorted(models))})")
        if parent == child or not relation:
            raise ValueError(f"pairs: expected a parent, a different child and a relation name, got {entry!r}")
        checked.append((parent, child, relation))
    if not checked:
        raise ValueError("pairs: expected at least one (parent, child, relation)")
    return checked


def _check_unrelated(unrelated: Sequence[str], models: Mapping[str, Any]) -> list[str]:
    names = list(unrelated)
    missing = [name for name in names if name not in models]
    if missing:
        raise ValueError(f"unrelated: {', '.join(map(str, missing))} not among the models")
    if len(names) < 2 or len(set(names)) != len(names):
        raise ValueError(f"unrelated: expected at least 2 distinct independently trained models, got {names}")
    return names


# --------------------------------------------------------------------------------------------------
# The markdown report
# --------------------------------------------------------------------------------------------------


def _reuse_markdown(result: ReuseResult) -> str:
    methods = result.methods
    arrows = {m: "↓" if METHOD_KINDS[m] == "distance" else "↑" for m in methods}
    refset = result.metadata.get("refset", {})
    lines = [
        "# Reuse detection benchmark",
        "",
        f"Reference set: {refset.get('n', '?')} images ({refset.get('provenance', '?')}). "
        f"Unrelated models: {', '.join(result.metadata.get('unrelated', []))}. "
        "Distances ↓ (smaller means related), similarities ↑.",
        "",
        "## Scores (mean ± std over the pairs)",
        "",
        _table_header(["relation", "pairs"] + [f"{m} {arrows[m]}" for m in methods]),
    ]
    for relation in result.relations:
        cells = [_mean_std_text(result.summary[m]["relations"][relation]) for m in methods]
        lines.append(_row([relation, str(result.summary[methods[0]]["relations"][relation]["n"])] + cells))
    unrelated_cells = [_mean_std_text(result.summary[m]["overall"]["unrelated_scores"]) for m in methods]
    n_unrelated = result.summary[methods[0]]["overall"]["n_unrelated"]
    lines.append(_row(["*unrelated pairs*", str(n_unrelated)] + unrelated_cells))

    for rule, title in (
        ("modeldiff", "ModelDiff rule: the child is closer to the parent than every unrelated model is"),
        ("zest", "Zest rule: relative distance d(parent, child) / mean d(unrelated pairs) < 1"),
    ):
        lines += ["", f"## Accuracy, {title}", "", _table_header(["relation"] + list(methods))]
        for relation in result.relations:
            stats = [result.summary[m]["relations"][relation] for m in methods]
            lines.append(_row([relation] + [
                _rate_text(s[f"{rule}_accuracy"], s[f"{rule}_positive"], s[f"{rule}_evaluated"]) for s in stats
            ]))
        overall = [result.summary[m]["overall"] for m in methods]
        lines.append(_row(["**all related pairs**"] + [
            _rate_text(o[f"{rule}_accuracy"], o[f"{rule}_positive"], o[f"{rule}_evaluated"]) for o in overall
        ]))
        lines.append(_row(["*false positives (unrelated pairs)*"] + [
            _rate_text(o[f"{rule}_false_positive_rate"], o[f"{rule}_positive_unrelated"],
                       o[f"{rule}_evaluated_unrelated"]) for o in overall
        ]))

    k = len(result.metadata.get("unrelated", []))
    lines += [
        "",
        f"Both rules are relative. With {k} unrelated models and no ties, the ModelDiff rule flags one of the "
        f"{k - 1} others per anchor ({100 / max(k - 1, 1):.0f}% of the unrelated pairs) by construction, and "
        "the Zest rule flags the unrelated pairs closer than the mean of the others (about half).",
    ]
    lines += ["", "## ROC AUC, the relation's pairs against the unrelated pairs", "",
              _table_header(["relation"] + list(methods))]
    for relation in result.relations:
        lines.append(_row([relation] + [_number(result.summary[m]["relations"][relation]["auc"]) for m in methods]))
    lines.append(_row(["**all related pairs**"] + [_number(result.summary[m]["overall"]["auc"]) for m in methods]))
    notes = result.metadata.get("notes") or []
    if notes:
        lines += ["", "## Notes", ""] + [f"- {note}" for note in notes]
    return "\n".join(lines) + "\n"


def _table_header(columns: Sequence[str]) -> str:
    return _row(columns) + "\n" + _row(["---"] * len(columns))


def _row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _number(value: float | None) -> str:
    return "n/a" if value is None or not math.isfinite(value) else f"{value:.3f}"


def _mean_std_text(stats: Mapping[str, Any]) -> str:
    if stats.get("mean") is None:
        return "n/a"
    return f"{stats['mean']:.4g} ± {stats['std']:.2g}"


def _rate_text(rate: float | None, positive: int, evaluated: int) -> str:
    return "n/a" if rate is None else f"{100 * rate:.0f}% ({positive}/{evaluated})"


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (np.floating, float)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist())
    return value


# --------------------------------------------------------------------------------------------------
# Training-time curves
# --------------------------------------------------------------------------------------------------


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
        return _jsonable(self.__dict__)


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

    References
    ----------
    .. [1] Jia et al., "A Zest of LIME", ICLR 2023 (distances along training).
    """
    first, second = list(checkpoints_a), list(checkpoints_unrelated)
    if not first:
        raise ValueError("checkpoints_a: expected at least one checkpoint")
    _check_int("k", k, minimum=1)
    if k >= len(first):
        raise ValueError(f"k: expected 1 <= k < {len(first)} (the checkpoints of run a), got {k}")
    labels = list(range(len(first))) if epochs is None else [int(e) for e in epochs]
    if len(labels) != len(first):
        raise ValueError(f"epochs: expected {len(first)} labels (one per checkpoint of run a), got {len(labels)}")
    _check_metric_align(metric, align)
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


# --------------------------------------------------------------------------------------------------
# Reference-set size
# --------------------------------------------------------------------------------------------------


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
        return self.distances.mean(axis=1)

    @property
    def std(self) -> np.ndarray:
        """Population standard deviation over the repeats (ddof=0)."""
        return self.distances.std(axis=1)

    def to_dict(self) -> dict[str, Any]:
        return _jsonable({
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
        drawn images' local models (:func:`restrict_signature`): as many queries as one signature.
        The drawn images keep the masks of their place in the pool and, with
        ``fill="dataset_mean"``, the pool's mean fill: a fixed fill, as in the authors' code,
        where hidden super-pixels are set to the training data's mean. "recompute" computes both
        signatures on every drawn set: exact for that set, ``len(sizes) * repeats`` times dearer.
    cache, progress
        As in :func:`~zest_core.compute_signature`.

    Returns
    -------
    RefsizeStudy

    References
    ----------
    .. [1] Jia et al., "A Zest of LIME", ICLR 2023 (number of reference images).
    """
    if not isinstance(refset, ReferenceSet):
        raise ValueError(f"refset: expected a ReferenceSet, got {type(refset).__name__}")
    pool = len(refset)
    chosen = [2**e for e in range(int(math.log2(pool)) + 1)] if sizes is None else list(sizes)
    valid = [not isinstance(n, bool) and isinstance(n, (int, np.integer)) and 1 <= n <= pool for n in chosen]
    if not chosen or not all(valid):
        raise ValueError(f"sizes: expected integers in [1, {pool}] (the reference images), got {list(chosen)}")
    _check_int("repeats", repeats, minimum=1)
    _check_int("seed", seed, minimum=0)
    _check_metric_align(metric, align)
    if method not in ("restrict", "recompute"):
        raise ValueError(f"method: expected 'restrict' or 'recompute', got {method!r}")
    config = config or ZestConfig()
    distances = np.empty((len(chosen), repeats))
    full = None
    if method == "restrict":
        full = [compute_signature(m, refset, config, cache=cache) for m in (model_a, model_b)]
    total = len(chosen) * repeats
    for row, n in enumerate(chosen):
        for r in range(repeats):
            index = draw_indices(pool, int(n), refset.labels, np.random.default_rng([seed, int(n), r]))
            if full is not None:
                sig_a, sig_b = (restrict_signature(s, index) for s in full)
            else:
                subset = refset.subset(index)
                sig_a, sig_b = (compute_signature(m, subset, config, cache=cache) for m in (model_a, model_b))
            distances[row, r] = zest_distance(sig_a, sig_b, metric, align)
            if progress is not None:
                progress(row * repeats + r + 1, total, "reference-set sizes")
    return RefsizeStudy(
        sizes=tuple(int(n) for n in chosen), distances=distances, metric=metric, align=align, method=method
    )


def _check_int(name: str, value: Any, *, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name}: expected an int >= {minimum}, got {value!r}")


def _check_metric_align(metric: str, align: str) -> None:
    if metric not in METRICS:
        raise ValueError(f"metric: expected one of {', '.join(METRICS)}, got {metric!r}")
    if align not in ("auto", "none", "greedy", "hungarian"):
        raise ValueError(f"align: expected 'auto', 'none', 'greedy' or 'hungarian', got {align!r}")
