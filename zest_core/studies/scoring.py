"""The reuse benchmark's scorer: each (method, a, b) score once, each model's signature or detector once.

A benchmark over k models asks for O(k²) scores, and each model takes part in many of them, so the
expensive per-model parts (a Zest signature, ModelDiff's input pairs, the model's outputs or
features on the reference images) are computed once and kept.
"""
from __future__ import annotations

import math
import os
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import torch

from ..cache.store import SignatureCache
from ..errors import NotComparableError, ZestError
from ..methods import agreement_rate, linear_cka, model_features, resolve_class_mapping
from ..methods.modeldiff import ModelDiff, PairsCache, query_scores
from ..methods.akh import DEFAULT_NUM_QUERIES, akh_distance, akh_queries, labels_in_classes
from ..methods.sac import cutmix_images, model_correlation, sac_distance, sac_params
from ..pipeline.config import ZestConfig
from ..pipeline.distance import zest_distance
from ..pipeline.probe import ProgressFn
from ..pipeline.counting import QueryCount
from ..pipeline.reference import ReferenceSet
from ..pipeline.signature import Signature, compute_signature
from .accounting import QueryLedger, with_http
from .rules import METHODS

CacheArg = SignatureCache | PairsCache | str | os.PathLike | bool | None
ZEST_METRICS = {"zest-cosine": "cosine", "zest-l2": "l2"}


def score_key(method: str, a: str, b: str) -> tuple[str, str, str]:
    """The key of a score: ModelDiff and AKH are oriented (their queries come from ``a``); the others are symmetric."""
    if method in ("modeldiff", "akh"):
        return (method, a, b)
    first, second = sorted((a, b))
    return (method, first, second)


