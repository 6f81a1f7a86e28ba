"""AKH: does the suspect repeat the reference model's mistakes? Agreement on its misclassified inputs.

QuRD [1]_ found that this plain baseline is on par with published fingerprints (ModelDiff, Zest,
SAC): query the suspect on inputs that the reference model P *misclassifies*, and count how often the
suspect returns P's (wrong) labels. Independent models make different mistakes; a copy, a fine-tuned
or a distilled model tends to keep P's.

The method, after ``grodino/QuRD`` (``qurd/fingerprint/fingerprints.py``, fingerprint ``"AKH"``:
``RandomNegativeQueries(augment=True)`` for the queries, ``HardLabels`` for the representation,
``hamming`` for the distance; ``qurd/fingerprint/queries.py`` for ``find_negatives`` and the
augmentation):

1. the queries are the labelled inputs that P misclassifies (``pred != label``);
2. when there are fewer of them than the budget, more are made from them by CutMix, each mixed image
   also flipped horizontally and vertically (QuRD adds CutMix, h-flip and v-flip batches until the
   budget is reached, then truncates);
3. each model's representation is its top-1 labels on the queries;
4. the distance is the Hamming distance between the suspect's labels and P's: the fraction of queries
   on which they differ.

Divergences from the reference code, on purpose:

- the pool of labelled inputs is the audit's reference set (it must carry labels), not a data
  loader shuffled at random: the queries are a deterministic function of (P, reference set, seed);
- CutMix boxes come from :func:`zest_core.methods.sac.cutmix_plan` (one box of a fixed ``cut_ratio``
  of each side, partner drawn with ``rng``) rather than torchvision's ``v2.CutMix`` with a Beta(1, 1)
  area;
- when the two models' classes differ (a transfer to another label set), labels are compared through
  the class mapping by name (:func:`~zest_core.methods.class_mapping.resolve_class_mapping`): a
  label of P with no counterpart in the suspect counts as a disagreement. QuRD compares indices.

References
----------
.. [1] Godinot, Le Merrer, Penzo, Taïani & Trédan, "Queries, Representation & Detection: The Next 100
   Model Fingerprinting Schemes", AAAI 2025 (``grodino/QuRD``).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .._shared.checks import check_int
from ..errors import NotComparableError, ZestError
from ..pipeline.reference import ReferenceSet, check_refset
from .sac import DEFAULT_CUT_RATIO, cutmix_images

DEFAULT_NUM_QUERIES = 100


@dataclass(frozen=True)
class AKHQueries:
    """The AKH queries made for one reference model.

    Attributes
    ----------
    images : Tensor [Q, C, H, W], float32 in [0, 1]
        The misclassified reference images first, then their CutMix (and flipped) variants.
    misclassified : int
        How many of the queries are reference images the reference model misclassifies.
    """

    images: torch.Tensor
    misclassified: int


def labels_in_classes(refset: ReferenceSet, class_names: list[str] | None) -> np.ndarray:
    """Each reference image's label as an index of the reference model's classes, -1 where it has none.

    With the model's class names, labels are matched by name (a reference set without class names
    names each label by its number, as MNIST's digits are): a 5-class model of digits 5-9 has no
    class for a "3". Without them, the labels are taken as the model's class indices.
    """
    if refset.labels is None:
        raise NotComparableError(f"refset: expected labelled reference images for AKH (it asks about the reference model's "
                        f"mistakes), got {refset.provenance or 'a reference set'} without labels")
    labels = np.asarray(refset.labels, dtype=np.int64)
    if class_names is None:
        return labels
    position = {str(name): k for k, name in enumerate(class_names)}
    named = refset.class_names
    return np.array([position.get(str(named[label]) if named is not None else str(label), -1) for label in labels],
                    dtype=np.int64)


def akh_queries(
    reference_scores: np.ndarray,
    refset: ReferenceSet,
    labels: np.ndarray,
    num_queries: int = DEFAULT_NUM_QUERIES,
    *,
    rng: int | np.random.Generator = 0,
    cut_ratio: float = DEFAULT_CUT_RATIO,
) -> AKHQueries:
    """The reference model's misclassified reference images, grown to ``num_queries`` by CutMix and flips.

    Parameters
    ----------
    reference_scores : ndarray, shape (N, classes)
        The reference model's scores on ``refset``'s N images.
    refset : ReferenceSet
    labels : ndarray of int, shape (N,)
        Each image's true class as an index of the reference model's classes, -1 for an image of a
        class it does not have (:func:`labels_in_classes`); those are never queries.
    num_queries : int, default 100
    rng, cut_ratio
        As in :func:`zest_core.methods.sac.cutmix_plan`.

    Returns
    -------
    AKHQueries

    Raises
    ------
    ZestError
        If the scores or labels are not one row per image.
    NotComparableError
        If the reference model misclassifies none of the images: AKH then has nothing to ask.
    """
    check_refset(refset)
    check_int("num_queries", num_queries, minimum=1)
    scores, labels = np.asarray(reference_scores), np.asarray(labels)
    if scores.ndim != 2 or scores.shape[0] != len(refset):
        raise ZestError(f"reference_scores: expected ({len(refset)}, classes), got {scores.shape}")
    if labels.shape != (len(refset),):
        raise ZestError(f"labels: expected ({len(refset)},), got {labels.shape}")
    wrong = np.flatnonzero((labels >= 0) & (scores.argmax(axis=1) != labels))
    if wrong.size == 0:
        raise NotComparableError(
            f"refset: expected some of the {len(refset)} reference images to be misclassified by the reference "
            "model, got none; AKH needs its mistakes (use more reference images)"
        )
    misclassified = refset.subset(wrong.tolist())
    parts = [misclassified.as_tensor()]
    made = wrong.size
    generator = np.random.default_rng(rng)
    while made < num_queries and wrong.size >= 2:
        count = max(2, int(np.ceil((num_queries - made) / 3)))  # SAC's plan makes at least 2
        mixed = cutmix_images(misclassified, count, rng=generator, cut_ratio=cut_ratio)
        parts += [mixed, torch.flip(mixed, dims=(3,)), torch.flip(mixed, dims=(2,))]
        made += 3 * count
    images = torch.cat(parts)[:num_queries]
    return AKHQueries(images=images, misclassified=int(min(wrong.size, num_queries)))


def akh_distance(
    reference_labels: np.ndarray, suspect_labels: np.ndarray, class_mapping: np.ndarray | None = None,
) -> float:
    """QuRD's Hamming distance between two models' top-1 labels on the AKH queries.

    Parameters
    ----------
    reference_labels, suspect_labels : ndarray of int, shape (Q,)
    class_mapping : ndarray of int, shape (reference classes,), optional
        For each class of the reference model, the suspect's class of the same name, -1 for none.

    Returns
    -------
    float in [0, 1]
        The fraction of queries on which the suspect's label is not the reference's.
    """
    a, b = np.asarray(reference_labels), np.asarray(suspect_labels)
    if a.ndim != 1 or a.shape != b.shape or a.size == 0:
        raise ZestError(f"suspect_labels: expected the shape of reference_labels, {a.shape}, got {b.shape}")
    if class_mapping is not None:
        a = np.asarray(class_mapping, dtype=np.int64)[a]
    return float(np.mean((a != b) | (a < 0)))
