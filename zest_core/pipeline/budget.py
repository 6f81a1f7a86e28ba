"""Query budgets: the N reference images and L maskings a Zest signature uses when a model may be asked Q times.

A signature asks the model about N × L perturbed images. Under a budget Q the rule is:

1. N = ⌊Q / L₀⌋ images with L₀ = :data:`BUDGET_SAMPLES` (at least 1, at most the reference set's):
   the first N of the reference set, with the :data:`BUDGET_DESIGN` mask design;
2. fewer images while one of them needs more than ⌊Q / N⌋ masks (K + 1 for Bernoulli masks, a whole
   block of at least 2K rows for orthogonal ones: :func:`~zest_core.pipeline.designs.minimum_samples`);
3. L = ⌊Q / N⌋: what the images leave goes to more maskings;
4. Bernoulli masks when even one image is too many for the design; if Q < K + 1 for that image, the
   budget is refused.

The constants come from ``zest bench budget --n 128`` on the shipped zoo (README, "Query budgets";
``bench/results/budget.json``):

- past L = 64 more maskings bought no matched AUC (with N = 128 images, every L from 32 to 1000 gave
  the same AUC on every relation), while fewer images lost it (N = 4: up to 0.21 below the paper's
  N = 128, L = 1000 run; N = 64: 0.016);
- at L = 64 the orthogonal design's distances were 8× closer to the paper's than Bernoulli masks'
  (mean absolute error 0.00097 against 0.0081 over 495 model pairs), as close as Bernoulli masks at
  L = 256 to 512; and 64 rows are one whole block for K ≤ 32 super-pixels (MNIST's K ≤ 30);
- the cheapest point of the grid with every relation's AUC within 0.02 of the paper's was N = 64,
  L = 64 (4,096 queries), hence :data:`DEFAULT_AUDIT_BUDGET` = 64 × 64 + the 16 queries of the
  determinism check.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from .._shared.checks import check_int
from ..cache.store import CacheArg, resolve_cache
from .._shared.limits import check_mask_memory
from ..errors import ZestError
from .config import ZestConfig
from .designs import MASK_DESIGNS, minimum_samples
from .local_fit import check_samples_determine_fits
from .counting import MAX_FINGERPRINT_IMAGES, REPEAT_CHECK_IMAGES
from .reference import ReferenceSet
from .probe import reference_segments

BUDGET_SAMPLES = 64
BUDGET_DESIGN = "orthogonal"
# The queries per suspect model ``zest audit`` and the dashboard spend by default (0 would be no budget): the
# measured N = 64 × L = 64 point, and the 16 images the determinism check asks again.
DEFAULT_AUDIT_BUDGET = 64 * 64 + REPEAT_CHECK_IMAGES


@dataclass(frozen=True)
class BudgetPlan:
    """What a budget buys: N images × L maskings with one mask design.

    Attributes
    ----------
    budget : int
        Q, the most queries per model.
    images, samples : int
        N and L.
    design : str
    reserved : int
        Queries kept back for the determinism check; ``images * samples + reserved <= budget``. An
        endpoint's fingerprint probe comes out of this share.
    probe_reserve : int
        Without the determinism check: queries kept back for an endpoint's fingerprint probe
        (:data:`~zest_core.pipeline.queries.MAX_FINGERPRINT_IMAGES`; a local model does not spend them).
    """

    budget: int
    images: int
    samples: int
    design: str
    reserved: int = 0
    probe_reserve: int = 0

    @property
    def queries(self) -> int:
        """The most queries a model is sent: N × L, the images the determinism check asks again, the probe's."""
        return self.images * self.samples + self.reserved + self.probe_reserve

    def to_dict(self) -> dict[str, Any]:
        return {"budget": self.budget, "images": self.images, "samples": self.samples, "design": self.design,
                "repeat_check": self.reserved, "fingerprint_probe": self.probe_reserve, "queries": self.queries}

    def describe(self) -> str:
        check = f" + {self.reserved} asked again (determinism check)" if self.reserved else ""
        if self.probe_reserve:
            check += f" + up to {self.probe_reserve} for an endpoint's fingerprint probe"
        return (f"budget {self.budget} queries per model: N = {self.images} reference images × L = {self.samples} "
                f"{self.design} maskings{check} = {self.queries} queries")


