"""The sequential audit: reference images in rounds, a verdict after each, and no queries after it is decided.

Round r adds a block of new reference images (8, then 8, 16, 32, …: the images seen double every
round). Every model's signature on a block is computed once, and a round's signature is the join of
the blocks so far (:func:`~zest_core.pipeline.signature.join_signatures`), so the suspect is asked
only about the images of the rounds that were looked at: nothing is queried twice. The stopping rule
and why its false-positive rate stays at most α is :mod:`zest_core.explain.sequential`.

:func:`sequential_calibration` measures it on the zoo with the leave-one-out protocol of the
calibrated reuse benchmark (:mod:`~zest_core.studies.calibration`): its FPR on the models trained
from scratch, its power per relation, and the suspect's average queries, beside the fixed audit
that always looks at every image (one test at α).
"""
from __future__ import annotations

from typing import Any, Callable, Iterator, Mapping, Sequence

import numpy as np

from ..errors import ZestError
from ..explain.sequential import DEFAULT_FUTILITY, SequentialDecision, SequentialRule, decide_sequentially
from ..explain.significance import DEFAULT_ALPHA, decide_related
from ..pipeline.config import ZestConfig
from ..pipeline.distance import zest_distance
from ..pipeline.probe import ProgressFn
from ..pipeline.reference import ReferenceSet
from ..pipeline.signature import Signature, compute_signature, join_signatures
from ..zoo.nulls import family, matched_null
from .calibration import clopper_pearson_rate
from .rules import order_relations

FIRST_ROUND = 8


def doubling_blocks(num_images: int, first: int = FIRST_ROUND) -> list[range]:
    """Blocks of image indices whose running totals double: [0, 8), [8, 16), [16, 32), … up to ``num_images``."""
    if num_images < 1 or first < 1:
        raise ZestError(f"num_images, first: expected at least 1 image in the first round, got {num_images}, {first}")
    edges = [0]
    size = min(first, num_images)
    while edges[-1] < num_images:
        edges.append(min(num_images, max(size, edges[-1] * 2)))
    return [range(a, b) for a, b in zip(edges[:-1], edges[1:])]


class BlockSignatures:
    """Each model's signature on each block of the reference set, computed once and only when asked."""

    def __init__(self, models: Mapping[str, Callable], refset: ReferenceSet, config: ZestConfig,
                 blocks: Sequence[range], *, cache: Any = None) -> None:
        self.models, self.config, self.cache = models, config, cache
        self.blocks = [refset.subset(np.asarray(block), provenance=f"{refset.provenance}, images {block.start}-"
                                     f"{block.stop - 1}") for block in blocks]
        self._parts: dict[tuple[str, int], Signature] = {}
        self._joined: dict[tuple[str, int], Signature] = {}

    def joined(self, name: str, rounds: int) -> Signature:
        """The model's signature over the first ``rounds`` blocks (joined once: every audit of the model reuses it)."""
        if (name, rounds) not in self._joined:
            self._joined[name, rounds] = join_signatures([self._part(name, r) for r in range(rounds)])
        return self._joined[name, rounds]

    def _part(self, name: str, index: int) -> Signature:
        if (name, index) not in self._parts:
            # The determinism check is made on the first block; later blocks would only repeat it.
            self._parts[name, index] = compute_signature(self.models[name], self.blocks[index], self.config,
                                                         cache=self.cache, allow_nondeterministic=index > 0)
        return self._parts[name, index]

    def images_asked(self, rounds: int) -> int:
        """The perturbed images a model is asked about in the first ``rounds`` rounds (the check's repeat aside)."""
        return sum(len(b) for b in self.blocks[:rounds]) * self.config.num_samples


def sequential_decision(signatures: BlockSignatures, reference: str, suspect: str, null: Sequence[str],
                        rule: SequentialRule, align: str = "greedy") -> SequentialDecision:
    """Audit ``suspect`` against ``reference`` round by round; later rounds are never computed."""

    def rounds() -> Iterator[tuple[float, list[float]]]:
        for r in range(1, len(signatures.blocks) + 1):
            base = signatures.joined(reference, r)
            distance = zest_distance(base, signatures.joined(suspect, r), metric="cosine", align=align)
            yield distance, [zest_distance(base, signatures.joined(u, r), metric="cosine", align=align) for u in null]

    decision = decide_sequentially(rounds(), rule)
    decision.sizes = [sum(len(b) for b in signatures.blocks[:r]) for r in range(1, decision.stopped_round + 1)]
    return decision


