"""Signatures: the N local linear models of one model, side by side (C × ΣK), and how to compute them."""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from .._shared.checks import check_type
from .._shared.npzfile import NpzRecord
from ..cache.store import SIGNATURE_FILE, CacheArg, SignatureCache, resolve_cache
from ..errors import SignatureFileError, ZestError
from .config import ZestConfig
from .local_fit import check_samples_determine_fits
from .probe import Probe, ProgressFn, config_key, prepare_probe
from .counting import QueryCount
from .device import resolve_device
from .fingerprint import model_fingerprint
from .queries import ModelFn, check_model, query_batches
from .scores import model_outputs
from .reference import ReferenceSet, check_refset

FORMAT_VERSION = SIGNATURE_FILE.version


@dataclass
class Signature:
    """One model's Zest signature over one reference set.

    Attributes
    ----------
    weights : list of ndarray, each (C, K_n)
        Image n's local linear model: the weight of each super-pixel for each class.
    intercepts : ndarray (C, N) or None
        The local models' intercepts (``mode="lime"`` only; the zest fit has none).
    segments : ndarray of int32, (N, H, W)
        The super-pixels the weights refer to.
    config : ZestConfig
    model_fingerprint : str or None
        Content hash of the model (None for a bare callable).
    refset_fingerprint : str
    class_names : list of str, optional
    metadata : dict
        Free-form, stored in the file. ``metadata["queries"]`` is the :class:`~zest_core.QueryCount`
        (as a dict, ``{"calls": ..., "images": ...}``) of computing the signature, so that one read
        from the cache or a file still tells what it cost (:meth:`recorded_queries`).
    """

    weights: list[np.ndarray]
    intercepts: np.ndarray | None
    segments: np.ndarray
    config: ZestConfig
    model_fingerprint: str | None
    refset_fingerprint: str
    class_names: list[str] | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def num_classes(self) -> int:
        return int(self.weights[0].shape[0])

    @property
    def num_images(self) -> int:
        return len(self.weights)

    def matrix(self) -> np.ndarray:
        """The signature as one C × ΣK matrix (images' local models side by side)."""
        return np.concatenate(self.weights, axis=1)

    def recorded_queries(self) -> QueryCount | None:
        """The queries computing this signature took (``metadata["queries"]``); None if its file predates the count."""
        return QueryCount.from_dict(self.metadata.get("queries"))

    def image_columns(self) -> np.ndarray:
        """Start column of each image in :meth:`matrix` (length N + 1)."""
        return np.concatenate([[0], np.cumsum([w.shape[1] for w in self.weights])])

    def to_record(self) -> NpzRecord:
        """The signature as arrays and JSON metadata, the content of its file (see :meth:`save`)."""
        arrays = {"matrix": self.matrix(), "columns": self.image_columns(), "segments": self.segments}
        if self.intercepts is not None:
            arrays["intercepts"] = self.intercepts
        meta = {
            "config": self.config.to_dict(),
            "model_fingerprint": self.model_fingerprint,
            "refset_fingerprint": self.refset_fingerprint,
            "class_names": self.class_names,
            "metadata": self.metadata,
        }
        return NpzRecord(arrays=arrays, meta=meta)

    @classmethod
    def from_record(cls, record: NpzRecord, source: str = "signature") -> "Signature":
        """The signature a checked record holds (``source`` names it in messages).

        Raises
        ------
        SignatureFileError
            If the record lacks a piece, or its weight columns do not match its segment maps.
        """
        arrays, meta = record.arrays, record.meta
        try:
            matrix, columns, segments = arrays["matrix"], arrays["columns"], arrays["segments"]
            config = ZestConfig.from_dict(meta["config"])
            model_fp, refset_fp = meta["model_fingerprint"], meta["refset_fingerprint"]
        except (KeyError, TypeError, ValueError) as error:
            raise SignatureFileError(
                f"{source}: not a readable signature file ({type(error).__name__}: {error})"
            ) from error
        if len(columns) != segments.shape[0] + 1 or columns[-1] != matrix.shape[1]:
            raise SignatureFileError(
                f"{source}: expected weight columns for the {segments.shape[0]} segment maps, got "
                f"{len(columns) - 1} images' columns ending at {columns[-1]} of {matrix.shape[1]}"
            )
        return cls(
            weights=[matrix[:, columns[i]:columns[i + 1]] for i in range(len(columns) - 1)],
            intercepts=arrays.get("intercepts"),
            segments=segments,
            config=config,
            model_fingerprint=model_fp,
            refset_fingerprint=refset_fp,
            class_names=meta.get("class_names"),
            metadata=meta.get("metadata") or {},
        )

    def save(self, path: str | os.PathLike) -> Path:
        """Write the signature as a checked ``.npz`` file, atomically (temporary file, then rename).

        The layout is :data:`~zest_core.cache.SIGNATURE_FILE`'s: arrays ``matrix`` (C × ΣK),
        ``columns`` (N + 1), ``segments`` (N, H, W), ``intercepts`` (lime mode) and the JSON
        ``meta``; the checksum covers the matrix.
        """
        return SIGNATURE_FILE.write(path, self.to_record())

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Signature":
        """Read a signature file of this version or an earlier one; SignatureFileError if it is not one, whole."""
        return cls.from_record(SIGNATURE_FILE.read(path), source=str(path))


