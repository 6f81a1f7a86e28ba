"""The reuse benchmark's scorer: each (method, a, b) score once, each model's signature or detector once.

A benchmark over k models asks for O(k²) scores, and each model takes part in many of them, so the
expensive per-model parts (a Zest signature, ModelDiff's input pairs, the model's outputs or
features on the reference images) are computed once and kept.
"""
from __future__ import annotations

import math
import os
from typing import Any, Callable, Mapping

import numpy as np

from ..cache.store import SignatureCache
from ..errors import NotComparableError, ZestError
from ..methods import agreement_rate, linear_cka, model_features, resolve_class_mapping
from ..methods.modeldiff import ModelDiff, PairsCache, query_scores
from ..pipeline.config import ZestConfig
from ..pipeline.distance import zest_distance
from ..pipeline.probe import ProgressFn
from ..pipeline.reference import ReferenceSet
from ..pipeline.signature import Signature, compute_signature
from .rules import METHODS

CacheArg = SignatureCache | PairsCache | str | os.PathLike | bool | None
ZEST_METRICS = {"zest-cosine": "cosine", "zest-l2": "l2"}


def score_key(method: str, a: str, b: str) -> tuple[str, str, str]:
    """The key of a score: ModelDiff is oriented (pairs come from ``a``); every other method is symmetric."""
    if method == "modeldiff":
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

    Attributes
    ----------
    memo : dict
        ``score_key(method, a, b) → score`` of every score computed.
    notes : list of str
        Why a baseline could not compare two models (its score is NaN).
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
            return self._detector(a).compare(self.models[b])
        if method not in METHODS:
            raise ZestError(f"methods: expected one of {', '.join(METHODS)}, got {method!r}")
        try:
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

    def signature(self, name: str) -> Signature:
        """The Zest signature of model ``name`` (computed once)."""
        if name not in self._signatures:
            self._signatures[name] = compute_signature(
                self.models[name], self.refset, self.config, staged(self.progress, f"signature {name}: "),
                cache=signature_cache(self.cache),
            )
        return self._signatures[name]

    def _detector(self, name: str) -> ModelDiff:
        if name not in self._detectors:
            self._detectors[name] = ModelDiff(
                self.models[name], self.refset, **self.options, batch_size=self.config.batch_size,
                device=self.config.device, cache=self.cache, progress=staged(self.progress, f"{name}: "),
            )
        return self._detectors[name]

    def _outputs(self, name: str) -> np.ndarray:
        if name not in self._scores:
            self._scores[name] = query_scores(
                self.models[name], self.refset.as_tensor(), batch_size=self.config.batch_size, device=self.config.device
            )
        return self._scores[name]

    def _representation(self, name: str) -> np.ndarray:
        if name not in self._features:
            self._features[name] = model_features(
                self.models[name], self.refset.as_tensor(), batch_size=self.config.batch_size,
                device=self.config.device, name=name,
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
