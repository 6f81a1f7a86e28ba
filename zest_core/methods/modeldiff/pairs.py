"""ModelDiff's test inputs: pairs (seed, perturbed image) searched on the source model, and their file.

:func:`generate_pairs` makes them (the search itself is :func:`.search.search_pairs`) and keeps them
in the content-addressed store (:mod:`zest_core.cache`), keyed by the source model, the reference
set and every search parameter, so that each source's pairs are searched once.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from ..._shared.npzfile import NpzRecord
from ...cache.store import PAIRS_FILE, CacheArg, SignatureCache, resolve_cache
from ...errors import ZestError
from ...pipeline.counting import QueryCount
from ...pipeline.fingerprint import model_fingerprint
from ...pipeline.queries import ModelFn, check_batch_size, check_model
from ...pipeline.reference import ReferenceSet, check_refset
from .search import search_pairs

FORMAT_VERSION = PAIRS_FILE.version
PAIRS_SUFFIX = PAIRS_FILE.suffix
ProgressFn = Callable[[int, int, str], None]
# The pairs live in the one store; the name is kept for the callers that pass a PairsCache.
PairsCache = SignatureCache

# Defaults of the pair search, for 28×28 to 224×224 images in [0, 1] pixel space (see generate_pairs).
DEFAULT_EPSILON = 0.1
DEFAULT_STEPS = 20


@dataclass(frozen=True, eq=False)
class InputPairs:
    """ModelDiff's test inputs: n pairs (seed image, perturbed image) generated on one source model.

    Attributes
    ----------
    seeds : ndarray of float32, shape (n, C, H, W)
        The seed images x_i, in [0, 1] (the reference set's images, in its order).
    perturbed : ndarray of float32, shape (n, C, H, W)
        The generated images x'_i, in [0, 1] and within ``params["epsilon"]`` of their seed (L-inf).
    params : dict
        Every parameter of the search (epsilon, steps, step_size, diversity, seed).
    source_fingerprint : str or None
        Content hash of the source model (None for a bare callable: such pairs are never cached).
    refset_fingerprint : str
        Content hash of the reference set the seeds come from.
    metadata : dict
        The search's score (divergence × diversity) at its start and end, the source's mean
        decision distance on the pairs, and ``queries``: the forward passes of the source the search
        took (:class:`~zest_core.QueryCount` as a dict), kept with cached pairs.
    """

    seeds: np.ndarray
    perturbed: np.ndarray
    params: dict[str, Any]
    source_fingerprint: str | None
    refset_fingerprint: str
    metadata: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.seeds.shape[0])

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return tuple(int(n) for n in self.seeds.shape[1:])  # type: ignore[return-value]

    def images(self) -> np.ndarray:
        """All 2n images, the seeds first, then the perturbed images in the same order."""
        return np.concatenate([self.seeds, self.perturbed])

    def to_record(self) -> NpzRecord:
        """The pairs as arrays and JSON metadata, the content of their file (see :meth:`save`)."""
        return NpzRecord(
            arrays={"seeds": self.seeds, "perturbed": self.perturbed},
            meta={
                "params": self.params,
                "source_fingerprint": self.source_fingerprint,
                "refset_fingerprint": self.refset_fingerprint,
                "metadata": self.metadata,
            },
        )

    @classmethod
    def from_record(cls, record: NpzRecord, source: str = "ModelDiff pairs") -> "InputPairs":
        """The pairs a checked record holds (``source`` names it in messages)."""
        try:
            return cls(
                seeds=record.arrays["seeds"], perturbed=record.arrays["perturbed"], params=record.meta["params"],
                source_fingerprint=record.meta["source_fingerprint"],
                refset_fingerprint=record.meta["refset_fingerprint"],
                metadata=record.meta.get("metadata") or {},
            )
        except KeyError as error:
            raise ZestError(f"{source}: not a readable ModelDiff pairs file (KeyError: {error})") from error

    def save(self, path: str | os.PathLike) -> Path:
        """Write the pairs as a checked ``.npz`` file, atomically (:data:`~zest_core.cache.PAIRS_FILE`)."""
        return PAIRS_FILE.write(path, self.to_record())

    @classmethod
    def load(cls, path: str | os.PathLike) -> "InputPairs":
        """Read pairs written by :meth:`save`; a ZestError names a missing, damaged or foreign file."""
        return cls.from_record(PAIRS_FILE.read(path), source=str(path))


def search_params(
    *, epsilon: float = DEFAULT_EPSILON, steps: int = DEFAULT_STEPS, step_size: float | None = None,
    diversity: bool = True, seed: int = 0,
) -> dict[str, Any]:
    """The validated search parameters, with the default step size filled in (the cache key's part)."""
    if isinstance(epsilon, bool) or not isinstance(epsilon, (int, float, np.floating)) or not 0 < float(epsilon) <= 1:
        raise ZestError(f"epsilon: expected an L-inf radius in (0, 1] (pixel units), got {epsilon!r}")
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 1:
        raise ZestError(f"steps: expected an integer ≥ 1, got {steps!r}")
    if step_size is None:
        step_size = 2.5 * float(epsilon) / int(steps)
    if isinstance(step_size, bool) or not isinstance(step_size, (int, float, np.floating)) or not float(step_size) > 0:
        raise ZestError(f"step_size: expected a positive number, got {step_size!r}")
    if not isinstance(diversity, bool):
        raise ZestError(f"diversity: expected a bool, got {diversity!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ZestError(f"seed: expected an integer ≥ 0, got {seed!r}")
    return {
        "epsilon": float(epsilon), "steps": int(steps), "step_size": float(step_size),
        "diversity": diversity, "seed": int(seed),
    }


def generate_pairs(
    source_model: ModelFn,
    refset: ReferenceSet,
    *,
    epsilon: float = DEFAULT_EPSILON,
    steps: int = DEFAULT_STEPS,
    step_size: float | None = None,
    diversity: bool = True,
    seed: int = 0,
    batch_size: int | None = None,
    device: str | torch.device = "auto",
    cache: CacheArg = None,
    progress: ProgressFn | None = None,
    counter: QueryCount | None = None,
) -> InputPairs:
    """Generate ModelDiff's test pairs on a source model: near in input space, far in its decisions.

    Every reference image is a seed x_i. Its partner x'_i starts at a uniformly random point of the
    L-inf ball of radius ``epsilon`` around x_i and climbs, by ``steps`` steps of projected
    sign-gradient ascent [2]_ (each pixel moves by ``step_size``, then is clipped back into the ball
    and into [0, 1]), the score of the whole set of pairs on the source model:

        score = divergence × diversity,
        divergence = mean_i  cos_dist(p(x_i), p(x'_i)),
        diversity  = mean_{i≠j} ‖p(x'_i) − p(x'_j)‖₂,

    with p the source's class probabilities (the softmax of its logits). The pairs returned are
    those of the step with the highest score (the random start included).

    This is [1]_'s objective: pairs whose decisions differ (divergence) and inputs that exercise
    different behaviours of the model (diversity), multiplied as the authors' code multiplies them.
    Simplifications and differences from their released code (``modeldiff.py``,
    ``_gen_profiling_inputs_search``), which mutates one random pixel of one input by ±epsilon per
    iteration (1000 iterations) and keeps a mutation when the score improves, with no bound on the
    accumulated change:

    - here all pairs move at once along the gradient of the same score (the source is white-box
      to its owner), within an explicit L-inf ball, clipped to valid pixels: tens of
      forward/backward passes instead of thousands of forward passes;
    - their comparison script scores inputs on both compared models; here only the source is
      used, so the pairs are made once per source and reused for every (black-box) suspect;
    - their divergence is the L2 distance of raw outputs and their diversity is taken over all
      inputs; here the divergence is the cosine distance of probabilities (the decision distance
      the DDV itself uses) and the diversity is taken over the generated images x'_i;
    - their seeds come from both models' datasets; here from the reference set (no suspect data
      is needed).

    Parameters
    ----------
    source_model : callable
        The owner's model, differentiable in torch (an ``nn.Module`` or a Classifier around one):
        images [B, C, H, W] in [0, 1] → scores [B, classes]. Logits are turned into probabilities by
        a softmax; a model declaring ``outputs="probabilities"`` is used as it is.
    refset : ReferenceSet
        The seeds, one pair per image.
    epsilon : float, default 0.1
        L-inf radius of the ball around each seed, in [0, 1] pixel units. 0.1 (25/255) keeps x'_i
        visibly the same image and sits between the usual 8/255 of CIFAR and 0.3 of MNIST
        robustness studies. Measured on the tests' small MNIST CNNs (64 seeds): the source's top-1
        decision flips on about 40% of the pairs and the others end near a boundary; with 0.2 it
        flips on 60–75%, and unrelated models' DDVs grow more alike (adversarial directions
        transfer between models). The authors' code mutates by 0.2 in normalised units (≈ 0.045
        pixel units with ImageNet statistics) per accepted mutation, with no overall bound.
    steps : int, default 20
        Gradient steps (each one forward and backward pass of the source over the n pairs, plus one
        forward pass to score them).
    step_size : float, optional
        Change of each pixel per step; by default ``2.5 * epsilon / steps``, the usual rule of
        thumb for projected gradient ascent (as in MadryLab's ``robustness`` library): enough to
        cross the ball, with room to come back.
    diversity : bool, default True
        Multiply the divergence by the diversity term, as [1]_ does; False maximises the divergence
        alone. Needs at least two pairs (with one, only the divergence is used).
    seed : int, default 0
        Seeds the random start (an explicit ``torch.Generator``); the same seed gives the same pairs.
    batch_size : int, optional
        Images per forward/backward pass; None picks it as the Zest engine does. The result does
        not depend on it (up to floating-point rounding).
    device : {"auto", "cpu", "cuda"} or torch.device
    cache : SignatureCache, folder, bool or None
        The store the pairs are kept in, as for signatures: None (default) or True: the default
        cache folder ($ZEST_CACHE_DIR or ~/.cache/zest); False: no cache. The key is the source's fingerprint, the reference set's and every
        parameter above except batch_size and device; a source without a content fingerprint (a
        bare callable) is never cached. A cached file is used only if it carries this key's source,
        reference set and parameters; a folder that cannot be written is reported once.
    progress : callable (done, total, stage), optional
    counter : QueryCount, optional
        The search's forward passes of the source are added to it (none for pairs read from the
        cache); what the search took is also recorded in the pairs' ``metadata["queries"]``.

    Returns
    -------
    InputPairs

    Raises
    ------
    ZestError
        For a bad argument (naming it), or a source whose scores carry no gradient.
    ModelInputError, ModelOutputError
        If the source cannot take the images or returns bad scores.

    References
    ----------
    .. [1] Li et al., "ModelDiff: Testing-Based DNN Similarity Comparison for Model Reuse
       Detection", ISSTA 2021 (test input generation).
    .. [2] Madry et al., "Towards Deep Learning Models Resistant to Adversarial Attacks", ICLR 2018.
    """
    check_model("source_model", source_model)
    check_refset(refset)
    params = search_params(epsilon=epsilon, steps=steps, step_size=step_size, diversity=diversity, seed=seed)
    check_batch_size(batch_size)
    store = resolve_cache(cache)
    fingerprint = model_fingerprint(source_model)
    key = None
    if store is not None and fingerprint is not None:
        key = SignatureCache.pairs_key(fingerprint, refset.fingerprint(), params)
        identity = {"source_fingerprint": fingerprint, "refset_fingerprint": refset.fingerprint(), "params": params}
        cached = store.load(key, PAIRS_FILE, InputPairs.from_record, identity)
        if cached is not None:
            if progress is not None:
                progress(1, 1, "modeldiff pairs (cached)")
            return cached
    seeds = refset.as_tensor("cpu")
    made = QueryCount()
    try:
        perturbed, metadata = search_pairs(
            source_model, seeds, **params, batch_size=batch_size, device=device, progress=progress, counter=made
        )
    finally:  # a failed search's queries were made all the same
        if counter is not None:
            counter += made
    metadata["queries"] = made.to_dict()
    pairs = InputPairs(
        seeds=seeds.numpy().astype(np.float32),
        perturbed=perturbed.numpy().astype(np.float32),
        params=params,
        source_fingerprint=fingerprint,
        refset_fingerprint=refset.fingerprint(),
        metadata=metadata,
    )
    if key is not None:
        store.store(key, PAIRS_FILE, pairs.to_record())
    return pairs
