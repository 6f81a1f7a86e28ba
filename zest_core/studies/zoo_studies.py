"""The papers' studies run on the demo zoo: reuse detection, epochs, reference size, unlearning.

Each ``*_study`` function takes a :class:`~zest_core.zoo.Zoo` and returns a JSON-serialisable dict
(with the uncertainty of every number: a std over pairs or draws, or a bootstrap interval over the
reference images). The figures of these results are drawn, and written with them, by
:mod:`zest_core.figures` (:mod:`zest_core.figures.writers`), a layer above this one. The computations themselves live in :mod:`zest_core.studies.reuse`,
:mod:`~zest_core.studies.epochs` and :mod:`~zest_core.studies.refsize`.

References
----------
Jia et al., "A Zest of LIME: Towards Architecture-Independent Model Distances", ICLR 2023: Table 5
(reuse), Fig. 2 (epochs), Fig. 3 (reference-set size), §5.3 (unlearning).
Li et al., "ModelDiff: Testing-Based DNN Similarity Comparison for Model Reuse Detection", ISSTA 2021.
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .._shared.checks import check_choice
from .._shared.atomic import atomic_write_bytes
from ..explain.significance import DEFAULT_ALPHA
from ..explain.uncertainty import bootstrap_distance_interval
from ..methods.modeldiff import search_params
from ..pipeline.config import ZestConfig
from ..pipeline.distance import zest_distance
from ..pipeline.probe import ProgressFn
from ..pipeline.reference import ReferenceSet
from ..pipeline.signature import compute_signature
from ..zoo import Zoo
from .epochs import epoch_curves
from .refsize import refsize_study
from .calibration import CalibrationResult, calibrated_reuse_benchmark
from .markdown import reuse_markdown
from .reuse import ReuseResult, reuse_benchmark
from .scoring import PairScorer
from .rules import DEFAULT_METHODS

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
    check_choice("baseline", baseline, ("pooled", "matched"))
    models = {name: zoo.load(name) for name in zoo.entries}
    groups = {name: entry.arch for name, entry in zoo.entries.items()} if baseline == "matched" else None
    return reuse_benchmark(
        models, zoo.pairs(), zoo.independent(), refset, methods=methods, config=config, align=align,
        groups=groups, progress=progress, cache=cache,
    )


def calibrated_reuse_study(
    zoo: Zoo,
    refset: ReferenceSet,
    config: ZestConfig,
    *,
    methods: Sequence[str] = DEFAULT_METHODS,
    align: str = "greedy",
    alpha: float = DEFAULT_ALPHA,
    modeldiff_options: dict[str, Any] | None = None,
    sac_options: dict[str, Any] | None = None,
    akh_options: dict[str, Any] | None = None,
    progress: ProgressFn | None = None,
    cache: Any = None,
) -> CalibrationResult:
    """Every zoo pair and every unrelated pair audited against its matched null (:mod:`.calibration`).

    The result's metadata records the zoo, the settings and the wall time. ``modeldiff_options`` and
    ``sac_options`` are ModelDiff's search parameters and SAC's (``num_images``, ``seed``, ``cut_ratio``);
    ``akh_options`` AKH's (``num_queries``, ``seed``, ``pool``: the labelled images whose misclassified ones
    are asked; default the reference set).
    """
    models = {name: zoo.load(name) for name in zoo.entries}
    scorer = PairScorer(models, refset, config, align, search_params(**dict(modeldiff_options or {})), cache, progress,
                        sac_options=sac_options, akh_options=akh_options)
    started = time.perf_counter()
    result = calibrated_reuse_benchmark(zoo, scorer, methods=methods, alpha=alpha, progress=progress)
    result.metadata.update(zoo=str(zoo.root), models=len(models), seconds=round(time.perf_counter() - started, 1))
    return result


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


def write_reuse_report(result: ReuseResult, out_dir: str | os.PathLike) -> dict[str, Path]:
    """Write ``report.md`` and ``report.json`` into ``out_dir``, each atomically; returns their paths."""
    folder = Path(out_dir)
    paths = {"markdown": folder / "report.md", "json": folder / "report.json"}
    atomic_write_bytes(paths["markdown"], reuse_markdown(result).encode())
    atomic_write_bytes(paths["json"], json.dumps(result.to_dict(), indent=2, allow_nan=False).encode())
    return paths


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
