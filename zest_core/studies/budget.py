"""The query-budget study: the calibrated verdict's quality against the queries each suspect model costs.

For Zest, every (mask design, N reference images, L maskings) of a grid; for ModelDiff, every number
of seeds; for SAC, every number of CutMix images; for AKH, every number of queries. At each point the zoo's reuse benchmark is run on
the matched null (:func:`~zest_core.studies.calibration.calibrated_reuse_benchmark`), which gives the
matched AUC and the TPR at α per relation, and the FPR on the models trained from scratch.

The grid costs one query pass per (model, design), not one per point: every mask design is nested
(the first L rows of its L_max-row design are its L-row design, :mod:`zest_core.pipeline.designs`),
so the model's outputs on the L_max masks of each image give the signature at every L ≤ L_max by
refitting on a prefix. These are exactly the signatures ``compute_signature`` computes with
``num_samples = L`` (they are cached under its keys). Fewer images are the first N images of the
reference set (:func:`~zest_core.pipeline.signature.restrict_signature`: their masks are those of
the full set, and ``fill="dataset_mean"`` keeps the full set's mean).

References
----------
Jia et al., "A Zest of LIME", ICLR 2023 (N = 128, L = 1000).
Li et al., "ModelDiff", ISSTA 2021. Guan et al., "Are You Stealing My Model? Sample Correlation for
Fingerprinting Deep Neural Networks", NeurIPS 2022.
"""
from __future__ import annotations

import math
import time
from collections import OrderedDict
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import torch

from .._shared.checks import check_int
from ..cache.store import resolve_cache
from ..errors import ZestError
from ..explain.significance import DEFAULT_ALPHA
from ..methods.modeldiff import search_params
from ..pipeline.budget import BUDGET_DESIGN, BUDGET_SAMPLES
from ..pipeline.config import ZestConfig
from ..pipeline.designs import minimum_samples
from ..pipeline.distance import zest_distance
from ..pipeline.local_fit import check_samples_determine_fits, fit_operator
from ..pipeline.probe import Probe, ProgressFn, prepare_probe
from ..pipeline.counting import QueryCount
from ..pipeline.device import resolve_device
from ..pipeline.queries import query_batches
from ..pipeline.reference import ReferenceSet
from ..pipeline.signature import (Signature, cached_signature, compute_signature, restrict_signature, signature_fingerprint,
                                  store_signature)
from .calibration import calibrated_reuse_benchmark
from .scoring import PairScorer, staged
from .sequential import sequential_calibration

ZEST_IMAGES = (4, 8, 16, 32, 64, 128)
ZEST_SAMPLES = (32, 64, 128, 256, 512, 1000)
MODELDIFF_SEEDS = (8, 16, 32, 64, 128)
SAC_IMAGES = (10, 25, 50, 100, 200)
AKH_QUERIES = (10, 25, 50, 100, 200)
AUC_TOLERANCE = 0.02
# The other mask designs are for small budgets: their grid stops here (Bernoulli's goes on to the paper's L).
OTHER_DESIGNS_MAX_SAMPLES = 256


