"""The Zest engine, in data-flow order: reference → segmentation → perturbation → probe → queries
(with scores, the checks of what a model returns) → local_fit → signature → alignment → distance.
"""
from .alignment import ALIGN_METHODS
from .config import FILLS, MODES, SEGMENTATION_METHODS
from .designs import DESIGN_DESCRIPTIONS, MASK_DESIGNS
from .distance import METRICS

__all__ = ["ALIGN_METHODS", "DESIGN_DESCRIPTIONS", "FILLS", "MASK_DESIGNS", "METRICS", "MODES", "SEGMENTATION_METHODS"]