def plan_budget(
    budget: int,
    num_segments: Sequence[int],
    *,
    samples: int = BUDGET_SAMPLES,
    design: str = BUDGET_DESIGN,
    held_back: int = 0,
) -> BudgetPlan:
    """N and L under a budget of ``budget`` queries per model, for images with ``num_segments`` super-pixels.

    Parameters
    ----------
    budget : int
        Q ≥ 1.
    num_segments : sequence of int
        K of every reference image, in the reference set's order (the first N are used).
    samples : int
        L₀, the maskings per image the rule starts from.
    design : str
        The mask design of :mod:`zest_core.pipeline.designs`.
    held_back : int
        Queries the caller keeps out of ``budget`` (the determinism check's), for the messages only:
        they count in the budget the user gave.

    Raises
    ------
    ZestError
        If even one image cannot be fitted: Q < K + 1 for the first image.
    """
    check_int("budget", budget, minimum=1)
    check_int("samples", samples, minimum=2)
    if design not in MASK_DESIGNS:
        raise ZestError(f"design: expected one of {', '.join(MASK_DESIGNS)}, got {design!r}")
    counts = np.asarray(num_segments, dtype=np.int64)
    if counts.ndim != 1 or counts.size == 0:
        raise ZestError(f"num_segments: expected one count per reference image, got {num_segments!r}")
    needed = np.array([minimum_samples(int(k), design) for k in counts])
    # As many images as the preferred L allows; what the reference set cannot take goes to more maskings.
    images = max(1, min(counts.size, budget // samples))
    # Images whose super-pixels need more masks than that L: spend the budget on fewer images.
    while images > 1 and needed[:images].max() > budget // images:
        images -= 1
    chosen = budget // images
    try:
        check_samples_determine_fits(counts[:images], chosen, design)
    except ZestError:
        if design != "bernoulli":  # too small for the design's whole blocks or pairs: Bernoulli masks need fewest
            return plan_budget(budget, num_segments, samples=samples, design="bernoulli", held_back=held_back)
        k = int(counts[0])
        if held_back:
            raise ZestError(
                f"budget: expected at least K + 1 + {held_back} = {k + 1 + held_back} queries per model: the first "
                f"reference image has K = {k} super-pixels, a local fit needs K + 1 samples, and {held_back} more are "
                "held back to ask the first perturbed images twice (the determinism check; --allow-nondeterministic "
                f"frees them); got {budget + held_back}"
            ) from None
        raise ZestError(
            f"budget: expected at least K + 1 = {k + 1} queries per model, since the first reference image "
            f"has K = {k} super-pixels and a local fit needs more samples than unknowns, got {budget}"
        ) from None
    check_mask_memory(int(images), int(chosen), int(counts[:images].max()), source="budget")
    return BudgetPlan(budget=budget, images=int(images), samples=int(chosen), design=design)


def budget_config(config: ZestConfig, plan: BudgetPlan) -> ZestConfig:
    """``config`` with the plan's L and mask design."""
    return config.replace(num_samples=plan.samples, mask_design=plan.design)


def plan_for_reference(budget: int, refset: ReferenceSet, config: ZestConfig, *, repeat_check: bool = True,
                       cache: CacheArg = False, **rule: Any) -> BudgetPlan:
    """:func:`plan_budget` for a reference set, its images segmented as ``config`` says.

    With ``repeat_check`` (``compute_signature``'s default) the budget keeps back the
    ``REPEAT_CHECK_IMAGES`` images that the determinism check asks a second time, so that every
    query the model sees fits in it.
    """
    check_int("budget", budget, minimum=1)
    # The probe reuses them in this process; with a cache, a later process reads them from it.
    segments = reference_segments(refset, config, cache=resolve_cache(cache))
    counts = segments.reshape(len(refset), -1).max(axis=1) + 1
    # Held back from N × L: the determinism check's second asking, or without it the few images an
    # endpoint's fingerprint may take; either way every image a model is sent fits in the budget.
    reserve = REPEAT_CHECK_IMAGES if repeat_check else MAX_FINGERPRINT_IMAGES
    if budget <= reserve:
        what = "of the determinism check" if repeat_check else "an endpoint's fingerprint probe may take"
        raise ZestError(f"budget: expected more than the {reserve} queries {what}, got {budget}")
    plan = plan_budget(budget - reserve, counts, held_back=reserve if repeat_check else 0, **rule)
    held = min(reserve, plan.queries)
    return BudgetPlan(budget=budget, images=plan.images, samples=plan.samples, design=plan.design,
                      reserved=held if repeat_check else 0, probe_reserve=0 if repeat_check else held)


def apply_budget(budget: int, refset: ReferenceSet, config: ZestConfig, *, repeat_check: bool = True,
                 cache: CacheArg = False, **rule: Any) -> tuple[ReferenceSet, ZestConfig, BudgetPlan]:
    """The reference images (the first N) and the config (L, design) a budget buys, and the plan.

    ``cache`` (as ``compute_signature``'s; none by default) is where the segment maps the plan needs
    are read from or kept.
    """
    plan = plan_for_reference(budget, refset, config, repeat_check=repeat_check, cache=cache, **rule)
    images = refset if plan.images == len(refset) else refset.subset(
        np.arange(plan.images), provenance=f"{refset.provenance}, first {plan.images} (budget {budget})")
    return images, budget_config(config, plan), plan