def nested_signatures(
    model: Callable,
    refset: ReferenceSet,
    config: ZestConfig,
    sample_counts: Sequence[int],
    *,
    cache: Any = None,
    progress: ProgressFn | None = None,
) -> dict[int, Signature]:
    """The model's signatures at every L of ``sample_counts`` from one query pass at the largest missing L.

    Each equals ``compute_signature(model, refset, config.replace(num_samples=L))`` up to float
    rounding (the masks are the same rows: the designs are nested), and is read from and written to
    the same cache entry. The signature at the largest L records the pass's measured queries; one
    refitted from a prefix records the N × L images it stands for and no call (they were asked in the pass).
    """
    store = resolve_cache(cache)
    fingerprint = signature_fingerprint(model, config)
    found: dict[int, Signature] = {}
    for samples in sorted(set(sample_counts)):
        cached = cached_signature(store, fingerprint, refset, config.replace(num_samples=samples))
        if cached is not None:
            found[samples] = cached
    missing = sorted(set(sample_counts) - set(found))
    if not missing:
        return found
    largest = config.replace(num_samples=missing[-1])
    device = resolve_device(config.device)
    probe = prepare_probe(refset, largest, device, progress, cache=store)
    check_samples_determine_fits(probe.num_segments, missing[0], config.mask_design)
    outputs: list[list[torch.Tensor]] = [[] for _ in range(probe.num_images)]
    made = QueryCount()
    for runs, targets in query_batches(model, probe, batch_size=config.batch_size, targets=config.targets,
                                       amp=config.amp, progress=progress, check_repeatable=True, counter=made):
        row = 0
        for image, first, stop in runs:
            outputs[image].append(targets[row:row + stop - first])
            row += stop - first
    stacked = [torch.cat(parts).cpu().numpy() for parts in outputs]  # (L_max, C) per image
    for samples in missing:
        at = config.replace(num_samples=samples)
        operators = _prefix_operators(probe, at)
        weights = [np.ascontiguousarray((op @ z[:samples])[:-1].T) for op, z in zip(operators, stacked)]
        signature = Signature(
            weights=weights, intercepts=None, segments=probe.segments, config=at, model_fingerprint=fingerprint,
            refset_fingerprint=refset.fingerprint(), class_names=getattr(model, "class_names", None),
            # The pass's own count for its L; a prefix's images were asked in that pass, so it records no call.
            metadata={"queries": (made if samples == missing[-1] else QueryCount(images=probe.num_images * samples)
                                  ).to_dict(), "refitted_from_prefix_of": missing[-1]},
        )
        store_signature(store, signature)
        found[samples] = signature
    return found


# The fit operators of a prefix of the masks depend only on the masks: one set per (reference set, config)
# serves every model of the study. A few are kept, as the probes are.
_OPERATORS: "OrderedDict[tuple[str, str], list[np.ndarray]]" = OrderedDict()
_MAX_OPERATOR_SETS = 16


def _prefix_operators(probe: Probe, config: ZestConfig) -> list[np.ndarray]:
    """Each image's (K + 1) × L fit operator on the first ``config.num_samples`` of the probe's masks."""
    key = (probe.refset_fingerprint, config.fingerprint(science_only=True))
    if key not in _OPERATORS:
        samples = config.num_samples
        if samples == probe.config.num_samples:  # the probe's own operators: not computed again
            _OPERATORS[key] = [op.cpu().numpy() for op in probe.operators]
        else:
            _OPERATORS[key] = [fit_operator(m[:samples], config.mode, kernel_width=config.kernel_width,
                                            alpha=config.ridge_alpha) for m in probe.masks]
        while len(_OPERATORS) > _MAX_OPERATOR_SETS:
            _OPERATORS.popitem(last=False)
    _OPERATORS.move_to_end(key)
    return _OPERATORS[key]


def zest_budget_curve(
    zoo: Any,
    refset: ReferenceSet,
    config: ZestConfig,
    *,
    designs: Sequence[str] = ("bernoulli",),
    image_counts: Sequence[int] = ZEST_IMAGES,
    sample_counts: Sequence[int] | Mapping[str, Sequence[int]] = ZEST_SAMPLES,
    align: str = "greedy",
    alpha: float = DEFAULT_ALPHA,
    cache: Any = None,
    progress: ProgressFn | None = None,
) -> list[dict[str, Any]]:
    """One record per (design, N, L): queries per model, and the calibrated benchmark's summary there.

    ``sample_counts`` may give each design its own Ls. Points with L < K + 1 for some image are
    recorded as refused (``"refused"``: the reason), as ``compute_signature`` would refuse them.
    """
    if config.mode != "zest":
        raise ZestError(f"config.mode: expected 'zest' for the budget study (no intercepts), got {config.mode!r}")
    names = list(zoo.entries)
    models = {name: zoo.load(name) for name in names}
    counts = [check_int("image count", n, minimum=1) for n in image_counts]
    if max(counts) > len(refset):
        raise ZestError(f"image_counts: expected at most the {len(refset)} reference images, got {max(counts)}")
    points = []
    for design in designs:
        ls = sorted(sample_counts[design] if isinstance(sample_counts, Mapping) else sample_counts)
        base = config.replace(mask_design=design)
        segments = np.array(prepare_probe(refset, base.replace(num_samples=ls[-1]), resolve_device("cpu")).num_segments)
        needed = max(minimum_samples(int(k), design) for k in segments)
        valid = [l for l in ls if l >= needed]
        signatures: dict[str, dict[int, Signature]] = {}
        for index, name in enumerate(names):
            signatures[name] = nested_signatures(models[name], refset, base, valid, cache=cache,
                                                 progress=staged(progress, f"{design} {name}: "))
            if progress is not None:
                progress(index + 1, len(names), f"{design}: models queried")
        for samples in ls:
            for n in counts:
                point = {"method": "zest-cosine", "design": design, "images": n, "samples": samples,
                         "queries": n * samples}
                if samples not in valid:
                    point["refused"] = f"L = {samples} < {needed}, the fewest {design} masks that fit K = {segments.max()}"
                    points.append(point)
                    continue
                chosen = {name: restrict_signature(signatures[name][samples], range(n)) for name in names}
                scorer = PairScorer(models, refset, base.replace(num_samples=samples), align, {}, False, None)
                scorer.add_signatures(chosen)
                points.append({**point, **_benchmark_summary(zoo, scorer, "zest-cosine", alpha)})
    return points