def sequential_audit(
    reference: Callable, suspect: Callable, unrelated: Mapping[str, Callable], refset: ReferenceSet, *,
    config: ZestConfig | None = None, alpha: float = DEFAULT_ALPHA, futility: float = DEFAULT_FUTILITY,
    first: int = FIRST_ROUND, align: str = "greedy", cache: Any = None,
) -> tuple[SequentialDecision, BlockSignatures]:
    """:func:`zest_core.studies.audit.audit` with Zest cosine, in rounds of reference images that double.

    Returns the decision, and the block signatures (their recorded queries are what each model was asked).
    """
    models = {"reference": reference, "suspect": suspect, **unrelated}
    blocks = doubling_blocks(len(refset), first)
    signatures = BlockSignatures(models, refset, config or ZestConfig(), blocks, cache=cache)
    rule = SequentialRule(rounds=len(blocks), alpha=alpha, futility=futility)
    return sequential_decision(signatures, "reference", "suspect", list(unrelated), rule, align), signatures


def sequential_calibration(
    zoo: Any, refset: ReferenceSet, config: ZestConfig, *, alpha: float = DEFAULT_ALPHA,
    futility: float = DEFAULT_FUTILITY, first: int = FIRST_ROUND, align: str = "greedy", cache: Any = None,
    progress: ProgressFn | None = None,
) -> dict[str, Any]:
    """The sequential audit on every zoo pair and every unrelated pair (leave one out), beside the fixed audit."""
    models = {name: zoo.load(name) for name in zoo.entries}
    blocks = doubling_blocks(len(refset), first)
    signatures = BlockSignatures(models, refset, config, blocks, cache=cache)
    rule = SequentialRule(rounds=len(blocks), alpha=alpha, futility=futility)
    scratch = zoo.independent()
    jobs = [(p, c, r) for p, c, r in zoo.pairs()]
    jobs += [(p, s, None) for p in scratch for s in scratch if p != s and s not in family(zoo, p)]
    records = []
    for index, (reference, suspect, relation) in enumerate(jobs):
        null = matched_null(zoo, reference, suspect).models
        sequential = sequential_decision(signatures, reference, suspect, null, rule, align)
        full = signatures.joined(reference, len(blocks))
        fixed = decide_related(
            zest_distance(full, signatures.joined(suspect, len(blocks)), metric="cosine", align=align),
            [zest_distance(full, signatures.joined(u, len(blocks)), metric="cosine", align=align) for u in null],
            alpha=alpha,
        )
        records.append({"reference": reference, "suspect": suspect, "relation": relation,
                        "sequential": sequential.verdict, "stopped_round": sequential.stopped_round,
                        "images": sequential.sizes[-1], "queries": signatures.images_asked(sequential.stopped_round),
                        "fixed": fixed.verdict})
        if progress is not None:
            progress(index + 1, len(jobs), "sequential audits")
    return {"rule": {"rounds": rule.rounds, "alpha": alpha, "round_alpha": rule.round_alpha, "futility": futility,
                     "blocks": [len(b) for b in blocks]},
            "config": config.to_dict(), "refset": refset.describe(), "records": records,
            "summary": summarize_sequential(records, signatures.images_asked(len(blocks)))}


def summarize_sequential(records: Sequence[Mapping[str, Any]], full_queries: int) -> dict[str, Any]:
    """FPR and TPR of the sequential and the fixed audit, per relation and overall, and the average queries."""
    negatives = [r for r in records if r["relation"] is None]
    related = [r for r in records if r["relation"] is not None]

    def rates(rows: Sequence[Mapping[str, Any]], key: str) -> dict[str, Any]:
        return clopper_pearson_rate([r[key] == "related" for r in rows if r[key] != "inconclusive"])

    relations = order_relations(r["relation"] for r in related)
    return {
        "false_positive": {"sequential": rates(negatives, "sequential"), "fixed": rates(negatives, "fixed")},
        "true_positive": {"sequential": rates(related, "sequential"), "fixed": rates(related, "fixed")},
        "relations": {rel: {"sequential": rates([r for r in related if r["relation"] == rel], "sequential"),
                            "fixed": rates([r for r in related if r["relation"] == rel], "fixed"),
                            "mean_queries": float(np.mean([r["queries"] for r in related if r["relation"] == rel]))}
                      for rel in relations},
        "mean_queries": {"negatives": float(np.mean([r["queries"] for r in negatives])) if negatives else None,
                         "related": float(np.mean([r["queries"] for r in related])) if related else None,
                         "fixed": full_queries},
    }