class PairScorer:
    """Computes each (method, a, b) score once; signatures, ModelDiff detectors and model outputs once per model.

    Parameters
    ----------
    models : mapping of str to callable
    refset : ReferenceSet
    config : ZestConfig
        Zest's configuration; its ``batch_size`` and ``device`` serve every method.
    align : str
        Class matching of the Zest distances.
    options : mapping
        ModelDiff's search parameters (:func:`zest_core.methods.modeldiff.search_params`).
    cache : SignatureCache, PairsCache, folder, bool or None
    progress : callable (done, total, stage), optional
    sac_options : mapping, optional
        SAC's ``num_images``, ``seed``, ``cut_ratio`` (:func:`zest_core.methods.sac.sac_params`);
        the CutMix images are made once, and each model's correlation matrix computed once.
    akh_options : mapping, optional
        AKH's ``num_queries`` (default 100), ``seed`` and ``pool``: the labelled images whose
        misclassified ones are the queries (default: ``refset``) (:mod:`zest_core.methods.akh`).

    Attributes
    ----------
    memo : dict
        ``score_key(method, a, b) → score`` of every score computed.
    notes : list of str
        Why a baseline could not compare two models (its score is NaN).
    ledger : QueryLedger
        Every query each method's per-model parts made, per (method, model, part), and what cached
        parts record having taken (:meth:`queries`).
    """

    def __init__(
        self,
        models: Mapping[str, Callable],
        refset: ReferenceSet,
        config: ZestConfig,
        align: str,
        options: Mapping[str, Any],
        cache: CacheArg,
        progress: ProgressFn | None,
        *,
        sac_options: Mapping[str, Any] | None = None,
        akh_options: Mapping[str, Any] | None = None,
    ) -> None:
        self.models = models
        self.refset = refset
        self.config = config
        self.align = align
        self.options = dict(options)
        self.cache = cache
        self.progress = progress
        self.memo: dict[tuple[str, str, str], float] = {}
        self.notes: list[str] = []
        self._signatures: dict[str, Signature] = {}
        self._detectors: dict[str, ModelDiff] = {}
        self._scores: dict[str, np.ndarray] = {}
        self._features: dict[str, np.ndarray] = {}
        self.ledger = QueryLedger()
        self.sac_options = sac_params(**dict(sac_options or {}))
        self._sac_images: Any = None
        self._sac_correlations: dict[str, np.ndarray] = {}
        self.sac_queries: dict[str, QueryCount] = {}
        options = dict(akh_options or {})
        unknown = sorted(set(options) - {"num_queries", "seed", "pool"})
        if unknown:
            raise ZestError(f"akh_options: expected num_queries, seed or pool, got {', '.join(unknown)}")
        self.akh_options = {"num_queries": DEFAULT_NUM_QUERIES, "seed": 0, "pool": refset, **options}
        self._akh: dict[str, tuple[torch.Tensor, np.ndarray]] = {}
        self._akh_classes: dict[str, int] = {}

    def score(self, method: str, a: str, b: str) -> float:
        """The score of ``a`` and ``b`` by ``method`` (``a`` the source, for ModelDiff)."""
        key = score_key(method, a, b)
        if key not in self.memo:
            self.memo[key] = self._compute(method, a, b)
        return self.memo[key]

    def _compute(self, method: str, a: str, b: str) -> float:
        if method in ZEST_METRICS:
            return zest_distance(self.signature(a), self.signature(b), metric=ZEST_METRICS[method], align=self.align)
        if method == "modeldiff":
            # The suspect sees only the 2n pair images; each comparison queries it again (no DDV is kept).
            return self._detector(a).compare(self.models[b], counter=self.ledger.counter(method, b, "pairs"))
        if method == "sac":
            return sac_distance(self.sac_correlation(a), self.sac_correlation(b))
        if method not in METHODS:
            raise ZestError(f"methods: expected one of {', '.join(METHODS)}, got {method!r}")
        try:
            if method == "akh":
                return self._akh_distance(a, b)
            if method == "agreement":
                return self._agreement(a, b)
            return linear_cka(self._representation(a), self._representation(b))
        except NotComparableError as error:
            # A baseline that cannot compare two models is a gap in the table, not a failed benchmark.
            self.notes.append(f"{method}({a}, {b}): not computed: {error}")
            return math.nan

    def _agreement(self, a: str, b: str) -> float:
        scores_a, scores_b = self._outputs(a), self._outputs(b)
        mapping = resolve_class_mapping(self.models[a], self.models[b], scores_a.shape[1], scores_b.shape[1])
        return agreement_rate(scores_a.argmax(axis=1), scores_b.argmax(axis=1), class_mapping=mapping)

    def _akh_distance(self, a: str, b: str) -> float:
        """AKH of suspect ``b`` on reference ``a``'s misclassified pool images (:mod:`zest_core.methods.akh`)."""
        images, labels_a = self.akh_reference(a)
        scores_b = query_scores(self.models[b], images, batch_size=self.config.batch_size, device=self.config.device,
                                counter=self.ledger.counter("akh", b, "queries"))
        mapping = resolve_class_mapping(self.models[a], self.models[b], self._akh_classes[a], scores_b.shape[1])
        return akh_distance(labels_a, scores_b.argmax(axis=1), mapping)

    def akh_reference(self, name: str) -> tuple[torch.Tensor, np.ndarray]:
        """The AKH queries of reference ``name`` and its labels on them (computed once; its queries counted)."""
        if name not in self._akh:
            pool, options = self.akh_options["pool"], self.akh_options
            model = self.models[name]
            scores = query_scores(model, pool.as_tensor(), batch_size=self.config.batch_size,
                                  device=self.config.device, counter=self.ledger.counter("akh", name, "pool"))
            names = getattr(model, "class_names", None)
            queries = akh_queries(scores, pool, labels_in_classes(pool, names), options["num_queries"],
                                  rng=options["seed"])
            own = query_scores(model, queries.images, batch_size=self.config.batch_size, device=self.config.device,
                               counter=self.ledger.counter("akh", name, "queries"))
            self._akh_classes[name] = own.shape[1]
            self._akh[name] = (queries.images, own.argmax(axis=1))
        return self._akh[name]

    def queries(self, method: str, name: str) -> dict[str, Any]:
        """The queries ``method`` made of model ``name`` (:meth:`QueryLedger.entry`), with an endpoint's HTTP count."""
        return with_http(self.ledger.entry(method, name), self.models[name])

    def query_report(self, methods: Sequence[str]) -> dict[str, dict[str, Any]]:
        """``{method: {model: entry}}``: every model each method queried, with its :meth:`queries`."""
        return {method: {name: self.queries(method, name) for name in self.ledger.models(method)} for method in methods}

    def signature(self, name: str) -> Signature:
        """The Zest signature of model ``name`` (computed once)."""
        if name not in self._signatures:
            signature = compute_signature(
                self.models[name], self.refset, self.config, staged(self.progress, f"signature {name}: "),
                cache=signature_cache(self.cache), counter=self.ledger.counter("zest", name, "signature"),
            )
            self.ledger.record("zest", name, "signature", signature.recorded_queries())
            self._signatures[name] = signature
        return self._signatures[name]

    def add_signatures(self, signatures: Mapping[str, Signature]) -> None:
        """Use these signatures (computed elsewhere, e.g. refitted by the budget study) instead of computing them."""
        unknown = sorted(set(signatures) - set(self.models))
        if unknown:
            raise ZestError(f"signatures: expected names of the scorer's models, got unknown {', '.join(unknown)}")
        for name, signature in signatures.items():
            self.ledger.record("zest", name, "signature", signature.recorded_queries())
        self._signatures.update(signatures)

    def _detector(self, name: str) -> ModelDiff:
        if name not in self._detectors:
            detector = ModelDiff(
                self.models[name], self.refset, **self.options, batch_size=self.config.batch_size,
                device=self.config.device, cache=self.cache, progress=staged(self.progress, f"{name}: "),
            )
            # The source's own queries: the white-box pair search (its count cached with the pairs), its DDV.
            self.ledger.track("modeldiff", name, "pair search", detector.search_queries)
            self.ledger.track("modeldiff", name, "pairs", detector.source_queries)
            took = QueryCount.from_dict(detector.pairs.metadata.get("queries"))
            self.ledger.record("modeldiff", name, "pair search", took)
            self._detectors[name] = detector
        return self._detectors[name]

    def modeldiff_pairs(self, name: str) -> np.ndarray:
        """The 2n images ModelDiff sends every suspect when ``name`` is the source (its pair search, run once)."""
        return self._detector(name).pairs.images()

    def sac_images(self) -> torch.Tensor:
        """SAC's CutMix images of the reference set, the same for every model (made once)."""
        if self._sac_images is None:
            o = self.sac_options
            self._sac_images = cutmix_images(self.refset, o["num_images"], rng=o["seed"], cut_ratio=o["cut_ratio"])
        return self._sac_images

    def sac_correlation(self, name: str) -> np.ndarray:
        """SAC's correlation matrix of model ``name`` on the CutMix images (computed once; queries counted)."""
        if name not in self._sac_correlations:
            self.sac_queries[name] = self.ledger.counter("sac", name, "CutMix images")
            self._sac_correlations[name] = model_correlation(
                self.models[name], self.sac_images(), batch_size=self.config.batch_size, device=self.config.device,
                counter=self.sac_queries[name],
            )
        return self._sac_correlations[name]

    def _outputs(self, name: str) -> np.ndarray:
        if name not in self._scores:
            self._scores[name] = query_scores(
                self.models[name], self.refset.as_tensor(), batch_size=self.config.batch_size,
                device=self.config.device, counter=self.ledger.counter("agreement", name, "reference images"),
            )
        return self._scores[name]

    def _representation(self, name: str) -> np.ndarray:
        if name not in self._features:
            self._features[name] = model_features(
                self.models[name], self.refset.as_tensor(), batch_size=self.config.batch_size,
                device=self.config.device, name=name, counter=self.ledger.counter("cka", name, "reference images"),
            )
        return self._features[name]


def signature_cache(cache: CacheArg) -> SignatureCache | str | os.PathLike | bool | None:
    """The signature cache of a cache argument: a PairsCache's folder holds signatures too."""
    return SignatureCache(cache.root) if isinstance(cache, PairsCache) else cache


def staged(progress: ProgressFn | None, prefix: str) -> ProgressFn | None:
    """``progress`` with ``prefix`` before every stage name (so a bar says which model it is at)."""
    if progress is None:
        return None
    return lambda done, total, stage: progress(done, total, f"{prefix}{stage}")
