"""Decision rules of reuse detection: the methods, their kinds, ModelDiff's rule, Zest's relative distance, ROC AUC.

Every function here is pure: it judges scores that it is given.

References
----------
.. [1] Jia, Yaghini, Choquette-Choo, Dullerud, Thudi, Chandrasekaran & Papernot, "A Zest of LIME:
   Towards Architecture-Independent Model Distances", ICLR 2023 (Appendix C: relative distance).
.. [2] Li, Zhang, Liu, Yang & Liu, "ModelDiff: Testing-Based DNN Similarity Comparison for Model
   Reuse Detection", ISSTA 2021 (the correctness rule).
"""
from __future__ import annotations

import math
from typing import Iterable, Sequence

import numpy as np

from .._shared.checks import check_choice
from ..pipeline.distance import ALIGN_CHOICES, METRICS, relative_distance

# The order of relations in reports: the Zest paper's and ModelDiff's reuse types.
RELATION_ORDER = (
    "transfer-10", "transfer-50", "transfer-100",
    "prune-20", "prune-50", "prune-80",
    "quantize", "distill", "steal",
    "transfer+prune", "transfer+quantize", "transfer+distill",
    "permuted", "unlearn-exact", "unlearn-approx",
)
METHODS = ("zest-cosine", "zest-l2", "modeldiff", "sac", "akh", "agreement", "cka")
DEFAULT_METHODS = ("zest-cosine", "zest-l2", "modeldiff", "agreement")
# A distance is smaller for related models, a similarity larger.
METHOD_KINDS = {
    "zest-cosine": "distance",
    "zest-l2": "distance",
    "modeldiff": "similarity",
    "sac": "distance",  # SAC-m's mean |C_A - C_B| of sample correlations (zest_core.methods.sac)
    "akh": "distance",  # QuRD's Hamming distance of labels on the reference's mistakes (zest_core.methods.akh)
    "agreement": "similarity",
    "cka": "similarity",
}
KINDS = ("distance", "similarity")


def as_distance(score: float, kind: str) -> float:
    """A method's score as a distance: itself for a distance, ``1 - s`` for a similarity in [0, 1]."""
    check_choice("kind", kind, KINDS)
    return float(score) if kind == "distance" else 1.0 - float(score)


def modeldiff_rule(score: float, reference_scores: Iterable[float], kind: str) -> bool | None:
    """ModelDiff's correctness rule [2]_: is the pair closer than the anchor is to every unrelated model?

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
    check_choice("kind", kind, KINDS)
    references = [float(r) for r in reference_scores]
    if not references or not math.isfinite(score) or not all(math.isfinite(r) for r in references):
        return None
    if kind == "distance":
        return bool(score < min(references))
    return bool(score > max(references))


def zest_relative(score: float, baseline_scores: Iterable[float], kind: str) -> float | None:
    """Zest's relative distance [1]_: the pair's distance over the mean distance between unrelated models.

    Similarities are turned into distances ``1 - s`` first (:func:`as_distance`). Below 1 means
    related. None when undefined (no baseline, a score that is not finite, a zero mean).
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
    from sklearn.metrics import roc_auc_score  # scikit-learn is slow to import; only reports need it

    positives = [float(s) for s in related if math.isfinite(s)]
    negatives = [float(s) for s in unrelated if math.isfinite(s)]
    if not positives or not negatives:
        return None
    labels = np.r_[np.ones(len(positives)), np.zeros(len(negatives))]
    scores = np.r_[positives, negatives]
    return float(roc_auc_score(labels, -scores if kind == "distance" else scores))


def order_relations(relations: Iterable[str]) -> tuple[str, ...]:
    """Distinct relation names in :data:`RELATION_ORDER`, unknown ones after, in the order met."""
    seen = list(dict.fromkeys(relations))
    known = [r for r in RELATION_ORDER if r in seen]
    return tuple(known + [r for r in seen if r not in RELATION_ORDER])


def check_metric_align(metric: str, align: str) -> None:
    """Check a Zest distance's ``metric`` and ``align`` up front, before any signature is computed."""
    check_choice("metric", metric, METRICS)
    check_choice("align", align, ALIGN_CHOICES)