def distance_errors(
    zoo: Any, refset: ReferenceSet, config: ZestConfig, *, designs: Sequence[str],
    sample_counts: Mapping[str, Sequence[int]], align: str = "greedy", cache: Any = None,
) -> list[dict[str, Any]]:
    """How far each design's distances at each L are from the paper's (Bernoulli masks, the largest L).

    Over every zoo pair and every ordered pair of models trained from scratch, on all N images: the
    mean and the largest absolute error of the cosine distance, and the mean error relative to the
    reference distance. The signatures are the study's (read from the cache).
    """
    names = list(zoo.entries)
    models = {name: zoo.load(name) for name in names}
    scratch = zoo.independent()
    pairs = [(p, c) for p, c, _ in zoo.pairs()] + [(a, b) for a in scratch for b in scratch if a < b]
    full = max(sample_counts["bernoulli"])

    def distances(design: str, samples: int) -> np.ndarray:
        at = config.replace(mask_design=design)
        sigs = {n: nested_signatures(models[n], refset, at, [samples], cache=cache)[samples] for n in names}
        return np.array([zest_distance(sigs[a], sigs[b], metric="cosine", align=align) for a, b in pairs])

    reference = distances("bernoulli", full)
    rows = []
    for design in designs:
        for samples in sorted(sample_counts[design]):
            if design == "bernoulli" and samples == full:
                continue
            error = np.abs(distances(design, samples) - reference)
            rows.append({"design": design, "samples": samples, "pairs": len(pairs), "mean_abs_error": float(error.mean()),
                         "max_abs_error": float(error.max()), "mean_relative_error": float(np.mean(error / reference))})
    return rows


def modeldiff_budget_curve(
    zoo: Any, refset: ReferenceSet, config: ZestConfig, options: Mapping[str, Any], *,
    seed_counts: Sequence[int] = MODELDIFF_SEEDS, alpha: float = DEFAULT_ALPHA, cache: Any = None,
    progress: ProgressFn | None = None,
) -> list[dict[str, Any]]:
    """ModelDiff with the first n reference images as seeds: the suspect sees 2n images (seeds and partners).

    The pairs are searched for every n anew (their diversity term couples all of a source's pairs).
    """
    points = []
    models = {name: zoo.load(name) for name in zoo.entries}
    for n in seed_counts:
        seeds = refset.subset(np.arange(n), provenance=f"{refset.describe()}, first {n} images")
        scorer = PairScorer(models, seeds, config, "greedy", options, cache, staged(progress, f"modeldiff n={n}: "))
        points.append({"method": "modeldiff", "images": n, "queries": 2 * n,
                       **_benchmark_summary(zoo, scorer, "modeldiff", alpha)})
    return points


def sac_budget_curve(
    zoo: Any, refset: ReferenceSet, config: ZestConfig, *, image_counts: Sequence[int] = SAC_IMAGES,
    seed: int = 0, alpha: float = DEFAULT_ALPHA, progress: ProgressFn | None = None,
) -> list[dict[str, Any]]:
    """SAC-m with n CutMix images (the suspect sees n images)."""
    points = []
    models = {name: zoo.load(name) for name in zoo.entries}
    for n in image_counts:
        scorer = PairScorer(models, refset, config, "greedy", {}, False, staged(progress, f"sac n={n}: "),
                            sac_options={"num_images": n, "seed": seed})
        points.append({"method": "sac", "images": n, "queries": n, **_benchmark_summary(zoo, scorer, "sac", alpha)})
    return points


