"""Markdown of every study, in one place: the reuse and calibration reports, the budget and ablation studies, and the short tables of the epochs, refsize and unlearning studies."""
from __future__ import annotations

import math
from typing import Any, Mapping, Protocol, Sequence

import numpy as np

from .accounting import query_rows
from .calibration import CalibrationResult
from .rules import METHOD_KINDS


class ReuseReport(Protocol):
    """What the reuse report reads of a :class:`zest_core.studies.reuse.ReuseResult` (which renders itself here)."""

    methods: Sequence[str]
    relations: Sequence[str]
    summary: Mapping[str, Any]
    metadata: Mapping[str, Any]


RULE_TITLES = (
    ("modeldiff", "ModelDiff rule: the child is closer to the parent than every unrelated model is"),
    ("zest", "Zest rule: relative distance d(parent, child) / mean d(unrelated pairs) < 1"),
)


# --------------------------------------------------------------------------------------------------
# The reuse report
# --------------------------------------------------------------------------------------------------


def reuse_markdown(result: ReuseReport) -> str:
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


def _scores_section(result: ReuseReport) -> list[str]:
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


def _rule_section(result: ReuseReport, rule: str, title: str) -> list[str]:
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


def _auc_section(result: ReuseReport) -> list[str]:
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


# ----- the budget study (zest bench budget)


def _number(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def budget_markdown(result: Mapping[str, Any]) -> str:
    """The budget study as Markdown: every point's queries, worst-relation AUC, gap, TPR and FPR; the timings."""
    lines = ["| method | design | N / images | L | queries per model | worst-relation AUC | largest AUC drop | "
             "TPR at α | FPR at α |", "|---|---|---|---|---|---|---|---|---|"]
    for p in sorted(result["points"], key=lambda p: (p["method"], p.get("design", ""), p["queries"], p["images"])):
        if "auc" not in p:
            lines.append(f"| {p['method']} | {p.get('design', '')} | {p['images']} | {p.get('samples', '')} | "
                         f"{p['queries']} | refused: {p['refused']} | | | |")
            continue
        aucs = [a for a in p["auc"].values() if a is not None]
        fpr = p["fpr"]
        lines.append(
            f"| {p['method']} | {p.get('design', '')} | {p['images']} | {p.get('samples', '')} | {p['queries']} | "
            f"{min(aucs):.3f} | {_number(p.get('auc_gap'))} | {_number(p['tpr_overall'])} | "
            f"{fpr['k']}/{fpr['n']} = {_number(fpr['rate'])} |"
        )
    out = ["## Verdict quality against queries per suspect model", "", *lines, ""]
    if "full_budget" in result:
        full = result["full_budget"]
        out.append(f"Full budget: {full['design']} N = {full['images']}, L = {full['samples']} "
                   f"({full['queries']} queries per model). Cheapest point with every relation's matched AUC within "
                   f"{result['tolerance']} of it:")
        for design, point in result["cheapest_within_tolerance"].items():
            out.append(f"- {design}: " + ("none in the grid" if point is None else
                                          f"N = {point['images']}, L = {point['samples']} ({point['queries']} queries)"))
        times = result.get("signature_time") or []
        if times:
            base = times[0]
            out += ["", "| signature | queries | wall s | CPU s | CPU ratio to the full budget |", "|---|---|---|---|---|"]
            out += [f"| {t['design']} N = {t['images']}, L = {t['samples']} | {t['queries']} | {t['wall_s']:.2f} | "
                    f"{t['cpu_s']:.2f} | {t['cpu_s'] / base['cpu_s']:.4f} |" for t in times]
    if result.get("distance_errors"):
        first = result["distance_errors"][0]
        out += ["", f"Distance error against Bernoulli L = {result['full_budget']['samples']}, all "
                    f"{result['full_budget']['images']} images, over {first['pairs']} model pairs:", "",
                "| design | L | mean abs. error | max abs. error | mean relative error |", "|---|---|---|---|---|"]
        out += [f"| {r['design']} | {r['samples']} | {r['mean_abs_error']:.5f} | {r['max_abs_error']:.5f} | "
                f"{r['mean_relative_error']:.4f} |" for r in result["distance_errors"]]
    if "sequential" in result:
        out += ["", *sequential_markdown(result["sequential"])]
    return "\n".join(out) + "\n"


def sequential_markdown(data: Mapping[str, Any]) -> list[str]:
    """The sequential audit beside the fixed one: FPR, TPR and the suspect's mean queries."""
    rule, summary = data["rule"], data["summary"]
    config = data["config"]

    def rate(r: Mapping[str, Any]) -> str:
        return "n/a" if r["rate"] is None else f"{r['k']}/{r['n']} = {r['rate']:.3f} ({r['ci95'][0]:.3f}–{r['ci95'][1]:.3f})"

    queries = summary["mean_queries"]
    return [
        f"Sequential audit: rounds of {rule['blocks']} new images, each round at α / {rule['rounds']} = "
        f"{rule['round_alpha']:.4f}, futility stop at p > {rule['futility']}; L = {config['num_samples']} "
        f"({config.get('mask_design', 'bernoulli')} masks).",
        "",
        "| audit | FPR at α (95% CI) | TPR at α | mean queries, unrelated suspects | mean queries, related |",
        "|---|---|---|---|---|",
        f"| sequential | {rate(summary['false_positive']['sequential'])} | "
        f"{rate(summary['true_positive']['sequential'])} | {_number(queries['negatives'])} | {_number(queries['related'])} |",
        f"| fixed (every image, one test at α) | {rate(summary['false_positive']['fixed'])} | "
        f"{rate(summary['true_positive']['fixed'])} | {queries['fixed']} | {queries['fixed']} |",
    ]


# ----- the ablation study (zest bench ablation)


def ablation_markdown(result: Mapping[str, Any]) -> str:
    """The ablation table: one row per variant, matched AUC per relation, then TPR and FPR overall."""
    relations = result["relations"]
    header = ["variant", "N", "L", *relations, "min AUC", "TPR", "FPR (95% CI)"]
    lines = [f"# Ablation of Zest cosine (matched AUC per relation; α = {result['alpha']:g})", "",
             "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in result["rows"]:
        tpr = [row["relations"][r]["tpr"] for r in relations]
        fpr = row["fpr"]
        ci = "n/a" if fpr["rate"] is None else f"{100 * fpr['rate']:.1f}% ({100 * fpr['ci95'][0]:.1f}–{100 * fpr['ci95'][1]:.1f})"
        cells = [row["variant"], str(row["n"]), str(row["num_samples"]),
                 *[f"{row['relations'][r]['auc']:.2f}" for r in relations], f"{row['min_auc']:.2f}",
                 f"{100 * sum(t for t in tpr if t is not None) / len(tpr):.0f}%", ci]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