def signature_fingerprint(model: Any, config: ZestConfig) -> str | None:
    """The model fingerprint a signature is keyed and identified by: the model's content, and what its scores are.

    A model that declares class probabilities gets other targets than its logit twin
    (:func:`~zest_core.pipeline.scores.to_targets`) unless the targets are the scores themselves, so
    its fingerprint then says so: the two never share a cache entry.
    """
    fingerprint = model_fingerprint(model)
    if fingerprint is not None and config.targets != "logits" and model_outputs(model) == "probabilities":
        fingerprint += "+probabilities"
    return fingerprint


def compute_signature(
    model: ModelFn,
    refset: ReferenceSet,
    config: ZestConfig | None = None,
    progress: ProgressFn | None = None,
    *,
    cache: CacheArg = None,
    allow_nondeterministic: bool = False,
    counter: QueryCount | None = None,
) -> Signature:
    """Compute a model's Zest signature: N local linear models of its outputs over super-pixel masks.

    Parameters
    ----------
    model : callable
        Maps a float tensor [B, C, H, W] in [0, 1] pixel space to scores [B, classes]; an
        ``nn.Module`` is one (it is run in eval mode on the engine's device and restored after).
        The model's own normalisation belongs to the model (or its adapter).
    refset : ReferenceSet
    config : ZestConfig, optional
        Defaults to ``ZestConfig()``.
    progress : callable (done, total, stage), optional
        Called as segmentation ("segment"), queries ("query") and fitting advance.
    cache : SignatureCache, path, bool or None
        Where signatures are cached: None uses the default folder ($ZEST_CACHE_DIR or
        ~/.cache/zest), False disables caching. Models without a content fingerprint are never
        cached. A cached file is used only if it carries this model's, reference set's and config's
        fingerprints; a folder that cannot be written is reported once and the signature returned.
    allow_nondeterministic : bool, default False
        The first 16 perturbed images (``REPEAT_CHECK_IMAGES``) are queried twice, and a model whose answers differ
        (beyond float rounding) is refused: its distance to itself would not be 0. True accepts
        such a model deliberately (a stochastic API), and skips the second query. This changes
        nothing in the signature, so it is not part of the config or of the cache key.
    counter : QueryCount, optional
        The queries made now are added to it: N × L images in their batches, plus the first 16
        once more for the repeat check; nothing for a signature read from the cache. What computing
        the signature took is recorded in its ``metadata["queries"]`` either way.

    Returns
    -------
    Signature

    Raises
    ------
    ZestTypeError
        If ``model`` is not callable or ``refset`` is not a ReferenceSet.
    ZestError
        For an empty reference set, or ``config.num_samples`` too small for an image's
        super-pixels (L ≥ K + 1, see :func:`~zest_core.pipeline.local_fit.check_samples_determine_fits`),
        raised before the model is queried; ModelInputError if the model cannot take the images;
        ModelRuntimeError if it raises an exception of its own; ModelOutputError if it returns NaN/inf,
        scores of the wrong shape, or different scores for the same images.

    References
    ----------
    .. [1] Jia, Yaghini, Choquette-Choo, Dullerud, Thudi, Chandrasekaran & Papernot, "A Zest of
       LIME: Towards Architecture-Independent Model Distances", ICLR 2023, Algorithm 1.
    """
    config = config or ZestConfig()
    check_refset(refset)
    check_model("model", model)
    check_type("allow_nondeterministic", allow_nondeterministic, bool, "a bool")
    store = resolve_cache(cache)
    fingerprint = signature_fingerprint(model, config)
    cached = cached_signature(store, fingerprint, refset, config)
    if cached is not None:
        # A signature cached before the check existed may be underdetermined: refused the same way.
        check_samples_determine_fits([w.shape[1] for w in cached.weights], config.num_samples, config.mask_design)
        if progress is not None:
            progress(1, 1, "cached")
        return cached

    device = resolve_device(config.device)
    probe = prepare_probe(refset, config, device, progress, cache=store)
    check_samples_determine_fits(probe.num_segments, config.num_samples, config.mask_design)
    made = QueryCount()
    try:
        weights, intercepts = _fit_local_models(
            model, probe, config, progress, check_repeatable=not allow_nondeterministic, counter=made
        )
    finally:  # queries a failed computation made were made all the same
        if counter is not None:
            counter += made
    signature = Signature(
        weights=weights,
        intercepts=intercepts,
        segments=probe.segments,
        config=config,
        model_fingerprint=fingerprint,
        refset_fingerprint=refset.fingerprint(),
        class_names=_class_names(model, weights[0].shape[0]),
        metadata={"queries": made.to_dict()},
    )
    if progress is not None:
        progress(probe.num_images, probe.num_images, "fit")
    store_signature(store, signature)
    return signature


