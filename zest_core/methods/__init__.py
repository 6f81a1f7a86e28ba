"""Model-similarity methods other than Zest: ModelDiff, prediction agreement and linear CKA.

Each method family is a module (or a package) behind a small public surface:

- :mod:`.modeldiff`: ModelDiff (Li et al., ISSTA 2021), decision distance vectors on input pairs
  searched on the source model;
- :mod:`.agreement`: top-1 prediction agreement, the black-box baseline;
- :mod:`.cka`: linear CKA of the models' representations, the white-box baseline;
- :mod:`.sac`: SAC-m (Guan et al., NeurIPS 2022), the sample correlation of a model's outputs on
  CutMix images, black-box and free of class alignment;
- :mod:`.class_mapping`: which class of one model is which of another (by mapping, name or index).

A new similarity method goes in a new module here; it queries models through
:func:`zest_core.pipeline.queries.run_model` (or :func:`~zest_core.pipeline.queries.query_scores`).
"""
from .agreement import agreement_rate, prediction_agreement
from .cka import cka_similarity, linear_cka, model_features
from .class_mapping import class_mapping_by_names, resolve_class_mapping
from .modeldiff import (
    InputPairs,
    ModelDiff,
    ddv_similarity,
    decision_distance_vector,
    generate_pairs,
    modeldiff_similarity,
)
from .sac import SAC, cutmix_images, cutmix_plan, sac_distance, sac_params, sample_correlation

__all__ = [
    "InputPairs",
    "ModelDiff",
    "SAC",
    "agreement_rate",
    "cka_similarity",
    "class_mapping_by_names",
    "cutmix_images",
    "cutmix_plan",
    "ddv_similarity",
    "decision_distance_vector",
    "generate_pairs",
    "linear_cka",
    "model_features",
    "modeldiff_similarity",
    "prediction_agreement",
    "resolve_class_mapping",
    "sac_distance",
    "sac_params",
    "sample_correlation",
]
