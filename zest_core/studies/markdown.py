"""Markdown tables of the studies: the reuse report, and the short tables of the epochs, refsize and unlearning studies."""
from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import numpy as np

from .accounting import query_rows
from .calibration import CalibrationResult
from .reuse import ReuseResult
from .rules import METHOD_KINDS

RULE_TITLES = (
    ("modeldiff", "ModelDiff rule: the child is closer to the parent than every unrelated model is"),
    ("zest", "Zest rule: relative distance d(parent, child) / mean d(unrelated pairs) < 1"),
)


# --------------------------------------------------------------------------------------------------
# The reuse report
# --------------------------------------------------------------------------------------------------


def reuse_markdown(result: ReuseResult) -> str:
    """The reuse report: scores, both rules' accuracies and false positives, and ROC AUC, one row per relation."""
    refset = result.metadata.get("refset", {})
    lines = [
        "# Reuse detection benchmark",
        "",
        f"Reference set: {refset.get('n', '?')} images ({refset.get('provenance', '?')}). "
        f"Unrelated models: {', '.join(result.metadata.get('unrelated', []))}. "
        "Distances ↓ (smaller means related), similarities ↑.",
        "",
    ]
    lines += _scores_section(result)
    for rule, title in RULE_TITLES:
        lines += _rule_section(result, rule, title)
    k = len(result.metadata.get("unrelated", []))
    lines += [
        "",
        f"Both rules are relative. With {k} unrelated models and no ties, the ModelDiff rule flags one of the "
        f"{k - 1} others per anchor ({100 / max(k - 1, 1):.0f}% of the unrelated pairs) by construction, and "
        "the Zest rule flags the unrelated pairs closer than the mean of the others (about half).",
    ]
    lines += _auc_section(result)
    notes = result.metadata.get("notes") or []
    if notes:
        lines += ["", "## Notes", ""] + [f"- {note}" for note in notes]
    return "\n".join(lines) + "\n"


