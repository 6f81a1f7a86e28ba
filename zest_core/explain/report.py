"""One comparison as a JSON-ready report: models, reference set, config, distance, verdict and its parts."""
from __future__ import annotations

import math
import os
from typing import Any, Mapping, Sequence

import numpy as np

from ..pipeline.config import ZestConfig
from ..pipeline.reference import ReferenceSet
from .class_matching import AlignmentSummary
from .comparison import ComparisonResult
from .contributions import Contributions

REFERENCES = ["Jia et al., A Zest of LIME, ICLR 2023", "Ribeiro et al., LIME, KDD 2016 (arXiv:1602.04938)"]


def comparison_report(
    result: ComparisonResult,
    *,
    models: Mapping[str, Mapping[str, Any]],
    refset: ReferenceSet,
    config: ZestConfig,
    alignments: Mapping[str, AlignmentSummary] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Assemble a JSON-ready report of one comparison.

    Parameters
    ----------
    result : ComparisonResult
    models : mapping of str to mapping
        Metadata of model "A" and model "B" (source, classes, input shape, fingerprint...).
    refset : ReferenceSet
    config : ZestConfig
    alignments : mapping of str to AlignmentSummary, optional
        Greedy and Hungarian matchings (see :func:`zest_core.explain.compare_alignments`).
    extra : mapping, optional
        More top-level entries (timings, the app version...).

    Returns
    -------
    dict
        Plain Python values only (``json.dumps`` works on it as is).
    """
    contributions = result.contributions
    labels = refset.labels
    report: dict[str, Any] = {
        "report": "zest-explorer comparison",
        "references": REFERENCES,
        "models": {name: dict(meta) for name, meta in models.items()},
        "reference_set": {**refset.describe(), "labels": None if labels is None else labels.tolist()},
        "config": config.to_dict(),
        "metric": result.metric,
        "align": result.align,
        "alignment_method": result.alignment_method,
        "distance": result.distance,
        "interval": None if result.interval is None else {
            "low": result.interval[0], "high": result.interval[1], "level": result.level, "n_boot": result.n_boot,
            "method": "bootstrap over reference images",
        },
        "contributions": {
            "additive": contributions.additive,
            "images": _image_rows(contributions, labels),
            "classes": _class_rows(
                contributions, models.get("A", {}).get("class_names"), models.get("B", {}).get("class_names")
            ),
        },
    }
    if alignments:
        report["alignments"] = {method: _alignment_entry(summary) for method, summary in alignments.items()}
        first = next(iter(alignments.values()))
        report["class_cost_matrix"] = first.alignment.cost.tolist()
    if extra:
        report.update(extra)
    return to_jsonable(report)


def _image_rows(contributions: Contributions, labels: np.ndarray | None) -> list[dict[str, Any]]:
    """Each reference image's label, part of the distance and share of it."""
    return [
        {
            "index": int(n),
            "label": None if labels is None else int(labels[n]),
            "contribution": float(contributions.per_image[n]),
            "share": float(share),
        }
        for n, share in enumerate(contributions.image_shares())
    ]


def _class_rows(
    contributions: Contributions, names_a: Sequence[str] | None, names_b: Sequence[str] | None
) -> list[dict[str, Any]]:
    """Each compared (class of A, class of B) row, named, with its part of the distance and share of it."""
    shares = contributions.class_shares()
    return [
        {
            "class_a": int(i),
            "class_b": int(j),
            "name_a": names_a[i] if names_a else str(i),
            "name_b": names_b[j] if names_b else str(j),
            "contribution": float(contributions.per_class[m]),
            "share": float(shares[m]),
        }
        for m, (i, j) in enumerate(contributions.pairs)
    ]


def _alignment_entry(summary: AlignmentSummary) -> dict[str, Any]:
    return {
        "pairs": summary.alignment.pairs.tolist(),
        "total_cost": summary.total_cost,
        "correct": summary.correct,
        "comparable": summary.comparable,
    }


def to_jsonable(value: Any) -> Any:
    """``value`` with numpy scalars and arrays, tuples and paths turned into plain JSON values (NaN → None)."""
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return to_jsonable(value.tolist())
    if isinstance(value, np.generic):
        return to_jsonable(value.item())
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, os.PathLike):
        return str(value)
    return value
