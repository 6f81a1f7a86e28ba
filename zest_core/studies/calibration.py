"""The reuse benchmark on the matched null: calibrated verdicts, their measured false-positive rate and power.

For every (source, child, relation) of the zoo, and every method, the child is *audited* against
the source: its distance is judged against the distances from the source to the models trained
independently for the child's task with the child's architecture (:func:`zest_core.zoo.matched_null`),
by :func:`zest_core.explain.significance.decide_related` at level α. That gives the power (TPR at α)
per relation, and the AUC of the related distances against their matched null distances.

The **false-positive rate** is measured with the same procedure on pairs that are unrelated by
construction: every model trained from scratch plays the suspect against every other model trained
from scratch (the reference), outside its lineage. The suspect is never part of its own null (leave
one out): its null is the *other* models of its task and architecture. The fraction called
"related" must be at most α; it is reported with its Clopper–Pearson interval.

A second test is measured on the same negatives for comparison only: the *image-paired* t-test,
which treats the N reference images as independent evidence (per image, is the suspect's local model
closer to the reference's than the unrelated models' are?). Its false-positive rate shows why per-image
evidence cannot replace unrelated models.

References
----------
Li et al., "ModelDiff", ISSTA 2021 (negatives trained from scratch per target dataset, per architecture).
Jia et al., "A Zest of LIME", ICLR 2023; the authors' README (≥ 5 pairs of the same (dataset,
architecture) combinations as the reference distance).
Clopper & Pearson, "The use of confidence or fiducial limits illustrated in the case of the binomial",
Biometrika 1934.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import numpy as np
from scipy import stats

from .._shared.checks import check_number
from ..explain.significance import DEFAULT_ALPHA, decide_related, holm_adjusted
from ..pipeline.distance import compare
from ..zoo.nulls import family, matched_null
from .stats import mean_std
from .rules import METHOD_KINDS, as_distance, order_relations, roc_auc
from .audit import ALL, COMBINED_METHODS
from .scoring import PairScorer

# Methods whose per-image evidence is measured with the image-paired test.
IMAGE_TEST_METHODS = ("zest-cosine",)


@dataclass(frozen=True)
class CalibrationResult:
    """Every audited comparison, and per method the power, the false-positive rate and the AUC.

    Attributes
    ----------
    methods, relations : tuple of str
    alpha : float
    related : tuple of dict
        One record per (source, child, relation) and method: ``distance``, ``null`` (the unrelated
        models), ``null_distances``, ``p_value``, ``rank_p_value``, ``verdict``.
    negatives : tuple of dict
        The same for every (reference, suspect) pair of models trained from scratch, outside each
        other's lineage; ``image_p_value`` for the image-paired test where measured.
    summary : dict
        ``summary[method]["relations"][relation]`` and ``summary[method]["overall"]``.
    metadata : dict
        The settings, and ``queries[method][model]``: the queries each method made of each model,
        measured (:meth:`~zest_core.studies.PairScorer.query_report`).
    """

    methods: tuple[str, ...]
    relations: tuple[str, ...]
    alpha: float
    related: tuple[dict[str, Any], ...]
    negatives: tuple[dict[str, Any], ...]
    summary: dict[str, Any]
    metadata: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "methods": list(self.methods), "relations": list(self.relations), "alpha": self.alpha,
            "related": list(self.related), "negatives": list(self.negatives), "summary": self.summary,
            "metadata": self.metadata,
        }


def calibrated_reuse_benchmark(
    zoo: Any,
    scorer: PairScorer,
    *,
    methods: Sequence[str],
    alpha: float = DEFAULT_ALPHA,
    image_test: bool = True,
    progress: Callable[[int, int, str], None] | None = None,
) -> CalibrationResult:
    """Audit every zoo pair and every unrelated pair with every method, against the matched null.

    Parameters
    ----------
    zoo : Zoo
        Its manifest says what every model is (relation, task, architecture, lineage).
    scorer : PairScorer
        Scores of the zoo's models on one reference set and config.
    methods : sequence of str
        Methods of :data:`zest_core.studies.rules.METHODS`.
    alpha : float, default 0.05
    image_test : bool, default True
        Also measure the image-paired t-test on the negatives (for comparison only; it costs a
        per-image comparison with every null model).
    progress : callable (done, total, stage), optional

    Returns
    -------
    CalibrationResult
    """
    alpha = check_number("alpha", alpha, minimum=0.0, maximum=1.0, strict=True)
    related_jobs = [(p, c, r) for p, c, r in zoo.pairs()]
    scratch = zoo.independent()
    negative_jobs = [(p, s, None) for p in scratch for s in scratch if p != s and s not in family(zoo, p)]
    jobs = related_jobs + negative_jobs
    related: list[dict[str, Any]] = []
    negatives: list[dict[str, Any]] = []
    image_memo: dict[tuple[str, str], np.ndarray] = {}
    for index, (reference, suspect, relation) in enumerate(jobs):
        null = matched_null(zoo, reference, suspect)
        for method in methods:
            record = _audit_record(scorer, method, reference, suspect, null.models, alpha)
            if relation is None:
                if image_test and method in IMAGE_TEST_METHODS:
                    record["image_p_value"] = image_paired_p_value(scorer, reference, suspect, null.models,
                                                                   memo=image_memo)
                negatives.append(record)
            else:
                related.append({"relation": relation, **record})
        if progress is not None:
            progress(index + 1, len(jobs), "audit pairs")
    if set(COMBINED_METHODS) <= set(methods):
        methods = [*methods, ALL]
        related += combined_records(related, alpha)
        negatives += combined_records(negatives, alpha)
    relations = order_relations(r for _, _, r in related_jobs)
    summary = summarize_calibration(methods, relations, related, negatives, alpha)
    metadata = {"notes": scorer.notes, "references": scratch, "config": scorer.config.to_dict(),
                "refset": scorer.refset.describe(), "align": scorer.align,
                "queries": scorer.query_report([m for m in methods if m != ALL])}
    return CalibrationResult(tuple(methods), relations, alpha, tuple(related), tuple(negatives), summary, metadata)


def combined_records(records: Sequence[Mapping[str, Any]], alpha: float) -> list[dict[str, Any]]:
    """The ``zest audit --method all`` verdict of every audited pair: Holm over :data:`COMBINED_METHODS`' p-values.

    Its "distance" is the combined p-value (smaller is more related), so the pooled AUC ranks pairs by
    it; it has no null distances, hence no matched AUC.
    """
    by_pair: dict[tuple[str, str], dict[str, Mapping[str, Any]]] = {}
    for record in records:
        if record["method"] in COMBINED_METHODS:
            by_pair.setdefault((record["reference"], record["suspect"]), {})[record["method"]] = record
    combined = []
    for (reference, suspect), mine in by_pair.items():
        adjusted = [p for p in holm_adjusted({m: r["p_value"] for m, r in mine.items()}).values() if p is not None]
        p = min(adjusted) if adjusted else None
        verdict = "inconclusive" if p is None else ("related" if p < alpha else "not detected")
        first = next(iter(mine.values()))
        extra = {"relation": first["relation"]} if "relation" in first else {}
        combined.append({**extra, "method": ALL, "reference": reference, "suspect": suspect,
                         "distance": 1.0 if p is None else p, "null": [], "null_distances": [], "p_value": p,
                         "rank_p_value": None, "verdict": verdict})
    return combined


def _audit_record(scorer: PairScorer, method: str, reference: str, suspect: str, null: Sequence[str],
                  alpha: float) -> dict[str, Any]:
    kind = METHOD_KINDS[method]
    distance = as_distance(scorer.score(method, reference, suspect), kind)
    null_distances = [as_distance(scorer.score(method, reference, u), kind) for u in null]
    finite = math.isfinite(distance) and all(math.isfinite(d) for d in null_distances)
    decision = decide_related(distance, null_distances, alpha=alpha) if finite else None
    return {
        "method": method, "reference": reference, "suspect": suspect, "distance": distance,
        "null": list(null), "null_distances": null_distances,
        "p_value": None if decision is None else decision.p_value,
        "rank_p_value": None if decision is None else decision.rank_p_value,
        "verdict": "inconclusive" if decision is None else decision.verdict,
    }


def image_paired_p_value(scorer: PairScorer, reference: str, suspect: str, null: Sequence[str], *,
                         memo: dict[tuple[str, str], np.ndarray] | None = None) -> float | None:
    """One-sided t-test over images of ``mean_j d_n(P, U_j) − d_n(P, S) > 0`` (images as independent evidence).

    ``d_n`` is the cosine distance between the class-aligned local models of image n. Measured for
    comparison only: it ignores that all images of one suspect share its training run. ``memo`` keeps
    each (reference, model) pair's per-image distances, which every suspect of that reference reuses.
    """
    if len(null) < 2:
        return None
    memo = {} if memo is None else memo

    def parts(other: str) -> np.ndarray:
        if (reference, other) not in memo:
            memo[(reference, other)] = _image_distances(scorer.signature(reference), scorer.signature(other),
                                                        scorer.align)
        return memo[(reference, other)]

    suspect_parts = parts(suspect)
    null_parts = np.mean([parts(u) for u in null], axis=0)
    differences = null_parts - suspect_parts
    if np.ptp(differences) == 0:
        return None
    return float(stats.ttest_1samp(differences, 0.0, alternative="greater").pvalue)


def _image_distances(sig_a: Any, sig_b: Any, align: str) -> np.ndarray:
    """Cosine distance of every image's class-aligned local models."""
    comparison = compare(sig_a, sig_b, metric="cosine", align=align)
    a, b, starts = comparison.matrix_a, comparison.matrix_b, comparison.image_columns[:-1]
    # Per-column sums, then one segmented sum per image's column block.
    dots = np.add.reduceat((a * b).sum(axis=0), starts)
    norms = np.sqrt(np.add.reduceat((a * a).sum(axis=0), starts) * np.add.reduceat((b * b).sum(axis=0), starts))
    return 1.0 - dots / np.maximum(norms, 1e-300)


