"""ModelDiff's pair search on the source model: projected sign-gradient ascent of the set score.

The search is white-box (the source's owner differentiates it); what it optimises is described in
:func:`~zest_core.methods.modeldiff.pairs.generate_pairs`.

See :mod:`zest_core.methods.modeldiff` for the references: Li et al. (ISSTA 2021) for the
objective, Madry et al. (ICLR 2018) for projected sign-gradient ascent from a random start.
"""
from __future__ import annotations

from typing import Any, Callable

import torch

from ...errors import ModelInputError, ModelOutputError, ZestError
from ...pipeline.counting import QueryCount
from ...pipeline.device import effective_batch_size, prepared_model, resolve_device
from ...pipeline.queries import ModelFn, check_input_shape
from ...pipeline.scores import check_outputs, model_outputs, scores_to_probabilities

ProgressFn = Callable[[int, int, str], None]


class _Source:
    """The prepared source model during the search: its class probabilities, batch by batch, each call counted."""

    def __init__(self, model: ModelFn, outputs: str, batch_size: int, counter: QueryCount | None = None) -> None:
        self.model = model
        self.outputs = outputs
        self.batch_size = batch_size
        self.counter = QueryCount() if counter is None else counter

    def probabilities(self, images: torch.Tensor, *, grad: bool) -> torch.Tensor:
        """Probabilities of one batch; with ``grad``, differentiable w.r.t. the images."""
        self.counter.add(images.shape[0])
        with torch.set_grad_enabled(grad):
            raw = self.model(images)
            if not grad:
                return scores_to_probabilities(check_outputs(raw, images.shape[0], None), self.outputs)
            if not isinstance(raw, torch.Tensor) or not raw.requires_grad:
                raise ZestError(
                    "source_model: its scores carry no gradient; ModelDiff's pair search needs a "
                    "differentiable torch model (white-box access to the source)"
                )
            return scores_to_probabilities(raw, self.outputs)

    def all_probabilities(self, images: torch.Tensor) -> torch.Tensor:
        """Probabilities of every image, without gradients."""
        size = self.batch_size
        with torch.no_grad():
            return torch.cat([self.probabilities(images[s:s + size], grad=False) for s in range(0, images.shape[0], size)])

    def seed_probabilities(self, seeds: torch.Tensor) -> torch.Tensor:
        """:meth:`all_probabilities` of the seeds, where a failing source gets a clear error."""
        try:
            return self.all_probabilities(seeds)
        except (ModelOutputError, ModelInputError):
            raise
        except Exception as error:
            raise ModelInputError(
                f"the source model failed on the seed images, of shape {tuple(seeds.shape)} (pixel values in [0, 1]): "
                f"{type(error).__name__}: {error}"
            ) from error


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
    counter: QueryCount | None = None,
) -> tuple[torch.Tensor, dict[str, Any]]:
    """The search of :func:`generate_pairs` on seed images [n, C, H, W]; returns (x' on the CPU, metadata).

    Every x'_i starts at a uniformly random point of the L-inf ball of radius ``epsilon`` around its
    seed (drawn from ``seed`` by an explicit generator, leaving torch's global one alone) and the
    best set of the random start and the ``steps`` steps is returned. Every forward pass of the
    source is counted in ``counter`` (with or without gradient): the seeds, the start, per step one
    pass with gradient and one to score, and the best set once more, n images each, in batches.
    """
    target = resolve_device(device)
    n = seeds.shape[0]
    shape = tuple(int(v) for v in seeds.shape[1:])
    check_input_shape(source_model, shape, "the seeds", name="the source model")
    generator = torch.Generator(device="cpu").manual_seed(int(seed))
    start = (torch.rand(seeds.shape, generator=generator, dtype=torch.float32) * 2 - 1) * epsilon
    x = seeds.to(device=target, dtype=torch.float32)
    low, high = (x - epsilon).clamp(0.0, 1.0), (x + epsilon).clamp(0.0, 1.0)
    current = torch.minimum(torch.maximum(x + start.to(target), low), high)
    use_diversity = diversity and n >= 2
    with prepared_model(source_model, target) as model:
        source = _Source(model, model_outputs(source_model), effective_batch_size(batch_size, target, shape), counter)
        seed_probs = source.seed_probabilities(x)
        best, initial, best_score = _ascend(
            source, seed_probs, current, low, high,
            steps=steps, step_size=step_size, use_diversity=use_diversity, progress=progress,
        )
        final_probs = source.all_probabilities(best)
    source_distances = 1.0 - torch.nn.functional.cosine_similarity(seed_probs, final_probs, dim=1)
    metadata = {
        "initial_score": float(initial),
        "score": float(best_score),
        "source_mean_decision_distance": float(source_distances.mean()),
        "diversity_used": use_diversity,
    }
    return best.detach().to("cpu"), metadata


def _ascend(
    source: _Source, seed_probs: torch.Tensor, current: torch.Tensor, low: torch.Tensor, high: torch.Tensor, *,
    steps: int, step_size: float, use_diversity: bool, progress: ProgressFn | None,
) -> tuple[torch.Tensor, float, float]:
    """Climb the set score from ``current``; returns (the best x', the starting score, the best score)."""
    n, size = current.shape[0], source.batch_size
    probs = source.all_probabilities(current)
    best_score, divergence, spread = _set_score(seed_probs, probs, use_diversity)
    initial = best_score
    best = current.clone()
    for step in range(steps):
        updated = torch.empty_like(current)
        for s in range(0, n, size):
            batch = current[s:s + size].clone().requires_grad_(True)
            p = source.probabilities(batch, grad=True)
            objective = _batch_objective(p, seed_probs[s:s + size], probs, s, n, divergence, spread, use_diversity)
            (gradient,) = torch.autograd.grad(objective, batch)
            moved = batch.detach() + step_size * gradient.sign()
            updated[s:s + size] = torch.minimum(torch.maximum(moved, low[s:s + size]), high[s:s + size])
        current = updated
        probs = source.all_probabilities(current)
        score, divergence, spread = _set_score(seed_probs, probs, use_diversity)
        if score > best_score:
            best_score, best = score, current.clone()
        if progress is not None:
            progress(step + 1, steps, "modeldiff pairs")
    return best, initial, best_score


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
