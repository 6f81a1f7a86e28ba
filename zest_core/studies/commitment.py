"""Commit, then query: a hash of every image an audit will send the suspect, written before the suspect is seen.

An untargeted fingerprint lets a claimant who sees the suspect first pick the queries on which it
happens to agree with their model, and so claim ownership of a model they never made (FIT-Print [1]_
shows this for LIME-based fingerprints too). The standard defence is a commitment: the auditor
publishes the hash of the queries *before* the suspect is queried, and the audit refuses to run
with any other queries.

What the digests cover, per method (everything the suspect is sent is a function of these):

- **Zest**: the reference images, their super-pixels, every mask (so its seed and design) and the fill
  rule: the N × L perturbed images are ``image · mask + fill · (1 − mask)`` of exactly these;
- **ModelDiff**: the 2n images of the pairs the white-box search made on the reference model;
- **SAC-m**: the CutMix images of the reference images;
- **AKH**: the reference model's misclassified pool images (and their CutMix variants).

ModelDiff's pairs come out of a gradient search, whose last float bits can differ from one CPU to
another; the commitment is checked where the audit runs, on the auditor's own pairs (they are cached).

References
----------
.. [1] Shao et al., "FIT-Print: Towards False-claim-resistant Model Ownership Verification via
   Targeted Fingerprint", 2025 (arXiv:2501.15509).
"""
from __future__ import annotations

import hashlib
import json
from typing import Any, Mapping

import numpy as np
import torch

from ..errors import CommitmentError
from ..pipeline.config import ZestConfig
from ..pipeline.probe import prepare_probe
from ..pipeline.reference import ReferenceSet
from .scoring import PairScorer

COMMITMENT_VERSION = 1
COMMITMENT_FLAG = "--commitment"


def zest_queries_digest(refset: ReferenceSet, config: ZestConfig) -> str:
    """SHA-256 of what Zest's N × L queries are made of: the images, super-pixels, masks and fill rule."""
    probe = prepare_probe(refset, config, torch.device("cpu"))
    digest = hashlib.sha256(b"zest-queries-v1")
    digest.update(np.ascontiguousarray(refset.images).tobytes())
    digest.update(np.ascontiguousarray(probe.segments, dtype=np.int32).tobytes())
    for masks in probe.masks:
        digest.update(str(masks.shape).encode())
        digest.update(np.ascontiguousarray(masks, dtype=np.uint8).tobytes())
    digest.update(json.dumps({"fill": config.fill, "fill_value": config.fill_value}, sort_keys=True).encode())
    return digest.hexdigest()


def images_digest(images: np.ndarray | torch.Tensor, label: str) -> str:
    """SHA-256 of a batch of query images as float32 bytes (with their shape and what they are)."""
    array = images.detach().cpu().numpy() if isinstance(images, torch.Tensor) else np.asarray(images)
    array = np.ascontiguousarray(array, dtype=np.float32)
    digest = hashlib.sha256(f"{label}-queries-v1:{array.shape}".encode())
    digest.update(array.tobytes())
    return digest.hexdigest()


def method_queries_digest(scorer: PairScorer, method: str, reference: str) -> str:
    """The digest of the images ``method`` sends every suspect of ``reference`` (nothing is sent to a suspect)."""
    if method.startswith("zest"):
        return zest_queries_digest(scorer.refset, scorer.config)
    if method == "modeldiff":
        return images_digest(scorer.modeldiff_pairs(reference), "modeldiff")
    if method == "sac":
        return images_digest(scorer.sac_images(), "sac")
    if method == "akh":
        return images_digest(scorer.akh_reference(reference)[0], "akh")
    return images_digest(scorer.refset.as_tensor(), method)  # agreement: the reference images themselves


def commitment_record(refset: ReferenceSet, config: ZestConfig, digests: Mapping[str, str], *,
                      reference_fingerprint: str | None, options: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The commitment file's content: per method the queries' digest, the reference set and config, and its own digest.

    ``digest`` is the SHA-256 of the canonical JSON of every other field: the one string to publish
    (or timestamp) before any suspect is queried.
    """
    body = {
        "zest_commitment": COMMITMENT_VERSION,
        "refset": {"fingerprint": refset.fingerprint(), "size": len(refset), "provenance": refset.provenance},
        "config": config.science_dict(),
        "reference_model": reference_fingerprint,
        "options": dict(options or {}),
        "queries": dict(sorted(digests.items())),
    }
    return {**body, "digest": canonical_digest(body)}


def canonical_digest(body: Mapping[str, Any]) -> str:
    """SHA-256 of ``body`` as canonical JSON (sorted keys, no spaces)."""
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":"), default=str).encode()).hexdigest()


def check_commitment(committed: Mapping[str, Any], digests: Mapping[str, str], refset: ReferenceSet,
                     source: str = COMMITMENT_FLAG) -> None:
    """Refuse an audit whose queries are not the committed ones, naming what differs.

    Raises
    ------
    CommitmentError
        A file that is not a commitment or whose own digest does not match its content (edited after
        it was made), another reference set, a method it does not cover, or a method whose queries
        differ (other masks, seed, design, fill, reference images, or pairs).
    """
    if not isinstance(committed, Mapping) or committed.get("zest_commitment") != COMMITMENT_VERSION:
        raise CommitmentError(f"{source}: expected a zest commitment (version {COMMITMENT_VERSION}), got another file")
    body = {key: value for key, value in committed.items() if key != "digest"}
    if canonical_digest(body) != committed.get("digest"):
        raise CommitmentError(f"{source}: its digest does not match its content: the file was edited after `zest commit`")
    fingerprint = committed.get("refset", {}).get("fingerprint")
    if fingerprint != refset.fingerprint():
        raise CommitmentError(f"{source}: the reference images differ from the committed ones "
                              f"(committed {fingerprint}, this audit {refset.fingerprint()})")
    queries = committed.get("queries", {})
    for method, digest in digests.items():
        if method not in queries:
            raise CommitmentError(f"{source}: expected a commitment to {method}'s queries, got one to "
                                  f"{', '.join(sorted(queries)) or 'no method'}")
        if queries[method] != digest:
            raise CommitmentError(
                f"{source}: {method}'s queries differ from the committed ones (masks, seed, design, fill, "
                f"reference images or the method's own inputs changed): committed {queries[method][:16]}…, "
                f"this audit {digest[:16]}…")

