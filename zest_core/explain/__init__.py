"""Explanations of a Zest comparison: where a distance comes from, and what the signatures look like.

Everything the dashboard shows beyond the distance itself is computed here, as small pure functions of
signatures, reference sets and models (no Streamlit, no plotting). One module per job:

- :mod:`~zest_core.explain.contributions`: :func:`distance_contributions` splits a distance exactly into
  per-entry, per-image and per-class parts (cosine, L1 and L2 are sums of per-entry terms; L∞ is a
  maximum);
- :mod:`~zest_core.explain.uncertainty`: the percentile bootstrap interval over reference images;
- :mod:`~zest_core.explain.comparison`: :func:`compare_signatures`, all of the above for one pair,
  aligned once;
- :mod:`~zest_core.explain.painting`: :func:`paint_weights` and :func:`comparison_weight_maps` paint
  the LIME weights [2]_ of each super-pixel onto its image; :func:`boundary_image` and
  :func:`segment_centroids` draw super-pixels [3]_;
- :mod:`~zest_core.explain.replay`: :func:`perturbed_samples` recomposes, from the signature's probe,
  the exact perturbed images a signature was fitted on and runs the models on them;
- :mod:`~zest_core.explain.class_matching`: :func:`compare_alignments` and :func:`alignment_accuracy`
  score class matchings against known class names;
- :mod:`~zest_core.explain.clustering`: :func:`cluster_models`, a hierarchical ordering of a distance
  matrix;
- :mod:`~zest_core.explain.report`: :func:`comparison_report`, a JSON-ready dictionary.
- :mod:`~zest_core.explain.significance`: :func:`decide_related`, a calibrated verdict (p-value at
  level α) against the distances of matched unrelated models;
- :mod:`~zest_core.explain.evidence`: :func:`image_evidence`, why the verdict: per reference image,
  how unusually close the suspect is to the reference against the same null (an explanation, not a
  second test), and :func:`evidence_views`, its pictures.

:func:`checkpoint_specs` (a training run's checkpoint files) lives in :mod:`zest_core.sources.checkpoints`
and is re-exported here for the pages that import it from here; the reuse benchmark's report reader is
:mod:`zest_core.studies.reuse_report`.

References
----------
.. [1] Jia, Yaghini, Choquette-Choo, Dullerud, Thudi, Chandrasekaran & Papernot, "A Zest of LIME:
   Towards Architecture-Independent Model Distances", ICLR 2023.
.. [2] Ribeiro, Singh & Guestrin, "Why Should I Trust You?", KDD 2016 (LIME, arXiv:1602.04938).
.. [3] Vedaldi & Soatto, "Quick Shift and Kernel Methods for Mode Seeking", ECCV 2008.
"""
from ..sources.checkpoints import CHECKPOINT_EXTENSIONS, checkpoint_specs
from .class_matching import AlignmentSummary, alignment_accuracy, compare_alignments
from .clustering import Clustering, cluster_models
from .comparison import ComparisonResult, compare_signatures
from .contributions import Contributions, distance_contributions, split_distance
from .evidence import (
    EVIDENCE_NOTE,
    EvidenceView,
    ImageEvidence,
    evidence_views,
    image_evidence,
    local_distances,
    standardised_gap,
)
from .painting import (
    WeightMaps,
    boundary_image,
    comparison_weight_maps,
    paint_weights,
    segment_centroids,
    symmetric_limit,
    to_rgb,
)
from .replay import PerturbedSamples, perturbed_samples
from .significance import DEFAULT_ALPHA, MIN_NULL, VERDICT_LABELS, Decision, decide_related, detection_threshold
from .report import comparison_report, to_jsonable
from .uncertainty import bootstrap_distance_interval, bootstrap_distances

__all__ = [
    "CHECKPOINT_EXTENSIONS",
    "EVIDENCE_NOTE",
    "EvidenceView",
    "ImageEvidence",
    "evidence_views",
    "image_evidence",
    "local_distances",
    "standardised_gap",
    "DEFAULT_ALPHA",
    "MIN_NULL",
    "Decision",
    "decide_related",
    "detection_threshold",
    "VERDICT_LABELS",
    "AlignmentSummary",
    "Clustering",
    "ComparisonResult",
    "Contributions",
    "PerturbedSamples",
    "WeightMaps",
    "alignment_accuracy",
    "bootstrap_distance_interval",
    "bootstrap_distances",
    "boundary_image",
    "checkpoint_specs",
    "cluster_models",
    "compare_alignments",
    "compare_signatures",
    "comparison_report",
    "comparison_weight_maps",
    "distance_contributions",
    "paint_weights",
    "perturbed_samples",
    "segment_centroids",
    "split_distance",
    "symmetric_limit",
    "to_jsonable",
    "to_rgb",
]
