"""Model-similarity methods other than Zest: ModelDiff, prediction agreement and linear CKA.

Each method family is a module (or a package) behind a small public surface:

- :mod:`.modeldiff`: ModelDiff (Li et al., ISSTA 2021), decision distance vectors on input pairs
  searched on the source model;
- :mod:`.agreement`: top-1 prediction agreement, the black-box baseline;
- :mod:`.cka`: linear CKA of the models' representations, the white-box baseline;
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

__all__ = [
    "InputPairs",
    "ModelDiff",
    "agreement_rate",
    "cka_similarity",
    "class_mapping_by_names",
    "ddv_similarity",
    "decision_distance_vector",
    "generate_pairs",
    "linear_cka",
    "model_features",
    "modeldiff_similarity",
    "prediction_agreement",
    "resolve_class_mapping",
]
