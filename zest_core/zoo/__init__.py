"""The demo zoo: training recipes, reused-model operations, the zoo's build and manifest, and the demo.

* :mod:`~zest_core.zoo.training`: deterministic training and evaluation of image classifiers;
* :mod:`~zest_core.zoo.reuse`: deriving related models (transfer, pruning, quantisation,
  distillation, extraction, unlearning);
* :mod:`~zest_core.zoo.build`: :func:`build_zoo` trains a zoo of models related in all those ways;
* :mod:`~zest_core.zoo.manifest`: reading a zoo (:func:`load_zoo`, :func:`load_zoo_model`);
* :mod:`~zest_core.zoo.nulls`: the matched null of a comparison (:func:`matched_null`);
* :mod:`~zest_core.zoo.demo`: ``zest demo``.

Importing this package teaches :func:`zest_core.load_model` the ``zoo:NAME[@epochK]`` spec.
"""
from ..errors import ZooError
from ..sources.models import register_spec_scheme
from . import reuse
from .build import ZooConfig, build_zoo, extend_zoo
from .manifest import (
    INDEPENDENT_RELATIONS,
    MANIFEST_NAME,
    SHIPPED_SIGNATURES,
    RELATIONS,
    TASKS,
    ZOO_DIR,
    Zoo,
    ZooEntry,
    default_zoo_dir,
    load_zoo,
    load_zoo_model,
)

from .nulls import (
    UNRELATED_FLAG,
    MatchedNull,
    ModelFacts,
    check_null,
    family,
    matched_null,
    model_facts,
    named_null,
    resolve_null,
    zoo_facts,
)

# load_model lives below the zoo's layer, so the zoo registers its scheme rather than being imported.
register_spec_scheme("zoo", load_zoo_model)

__all__ = [
    "INDEPENDENT_RELATIONS",
    "MANIFEST_NAME",
    "SHIPPED_SIGNATURES",
    "RELATIONS",
    "TASKS",
    "ZOO_DIR",
    "Zoo",
    "ZooConfig",
    "ZooEntry",
    "ZooError",
    "build_zoo",
    "default_zoo_dir",
    "extend_zoo",
    "UNRELATED_FLAG",
    "check_null",
    "family",
    "matched_null",
    "MatchedNull",
    "ModelFacts",
    "model_facts",
    "named_null",
    "resolve_null",
    "zoo_facts",
    "load_zoo",
    "load_zoo_model",
    "reuse",
]