def _scores_section(result: ReuseResult) -> list[str]:
    methods = result.methods
    arrows = {m: "↓" if METHOD_KINDS[m] == "distance" else "↑" for m in methods}
    lines = [
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
    return lines


def _rule_section(result: ReuseResult, rule: str, title: str) -> list[str]:
    """One rule's accuracy per relation, over all related pairs, and its false positives."""
    methods = result.methods
    lines = ["", f"## Accuracy, {title}", "", _table_header(["relation"] + list(methods))]
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
    return lines


def _auc_section(result: ReuseResult) -> list[str]:
    methods = result.methods
    lines = ["", "## ROC AUC, the relation's pairs against the unrelated pairs", "",
             _table_header(["relation"] + list(methods))]
    for relation in result.relations:
        lines.append(_row([relation] + [_number(result.summary[m]["relations"][relation]["auc"]) for m in methods]))
    lines.append(_row(["**all related pairs**"] + [_number(result.summary[m]["overall"]["auc"]) for m in methods]))
    return lines


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


# --------------------------------------------------------------------------------------------------
# The calibrated reuse report (matched null)
# --------------------------------------------------------------------------------------------------


def calibration_markdown(result: "CalibrationResult") -> str:
    """Per relation: distances, matched AUC and TPR at α for every method; then the measured FPR."""
    methods, alpha = result.methods, result.alpha
    lines = [
        f"# Reuse detection against the matched null (α = {alpha:g})", "",
        "Each child is audited against its source, its distance judged against the distances from the source "
        "to models trained from scratch for the child's task with the child's architecture.", "",
        "## Matched AUC · TPR at α (per relation)", "",
        _table_header(["relation", "n", *[f"{m}: d mean ± std" for m in methods[:1]],
                       *[f"{m}: AUC · TPR" for m in methods]]),
    ]
    for relation in result.relations:
        first = result.summary[methods[0]]["relations"][relation]
        cells = [relation, str(first["n"]), _mean_std_text(first["distance"])]
        for method in methods:
            rel = result.summary[method]["relations"][relation]
            tp = rel["true_positive"]
            cells.append(f"{_number(rel['auc_matched'])} · {tp['k']}/{tp['n']}")
        lines.append(_row(cells))
    lines += ["", "## Measured false-positive rate (leave one out) and overall numbers", "",
              _table_header(["method", "FPR at α (95% CI)", "TPR at α", "AUC matched", "AUC pooled (secondary)"])]
    for method in methods:
        overall = result.summary[method]["overall"]
        lines.append(_row([method, _interval_text(overall["false_positive"]),
                           _rate_text(overall["true_positive"]["rate"], overall["true_positive"]["k"],
                                      overall["true_positive"]["n"]),
                           _number(overall["auc_matched"]), _number(overall["auc_pooled"])]))
    image = {m: result.summary[m]["overall"].get("image_paired_false_positive") for m in methods}
    image = {m: v for m, v in image.items() if v}
    if image:
        lines += ["", "Image-paired t-test on the same negatives (images treated as independent evidence; "
                  "not used for verdicts): " + "; ".join(f"{m} FPR {_interval_text(v)}" for m, v in image.items())]
    if result.metadata.get("queries"):
        lines += ["", _queries_markdown(result.metadata["queries"])]
    return "\n".join(lines) + "\n"


def _queries_markdown(queries: Mapping[str, Any]) -> str:
    """The measured queries per model of every method (each model's counts are in the JSON report)."""
    lines = ["## Queries per model (measured)", "",
             _table_header(["method", "models", "images per model", "calls per model", "images queried in this run"])]
    for row in query_rows(queries):
        lines.append(_row([row["method"], str(row["models"]), _span(row["images per model"]),
                           _span(row["calls per model"]), f"{row['images made now']:,}"]))
    return "\n".join(lines)


def _span(values: tuple[int, int] | None) -> str:
    if values is None:
        return "not recorded"
    low, high = values
    return f"{low:,}" if low == high else f"{low:,}–{high:,}"


def _interval_text(rate: Mapping[str, Any]) -> str:
    if rate.get("rate") is None:
        return "n/a"
    low, high = rate["ci95"]
    return f"{100 * rate['rate']:.1f}% ({rate['k']}/{rate['n']}; {100 * low:.1f}–{100 * high:.1f}%)"


# --------------------------------------------------------------------------------------------------
# The zoo studies' tables (the numbers the README quotes)
# --------------------------------------------------------------------------------------------------


def summary_markdown(result: Mapping[str, Any]) -> str:
    """A short Markdown table of an epochs, refsize or unlearning result of :mod:`zest_core.studies.zoo_studies`."""
    study = result["study"]
    if study == "unlearning":
        return _unlearning_table(result)
    if study == "epochs":
        return _epochs_table(result)
    return _refsize_table(result)


def _unlearning_table(result: Mapping[str, Any]) -> str:
    lines = ["| source | d(source, exact) [95% CI] | d(source, approx) [95% CI] | d(source, unrelated) mean ± std |",
             "|---|---|---|---|"]
    for row in result["rows"]:
        unrelated = [v["distance"] for k, v in row.items() if k.startswith("unrelated")]
        cells = [f"{row[k]['distance']:.4f} [{row[k]['ci95'][0]:.4f}, {row[k]['ci95'][1]:.4f}]" for k in ("exact", "approx")]
        lines.append(f"| {row['source']} | {cells[0]} | {cells[1]} | {np.mean(unrelated):.4f} ± {np.std(unrelated):.4f} |")
    return "\n".join(lines)


def _epochs_table(result: Mapping[str, Any]) -> str:
    related, unrelated = result["related_summary"], result["unrelated_summary"]
    lines = [f"| epoch t | related d(t, t+{result['k']}) mean ± std (n={related['count']}) | "
             f"unrelated d(a_t, u_t) mean ± std (n={unrelated['count']}) |", "|---|---|---|"]
    rel = dict(zip(related["epochs"], zip(related["mean"], related["std"])))
    for epoch, mean, std in zip(unrelated["epochs"], unrelated["mean"], unrelated["std"]):
        left = f"{rel[epoch][0]:.4f} ± {rel[epoch][1]:.4f}" if epoch in rel else "-"
        lines.append(f"| {epoch} | {left} | {mean:.4f} ± {std:.4f} |")
    return "\n".join(lines)


def _refsize_table(result: Mapping[str, Any]) -> str:
    related, unrelated = result["related"], result["unrelated"]
    lines = [f"| N | related {' vs '.join(related['pair'])} | unrelated {' vs '.join(unrelated['pair'])} |",
             "|---|---|---|"]
    for i, size in enumerate(related["sizes"]):
        lines.append(f"| {size} | {related['mean'][i]:.4f} ± {related['std'][i]:.4f} | "
                     f"{unrelated['mean'][i]:.4f} ± {unrelated['std'][i]:.4f} |")
    return "\n".join(lines)
