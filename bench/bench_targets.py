"""Which regression targets should Zest fit? Chosen on half the lineages, confirmed on the other half.

Every target of :data:`zest_core.pipeline.config.TARGETS` is run through the calibrated reuse
benchmark (:func:`zest_core.studies.zoo_studies.calibrated_reuse_study`: every child audited against
its source and the matched null, every unrelated pair audited leave-one-out). The related pairs are
then split by lineage:

- **selection half**: the children of the sources ``*-s0`` (``cnn-s0``, ``lenet-s0``);
- **confirmation half**: the children of ``*-s1``.

A target is chosen on the selection half alone, by the number of relations with matched AUC ≥ 0.95,
then the mean matched AUC, then the TPR at α; the confirmation half is reported beside it, never used
to choose. The false-positive rate is measured on every unrelated pair (they belong to no lineage).

Run (from the repository root; the signatures go to the cache folder, so a second run takes seconds)::

    .venv/bin/python bench/bench_targets.py --n 64 --samples 64 --design orthogonal   # the budget default
    .venv/bin/python bench/bench_targets.py --n 128 --samples 1000                   # the paper's settings

It prints one Markdown table and writes ``bench/results/targets_<n>x<samples>.json``.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from zest_core import ZestConfig
from zest_core.pipeline.config import TARGETS
from zest_core.sources.mnist import load_mnist
from zest_core.studies.calibration import clopper_pearson_rate
from zest_core.studies.rules import order_relations, roc_auc
from zest_core.studies.zoo_studies import calibrated_reuse_study
from zest_core.zoo import load_zoo

HALVES = {"selection (*-s0)": "-s0", "confirmation (*-s1)": "-s1"}


def half_summary(related: list[dict], suffix: str) -> dict:
    """Per relation matched AUC and TPR for the children of the sources whose names end with ``suffix``."""
    mine = [r for r in related if r["reference"].endswith(suffix)]
    relations = order_relations(r["relation"] for r in mine)
    per_relation = {}
    for relation in relations:
        records = [r for r in mine if r["relation"] == relation]
        null = [d for r in records for d in r["null_distances"]]
        per_relation[relation] = {
            "auc": roc_auc([r["distance"] for r in records], null, "distance"),
            "tpr": sum(r["verdict"] == "related" for r in records) / len(records),
        }
    aucs = [v["auc"] for v in per_relation.values()]
    return {
        "relations": per_relation,
        "relations_auc_ge_095": int(sum(a >= 0.95 for a in aucs)),
        "relation_count": len(aucs),
        "mean_auc": float(np.mean(aucs)),
        "tpr": float(np.mean([r["verdict"] == "related" for r in mine])),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=64)
    parser.add_argument("--samples", type=int, default=64)
    parser.add_argument("--design", default="orthogonal", choices=("bernoulli", "antithetic", "orthogonal"))
    parser.add_argument("--targets", nargs="+", default=list(TARGETS), choices=TARGETS)
    parser.add_argument("--method", default="zest-cosine", choices=("zest-cosine", "zest-l2"))
    parser.add_argument("--cache-dir", default=".zest_cache")
    parser.add_argument("--out", default="bench/results")
    args = parser.parse_args()

    zoo = load_zoo(None)
    refset = load_mnist(args.n, split="test", seed=0)
    results = {}
    for target in args.targets:
        config = ZestConfig(num_samples=args.samples, mask_design=args.design, targets=target)
        print(f"{target}: scoring {len(zoo.entries)} models", file=sys.stderr, flush=True)
        result = calibrated_reuse_study(zoo, refset, config, methods=[args.method], cache=args.cache_dir)
        related = [r for r in result.related if r["method"] == args.method]
        negatives = [r for r in result.negatives if r["method"] == args.method and r["verdict"] != "inconclusive"]
        results[target] = {
            "halves": {name: half_summary(related, suffix) for name, suffix in HALVES.items()},
            "fpr": clopper_pearson_rate([r["verdict"] == "related" for r in negatives]),
        }

    def rank(target: str) -> tuple:
        half = results[target]["halves"]["selection (*-s0)"]
        return (half["relations_auc_ge_095"], half["mean_auc"], half["tpr"])

    chosen = max(results, key=rank)
    lines = [f"Targets, {args.method}, N = {args.n} × L = {args.samples} {args.design}; chosen on *-s0: **{chosen}**", "",
             "| targets | half | relations with AUC ≥ 0.95 | mean matched AUC | TPR at α | FPR at α (all negatives) |",
             "| --- | --- | --- | --- | --- | --- |"]
    for target, data in results.items():
        fpr = data["fpr"]
        for name, half in data["halves"].items():
            lines.append(f"| {target} | {name} | {half['relations_auc_ge_095']}/{half['relation_count']} | "
                         f"{half['mean_auc']:.3f} | {100 * half['tpr']:.0f}% | "
                         f"{100 * fpr['rate']:.1f}% ({fpr['k']}/{fpr['n']}) |")
    print("\n".join(lines))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"targets_{args.n}x{args.samples}_{args.design}.json"
    path.write_text(json.dumps({"settings": vars(args), "chosen": chosen, "results": results}, indent=1))
    print(f"wrote {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
