"""Zest Explorer's engine: architecture-independent model distances from predictions alone.

The pipeline, in data-flow order (one module each):
reference → segmentation → perturbation → probe (model-independent parts) → queries → local_fit →
signature → alignment → distance.

References
----------
Jia et al., "A Zest of LIME: Towards Architecture-Independent Model Distances", ICLR 2023.
Ribeiro et al., "Why Should I Trust You?", KDD 2016 (LIME, arXiv:1602.04938).
"""
from .errors import (
    EndpointError,
    IncompatibleSignaturesError,
    ModelInputError,
    ModelLoadError,
    ModelOutputError,
    ModelRuntimeError,
    NotComparableError,
    CommitmentError,
    NullError,
    SignatureFileError,
    ZestError,
    ZestTypeError,
    ZooError,
)
from .pipeline.alignment import Alignment, align_classes
from .methods import cka_similarity, linear_cka, prediction_agreement
from .explain.uncertainty import bootstrap_distance_interval
from .studies import (
    epoch_curves,
    refsize_study,
    reuse_benchmark,
    write_reuse_report,
)
from .cache.store import SignatureCache
from .pipeline.budget import DEFAULT_AUDIT_BUDGET, BudgetPlan, apply_budget, plan_budget
from .pipeline.config import ZestConfig
from .pipeline.distance import (
    alignment_method,
    distance_matrix,
    signature_distance_matrix,
    zest_distance,
)
from .sources.cifar import load_cifar
from .sources.mnist import load_mnist
from .sources.npz import load_npz_reference
from .sources.endpoint import EndpointModel
from .sources.image_folder import load_image_folder, reference_from_uploads
from .methods.modeldiff import InputPairs, ModelDiff, decision_distance_vector, generate_pairs, modeldiff_similarity
from .sources.models import Classifier, adapt_input, fit_input, load_model
from .pipeline.counting import QueryCount
from .pipeline.device import resolve_device
from .pipeline.fingerprint import model_fingerprint
from .pipeline.reference import ReferenceSet
from .pipeline.segmentation import default_segmentation_params, segment_image
from .pipeline.signature import Signature, compute_signature
from .zoo import Zoo, ZooConfig, build_zoo, load_zoo, load_zoo_model

__all__ = [
    "BudgetPlan",
    "DEFAULT_AUDIT_BUDGET",
    "apply_budget",
    "plan_budget",
    "Alignment",
    "InputPairs",
    "ModelDiff",
    "Zoo",
    "ZooConfig",
    "ZooError",
    "ZestError",
    "ZestTypeError",
    "NotComparableError",
    "CommitmentError",
    "NullError",
    "Classifier",
    "EndpointError",
    "EndpointModel",
    "IncompatibleSignaturesError",
    "ModelInputError",
    "ModelLoadError",
    "ModelOutputError",
    "ModelRuntimeError",
    "QueryCount",
    "ReferenceSet",
    "Signature",
    "SignatureCache",
    "SignatureFileError",
    "ZestConfig",
    "align_classes",
    "bootstrap_distance_interval",
    "build_zoo",
    "cka_similarity",
    "decision_distance_vector",
    "epoch_curves",
    "fit_input",
    "generate_pairs",
    "linear_cka",
    "load_zoo",
    "load_zoo_model",
    "modeldiff_similarity",
    "prediction_agreement",
    "refsize_study",
    "reuse_benchmark",
    "write_reuse_report",
    "alignment_method",
    "compute_signature",
    "default_segmentation_params",
    "distance_matrix",
    "load_cifar",
    "load_image_folder",
    "load_mnist",
    "adapt_input",
    "load_model",
    "load_npz_reference",
    "model_fingerprint",
    "reference_from_uploads",
    "resolve_device",
    "segment_image",
    "signature_distance_matrix",
    "zest_distance",
]
