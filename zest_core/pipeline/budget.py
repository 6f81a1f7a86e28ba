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
from ..errors import ZestError
from .config import ZestConfig
from .designs import MASK_DESIGNS, minimum_samples
from .local_fit import check_samples_determine_fits
from .queries import REPEAT_CHECK_IMAGES
from .reference import ReferenceSet
from .segmentation import segment_reference_set

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
        Queries kept back for the determinism check; ``images * samples + reserved <= budget``.
    """

    budget: int
    images: int
    samples: int
    design: str
    reserved: int = 0

    @property
    def queries(self) -> int:
        """N × L, plus the images the determinism check asks again."""
        return self.images * self.samples + self.reserved

    def to_dict(self) -> dict[str, Any]:
        return {"budget": self.budget, "images": self.images, "samples": self.samples, "design": self.design,
                "repeat_check": self.reserved, "queries": self.queries}

    def describe(self) -> str:
        check = f" + {self.reserved} asked again (determinism check)" if self.reserved else ""
        return (f"budget {self.budget} queries per model: N = {self.images} reference images × L = {self.samples} "
                f"{self.design} maskings{check} = {self.queries} queries")


def plan_budget(
    budget: int,
    num_segments: Sequence[int],
    *,
    samples: int = BUDGET_SAMPLES,
    design: str = BUDGET_DESIGN,
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
            return plan_budget(budget, num_segments, samples=samples, design="bernoulli")
        raise ZestError(
            f"budget: expected at least K + 1 = {counts[0] + 1} queries per model, since the first reference image "
            f"has K = {counts[0]} super-pixels and a local fit needs more samples than unknowns, got {budget}"
        ) from None
    return BudgetPlan(budget=budget, images=int(images), samples=int(chosen), design=design)


def budget_config(config: ZestConfig, plan: BudgetPlan) -> ZestConfig:
    """``config`` with the plan's L and mask design."""
    return config.replace(num_samples=plan.samples, mask_design=plan.design)


def plan_for_reference(budget: int, refset: ReferenceSet, config: ZestConfig, *, repeat_check: bool = True,
                       **rule: Any) -> BudgetPlan:
    """:func:`plan_budget` for a reference set, its images segmented as ``config`` says.

    With ``repeat_check`` (``compute_signature``'s default) the budget keeps back the
    ``REPEAT_CHECK_IMAGES`` images that the determinism check asks a second time, so that every
    query the model sees fits in it.
    """
    check_int("budget", budget, minimum=1)
    segments = segment_reference_set(refset, config.segmentation, config.segmentation_params, seed=config.seed)
    counts = segments.reshape(len(refset), -1).max(axis=1) + 1
    reserve = REPEAT_CHECK_IMAGES if repeat_check else 0
    if budget <= reserve:
        raise ZestError(f"budget: expected more than the {reserve} queries of the determinism check, got {budget}")
    plan = plan_budget(budget - reserve, counts, **rule)
    return BudgetPlan(budget=budget, images=plan.images, samples=plan.samples, design=plan.design,
                      reserved=min(reserve, plan.queries))


def apply_budget(budget: int, refset: ReferenceSet, config: ZestConfig, *, repeat_check: bool = True, **rule: Any
                 ) -> tuple[ReferenceSet, ZestConfig, BudgetPlan]:
    """The reference images (the first N) and the config (L, design) a budget buys, and the plan."""
    plan = plan_for_reference(budget, refset, config, repeat_check=repeat_check, **rule)
    images = refset if plan.images == len(refset) else refset.subset(
        np.arange(plan.images), provenance=f"{refset.provenance}, first {plan.images} (budget {budget})")
    return images, budget_config(config, plan), plan
