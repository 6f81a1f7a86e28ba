"""Tables (pandas DataFrames) of the dashboard, from a comparison's results: presentation only."""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from zest_core.explain import AlignmentSummary
from zest_core.studies import describe_entry

from .comparison import PairComparison

MODEL_FIELDS = (
    ("label", "model"), ("kind", "chosen as"), ("source", "source"), ("classes", "classes"),
    ("class_names", "class names"), ("input_shape", "input (C, H, W)"), ("outputs", "outputs"),
    ("fingerprint", "fingerprint"),
)
ZOO_FIELDS = ("arch", "relation", "parent", "source", "task", "accuracy", "epochs", "description")


def model_table(comparison: PairComparison) -> pd.DataFrame:
    """Both models' metadata side by side (zoo fields when a model comes from the demo zoo)."""
    rows = []
    for key, title in MODEL_FIELDS:
        rows.append({"field": title, **{f"Model {s}": _text(comparison.meta[s].get(key)) for s in ("A", "B")}})
    if any("zoo" in comparison.meta[s] for s in ("A", "B")):
        for key in ZOO_FIELDS:
            values = {}
            for slot in ("A", "B"):
                value = comparison.meta[slot].get("zoo", {}).get(key)
                percent = key == "accuracy" and value is not None
                values[f"Model {slot}"] = f"{100 * value:.2f}%" if percent else _text(value)
            rows.append({"field": f"zoo {key}", **values})
    queries = comparison.query_entries()
    rows.append({"field": "queries (signature)", **{f"Model {s}": describe_entry(queries[f"Model {s}"]) for s in "AB"}})
    return pd.DataFrame(rows)


def _text(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, (list, tuple)):
        return ", ".join(map(str, value))
    return str(value)


def image_label(comparison: PairComparison, index: int) -> str:
    """``'#12 (digit 3)'``: a reference image's number and, when known, its label."""
    labels = comparison.refset.labels
    if labels is None:
        return f"#{index}"
    names = comparison.refset.class_names
    label = names[labels[index]] if names else str(labels[index])
    return f"#{index} (label {label})"


def image_contributions(comparison: PairComparison) -> pd.DataFrame:
    """Every reference image's contribution to the distance, largest first."""
    contributions = comparison.result.contributions
    labels = comparison.refset.labels
    frame = pd.DataFrame({
        "index": np.arange(len(contributions.per_image)),
        "image": [image_label(comparison, i) for i in range(len(contributions.per_image))],
        "label": labels if labels is not None else [None] * len(contributions.per_image),
        "contribution": contributions.per_image,
        "share": contributions.image_shares(),
    })
    return frame.sort_values("contribution", ascending=False, kind="stable").reset_index(drop=True)


def class_contributions(comparison: PairComparison) -> pd.DataFrame:
    """Every compared class pair's contribution to the distance, largest first."""
    contributions = comparison.result.contributions
    names_a, names_b = comparison.class_names("A"), comparison.class_names("B")
    pairs = contributions.pairs
    frame = pd.DataFrame({
        "classes": [f"A:{names_a[i]} ↔ B:{names_b[j]}" for i, j in pairs],
        "class_a": pairs[:, 0],
        "class_b": pairs[:, 1],
        "contribution": contributions.per_class,
        "share": contributions.class_shares(),
    })
    return frame.sort_values("contribution", ascending=False, kind="stable").reset_index(drop=True)


def alignment_table(summaries: Mapping[str, AlignmentSummary]) -> pd.DataFrame:
    """Greedy vs Hungarian: total cost, and correct matches when the names are the truth."""
    rows = []
    for method, summary in summaries.items():
        rows.append({
            "method": method,
            "total cost": summary.total_cost,
            "matched pairs": len(summary.alignment.pairs),
            "correct": "—" if summary.correct is None else f"{summary.correct}/{summary.comparable}",
        })
    return pd.DataFrame(rows)


def differing_pairs(summaries: Mapping[str, AlignmentSummary]) -> int:
    """How many of A's classes the matchings pair with different classes of B."""
    first, *others = (dict(map(tuple, s.alignment.pairs.tolist())) for s in summaries.values())
    return sum(1 for a, b in first.items() if any(other.get(a) != b for other in others))


def pairs_table(summary: AlignmentSummary, names_a: Sequence[str], names_b: Sequence[str],
                correct: Sequence[bool | None]) -> pd.DataFrame:
    """The pairs of one matching with their costs."""
    cost = summary.alignment.cost
    return pd.DataFrame({
        "class of A": [names_a[i] for i, _ in summary.alignment.pairs],
        "class of B": [names_b[j] for _, j in summary.alignment.pairs],
        "cost": [float(cost[i, j]) for i, j in summary.alignment.pairs],
        "correct": ["—" if c is None else ("yes" if c else "no") for c in correct],
    })


def null_table(comparison: PairComparison) -> pd.DataFrame:
    """The unrelated models of the comparison's null: name, spec, distance to model A and queries, nearest first."""
    queries = comparison.query_entries()
    rows = [{"unrelated model": name, "spec": comparison.null.specs[name], "distance to A": distance,
             "queries": describe_entry(queries[name])}
            for name, distance in comparison.null_distances.items()]
    frame = pd.DataFrame(rows, columns=["unrelated model", "spec", "distance to A", "queries"])
    return frame.sort_values("distance to A", kind="stable").reset_index(drop=True)