def cached_signature(
    store: SignatureCache | None, fingerprint: str | None, refset: ReferenceSet, config: ZestConfig
) -> Signature | None:
    """The signature cached for this model fingerprint, reference set and config, or None.

    The one lookup of the cache: its key, and the identity a cached file must carry (a file copied
    under another key is refused by :meth:`SignatureCache.load`). None without a cache or a fingerprint.
    """
    if store is None or fingerprint is None:
        return None
    identity = {"model_fingerprint": fingerprint, "refset_fingerprint": refset.fingerprint(), "config": config.to_dict()}
    key = SignatureCache.key(fingerprint, refset.fingerprint(), config_key(config, refset.image_size))
    return store.load(key, SIGNATURE_FILE, Signature.from_record, identity)


def store_signature(store: SignatureCache | None, signature: Signature) -> None:
    """Cache ``signature`` under its own model, reference-set and config fingerprints (nothing without a cache or fingerprint)."""
    if store is None or signature.model_fingerprint is None:
        return
    image_size = tuple(signature.segments.shape[1:])
    key = SignatureCache.key(signature.model_fingerprint, signature.refset_fingerprint, config_key(signature.config, image_size))
    store.store(key, SIGNATURE_FILE, signature.to_record())


def _fit_local_models(
    model: ModelFn, probe: Probe, config: ZestConfig, progress: ProgressFn | None, *, check_repeatable: bool,
    counter: QueryCount | None = None,
) -> tuple[list[np.ndarray], np.ndarray | None]:
    """Each image's (C, K_n) weights, and the (C, N) intercepts in lime mode, from the model's queries.

    The fit is streamed: each image's local model is its operator times its outputs, accumulated
    batch by batch, so the N×L outputs are never all held at once. ``config`` is the caller's: the
    probe, shared by configs that differ only in execution fields, may hold another batch size.
    """
    local_models: list[torch.Tensor | None] = [None] * probe.num_images
    for runs, targets in query_batches(
        model, probe, batch_size=config.batch_size, amp=config.amp, targets=config.targets, progress=progress,
        check_repeatable=check_repeatable, counter=counter,
    ):
        row = 0
        for image, first, stop in runs:
            contribution = probe.operators[image][:, first:stop] @ targets[row:row + stop - first]
            current = local_models[image]
            local_models[image] = contribution if current is None else current + contribution
            row += stop - first
    stacked = [m.cpu().numpy() for m in local_models]  # each (K_n + 1, C)
    weights = [np.ascontiguousarray(m[:-1].T) for m in stacked]
    intercepts = np.stack([m[-1] for m in stacked], axis=1) if config.mode == "lime" else None
    return weights, intercepts


