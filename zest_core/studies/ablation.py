"""Which Zest settings tell reuse apart best? The matched AUC of every relation, one setting changed at a time.

Each variant changes one choice of a base configuration and reruns the calibrated benchmark
(:mod:`.calibration`) for Zest cosine: the regression targets, the local fit (the authors' least
squares or LIME's kernel ridge), the fill of hidden super-pixels, the class alignment, where the
reference images come from (the held-out digits or the training digits, as the paper samples them),
and the query budget (N, L). Whole relations decide, never a single pair.

References
----------
Jia et al., "A Zest of LIME", ICLR 2023 (§4: the signature's design choices; App. B: settings).
Ribeiro et al., "Why Should I Trust You?", KDD 2016 (LIME's kernel-weighted ridge fit).
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from ..methods.modeldiff import search_params
from ..pipeline.config import ZestConfig
from ..sources.mnist import load_mnist
from .calibration import calibrated_reuse_benchmark
from .scoring import PairScorer

METHOD = "zest-cosine"


@dataclass(frozen=True)
class Variant:
    """One setting changed from the base: config fields, the alignment, the reference split, N."""

    name: str
    config: Mapping[str, Any]
    align: str | None = None
    split: str | None = None
    n: int | None = None


VARIANTS = (
    Variant("base", {}),
    Variant("targets = logits (the paper's)", {"targets": "logits"}),
    Variant("targets = centred logits", {"targets": "centered_logits"}),
    Variant("targets = log-probabilities", {"targets": "log_probabilities"}),
    Variant("mode = lime", {"mode": "lime"}),
    Variant("fill = mean colour", {"fill": "mean_color"}),
    Variant("align = hungarian", {}, align="hungarian"),
    Variant("references = training digits", {}, split="train"),
    Variant("N/2, L/2", {"num_samples": 0.5}, n=0.5),
    Variant("2N, 2L", {"num_samples": 2.0}, n=2.0),
)


def ablation_study(
    zoo: Any,
    *,
    n: int = 32,
    num_samples: int = 250,
    base: ZestConfig | None = None,
    align: str = "greedy",
    ref_seed: int = 0,
    variants: tuple[Variant, ...] = VARIANTS,
    alpha: float = 0.05,
    cache: Any = None,
    progress: Callable[[int, int, str], None] | None = None,
) -> dict[str, Any]:
    """The calibrated benchmark of Zest cosine for every variant: matched AUC per relation, TPR and FPR.

    Parameters
    ----------
    zoo : Zoo
    n, num_samples : int
        The base's reference images (held-out digits) and maskings per image.
    base : ZestConfig, optional
        The base configuration (default ``ZestConfig()``); ``num_samples`` overrides its L.
    align : str
        The base's class alignment.
    variants : tuple of Variant
        A numeric ``num_samples`` or ``n`` below 10 in a variant scales the base's (``0.5``: half).

    Returns
    -------
    dict
        ``rows``: per variant, its settings, seconds, and per relation the matched AUC and TPR, plus
        the overall FPR and matched AUC.
    """
    base = (base or ZestConfig()).replace(num_samples=num_samples)
    models = {name: zoo.load(name) for name in zoo.entries}
    rows = []
    for index, variant in enumerate(variants):
        config, refset, variant_align = _variant_setup(variant, base, n, align, ref_seed)
        scorer = PairScorer(models, refset, config, variant_align, search_params(), cache, None)
        started = time.perf_counter()
        result = calibrated_reuse_benchmark(zoo, scorer, methods=(METHOD,), alpha=alpha)
        summary = result.summary[METHOD]
        rows.append({
            "variant": variant.name, "n": len(refset), "num_samples": config.num_samples, "align": variant_align,
            "config": config.to_dict(), "split": variant.split or "test",
            "seconds": round(time.perf_counter() - started, 1),
            "relations": {r: {"auc": s["auc_matched"], "tpr": s["true_positive"]["rate"]}
                          for r, s in summary["relations"].items()},
            "fpr": summary["overall"]["false_positive"], "auc_matched": summary["overall"]["auc_matched"],
            "min_auc": min(s["auc_matched"] for s in summary["relations"].values()),
        })
        if progress is not None:
            progress(index + 1, len(variants), variant.name)
    return {"study": "ablation", "method": METHOD, "alpha": alpha, "relations": list(result.relations), "rows": rows}


def _variant_setup(variant: Variant, base: ZestConfig, n: int, align: str, ref_seed: int):
    changes = dict(variant.config)
    if isinstance(changes.get("num_samples"), float):
        changes["num_samples"] = max(2, round(base.num_samples * changes["num_samples"]))
    config = base.replace(**changes)
    count = n if variant.n is None else max(1, round(n * variant.n))
    refset = load_mnist(count, split=variant.split or "test", seed=ref_seed)
    return config, refset, variant.align or align