def summarize_calibration(
    methods: Sequence[str],
    relations: Sequence[str],
    related: Sequence[Mapping[str, Any]],
    negatives: Sequence[Mapping[str, Any]],
    alpha: float,
) -> dict[str, Any]:
    """Per method and relation: AUC against the matched null, TPR at α, mean ± std; overall FPR with its interval."""
    summary: dict[str, Any] = {}
    for method in methods:
        mine = [r for r in related if r["method"] == method]
        negs = [r for r in negatives if r["method"] == method]
        per_relation = {relation: _relation_summary([r for r in mine if r["relation"] == relation], negs)
                        for relation in relations}
        overall = {
            "false_positive": clopper_pearson_rate([r["verdict"] == "related" for r in negs if r["verdict"] != "inconclusive"]),
            "inconclusive_negatives": sum(r["verdict"] == "inconclusive" for r in negs),
            "true_positive": clopper_pearson_rate([r["verdict"] == "related" for r in mine]),
            "auc_matched": _matched_auc(mine),
            "auc_pooled": roc_auc([r["distance"] for r in mine], [r["distance"] for r in negs], "distance"),
        }
        if method in IMAGE_TEST_METHODS:
            image = [r.get("image_p_value") for r in negs if r.get("image_p_value") is not None]
            overall["image_paired_false_positive"] = clopper_pearson_rate([p < alpha for p in image])
        summary[method] = {"relations": per_relation, "overall": overall}
    return summary