def _class_names(model: Any, num_classes: int) -> list[str] | None:
    names = getattr(model, "class_names", None)
    if isinstance(names, Sequence) and not isinstance(names, str) and len(names) == num_classes:
        return [str(n) for n in names]
    return None


def restrict_signature(signature: Signature, indices: Sequence[int]) -> Signature:
    """A signature's local models for some of its reference images, in the given order (repeats allowed).

    Each image's local model is fitted on its own masks and outputs, so the restricted signature
    is the one these images would get, with two provisos that make it a different reference set:
    the masks of an image are drawn from ``(config.seed, position in the set)``, so the same
    image at another position of a smaller set gets other (identically distributed) masks; and
    ``fill="dataset_mean"`` fills hidden super-pixels with the mean of the *full* set. Restricting
    to the first n images with ``fill`` "mean_color" or "constant" gives exactly the signature of
    the first n images. The result's ``refset_fingerprint`` names the full set and the indices,
    so it is only compatible with signatures restricted the same way.
    """
    index = np.asarray(indices)
    if index.ndim != 1 or index.size == 0 or not np.issubdtype(index.dtype, np.integer):
        raise ZestError(f"indices: expected a non-empty 1-D sequence of image indices, got {indices!r}")
    if index.min() < 0 or index.max() >= signature.num_images:
        raise ZestError(
            f"indices: expected values in [0, {signature.num_images - 1}] (the signature's images), "
            f"got values in [{index.min()}, {index.max()}]"
        )
    index = index.astype(np.int64)
    digest = hashlib.sha256(f"{signature.refset_fingerprint}|images={index.tolist()}".encode()).hexdigest()[:32]
    return replace(
        signature,
        weights=[signature.weights[i] for i in index],
        intercepts=None if signature.intercepts is None else signature.intercepts[:, index],
        segments=signature.segments[index],
        refset_fingerprint=digest,
        metadata={
            **signature.metadata, "restricted_from": signature.refset_fingerprint, "image_indices": index.tolist(),
        },
    )


def join_signatures(parts: Sequence[Signature]) -> Signature:
    """The signature over the union of disjoint reference sets: each part's local models, side by side.

    Each image's local model depends only on that image's masks and the model's answers to them, so
    the joined signature is one over all the parts' images (each part's masks and fills are its
    own). Every part must come from the same model, config and class count. The result's
    ``refset_fingerprint`` names the parts in order; its recorded queries are their sum.
    """
    if not parts:
        raise ZestError("parts: expected at least one signature, got none")
    first = parts[0]
    for index, part in enumerate(parts[1:], start=1):
        if (part.model_fingerprint, part.config, part.num_classes) != (first.model_fingerprint, first.config,
                                                                        first.num_classes):
            raise ZestError(
                f"parts: expected signatures of one model with one config and class count, got part {index} of "
                f"{part.model_fingerprint} ({part.num_classes} classes) after {first.model_fingerprint} "
                f"({first.num_classes} classes)"
            )
    if len({p.segments.shape[1:] for p in parts}) != 1:
        raise ZestError(f"parts: expected reference images of one size, got {[p.segments.shape[1:] for p in parts]}")
    digest = hashlib.sha256("|".join(p.refset_fingerprint for p in parts).encode()).hexdigest()[:32]
    recorded = [p.recorded_queries() for p in parts]
    metadata = {"joined_from": [p.refset_fingerprint for p in parts]}
    if all(q is not None for q in recorded):
        metadata["queries"] = sum(recorded[1:], recorded[0]).to_dict()
    return Signature(
        weights=[w for p in parts for w in p.weights],
        intercepts=None if first.intercepts is None else np.concatenate([p.intercepts for p in parts], axis=1),
        segments=np.concatenate([p.segments for p in parts]),
        config=first.config,
        model_fingerprint=first.model_fingerprint,
        refset_fingerprint=digest,
        class_names=first.class_names,
        metadata=metadata,
    )