def akh_budget_curve(
    zoo: Any, refset: ReferenceSet, config: ZestConfig, *, query_counts: Sequence[int] = AKH_QUERIES,
    pool: ReferenceSet | None = None, alpha: float = DEFAULT_ALPHA, progress: ProgressFn | None = None,
) -> list[dict[str, Any]]:
    """AKH with n queries (the suspect sees n images: the reference's mistakes in ``pool`` and their CutMix variants)."""
    points = []
    models = {name: zoo.load(name) for name in zoo.entries}
    for n in query_counts:
        scorer = PairScorer(models, refset, config, "greedy", {}, False, staged(progress, f"akh n={n}: "),
                            akh_options={"num_queries": n, "pool": pool or refset})
        points.append({"method": "akh", "images": n, "queries": n, **_benchmark_summary(zoo, scorer, "akh", alpha)})
    return points


def _benchmark_summary(zoo: Any, scorer: PairScorer, method: str, alpha: float) -> dict[str, Any]:
    """Per relation the matched AUC and TPR, and the FPR, of the calibrated benchmark with one method."""
    start = time.process_time()
    result = calibrated_reuse_benchmark(zoo, scorer, methods=[method], alpha=alpha, image_test=False)
    summary = result.summary[method]
    return {
        "auc": {r: s["auc_matched"] for r, s in summary["relations"].items()},
        "tpr": {r: s["true_positive"]["rate"] for r, s in summary["relations"].items()},
        "fpr": summary["overall"]["false_positive"],
        "tpr_overall": summary["overall"]["true_positive"]["rate"],
        "benchmark_cpu_s": time.process_time() - start,
    }


def auc_gap(point: Mapping[str, Any], full: Mapping[str, Any]) -> float | None:
    """The largest drop of a relation's matched AUC from the full-budget point's (None where undefined)."""
    if "auc" not in point:
        return None
    gaps = [full["auc"][r] - a for r, a in point["auc"].items() if a is not None and full["auc"].get(r) is not None]
    return max(gaps) if gaps else None


def cheapest_within(points: Sequence[Mapping[str, Any]], full: Mapping[str, Any],
                    tolerance: float = AUC_TOLERANCE) -> Mapping[str, Any] | None:
    """The point of fewest queries whose every relation's AUC is within ``tolerance`` of the full budget's."""
    good = [p for p in points if (gap := auc_gap(p, full)) is not None and gap <= tolerance]
    return min(good, key=lambda p: (p["queries"], -p.get("images", 0))) if good else None


def signature_cpu_seconds(model: Callable, refset: ReferenceSet, config: ZestConfig,
                          budgets: Sequence[tuple[str, int, int]], *, repeats: int = 1) -> list[dict[str, Any]]:
    """The wall and CPU time of computing one uncached signature at each (design, N, L), on this machine."""
    rows = []
    for design, n, samples in budgets:
        subset = refset.subset(np.arange(n), provenance=f"{refset.describe()}, first {n} images")
        at = config.replace(num_samples=samples, mask_design=design)
        compute_signature(model, subset, at, cache=False)  # warm: the probe (segmentation) is not the cost asked
        wall, cpu = math.inf, math.inf
        for _ in range(repeats):
            w0, c0 = time.perf_counter(), time.process_time()
            compute_signature(model, subset, at, cache=False)
            wall, cpu = min(wall, time.perf_counter() - w0), min(cpu, time.process_time() - c0)
        rows.append({"design": design, "images": n, "samples": samples, "queries": n * samples, "wall_s": wall, "cpu_s": cpu})
    return rows


