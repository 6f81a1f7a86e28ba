"""The papers' studies run on the demo zoo, with their figures: reuse detection, epochs, reference size, unlearning.

Each ``*_study`` function takes a :class:`~zest_core.zoo.build.Zoo` and returns a JSON-serialisable dict
(with the uncertainty of every number: a std over pairs or draws, or a bootstrap interval over the
reference images); each ``*_figure`` function turns that dict into a Plotly figure. ``write_study``
stores both, atomically. The computations themselves live in :mod:`zest_core.studies.benchmarks`.

References
----------
Jia et al., "A Zest of LIME: Towards Architecture-Independent Model Distances", ICLR 2023: Table 5
(reuse), Fig. 2 (epochs), Fig. 3 (reference-set size), §5.3 (unlearning).
Li et al., "ModelDiff: Testing-Based DNN Similarity Comparison for Model Reuse Detection", ISSTA 2021.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import plotly.graph_objects as go

from .benchmarks import (
    DEFAULT_METHODS,
    ReuseResult,
    bootstrap_distance_interval,
    epoch_curves,
    refsize_study,
    reuse_benchmark,
    write_reuse_report,
)
from ..cache.store import atomic_write_bytes
from ..pipeline.config import ZestConfig
from ..pipeline.distance import zest_distance
from ..pipeline.reference import ReferenceSet
from ..pipeline.signature import compute_signature
from ..zoo.build import Zoo

ProgressFn = Callable[[int, int, str], None]
BOOTSTRAP_DRAWS = 1000


def reuse_study(
    zoo: Zoo,
    refset: ReferenceSet,
    config: ZestConfig,
    *,
    methods: Sequence[str] = DEFAULT_METHODS,
    align: str = "greedy",
    baseline: str = "pooled",
    progress: ProgressFn | None = None,
    cache: Any = None,
) -> ReuseResult:
    """Zest's Table 5 on the zoo: every (source, child) pair against every independently trained model.

    ``align="greedy"`` matches classes for every pair, as an auditor must when a suspect's class
    order is unknown (the label-permuted models); "auto" matches only when class counts differ.
    ``baseline="matched"`` judges each pair against unrelated models of the same architectures
    (the child's, and the parent's for the Zest rule's baseline pairs); "pooled" uses them all.
    """
    if baseline not in ("pooled", "matched"):
        raise ValueError(f"baseline: expected 'pooled' or 'matched', got {baseline!r}")
    models = {name: zoo.load(name) for name in zoo.entries}
    groups = {name: entry.arch for name, entry in zoo.entries.items()} if baseline == "matched" else None
    return reuse_benchmark(
        models, zoo.pairs(), zoo.independent(), refset, methods=methods, config=config, align=align,
        groups=groups, progress=progress, cache=cache,
    )


def epochs_study(
    zoo: Zoo,
    refset: ReferenceSet,
    config: ZestConfig,
    *,
    k: int = 1,
    align: str = "auto",
    progress: ProgressFn | None = None,
    cache: Any = None,
) -> dict[str, Any]:
    """Zest's Fig. 2: d(a_t, a_{t+k}) of each source run and d(a_t, u_t) against unrelated runs, per epoch t.

    Every checkpointed source is paired with every other checkpointed run of its architecture; the
    result gives each curve and their mean ± std over runs (related) and over run pairs (unrelated).
    """
    runs = zoo.checkpointed()
    series: dict[str, list] = {name: _checkpoints(zoo, name) for name in runs}
    related: dict[str, dict[str, list]] = {}
    unrelated: dict[str, dict[str, list]] = {}
    sources = [name for name in runs if zoo.entries[name].relation == "source"]
    jobs = [(a, b) for a in sources for b in runs if b != a and zoo.entries[b].arch == zoo.entries[a].arch]
    for index, (a, b) in enumerate(jobs):
        if progress is not None:
            progress(index, len(jobs), f"epochs {a} vs {b}")
        curves = epoch_curves([m for _, m in series[a]], [m for _, m in series[b]], refset, config, k=k,
                              align=align, epochs=[e for e, _ in series[a]], cache=cache)
        related[a] = {"epochs": list(curves.related_epochs), "distance": list(curves.related)}
        unrelated[f"{a} vs {b}"] = {"epochs": list(curves.unrelated_epochs), "distance": list(curves.unrelated)}
    if progress is not None:
        progress(len(jobs), len(jobs), "epochs")
    return {
        "study": "epochs", "k": k, "align": align, "config": config.to_dict(), "refset": refset.provenance,
        "related": related, "unrelated": unrelated,
        "related_summary": _curve_summary(related), "unrelated_summary": _curve_summary(unrelated),
    }


def refsize_study_on_zoo(
    zoo: Zoo,
    refset: ReferenceSet,
    config: ZestConfig,
    *,
    related: tuple[str, str] = ("cnn-s0", "cnn-s0.prune50"),
    unrelated: tuple[str, str] = ("cnn-s0", "cnn-u2"),
    repeats: int = 10,
    seed: int = 0,
    progress: ProgressFn | None = None,
    cache: Any = None,
) -> dict[str, Any]:
    """Zest's Fig. 3: mean ± std of the distance over ``repeats`` draws of N reference images, N = 1, 2, 4, ..."""
    results = {}
    for label, (a, b) in (("related", related), ("unrelated", unrelated)):
        if progress is not None:
            progress(0, 1, f"refsize {a} vs {b}")
        study = refsize_study(zoo.load(a), zoo.load(b), refset, config, repeats=repeats, seed=seed, cache=cache)
        results[label] = {"pair": [a, b], **study.to_dict()}
    return {"study": "refsize", "config": config.to_dict(), "refset": refset.provenance, "repeats": repeats,
            **results}


def unlearning_study(
    zoo: Zoo,
    config: ZestConfig,
    *,
    progress: ProgressFn | None = None,
    cache: Any = None,
) -> dict[str, Any]:
    """Zest §5.3: the source against its exactly and approximately unlearned copies, on the forget set.

    For each source: d(source, exact), d(source, approx), and d(source, u) for every independently
    trained model u of its architecture, each with a 95% bootstrap interval over the forget-set images.
    """
    refset = zoo.forget_set()
    rows = []
    sources = [n for n in zoo.independent() if zoo.entries[n].relation == "source"]
    for index, source in enumerate(sources):
        if progress is not None:
            progress(index, len(sources), f"unlearning {source}")
        arch = zoo.entries[source].arch
        others = {
            "exact": f"{source}.unlearn-exact",
            "approx": f"{source}.unlearn-approx",
            **{f"unrelated {u}": u for u in zoo.independent(arch) if u != source},
        }
        base = compute_signature(zoo.load(source), refset, config, cache=cache)
        row: dict[str, Any] = {"source": source}
        for label, name in others.items():
            signature = compute_signature(zoo.load(name), refset, config, cache=cache)
            low, high = bootstrap_distance_interval(base, signature, n_boot=BOOTSTRAP_DRAWS)
            row[label] = {"model": name, "distance": zest_distance(base, signature), "ci95": [low, high]}
        row["forget_accuracy"] = {
            "source": zoo.entries[f"{source}.unlearn-exact"].details.get("source_forget_accuracy"),
            "exact": zoo.entries[f"{source}.unlearn-exact"].details.get("forget_accuracy"),
            "approx": zoo.entries[f"{source}.unlearn-approx"].details.get("forget_accuracy"),
        }
        rows.append(row)
    if progress is not None:
        progress(len(sources), len(sources), "unlearning")
    return {"study": "unlearning", "config": config.to_dict(), "refset": refset.provenance, "rows": rows}


# --------------------------------------------------------------------------------------------------
# Figures
# --------------------------------------------------------------------------------------------------


def epochs_figure(result: dict[str, Any]) -> go.Figure:
    """Related (t vs t+k) and unrelated (a_t vs u_t) curves, thin per run and bold mean ± std."""
    figure = go.Figure()
    for group, colour in (("related", "#1f77b4"), ("unrelated", "#d62728")):
        for label, curve in result[group].items():
            figure.add_trace(go.Scatter(x=curve["epochs"], y=curve["distance"], mode="lines", name=label,
                                        line={"color": colour, "width": 1}, opacity=0.35, legendgroup=group,
                                        showlegend=False))
        summary = result[f"{group}_summary"]
        title = f"related: epoch t vs t+{result['k']}" if group == "related" else "unrelated: a_t vs u_t"
        figure.add_trace(go.Scatter(
            x=summary["epochs"], y=summary["mean"], mode="lines+markers", name=f"{title} (mean ± std)",
            line={"color": colour, "width": 3}, legendgroup=group,
            error_y={"type": "data", "array": summary["std"], "visible": True},
        ))
    figure.update_layout(title="Zest distance along training (Zest Fig. 2)", xaxis_title="epoch t",
                         yaxis_title="Zest cosine distance", template="plotly_white")
    return figure


def refsize_figure(result: dict[str, Any]) -> go.Figure:
    """Mean ± std of the distance against the number of reference images (log scale)."""
    figure = go.Figure()
    for label, colour in (("related", "#1f77b4"), ("unrelated", "#d62728")):
        data = result[label]
        figure.add_trace(go.Scatter(
            x=data["sizes"], y=data["mean"], mode="lines+markers", name=f"{label}: {' vs '.join(data['pair'])}",
            line={"color": colour}, error_y={"type": "data", "array": data["std"], "visible": True},
        ))
    figure.update_layout(title=f"Sensitivity to the reference-set size (Zest Fig. 3), {result['repeats']} draws per N",
                         xaxis={"title": "reference images N", "type": "log"}, yaxis_title="Zest cosine distance",
                         template="plotly_white")
    return figure


def unlearning_figure(result: dict[str, Any]) -> go.Figure:
    """Per source: distance to its exactly and approximately unlearned copies and to unrelated models, with 95% CIs."""
    figure = go.Figure()
    colours = {"exact": "#2ca02c", "approx": "#ff7f0e", "unrelated": "#7f7f7f"}
    for kind, colour in colours.items():
        xs, ys, lows, highs, texts = [], [], [], [], []
        for row in result["rows"]:
            for label, value in row.items():
                if isinstance(value, dict) and "distance" in value and label.split()[0] == kind:
                    xs.append(row["source"])
                    ys.append(value["distance"])
                    lows.append(value["distance"] - value["ci95"][0])
                    highs.append(value["ci95"][1] - value["distance"])
                    texts.append(value["model"])
        figure.add_trace(go.Scatter(
            x=xs, y=ys, mode="markers", name={"exact": "exactly unlearned (retrained)", "approx":
                                              "approximately unlearned (gradient ascent)", "unrelated": "unrelated"}[kind],
            marker={"color": colour, "size": 10}, text=texts,
            error_y={"type": "data", "symmetric": False, "array": highs, "arrayminus": lows, "visible": True},
        ))
    figure.update_layout(title="Unlearning (Zest §5.3): distance to the source on the forget set, 95% bootstrap CI",
                         xaxis_title="source model", yaxis_title="Zest cosine distance", template="plotly_white")
    return figure


def reuse_figure(result: ReuseResult, method: str = "zest-cosine") -> go.Figure:
    """Per relation, the score of every (parent, child) pair against the unrelated pairs' range."""
    figure = go.Figure()
    records = [r for r in result.pairs if r["method"] == method]
    figure.add_trace(go.Box(x=[r["relation"] for r in records], y=[r["score"] for r in records], name="reuse pairs",
                            boxpoints="all", marker={"color": "#1f77b4"}))
    unrelated = [r["score"] for r in result.unrelated_pairs if r["method"] == method]
    figure.add_trace(go.Box(x=["unrelated"] * len(unrelated), y=unrelated, name="unrelated pairs", boxpoints="all",
                            marker={"color": "#d62728"}))
    figure.update_layout(title=f"Reuse detection: {method} per relation", yaxis_title=method, template="plotly_white")
    return figure


def write_study(result: dict[str, Any], figure: go.Figure, out_dir: str | os.PathLike, name: str) -> dict[str, Path]:
    """``<name>.json`` and ``<name>.html`` (Plotly, self-contained so it works offline) in ``out_dir``."""
    folder = Path(out_dir)
    paths = {"json": folder / f"{name}.json", "html": folder / f"{name}.html"}
    atomic_write_bytes(paths["json"], json.dumps(result, indent=1, default=_jsonable).encode())
    atomic_write_bytes(paths["html"], figure.to_html(include_plotlyjs=True, full_html=True).encode())
    return paths


def write_reuse(result: ReuseResult, out_dir: str | os.PathLike) -> dict[str, Path]:
    """The reuse report (Markdown + JSON, :func:`zest_core.studies.benchmarks.write_reuse_report`) and its figure."""
    paths = write_reuse_report(result, out_dir)
    html = Path(out_dir) / "reuse.html"
    atomic_write_bytes(html, reuse_figure(result).to_html(include_plotlyjs=True, full_html=True).encode())
    return {**paths, "html": html}


def summary_markdown(result: dict[str, Any]) -> str:
    """A short Markdown table of an epochs, refsize or unlearning result (the numbers the README quotes)."""
    study = result["study"]
    if study == "unlearning":
        lines = ["| source | d(source, exact) [95% CI] | d(source, approx) [95% CI] | d(source, unrelated) mean ± std |",
                 "|---|---|---|---|"]
        for row in result["rows"]:
            unrelated = [v["distance"] for k, v in row.items() if k.startswith("unrelated")]
            cells = [f"{row[k]['distance']:.4f} [{row[k]['ci95'][0]:.4f}, {row[k]['ci95'][1]:.4f}]" for k in ("exact", "approx")]
            lines.append(f"| {row['source']} | {cells[0]} | {cells[1]} | {np.mean(unrelated):.4f} ± {np.std(unrelated):.4f} |")
        return "\n".join(lines)
    if study == "epochs":
        related, unrelated = result["related_summary"], result["unrelated_summary"]
        lines = [f"| epoch t | related d(t, t+{result['k']}) mean ± std (n={related['count']}) | "
                 f"unrelated d(a_t, u_t) mean ± std (n={unrelated['count']}) |", "|---|---|---|"]
        rel = dict(zip(related["epochs"], zip(related["mean"], related["std"])))
        for epoch, mean, std in zip(unrelated["epochs"], unrelated["mean"], unrelated["std"]):
            left = f"{rel[epoch][0]:.4f} ± {rel[epoch][1]:.4f}" if epoch in rel else "-"
            lines.append(f"| {epoch} | {left} | {mean:.4f} ± {std:.4f} |")
        return "\n".join(lines)
    lines = [f"| N | related {' vs '.join(result['related']['pair'])} | unrelated {' vs '.join(result['unrelated']['pair'])} |",
             "|---|---|---|"]
    for i, size in enumerate(result["related"]["sizes"]):
        lines.append(f"| {size} | {result['related']['mean'][i]:.4f} ± {result['related']['std'][i]:.4f} | "
                     f"{result['unrelated']['mean'][i]:.4f} ± {result['unrelated']['std'][i]:.4f} |")
    return "\n".join(lines)


def _checkpoints(zoo: Zoo, name: str) -> list[tuple[int, Any]]:
    return [(epoch, zoo.load(f"{name}@epoch{epoch}")) for epoch in sorted(zoo.entries[name].checkpoints)]


def _curve_summary(curves: dict[str, dict[str, list]]) -> dict[str, list]:
    """Mean and std (ddof=0) over curves at every epoch that all of them have."""
    if not curves:
        return {"epochs": [], "mean": [], "std": [], "count": 0}
    epochs = sorted(set.intersection(*(set(c["epochs"]) for c in curves.values())))
    values = np.array([[dict(zip(c["epochs"], c["distance"]))[e] for e in epochs] for c in curves.values()])
    return {"epochs": epochs, "mean": values.mean(axis=0).tolist(), "std": values.std(axis=0).tolist(),
            "count": len(curves)}


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
