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

The pipeline here, one small function each: :func:`generate_pairs` (searches the pairs on the
source, cached on disk per source model, reference set and parameters), :func:`query_scores`
(batched black-box queries), :func:`decision_distances` and :func:`normalize_ddv` (the DDV),
:func:`ddv_similarity`, and :func:`modeldiff_similarity` / :class:`ModelDiff` around them.

References
----------
.. [1] Li, Zhang, Liu, Yang & Liu, "ModelDiff: Testing-Based DNN Similarity Comparison for Model
   Reuse Detection", ISSTA 2021 (arXiv:2106.08890). Authors' code: github.com/yuanchun-li/ModelDiff.
.. [2] Madry, Makelov, Schmidt, Tsipras & Vladu, "Towards Deep Learning Models Resistant to
   Adversarial Attacks", ICLR 2018 (projected sign-gradient ascent in an L-inf ball, random start).
"""
from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from ..cache.store import SignatureCache, array_checksum, atomic_write_bytes, default_cache_dir
from ..pipeline.queries import (
    ModelFn,
    ModelInputError,
    ModelOutputError,
    check_outputs,
    effective_batch_size,
    model_fingerprint,
    prepared_model,
    resolve_device,
)
from ..pipeline.reference import ReferenceSet

FORMAT_VERSION = 1
PAIRS_SUFFIX = ".mdpairs.npz"
ProgressFn = Callable[[int, int, str], None]

# Defaults of the pair search, for 28×28 to 224×224 images in [0, 1] pixel space (see generate_pairs).
DEFAULT_EPSILON = 0.1
DEFAULT_STEPS = 20
# Decision distances at or below this are rounding noise of 1 - cos (float64), not a change of decision.
ZERO_DISTANCE = 1e-12


# --------------------------------------------------------------------------------------------------
# The input pairs and their cache
# --------------------------------------------------------------------------------------------------


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
        The search's score (divergence × diversity) at its start and end, and the source's mean
        decision distance on the pairs.
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

    def save(self, path: str | os.PathLike) -> Path:
        """Write the pairs as ``.npz``, atomically (temporary file, then rename), with a checksum."""
        path = Path(path)
        meta = {
            "format_version": FORMAT_VERSION,
            "params": self.params,
            "source_fingerprint": self.source_fingerprint,
            "refset_fingerprint": self.refset_fingerprint,
            "metadata": self.metadata,
            "checksum": _pairs_checksum(self.seeds, self.perturbed),
        }
        buffer = io.BytesIO()
        np.savez(
            buffer, seeds=self.seeds, perturbed=self.perturbed,
            meta=np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8),
        )
        atomic_write_bytes(path, buffer.getvalue())
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> "InputPairs":
        """Read pairs written by :meth:`save`.

        Raises
        ------
        ValueError
            If the file is missing, unreadable, truncated, altered or of another format version.
        """
        path = Path(path)
        if not path.is_file():
            raise ValueError(f"{path}: no such ModelDiff pairs file")
        try:
            with np.load(path, allow_pickle=False) as data:
                seeds, perturbed = data["seeds"], data["perturbed"]
                meta = json.loads(data["meta"].tobytes().decode())
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, TypeError) as error:
            raise ValueError(
                f"{path}: not a readable ModelDiff pairs file ({type(error).__name__}: {error})"
            ) from error
        if meta.get("format_version") != FORMAT_VERSION:
            raise ValueError(f"{path}: format version {meta.get('format_version')}, expected {FORMAT_VERSION}")
        if meta.get("checksum") != _pairs_checksum(seeds, perturbed):
            raise ValueError(f"{path}: checksum mismatch, the file was altered or damaged")
        return cls(
            seeds=seeds, perturbed=perturbed, params=meta["params"],
            source_fingerprint=meta["source_fingerprint"], refset_fingerprint=meta["refset_fingerprint"],
            metadata=meta.get("metadata") or {},
        )


def _pairs_checksum(seeds: np.ndarray, perturbed: np.ndarray) -> str:
    return array_checksum(np.concatenate([np.ravel(seeds), np.ravel(perturbed)]))


class PairsCache:
    """A folder of ModelDiff pair files, one per (source model, reference set, search parameters).

    The folder is the signature cache's (``$ZEST_CACHE_DIR``, else ``~/.cache/zest``) unless given.
    Files are written atomically; a file that fails to load is reported, deleted and recomputed.
    """

    def __init__(self, root: str | os.PathLike | None = None) -> None:
        self.root = Path(root) if root is not None else default_cache_dir()

    @staticmethod
    def key(source_fingerprint: str, refset_fingerprint: str, params: dict[str, Any]) -> str:
        text = json.dumps(
            ["modeldiff-pairs", FORMAT_VERSION, source_fingerprint, refset_fingerprint, params],
            sort_keys=True, default=str,
        )
        return hashlib.sha256(text.encode()).hexdigest()[:40]

    def path(self, key: str) -> Path:
        return self.root / f"{key}{PAIRS_SUFFIX}"

    def load(self, key: str) -> InputPairs | None:
        """The cached pairs for ``key``, or None if absent or unreadable (with a warning)."""
        path = self.path(key)
        if not path.exists():
            return None
        try:
            return InputPairs.load(path)
        except ValueError as error:
            warnings.warn(f"ignoring corrupt ModelDiff pairs cache file {path}: {error}; recomputing", stacklevel=3)
            with contextlib.suppress(OSError):
                path.unlink()
            return None

    def store(self, key: str, pairs: InputPairs) -> Path:
        return pairs.save(self.path(key))


def resolve_pairs_cache(cache: PairsCache | SignatureCache | str | os.PathLike | bool | None) -> PairsCache | None:
    """None or True: the default folder; False: no cache; a folder, a SignatureCache (its folder) or a PairsCache."""
    if cache is False:
        return None
    if cache is None or cache is True:
        return PairsCache()
    if isinstance(cache, PairsCache):
        return cache
    if isinstance(cache, SignatureCache):
        return PairsCache(cache.root)
    if isinstance(cache, (str, os.PathLike)):
        return PairsCache(cache)
    raise ValueError(f"cache: expected None, a bool, a folder, a SignatureCache or a PairsCache, got {cache!r}")


# --------------------------------------------------------------------------------------------------
# Pure pieces: probabilities, decision distances, DDVs, their similarity
# --------------------------------------------------------------------------------------------------


def to_probabilities(scores: np.ndarray, outputs: str = "logits") -> np.ndarray:
    """Class probabilities from a model's scores: their softmax for logits, the scores as they are otherwise.

    Parameters
    ----------
    scores : ndarray, shape (B, C)
    outputs : {"logits", "probabilities"}
        What the scores are (a :class:`~zest_core.Classifier`'s ``outputs``).
    """
    scores = np.asarray(scores, dtype=np.float64)
    if outputs == "probabilities":
        return scores
    if outputs != "logits":
        raise ValueError(f"outputs: expected 'logits' or 'probabilities', got {outputs!r}")
    shifted = scores - scores.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=1, keepdims=True)


def decision_distances(outputs_seed: np.ndarray, outputs_perturbed: np.ndarray) -> np.ndarray:
    """Cosine distance between a model's outputs on each seed and on its perturbed image.

    Parameters
    ----------
    outputs_seed, outputs_perturbed : ndarray, shape (n, C)
        The model's output vectors (probabilities) on x_i and on x'_i.

    Returns
    -------
    ndarray of float64, shape (n,)
        ``1 - <a_i, b_i> / (|a_i| |b_i|)``, in [0, 2] ([0, 1] for non-negative outputs): the DDV of
        [1]_ before normalisation.

    Raises
    ------
    ValueError
        If the shapes differ or an output vector is all zero (its cosine distance is undefined).

    References
    ----------
    .. [1] Li et al., "ModelDiff", ISSTA 2021 (the decision distance vector).
    """
    a = np.asarray(outputs_seed, dtype=np.float64)
    b = np.asarray(outputs_perturbed, dtype=np.float64)
    if a.ndim != 2 or a.shape != b.shape:
        raise ValueError(
            f"outputs_perturbed: expected the shape of outputs_seed, (n, C) = {a.shape}, got {b.shape}"
        )
    norms = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    if np.any(norms == 0):
        raise ModelOutputError(
            f"the model returned an all-zero output vector on {int(np.sum(norms == 0))} of the {len(a)} "
            "pairs; the cosine distance of its decisions is undefined"
        )
    return np.clip(1.0 - np.einsum("ij,ij->i", a, b) / norms, 0.0, 2.0)


def normalize_ddv(distances: np.ndarray) -> np.ndarray:
    """The decision distance vector scaled to unit L2 norm.

    Raises
    ------
    ValueError
        If every distance is zero (up to ``1e-12``, the rounding noise of ``1 - cos``): the model
        decides the same on both images of every pair (a constant model?), and the cosine
        similarity of its DDV is undefined.
    """
    vector = np.asarray(distances, dtype=np.float64)
    norm = float(np.linalg.norm(vector))
    if not np.isfinite(norm):
        raise ValueError("distances: contain NaN or inf")
    if norm == 0 or np.abs(vector).max() <= ZERO_DISTANCE:
        raise ValueError(
            f"distances: all {vector.size} decision distances are zero (the model's outputs do not change on "
            "any pair, a constant model?); the DDV similarity is undefined"
        )
    return vector / norm


def ddv_similarity(ddv_a: np.ndarray, ddv_b: np.ndarray) -> float:
    """Cosine similarity of two decision distance vectors, ModelDiff's model similarity.

    In [0, 1] for DDVs of non-negative distances; 1 when one DDV is a positive multiple of the other.

    Raises
    ------
    ValueError
        If the DDVs differ in length (they must come from the same pairs) or one is all zero.
    """
    a = np.ravel(np.asarray(ddv_a, dtype=np.float64))
    b = np.ravel(np.asarray(ddv_b, dtype=np.float64))
    if a.shape != b.shape:
        raise ValueError(f"ddv_b: expected {a.size} decision distances (the pairs of ddv_a), got {b.size}")
    return float(np.clip(normalize_ddv(a) @ normalize_ddv(b), -1.0, 1.0))


# --------------------------------------------------------------------------------------------------
# Black-box queries
# --------------------------------------------------------------------------------------------------


def query_scores(
    model: ModelFn,
    images: np.ndarray | torch.Tensor,
    *,
    batch_size: int | None = None,
    device: str | torch.device = "auto",
) -> np.ndarray:
    """Run a black-box model on images in batches and return its checked scores.

    Parameters
    ----------
    model : callable
        Maps float images [B, C, H, W] in [0, 1] to scores [B, classes] (an ``nn.Module`` is run in
        eval mode on ``device`` and restored after).
    images : array or Tensor, shape (n, C, H, W), values in [0, 1]
    batch_size : int, optional
        Images per call; None picks it as :class:`~zest_core.ZestConfig` does. The last batch may be
        partial.
    device : {"auto", "cpu", "cuda"} or torch.device

    Returns
    -------
    ndarray of float64, shape (n, classes)

    Raises
    ------
    ModelInputError
        If the model declares another input shape or fails on its first batch.
    ModelOutputError
        If it returns anything but finite scores with one row per image and a fixed class count.
    """
    _check_batch_size(batch_size)
    tensor = torch.as_tensor(images)
    if tensor.ndim != 4 or tensor.shape[0] == 0:
        raise ValueError(f"images: expected a non-empty batch [n, C, H, W], got shape {tuple(tensor.shape)}")
    target = resolve_device(device)
    shape = tuple(int(n) for n in tensor.shape[1:])
    expected = getattr(model, "input_shape", None)
    if expected is not None and tuple(expected) != shape:
        raise ModelInputError(
            f"the model expects inputs of shape {tuple(expected)} (C, H, W) but the images are {shape}"
        )
    size = effective_batch_size(batch_size, target, shape)
    rows: list[torch.Tensor] = []
    num_classes: int | None = None
    with prepared_model(model, target) as ready, torch.inference_mode():
        for start in range(0, tensor.shape[0], size):
            batch = tensor[start:start + size].to(device=target, dtype=torch.float32)
            try:
                raw = ready(batch)
            except Exception as error:
                if num_classes is None:
                    raise ModelInputError(
                        f"the model failed on its first batch, of shape {tuple(batch.shape)} (B, C, H, W, pixel "
                        f"values in [0, 1]): {type(error).__name__}: {error}"
                    ) from error
                raise
            outputs = check_outputs(raw, batch.shape[0], num_classes)
            num_classes = outputs.shape[1]
            rows.append(outputs.detach().to("cpu", torch.float64))
    return torch.cat(rows).numpy()


def model_outputs_kind(model: Any) -> str:
    """What a model's scores are: its declared ``outputs`` ("probabilities"), else "logits"."""
    kind = getattr(model, "outputs", None)
    return "probabilities" if kind == "probabilities" else "logits"


# --------------------------------------------------------------------------------------------------
# Pair generation on the source model
# --------------------------------------------------------------------------------------------------


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
    cache: PairsCache | SignatureCache | str | os.PathLike | bool | None = None,
    progress: ProgressFn | None = None,
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
    cache : PairsCache, SignatureCache, folder, bool or None
        None (default) or True: the default cache folder ($ZEST_CACHE_DIR or ~/.cache/zest);
        False: no cache. The key is the source's fingerprint, the reference set's and every
        parameter above except batch_size and device; a source without a content fingerprint (a
        bare callable) is never cached.
    progress : callable (done, total, stage), optional

    Returns
    -------
    InputPairs

    Raises
    ------
    ValueError
        For a bad argument (naming it), or a source whose scores carry no gradient.
    ModelInputError, ModelOutputError
        If the source cannot take the images or returns bad scores.

    References
    ----------
    .. [1] Li et al., "ModelDiff: Testing-Based DNN Similarity Comparison for Model Reuse
       Detection", ISSTA 2021 (test input generation).
    .. [2] Madry et al., "Towards Deep Learning Models Resistant to Adversarial Attacks", ICLR 2018.
    """
    _check_model("source_model", source_model)
    _check_refset(refset)
    params = search_params(epsilon=epsilon, steps=steps, step_size=step_size, diversity=diversity, seed=seed)
    _check_batch_size(batch_size)
    store = resolve_pairs_cache(cache)
    fingerprint = model_fingerprint(source_model)
    key = None
    if store is not None and fingerprint is not None:
        key = PairsCache.key(fingerprint, refset.fingerprint(), params)
        cached = store.load(key)
        if cached is not None:
            if progress is not None:
                progress(1, 1, "modeldiff pairs (cached)")
            return cached
    seeds = refset.as_tensor("cpu")
    perturbed, metadata = search_pairs(
        source_model, seeds, **params, batch_size=batch_size, device=device, progress=progress
    )
    pairs = InputPairs(
        seeds=seeds.numpy().astype(np.float32),
        perturbed=perturbed.numpy().astype(np.float32),
        params=params,
        source_fingerprint=fingerprint,
        refset_fingerprint=refset.fingerprint(),
        metadata=metadata,
    )
    if key is not None:
        store.store(key, pairs)
    return pairs


def search_params(
    *, epsilon: float = DEFAULT_EPSILON, steps: int = DEFAULT_STEPS, step_size: float | None = None,
    diversity: bool = True, seed: int = 0,
) -> dict[str, Any]:
    """The validated search parameters, with the default step size filled in (the cache key's part)."""
    if isinstance(epsilon, bool) or not isinstance(epsilon, (int, float, np.floating)) or not 0 < float(epsilon) <= 1:
        raise ValueError(f"epsilon: expected an L-inf radius in (0, 1] (pixel units), got {epsilon!r}")
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 1:
        raise ValueError(f"steps: expected an int >= 1, got {steps!r}")
    if step_size is None:
        step_size = 2.5 * float(epsilon) / int(steps)
    if isinstance(step_size, bool) or not isinstance(step_size, (int, float, np.floating)) or not float(step_size) > 0:
        raise ValueError(f"step_size: expected a positive float, got {step_size!r}")
    if not isinstance(diversity, bool):
        raise ValueError(f"diversity: expected a bool, got {diversity!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed: expected an int >= 0, got {seed!r}")
    return {
        "epsilon": float(epsilon), "steps": int(steps), "step_size": float(step_size),
        "diversity": diversity, "seed": int(seed),
    }


def search_pairs(
    source_model: ModelFn,
    seeds: torch.Tensor,
    *,
    epsilon: float,
    steps: int,
    step_size: float,
    diversity: bool,
    seed: int,
    batch_size: int | None = None,
    device: str | torch.device = "auto",
    progress: ProgressFn | None = None,
) -> tuple[torch.Tensor, dict[str, Any]]:
    """The search of :func:`generate_pairs` on seed images [n, C, H, W]; returns (x' on the CPU, metadata)."""
    target = resolve_device(device)
    n = seeds.shape[0]
    shape = tuple(int(v) for v in seeds.shape[1:])
    expected = getattr(source_model, "input_shape", None)
    if expected is not None and tuple(expected) != shape:
        raise ModelInputError(f"the source model expects inputs of shape {tuple(expected)} but the seeds are {shape}")
    size = effective_batch_size(batch_size, target, shape)
    outputs = model_outputs_kind(source_model)
    generator = torch.Generator(device="cpu").manual_seed(int(seed))
    start = (torch.rand(seeds.shape, generator=generator, dtype=torch.float32) * 2 - 1) * epsilon
    x = seeds.to(device=target, dtype=torch.float32)
    low, high = (x - epsilon).clamp(0.0, 1.0), (x + epsilon).clamp(0.0, 1.0)
    current = torch.minimum(torch.maximum(x + start.to(target), low), high)
    use_diversity = diversity and n >= 2
    with prepared_model(source_model, target) as model:
        def probabilities(images: torch.Tensor, *, grad: bool) -> torch.Tensor:
            with torch.set_grad_enabled(grad):
                raw = model(images)
                if not grad:
                    return _torch_probabilities(check_outputs(raw, images.shape[0], None), outputs)
                if not isinstance(raw, torch.Tensor) or not raw.requires_grad:
                    raise ValueError(
                        "source_model: its scores carry no gradient; ModelDiff's pair search needs a "
                        "differentiable torch model (white-box access to the source)"
                    )
                return _torch_probabilities(raw, outputs)

        def all_probabilities(images: torch.Tensor) -> torch.Tensor:
            with torch.no_grad():
                return torch.cat([probabilities(images[s:s + size], grad=False) for s in range(0, n, size)])

        try:
            seed_probs = all_probabilities(x)
        except (ModelOutputError, ModelInputError):
            raise
        except Exception as error:
            raise ModelInputError(
                f"the source model failed on the seed images, of shape {tuple(x.shape)} (pixel values in [0, 1]): "
                f"{type(error).__name__}: {error}"
            ) from error
        probs = all_probabilities(current)
        best_score, divergence, spread = _set_score(seed_probs, probs, use_diversity)
        initial = best_score
        best = current.clone()
        for step in range(steps):
            updated = torch.empty_like(current)
            for s in range(0, n, size):
                batch = current[s:s + size].clone().requires_grad_(True)
                p = probabilities(batch, grad=True)
                objective = _batch_objective(p, seed_probs[s:s + size], probs, s, n, divergence, spread, use_diversity)
                (gradient,) = torch.autograd.grad(objective, batch)
                moved = batch.detach() + step_size * gradient.sign()
                updated[s:s + size] = torch.minimum(torch.maximum(moved, low[s:s + size]), high[s:s + size])
            current = updated
            probs = all_probabilities(current)
            score, divergence, spread = _set_score(seed_probs, probs, use_diversity)
            if score > best_score:
                best_score, best = score, current.clone()
            if progress is not None:
                progress(step + 1, steps, "modeldiff pairs")
        final_probs = all_probabilities(best)
    source_distances = 1.0 - torch.nn.functional.cosine_similarity(seed_probs, final_probs, dim=1)
    metadata = {
        "initial_score": float(initial),
        "score": float(best_score),
        "source_mean_decision_distance": float(source_distances.mean()),
        "diversity_used": use_diversity,
    }
    return best.detach().to("cpu"), metadata


def _torch_probabilities(raw: torch.Tensor, outputs: str) -> torch.Tensor:
    scores = raw.to(torch.float64)
    return scores if outputs == "probabilities" else torch.softmax(scores, dim=1)


def _set_score(seed_probs: torch.Tensor, probs: torch.Tensor, use_diversity: bool) -> tuple[float, float, float]:
    """(score, divergence, diversity) of a set of pairs from the source's probabilities."""
    divergence = float((1.0 - torch.nn.functional.cosine_similarity(seed_probs, probs, dim=1)).mean())
    if not use_diversity:
        return divergence, divergence, 1.0
    n = probs.shape[0]
    spread = float(torch.cdist(probs, probs).sum() / (n * (n - 1)))
    return divergence * spread, divergence, spread


def _batch_objective(
    p: torch.Tensor, seed_p: torch.Tensor, all_p: torch.Tensor, offset: int, n: int,
    divergence: float, spread: float, use_diversity: bool,
) -> torch.Tensor:
    """A batch's part of the set score, whose gradient w.r.t. the batch's x' is the set score's (product rule)."""
    batch_divergence = (1.0 - torch.nn.functional.cosine_similarity(seed_p, p, dim=1)).sum() / n
    if not use_diversity:
        return batch_divergence
    # ‖a − b‖² = ‖a‖² + ‖b‖² − 2 a·b: [B, n] without a [B, n, classes] intermediate.
    squared = ((p * p).sum(dim=1)[:, None] + (all_p * all_p).sum(dim=1)[None, :] - 2.0 * p @ all_p.T).clamp_min(0.0)
    own = torch.zeros_like(squared, dtype=torch.bool)
    rows = torch.arange(p.shape[0], device=p.device)
    own[rows, rows + offset] = True
    # sqrt has an infinite slope at 0: leave each x' out of its own sum, and keep ties finite.
    distances = torch.sqrt(torch.where(own, torch.ones_like(squared), squared) + 1e-12)
    batch_spread = 2.0 * torch.where(own, torch.zeros_like(distances), distances).sum() / (n * (n - 1))
    return spread * batch_divergence + divergence * batch_spread


# --------------------------------------------------------------------------------------------------
# DDVs and similarity
# --------------------------------------------------------------------------------------------------


def decision_distance_vector(
    model: ModelFn,
    pairs: InputPairs,
    *,
    batch_size: int | None = None,
    device: str | torch.device = "auto",
) -> np.ndarray:
    """A model's decision distance vector on ModelDiff pairs, normalised to unit L2 norm.

    The model is a black box: it is only run on the 2n images of the pairs.

    Parameters
    ----------
    model : callable
        Images [B, C, H, W] in [0, 1] → scores [B, classes]; any class count. Logits are turned into
        probabilities by a softmax (a model declaring ``outputs="probabilities"`` is used as it is).
    pairs : InputPairs
    batch_size : int, optional
    device : {"auto", "cpu", "cuda"} or torch.device

    Returns
    -------
    ndarray of float64, shape (n,)
        ``DDV_i = cos_dist(p(x_i), p(x'_i)) / ‖·‖₂``.

    Raises
    ------
    ValueError
        If ``pairs`` is not InputPairs, or the model's decisions change on no pair.
    ModelInputError, ModelOutputError
        If the model cannot take the images or returns bad scores.

    References
    ----------
    .. [1] Li et al., "ModelDiff", ISSTA 2021 (the decision distance vector).
    """
    _check_model("model", model)
    if not isinstance(pairs, InputPairs):
        raise ValueError(f"pairs: expected InputPairs (from generate_pairs), got {type(pairs).__name__}")
    scores = query_scores(model, pairs.images(), batch_size=batch_size, device=device)
    probabilities = to_probabilities(scores, model_outputs_kind(model))
    n = len(pairs)
    return normalize_ddv(decision_distances(probabilities[:n], probabilities[n:]))


def modeldiff_similarity(
    source: ModelFn,
    suspect: ModelFn,
    refset: ReferenceSet | InputPairs,
    *,
    epsilon: float = DEFAULT_EPSILON,
    steps: int = DEFAULT_STEPS,
    step_size: float | None = None,
    diversity: bool = True,
    seed: int = 0,
    batch_size: int | None = None,
    device: str | torch.device = "auto",
    cache: PairsCache | SignatureCache | str | os.PathLike | bool | None = None,
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
    epsilon, steps, step_size, diversity, seed, batch_size, device, cache
        As in :func:`generate_pairs`.

    Returns
    -------
    float
        Cosine similarity of the two models' DDVs.

    References
    ----------
    .. [1] Li et al., "ModelDiff: Testing-Based DNN Similarity Comparison for Model Reuse
       Detection", ISSTA 2021.
    """
    return ModelDiff(
        source, refset, epsilon=epsilon, steps=steps, step_size=step_size, diversity=diversity, seed=seed,
        batch_size=batch_size, device=device, cache=cache,
    ).compare(suspect)


class ModelDiff:
    """ModelDiff from one source model: pairs generated once (lazily), the source's DDV kept.

    Parameters
    ----------
    source : callable
        The owner's model, differentiable in torch.
    refset : ReferenceSet or InputPairs
        The seed images, or pairs already generated on ``source``.
    **options
        ``epsilon``, ``steps``, ``step_size``, ``diversity``, ``seed``, ``batch_size``, ``device``,
        ``cache``, ``progress``: as in :func:`generate_pairs`.

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
        epsilon: float = DEFAULT_EPSILON,
        steps: int = DEFAULT_STEPS,
        step_size: float | None = None,
        diversity: bool = True,
        seed: int = 0,
        batch_size: int | None = None,
        device: str | torch.device = "auto",
        cache: PairsCache | SignatureCache | str | os.PathLike | bool | None = None,
        progress: ProgressFn | None = None,
    ) -> None:
        _check_model("source", source)
        if not isinstance(refset, (ReferenceSet, InputPairs)):
            raise ValueError(f"refset: expected a ReferenceSet or InputPairs, got {type(refset).__name__}")
        self.source = source
        self.refset = refset
        self.options = search_params(epsilon=epsilon, steps=steps, step_size=step_size, diversity=diversity, seed=seed)
        _check_batch_size(batch_size)
        self.batch_size = batch_size
        self.device = device
        self.cache = cache
        self.progress = progress
        self._pairs: InputPairs | None = refset if isinstance(refset, InputPairs) else None
        self._source_ddv: np.ndarray | None = None

    @property
    def pairs(self) -> InputPairs:
        """The test pairs, generated (or read from the cache) on first use."""
        if self._pairs is None:
            self._pairs = generate_pairs(
                self.source, self.refset, **self.options, batch_size=self.batch_size, device=self.device,
                cache=self.cache, progress=self.progress,
            )
        return self._pairs

    @property
    def source_ddv(self) -> np.ndarray:
        if self._source_ddv is None:
            self._source_ddv = self.ddv(self.source)
        return self._source_ddv

    def ddv(self, model: ModelFn) -> np.ndarray:
        """``model``'s normalised decision distance vector on the pairs."""
        return decision_distance_vector(model, self.pairs, batch_size=self.batch_size, device=self.device)

    def compare(self, suspect: ModelFn) -> float:
        """ModelDiff similarity of ``suspect`` to the source, in [0, 1]."""
        return ddv_similarity(self.source_ddv, self.ddv(suspect))


# --------------------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------------------


def _check_model(name: str, model: Any) -> None:
    if not callable(model):
        raise ValueError(f"{name}: expected a callable model (images -> scores), got {type(model).__name__}")


def _check_refset(refset: Any) -> None:
    if not isinstance(refset, ReferenceSet):
        raise ValueError(f"refset: expected a ReferenceSet, got {type(refset).__name__}")
    if len(refset) == 0:
        raise ValueError("refset: the reference set is empty (0 images)")


def _check_batch_size(batch_size: Any) -> None:
    if batch_size is None:
        return
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"batch_size: expected None or an int >= 1, got {batch_size!r}")