def budget_study(
    zoo: Any,
    refset: ReferenceSet,
    config: ZestConfig,
    *,
    methods: Sequence[str] = ("zest-cosine", "modeldiff", "sac"),
    designs: Sequence[str] = ("bernoulli", "antithetic", "orthogonal"),
    image_counts: Sequence[int] = ZEST_IMAGES,
    sample_counts: Mapping[str, Sequence[int]] | None = None,
    seed_counts: Sequence[int] = MODELDIFF_SEEDS,
    sac_counts: Sequence[int] = SAC_IMAGES,
    akh_counts: Sequence[int] = AKH_QUERIES,
    akh_pool: ReferenceSet | None = None,
    modeldiff_options: Mapping[str, Any] | None = None,
    sequential: bool = True,
    align: str = "greedy",
    alpha: float = DEFAULT_ALPHA,
    cache: Any = None,
    progress: ProgressFn | None = None,
) -> dict[str, Any]:
    """Every method's calibrated benchmark against its queries per suspect model, and the cheapest good Zest points.

    The full-budget point is the paper's: Bernoulli masks at the largest N and L of the grid (N is
    the reference set's size, L ``config.num_samples``; the other designs' grids stop at 256). For
    each design the result names the point of fewest queries whose matched AUC is within
    :data:`AUC_TOLERANCE` of the full budget's for every relation, and the CPU time of one
    signature at the full budget and at that point (measured on the first zoo model). With
    ``sequential``, the sequential audit (:mod:`zest_core.studies.sequential`) on every image of the
    reference set, at the budget rule's L and design, beside the fixed audit.
    """
    # The grids stop at the reference set's size and at config.num_samples (L_max), both included.
    image_counts = sorted({n for n in image_counts if n < len(refset)} | {len(refset)})
    seed_counts = sorted({n for n in seed_counts if n < len(refset)} | {len(refset)})
    caps = {d: config.num_samples if d == "bernoulli" else min(config.num_samples, OTHER_DESIGNS_MAX_SAMPLES)
            for d in designs}
    sample_counts = dict(sample_counts or {d: sorted({l for l in ZEST_SAMPLES if l < caps[d]} | {caps[d]})
                                           for d in designs})
    points: list[dict[str, Any]] = []
    result: dict[str, Any] = {"refset": refset.describe(), "config": config.to_dict(), "alpha": alpha, "align": align,
                              "tolerance": AUC_TOLERANCE}
    if "zest-cosine" in methods:
        points += zest_budget_curve(zoo, refset, config, designs=designs, image_counts=image_counts,
                                    sample_counts=sample_counts, align=align, alpha=alpha, cache=cache, progress=progress)
        fitted = {d: sorted({p["samples"] for p in points if p.get("design") == d and "auc" in p}) for d in designs}
        if fitted.get("bernoulli"):
            result["distance_errors"] = distance_errors(zoo, refset, config, designs=[d for d in designs if fitted[d]],
                                                        sample_counts=fitted, align=align, cache=cache)
    if "modeldiff" in methods:
        points += modeldiff_budget_curve(zoo, refset, config, search_params(**dict(modeldiff_options or {})),
                                         seed_counts=seed_counts, alpha=alpha, cache=cache, progress=progress)
    if "sac" in methods:
        points += sac_budget_curve(zoo, refset, config, image_counts=sac_counts, alpha=alpha, progress=progress)
    if "akh" in methods:
        points += akh_budget_curve(zoo, refset, config, query_counts=akh_counts, pool=akh_pool, alpha=alpha,
                                   progress=progress)
    result["points"] = points
    if sequential:
        at = config.replace(num_samples=BUDGET_SAMPLES, mask_design=BUDGET_DESIGN)
        result["sequential"] = sequential_calibration(zoo, refset, at, alpha=alpha, align=align, cache=cache,
                                                      progress=progress)
    zest = [p for p in points if p["method"] == "zest-cosine" and "auc" in p]
    if zest:
        full = max((p for p in zest if p["design"] == "bernoulli"), key=lambda p: (p["images"], p["samples"]))
        result["full_budget"] = {k: full[k] for k in ("design", "images", "samples", "queries")}
        for p in points:
            p["auc_gap"] = auc_gap(p, full)
        result["cheapest_within_tolerance"] = {
            design: _point_id(cheapest_within([p for p in zest if p["design"] == design], full)) for design in designs
        }
        first = zoo.load(next(iter(zoo.entries)))
        timed = [("bernoulli", full["images"], full["samples"])] + [
            (c["design"], c["images"], c["samples"]) for c in result["cheapest_within_tolerance"].values() if c is not None
        ]
        result["signature_time"] = signature_cpu_seconds(first, refset, config, list(dict.fromkeys(timed)))
    return result


def _point_id(point: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if point is None:
        return None
    return {k: point[k] for k in ("design", "images", "samples", "queries", "auc_gap")}
