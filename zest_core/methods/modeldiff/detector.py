"""ModelDiff from one source model: :class:`ModelDiff` and its one-call form :func:`modeldiff_similarity`."""
from __future__ import annotations

from typing import TYPE_CHECKING, Callable, TypedDict

import numpy as np
import torch

from ...cache.store import CacheArg
from ...errors import ZestTypeError
from ...pipeline.counting import QueryCount
from ...pipeline.queries import ModelFn, check_batch_size, check_model
from ...pipeline.reference import ReferenceSet
from .ddv import ddv_similarity, decision_distance_vector
from .pairs import InputPairs, generate_pairs, search_params

if TYPE_CHECKING:  # typing.Unpack is Python 3.11+; the annotations are never evaluated at run time
    from typing_extensions import Unpack

class SearchOptions(TypedDict, total=False):
    """The pair search's parameters (see :func:`~zest_core.methods.modeldiff.generate_pairs`)."""

    epsilon: float
    steps: int
    step_size: float | None
    diversity: bool
    seed: int


class ModelDiffOptions(SearchOptions, total=False):
    """Every keyword option of :class:`ModelDiff`: the search's, and how and where it runs."""

    batch_size: int | None
    device: str | torch.device
    cache: CacheArg
    progress: Callable[[int, int, str], None] | None


class ModelDiff:
    """ModelDiff from one source model: pairs generated once (lazily), the source's DDV kept.

    Parameters
    ----------
    source : callable
        The owner's model, differentiable in torch.
    refset : ReferenceSet or InputPairs
        The seed images, or pairs already generated on ``source`` (then the search parameters are
        ignored).
    batch_size, device, cache, progress
        As in :func:`~zest_core.methods.modeldiff.generate_pairs`.
    **search
        ``epsilon``, ``steps``, ``step_size``, ``diversity``, ``seed``: the pair search's
        parameters, as in :func:`~zest_core.methods.modeldiff.generate_pairs` (same defaults).

    Attributes
    ----------
    search_queries : QueryCount
        The forward passes of the source the pair search made here (none when the pairs came from
        the cache or were given; ``pairs.metadata["queries"]`` records what the search took).
    source_queries : QueryCount
        The source's black-box queries for its own DDV: the 2n images of the pairs, once.

    Examples
    --------
    >>> detector = ModelDiff(my_model, load_mnist(100, split="test"))   # doctest: +SKIP
    >>> detector.compare(suspect)                                         # doctest: +SKIP
    0.97
    """

    def __init__(
        self,
        source: ModelFn,
        refset: ReferenceSet | InputPairs,
        *,
        batch_size: int | None = None,
        device: str | torch.device = "auto",
        cache: CacheArg = None,
        progress: Callable[[int, int, str], None] | None = None,
        **search: Unpack[SearchOptions],
    ) -> None:
        check_model("source", source)
        if not isinstance(refset, (ReferenceSet, InputPairs)):
            raise ZestTypeError(f"refset: expected a ReferenceSet or InputPairs, got {type(refset).__name__}")
        unknown = sorted(set(search) - set(SearchOptions.__annotations__))
        if unknown:
            raise ZestTypeError(
                f"ModelDiff: expected options among {', '.join(ModelDiffOptions.__annotations__)}, got {', '.join(unknown)}"
            )
        self.source = source
        self.refset = refset
        self.options = search_params(**search)
        self.batch_size = check_batch_size(batch_size)
        self.device = device
        self.cache = cache
        self.progress = progress
        self._pairs: InputPairs | None = refset if isinstance(refset, InputPairs) else None
        self._source_ddv: np.ndarray | None = None
        self.search_queries = QueryCount()
        self.source_queries = QueryCount()

    @property
    def pairs(self) -> InputPairs:
        """The test pairs, generated (or read from the cache) on first use."""
        if self._pairs is None:
            self._pairs = generate_pairs(
                self.source, self.refset, **self.options, batch_size=self.batch_size, device=self.device,
                cache=self.cache, progress=self.progress, counter=self.search_queries,
            )
        return self._pairs

    @property
    def source_ddv(self) -> np.ndarray:
        """The source's own normalised decision distance vector on the pairs."""
        if self._source_ddv is None:
            self._source_ddv = self.ddv(self.source, counter=self.source_queries)
        return self._source_ddv

    def ddv(self, model: ModelFn, *, counter: QueryCount | None = None) -> np.ndarray:
        """``model``'s normalised decision distance vector on the pairs (its 2n queries added to ``counter``)."""
        return decision_distance_vector(
            model, self.pairs, batch_size=self.batch_size, device=self.device, counter=counter
        )

    def compare(self, suspect: ModelFn, *, counter: QueryCount | None = None) -> float:
        """ModelDiff similarity of ``suspect`` to the source, in [0, 1]; the suspect's 2n queries go to ``counter``."""
        return ddv_similarity(self.source_ddv, self.ddv(suspect, counter=counter))


def modeldiff_similarity(
    source: ModelFn, suspect: ModelFn, refset: ReferenceSet | InputPairs, **options: Unpack[ModelDiffOptions],
) -> float:
    """ModelDiff similarity of a suspect model to a source model, in [0, 1] (1: the same decision pattern).

    Parameters
    ----------
    source : callable
        The owner's model (white-box: the pairs are searched on it).
    suspect : callable
        The model under suspicion (black-box: only run on the pairs).
    refset : ReferenceSet or InputPairs
        The seed images, or pairs already generated on ``source`` (then the search parameters are
        ignored).
    **options
        ``epsilon``, ``steps``, ``step_size``, ``diversity``, ``seed``, ``batch_size``, ``device``,
        ``cache``, ``progress``: as in :class:`ModelDiff`.

    Returns
    -------
    float
        Cosine similarity of the two models' DDVs.

    References
    ----------
    .. [1] Li et al., "ModelDiff: Testing-Based DNN Similarity Comparison for Model Reuse
       Detection", ISSTA 2021.
    """
    return ModelDiff(source, refset, **options).compare(suspect)