def _relation_summary(records: Sequence[Mapping[str, Any]], negatives: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    distances = [r["distance"] for r in records]
    null = [d for r in records for d in r["null_distances"]]
    return {
        "n": len(records),
        "distance": mean_std(distances),
        "null_distance": mean_std(null),
        "auc_matched": _matched_auc(records),
        "auc_pooled": roc_auc(distances, [r["distance"] for r in negatives], "distance"),
        "true_positive": clopper_pearson_rate([r["verdict"] == "related" for r in records]),
        "inconclusive": sum(r["verdict"] == "inconclusive" for r in records),
        "null_sizes": sorted({len(r["null"]) for r in records}),
    }


def _matched_auc(records: Sequence[Mapping[str, Any]]) -> float | None:
    """AUC of the related distances against the null distances of the same comparisons (smaller = related)."""
    related = [r["distance"] for r in records]
    null = [d for r in records for d in r["null_distances"]]
    return roc_auc(related, null, "distance") if related and null else None


def clopper_pearson_rate(outcomes: Sequence[bool]) -> dict[str, Any]:
    """Count, rate and the 95% Clopper–Pearson interval of a list of yes/no outcomes."""
    n, k = len(outcomes), int(sum(outcomes))
    if n == 0:
        return {"k": 0, "n": 0, "rate": None, "ci95": None}
    low = 0.0 if k == 0 else float(stats.beta.ppf(0.025, k, n - k + 1))
    high = 1.0 if k == n else float(stats.beta.ppf(0.975, k + 1, n - k))
    return {"k": k, "n": n, "rate": k / n, "ci95": [low, high]}
