"""Auditing a model hub: signatures of thousands of models on a backend, blockwise distances, suspect search.

- :mod:`~zest_core.hub.catalog`: a hub's models, from a zoo folder, a folder of files or a list (:func:`load_hub`);
- :mod:`~zest_core.hub.signatures`: :func:`compute_signatures`, one task per model, locally
  (:mod:`~zest_core.hub.backend`) or on Ray (:mod:`~zest_core.hub.ray_backend`, which alone imports
  Ray, and only when it runs);
- :mod:`~zest_core.hub.stack`: :class:`SignatureStack`, the signature matrices in memory or in a file;
- :mod:`~zest_core.hub.matrix`: :func:`hub_distance_matrix` and :func:`pair_distances`, blockwise, streamed;
- :mod:`~zest_core.hub.search`: :func:`search_hub`, the hub ranked against a suspect with calibrated verdicts.
"""
from .backend import BACKENDS, ModelFailure
from .catalog import Hub, HubModel, load_hub
from .matrix import DEFAULT_BLOCK_SIZE, hub_distance_matrix, pair_distances
from .search import Candidate, SearchResult, search_hub
from .signatures import SignatureRun, compute_signatures
from .stack import SignatureStack

__all__ = [
    "BACKENDS",
    "Candidate",
    "DEFAULT_BLOCK_SIZE",
    "Hub",
    "HubModel",
    "ModelFailure",
    "SearchResult",
    "SignatureRun",
    "SignatureStack",
    "compute_signatures",
    "hub_distance_matrix",
    "load_hub",
    "pair_distances",
    "search_hub",
]
