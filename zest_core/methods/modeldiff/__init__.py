"""ModelDiff: model similarity from decision distance vectors on paired test inputs.

ModelDiff [1]_ compares two classifiers by how they react to pairs of inputs, not by their outputs
themselves. The owner of a *source* model, with white-box access to it, builds test pairs
(x_i, x'_i): x_i a seed image and x'_i a nearby image on which the source decides very differently.
Any model M, the suspect a black box queried on the 2n images, gets a *decision distance vector*

    DDV(M)_i = cosine distance between p_M(x_i) and p_M(x'_i),    i = 1..n,

with p_M the model's class probabilities (the softmax of its logits). The DDV is normalised to
unit L2 norm, and the similarity of two models is the cosine similarity of their DDVs. The DDV is
one number per pair whatever the classes, so the models' class counts need not match, and
permuting a model's classes leaves its DDV unchanged.

The modules, in the order the method runs:

- :mod:`.pairs`: :class:`InputPairs` and :func:`generate_pairs`, which searches the pairs on the
  source (:mod:`.search`) and keeps them in the content-addressed store, per source model,
  reference set and parameters;
- :mod:`.ddv`: :func:`decision_distance_vector` (black-box queries through the engine's one query
  loop, :func:`zest_core.pipeline.queries.query_scores`), :func:`decision_distances`,
  :func:`normalize_ddv` and :func:`ddv_similarity`;
- :mod:`.detector`: :class:`ModelDiff` and :func:`modeldiff_similarity` around them.

References
----------
.. [1] Li, Zhang, Liu, Yang & Liu, "ModelDiff: Testing-Based DNN Similarity Comparison for Model
   Reuse Detection", ISSTA 2021 (arXiv:2106.08890). Authors' code: github.com/yuanchun-li/ModelDiff.
.. [2] Madry, Makelov, Schmidt, Tsipras & Vladu, "Towards Deep Learning Models Resistant to
   Adversarial Attacks", ICLR 2018 (projected sign-gradient ascent in an L-inf ball, random start).
"""
from ...pipeline.queries import query_scores
from .ddv import ZERO_DISTANCE, ddv_similarity, decision_distance_vector, decision_distances, normalize_ddv, to_probabilities
from .detector import ModelDiff, ModelDiffOptions, SearchOptions, modeldiff_similarity
from .pairs import (
    DEFAULT_EPSILON,
    DEFAULT_STEPS,
    FORMAT_VERSION,
    PAIRS_SUFFIX,
    InputPairs,
    PairsCache,
    generate_pairs,
    search_params,
)
from .search import search_pairs

__all__ = [
    "DEFAULT_EPSILON",
    "DEFAULT_STEPS",
    "FORMAT_VERSION",
    "PAIRS_SUFFIX",
    "ZERO_DISTANCE",
    "InputPairs",
    "ModelDiff",
    "ModelDiffOptions",
    "PairsCache",
    "SearchOptions",
    "ddv_similarity",
    "decision_distance_vector",
    "decision_distances",
    "generate_pairs",
    "modeldiff_similarity",
    "normalize_ddv",
    "query_scores",
    "search_pairs",
    "search_params",
    "to_probabilities",
]
