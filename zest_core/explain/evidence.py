"""Why the verdict: on which reference images the suspect is unusually close to the reference model.

The verdict (:mod:`zest_core.explain.significance`) compares one number, ``d(P, S)``, with the
distances ``d(P, Uⱼ)`` of unrelated models. This module opens that number up image by image, *against
the same null*: an image on which every unrelated model agrees with P as closely as the suspect does
is no evidence of derivation, and an image on which only the suspect does is.

The statistic
-------------
Zest's signature is the N local models side by side [1]_, so each reference image n has its own local
distance ``dₙ(P, X)``: the verdict's metric on image n's block of the two class-aligned signature
matrices (aligned once per pair, as the distance aligns them). For each image, with ``ℓ = log dₙ``,

    zₙ = (mean_j ℓₙ(P, Uⱼ) − ℓₙ(P, S)) / sd_j ℓₙ(P, Uⱼ)

the *standardised gap*: how many of the null's standard deviations the suspect is closer to P on image
n than an unrelated model is. It is the per-image twin of the verdict's own statistic (the prediction
test standardises the log distance against the null in the same way), so an auditor reads both on one
scale; logs because local distances are positive and skewed, and because the gap should not depend on
how hard an image is (a scale change of every distance on one image leaves zₙ unchanged).
``zₙ > 0``: the suspect is closer than unrelated models usually are; ``zₙ ≈ 0``: it is as close as
they are (every model agrees, or none does); ``zₙ < 0``: it is further.

What it is not
--------------
These scores **explain** a verdict; they are **not a second test**. The images share one suspect's
training run, so they are not independent draws under the null, and the largest of N such scores is
large by selection alone: no threshold on zₙ has a known false-positive rate. With m unrelated models
each zₙ is also heavy-tailed (a t-like ratio with m − 1 degrees of freedom): on an image where the
null happens to agree closely, an ordinary suspect can score ±5 with m = 6. The verdict is the one
test; this shows where it comes from (:data:`EVIDENCE_NOTE`, shown wherever the scores are).

References
----------
.. [1] Jia et al., "A Zest of LIME: Towards Architecture-Independent Model Distances", ICLR 2023, §3.
.. [2] Ribeiro, Singh & Guestrin, "Why Should I Trust You?", KDD 2016 (the local linear models).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

from .._shared.checks import check_choice
from ..errors import ZestError
from ..pipeline.distance import METRICS, compare, compared_pairs, match_signatures, vector_distance
from ..pipeline.signature import Signature
from .._shared.checks import check_int
from .painting import comparison_weight_maps, symmetric_limit

EVIDENCE_NOTE = (
    "Per-image evidence explains the verdict; it is not a second test. The reference images share one "
    "suspect's training run, so they are not independent evidence, and the top of N scores is large by "
    "selection alone. The verdict above is the only test."
)
# A local distance of exactly 0 (a copy on that image) has no logarithm: it counts as this one.
DISTANCE_FLOOR = 1e-12
# The null's spread of log distances on one image is at least this (0.1 %): a null that happens to
# agree to the last digit must not turn a tiny gap into an enormous score.
MIN_LOG_SD = 1e-3


@dataclass(frozen=True)
class ImageEvidence:
    """Per reference image: how unusually close the suspect is to the reference model, against the null.

    Attributes
    ----------
    scores : ndarray, shape (N,)
        The standardised gap zₙ (see the module docstring); NaN for an image on which a local distance
        is undefined (a block of zeros, for the cosine).
    suspect_distances : ndarray, shape (N,)
        ``dₙ(P, S)``.
    null_distances : ndarray, shape (m, N)
        ``dₙ(P, Uⱼ)``, one row per unrelated model.
    null_names : tuple of str
    closer_nulls : ndarray of int, shape (N,)
        How many unrelated models are at least as close to P as the suspect on each image (0: none).
    metric : str
    """

    scores: np.ndarray
    suspect_distances: np.ndarray
    null_distances: np.ndarray
    null_names: tuple[str, ...]
    closer_nulls: np.ndarray
    metric: str

    @property
    def num_images(self) -> int:
        return int(self.scores.shape[0])

    def closest_unrelated(self, image: int) -> str:
        """The unrelated model closest to the reference on ``image`` (the strongest independent competitor)."""
        image = check_int("image", image, minimum=0, maximum=self.num_images - 1)
        column = self.null_distances[:, image]
        return self.null_names[int(np.nanargmin(column))] if np.isfinite(column).any() else self.null_names[0]

    def most(self, count: int) -> np.ndarray:
        """The ``count`` images on which the suspect is most unusually close to P, strongest first (NaN last)."""
        return self._order(count, descending=True)

    def least(self, count: int) -> np.ndarray:
        """The ``count`` images on which the suspect is least close to P compared with the null, weakest first."""
        return self._order(count, descending=False)

    def _order(self, count: int, *, descending: bool) -> np.ndarray:
        count = check_int("count", count, minimum=0)
        keys = np.where(np.isfinite(self.scores), -self.scores if descending else self.scores, np.inf)
        return np.argsort(keys, kind="stable")[:count]

    def to_dict(self) -> dict:
        """JSON-ready: per image its score, the suspect's and the null's local distances, and the note."""
        def number(value: float) -> float | None:
            return float(value) if np.isfinite(value) else None

        return {
            "statistic": "standardised gap of log local distances, (mean_j log d_n(P,U_j) - log d_n(P,S)) / sd_j",
            "metric": self.metric,
            "note": EVIDENCE_NOTE,
            "null_models": list(self.null_names),
            "images": [
                {"index": n, "score": number(self.scores[n]), "suspect_distance": number(self.suspect_distances[n]),
                 "null_distances": [number(v) for v in self.null_distances[:, n]],
                 "closer_nulls": int(self.closer_nulls[n]), "closest_unrelated": self.closest_unrelated(n)}
                for n in range(self.num_images)
            ],
        }


def local_distances(reference: Signature, other: Signature, *, metric: str = "cosine",
                    align: str = "auto") -> np.ndarray:
    """``dₙ(reference, other)`` for every reference image n: the metric on image n's block of the aligned matrices.

    The classes are matched once for the whole pair (:func:`zest_core.pipeline.distance.compare`), as
    the distance matches them. For the cosine a block of zeros on either side has no direction: its
    distance is NaN.

    Returns
    -------
    ndarray, shape (N,)
    """
    check_choice("metric", metric, METRICS)
    comparison = compare(reference, other, metric=metric, align=align)
    a, b, columns = comparison.matrix_a, comparison.matrix_b, comparison.image_columns
    out = np.empty(len(columns) - 1)
    for n in range(len(columns) - 1):  # N blocks, each the distance's own formula on image n's columns
        try:
            out[n] = vector_distance(a[:, columns[n]:columns[n + 1]], b[:, columns[n]:columns[n + 1]], metric)
        except ZestError:  # a block of zeros has no direction for the cosine
            out[n] = np.nan
    return out


def image_evidence(
    reference: Signature,
    suspect: Signature,
    unrelated: Mapping[str, Signature],
    *,
    metric: str = "cosine",
    align: str = "auto",
) -> ImageEvidence:
    """Score every reference image by how unusually close the suspect is to the reference there.

    Parameters
    ----------
    reference, suspect : Signature
        P's and S's signatures on one reference set and config.
    unrelated : mapping of str to Signature
        The matched null's signatures (at least 2: a spread needs two).
    metric : {"cosine", "l1", "l2", "linf"}
        The verdict's metric.
    align : {"auto", "none", "greedy", "hungarian"}
        The verdict's class alignment.

    Returns
    -------
    ImageEvidence
        See the module docstring for the statistic and why it is no test.

    Raises
    ------
    ZestError
        With fewer than 2 unrelated models, or signatures that cannot be compared.
    """
    if len(unrelated) < 2:
        raise ZestError(f"unrelated: expected at least 2 unrelated models' signatures for a spread, got {len(unrelated)}")
    names = tuple(unrelated)
    own = local_distances(reference, suspect, metric=metric, align=align)
    null = np.stack([local_distances(reference, unrelated[name], metric=metric, align=align) for name in names])
    return ImageEvidence(
        scores=standardised_gap(own, null), suspect_distances=own, null_distances=null, null_names=names,
        closer_nulls=np.sum(null <= own[None, :], axis=0).astype(int), metric=metric,
    )


def standardised_gap(suspect: np.ndarray, null: np.ndarray) -> np.ndarray:
    """``(mean_j log null[j] − log suspect) / max(sd_j log null[j], MIN_LOG_SD)`` per column (NaN where undefined).

    Parameters
    ----------
    suspect : ndarray, shape (N,)
    null : ndarray, shape (m, N), m ≥ 2
        Distances; zeros count as :data:`DISTANCE_FLOOR`. The sd has m − 1 degrees of freedom.
    """
    suspect, null = np.asarray(suspect, dtype=np.float64), np.asarray(null, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        own = np.log(np.maximum(suspect, DISTANCE_FLOOR))
        logs = np.log(np.maximum(null, DISTANCE_FLOOR))
    spread = np.maximum(np.std(logs, axis=0, ddof=1), MIN_LOG_SD)
    return (np.mean(logs, axis=0) - own) / spread


@dataclass(frozen=True)
class EvidenceView:
    """One reference image's evidence as pictures: P's, S's and the closest unrelated model's LIME weights.

    Attributes
    ----------
    index : int
        The reference image.
    score : float
        Its standardised gap.
    reference_class : str
        The reference model's class whose weights are painted (the image's own class when the
        reference set names it and P has it; otherwise P's class with the strongest weights there).
    suspect_class, unrelated_class : str
        The class each model's row is matched to (as the distance matches them).
    unrelated : str
        The closest unrelated model on this image.
    maps : ndarray, shape (3, H, W)
        Weights painted on the super-pixels, each signature unit-norm (the scale the cosine sees):
        P, S, the unrelated model.
    limit : float
        One symmetric colour limit for all three.
    distances : tuple of float
        ``dₙ(P, S)`` and ``dₙ(P, U)``.
    """

    index: int
    score: float
    reference_class: str
    suspect_class: str
    unrelated_class: str
    unrelated: str
    maps: np.ndarray
    limit: float
    distances: tuple[float, float]


def evidence_views(
    reference: Signature,
    suspect: Signature,
    unrelated: Mapping[str, Signature],
    evidence: ImageEvidence,
    images: Sequence[int],
    *,
    labels: Sequence[str] | None = None,
    align: str = "auto",
) -> list[EvidenceView]:
    """The pictures of :class:`EvidenceView` for ``images`` (for example ``evidence.most(4)``).

    Parameters
    ----------
    labels : sequence of str, optional
        The name of each reference image's true class (the reference set's), to paint that class.
    """
    names_p = _names(reference)
    # Classes are matched once per pair of models, and only the one class shown is painted: at 1000
    # classes and 224 px, matching costs seconds and painting every class 400 MB per image.
    matched: dict[str, np.ndarray] = {}

    def pairs_with(name: str, other: Signature) -> np.ndarray:
        if name not in matched:
            matched[name] = compared_pairs(match_signatures(reference, other, align), reference.num_classes)
        return matched[name]

    views = []
    for index in images:
        index = check_int("image", index, minimum=0, maximum=evidence.num_images - 1)
        other = evidence.closest_unrelated(index)
        pairs_s, pairs_u = pairs_with("\0suspect", suspect), pairs_with(other, unrelated[other])
        wanted = _reference_class(reference, index, names_p, labels, pairs_s[:, 0])
        row_s = int(np.flatnonzero(pairs_s[:, 0] == wanted)[0])
        rows_u = np.flatnonzero(pairs_u[:, 0] == wanted)[:1]
        with_s = comparison_weight_maps(reference, suspect, index, unit_norm=True, pairs=pairs_s, rows=[row_s])
        maps = [with_s.a[0], with_s.b[0]]
        if rows_u.size:
            with_u = comparison_weight_maps(reference, unrelated[other], index, unit_norm=True, pairs=pairs_u,
                                            rows=rows_u)
            maps.append(with_u.b[0])
            unrelated_class = _names(unrelated[other])[with_u.pairs[0, 1]]
        else:  # that model has no class matched to P's: nothing of its to paint
            maps.append(np.zeros_like(with_s.a[0]))
            unrelated_class = "none matched"
        stack = np.stack(maps)
        views.append(EvidenceView(
            index=index, score=float(evidence.scores[index]), reference_class=names_p[wanted],
            suspect_class=_names(suspect)[with_s.pairs[0, 1]], unrelated_class=unrelated_class,
            unrelated=other, maps=stack, limit=symmetric_limit(stack),
            distances=(float(evidence.suspect_distances[index]),
                       float(evidence.null_distances[evidence.null_names.index(other), index])),
        ))
    return views


def _names(signature: Signature) -> list[str]:
    names = signature.class_names
    return list(names) if names is not None and len(names) == signature.num_classes else \
        [str(k) for k in range(signature.num_classes)]


def _reference_class(reference: Signature, index: int, names: list[str], labels: Sequence[str] | None,
                     compared: np.ndarray) -> int:
    """The image's own class when named and compared; otherwise P's compared class with the largest weights there."""
    if labels is not None and labels[index] in names:
        own = names.index(labels[index])
        if own in compared:
            return own
    weights = reference.weights[index][compared]
    return int(compared[int(np.argmax(np.linalg.norm(weights, axis=1)))])
