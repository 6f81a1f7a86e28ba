"""SAC-m: sample correlation of a model's outputs on CutMix images, a black-box fingerprint.

SAC compares two models by *how their outputs relate across samples*, not by the outputs
themselves: each model answers the same CutMix images, every pair of answers gets a correlation,
and the distance is the mean absolute difference of the two models' correlation matrices. A stolen
or fine-tuned copy keeps its source's sample-to-sample structure; an independently trained model
does not. Because a correlation between two output *vectors* ignores which coordinate is which, a
copy whose classes are permuted is at distance exactly 0: SAC needs no class alignment.

The three steps, each a pure function here, follow the authors' code (guanjiyang/SAC):

1. :func:`cutmix_images` (``cut_mix.py``): reference images, each with a square box pasted from a
   partner reference image. The box side is ``2 * (int(0.2 * side) // 2)`` pixels (``cut_rat =
   0.2``, a fixed ratio; the Beta-drawn λ of CutMix is drawn there but unused), its centre is drawn
   uniformly in the outer sixth of the rows *and* of the columns (their rejection loop, so the box
   sits at a corner), clipped to the image, and shared by a whole round of images. Partners are a
   random permutation of that round (``torch.randperm``), so an image can be its own partner and stay
   unchanged, as there.
2. :func:`sample_correlation` (``correlation_wrong.py``, ``correlation``): for the model's outputs
   ``o_1 … o_n`` (its scores as it returns them: the logits of the authors' torchvision models),
   ``C[i, j] = (1 - cos(o_i, o_j)) / 2``, in [0, 1], with ``F.normalize``'s 1e-12 floor on the norms.
3. :func:`sac_distance` (``correlation_wrong.py``, ``cal_correlation``): ``sum |C_A - C_B| / n²``,
   the mean over all n × n entries, diagonal included.

Divergences, and why:

- The authors make one round of 100 images from the first 100 CIFAR-10 test images. Here a round
  covers the whole reference set in its order, and more rounds (each with its own box and
  permutation) are drawn while more images are asked for; the i-th image depends only on the seed
  and i, so the first n images of ``num_images = m ≥ n`` are the n-image set (one query pass at the
  largest budget serves every smaller one: ``sample_correlation(outputs[:n])``).
- Their script saves the images with ``transpose(1, 3)`` (N, W, H, C), which transposes each image
  when it is read back; the images here keep their orientation.
- numpy's ``default_rng(seed)`` replaces the global ``np.random.seed(3)``/``torch.manual_seed(3)``.
- The box centre is drawn directly from the accepted rows and columns; their rejection loop accepts
  the same pairs, each with the same probability.

References
----------
.. [1] Guan, Liang & He, "Are You Stealing My Model? Sample Correlation for Fingerprinting Deep
   Neural Networks", NeurIPS 2022. Code: https://github.com/guanjiyang/SAC.
.. [2] Yun et al., "CutMix: Regularization Strategy to Train Strong Classifiers with Localizable
   Features", ICCV 2019.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from .._shared.checks import check_int, check_number
from ..errors import ZestError
from ..pipeline.counting import QueryCount
from ..pipeline.queries import ModelFn, check_batch_size, check_model, query_scores
from ..pipeline.reference import ReferenceSet, check_refset

DEFAULT_NUM_IMAGES = 100  # the paper's SAC-m uses 50-100 CutMix images
DEFAULT_CUT_RATIO = 0.2  # ``cut_rat`` of the authors' cut_mix.py
NORM_FLOOR = 1e-12  # torch.nn.functional.normalize's eps


@dataclass(frozen=True)
class CutMixPlan:
    """Which reference images make each CutMix image, and where the pasted box is.

    Attributes
    ----------
    base : ndarray of int, shape (n,)
        The reference image each CutMix image starts from.
    partner : ndarray of int, shape (n,)
        The reference image its box is taken from (possibly ``base`` itself).
    boxes : ndarray of int, shape (n, 4)
        ``(top, bottom, left, right)``: rows ``top:bottom`` and columns ``left:right`` are the partner's.
    """

    base: np.ndarray
    partner: np.ndarray
    boxes: np.ndarray


def sac_params(
    *, num_images: int = DEFAULT_NUM_IMAGES, seed: int = 0, cut_ratio: float = DEFAULT_CUT_RATIO,
) -> dict[str, Any]:
    """SAC's validated parameters (see :class:`SAC`).

    Raises
    ------
    ZestError
        If ``num_images < 2`` (a correlation needs two samples), ``seed < 0`` or ``cut_ratio`` is
        not in (0, 1].
    """
    if isinstance(num_images, np.integer):
        num_images = int(num_images)
    if isinstance(seed, np.integer):
        seed = int(seed)
    check_int("num_images", num_images, minimum=2)
    check_int("seed", seed, minimum=0)
    cut_ratio = check_number("cut_ratio", cut_ratio, minimum=0.0, maximum=1.0, strict=False)
    if cut_ratio == 0:
        raise ZestError("cut_ratio: expected a box side in (0, 1] of the image side, got 0.0")
    return {"num_images": num_images, "seed": seed, "cut_ratio": cut_ratio}


def cutmix_plan(
    num_references: int,
    image_size: tuple[int, int],
    num_images: int,
    *,
    rng: int | np.random.Generator = 0,
    cut_ratio: float = DEFAULT_CUT_RATIO,
) -> CutMixPlan:
    """The bases, partners and boxes of ``num_images`` CutMix images, as the authors' ``cut_mix.py`` draws them.

    Images come in rounds of ``num_references``: in round r, image ``r * num_references + j`` starts
    from reference image j; the round draws one box (for all of its images) and one permutation of
    the reference images (the partners). Rounds are drawn in order, so the first n images of a plan
    do not depend on ``num_images``.

    Parameters
    ----------
    num_references : int
        How many reference images there are.
    image_size : (int, int)
        (H, W).
    num_images : int
        How many CutMix images to plan, ≥ 2.
    rng : int or numpy.random.Generator, default 0
        A seed or a generator (consumed).
    cut_ratio : float, default 0.2
        The box side as a fraction of the image side, before rounding down to an even number of pixels.

    Returns
    -------
    CutMixPlan

    Raises
    ------
    ZestError
        If ``num_images < 2`` or the box would be empty (images under ``2 / cut_ratio`` pixels a side).
    """
    params = sac_params(num_images=num_images, cut_ratio=cut_ratio)
    check_int("num_references", num_references, minimum=1)
    height, width = (int(s) for s in image_size)
    half_h, half_w = int(height * params["cut_ratio"]) // 2, int(width * params["cut_ratio"]) // 2
    if half_h == 0 or half_w == 0:
        raise ZestError(
            f"image_size: expected at least {math.ceil(2 / params['cut_ratio'])} pixels a side for a non-empty "
            f"CutMix box of {params['cut_ratio']:g} of the side, got {height}×{width}"
        )
    generator = np.random.default_rng(rng)
    rows, cols = _corner_centres(height), _corner_centres(width)
    rounds = -(-params["num_images"] // num_references)
    base, partner, boxes = [], [], []
    for _ in range(rounds):
        cy, cx = int(generator.choice(rows)), int(generator.choice(cols))
        box = (max(cy - half_h, 0), min(cy + half_h, height), max(cx - half_w, 0), min(cx + half_w, width))
        base.append(np.arange(num_references))
        partner.append(generator.permutation(num_references))
        boxes.append(np.tile(box, (num_references, 1)))
    n = params["num_images"]
    return CutMixPlan(np.concatenate(base)[:n], np.concatenate(partner)[:n], np.concatenate(boxes)[:n])


def _corner_centres(side: int) -> np.ndarray:
    """Box centres the authors' rejection loop accepts on one axis: not strictly inside (side/6, 5 side/6)."""
    centres = np.arange(side)
    return centres[~((side / 6 < centres) & (centres < 5 * side / 6))]


def cutmix_images(
    refset: ReferenceSet,
    num_images: int = DEFAULT_NUM_IMAGES,
    *,
    rng: int | np.random.Generator = 0,
    cut_ratio: float = DEFAULT_CUT_RATIO,
) -> torch.Tensor:
    """SAC-m's CutMix images made from a reference set (:func:`cutmix_plan`'s plan, applied).

    Parameters
    ----------
    refset : ReferenceSet
    num_images : int, default 100
    rng, cut_ratio
        As in :func:`cutmix_plan`.

    Returns
    -------
    Tensor [num_images, C, H, W], float32 in [0, 1]
        Image k is reference image ``base[k]`` with the box ``boxes[k]`` taken from ``partner[k]``.

    Raises
    ------
    ZestError
        As :func:`cutmix_plan` raises them; ZestTypeError if ``refset`` is not a ReferenceSet.
    """
    check_refset(refset)
    plan = cutmix_plan(len(refset), refset.image_size, num_images, rng=rng, cut_ratio=cut_ratio)
    images = refset.as_tensor()
    mixed = images[torch.from_numpy(plan.base)].clone()
    for k, (top, bottom, left, right) in enumerate(plan.boxes.tolist()):
        mixed[k, :, top:bottom, left:right] = images[int(plan.partner[k]), :, top:bottom, left:right]
    return mixed


def sample_correlation(outputs: np.ndarray | torch.Tensor) -> np.ndarray:
    """SAC's sample-to-sample correlation of a model's outputs: ``C[i, j] = (1 - cos(o_i, o_j)) / 2``.

    The authors' ``correlation(m, n)`` (``correlation_wrong.py``), computed in float64. The cosine
    of two output vectors does not change when their coordinates (the classes) are permuted alike,
    so neither does C. Rows are samples in the order given: ``sample_correlation(outputs[:n])`` is
    the correlation of the first n CutMix images.

    Parameters
    ----------
    outputs : array-like, shape (n, classes), n ≥ 2
        The model's outputs on the samples, one row each.

    Returns
    -------
    ndarray of float64, shape (n, n)
        Symmetric, in [0, 1] up to rounding, 0 on the diagonal (0.5 for a row of zeros, whose normalised
        vector is 0).

    Raises
    ------
    ZestError
        If ``outputs`` is not a finite matrix with at least 2 rows and 1 column.
    """
    array = _as_outputs(outputs)
    norms = np.maximum(np.linalg.norm(array, axis=1, keepdims=True), NORM_FLOOR)
    unit = array / norms
    return (1.0 - unit @ unit.T) / 2.0


def sac_distance(corr_a: np.ndarray, corr_b: np.ndarray) -> float:
    """SAC's distance: the mean absolute difference of two correlation matrices, ``sum |A - B| / n²``.

    Parameters
    ----------
    corr_a, corr_b : ndarray, shape (n, n)
        :func:`sample_correlation` of two models' outputs on the same samples, in the same order.

    Returns
    -------
    float in [0, 1] for correlations in [0, 1]; 0 for the same model (or a class-permuted copy).

    Raises
    ------
    ZestError
        If the matrices are not square, differ in shape, or hold values that are not finite.
    """
    a, b = np.asarray(corr_a, dtype=np.float64), np.asarray(corr_b, dtype=np.float64)
    if a.ndim != 2 or a.shape[0] != a.shape[1] or a.shape[0] < 2:
        raise ZestError(f"corr_a: expected a square (n, n) correlation matrix with n ≥ 2, got shape {a.shape}")
    if b.shape != a.shape:
        raise ZestError(f"corr_b: expected the shape of corr_a {a.shape} (the same samples), got {b.shape}")
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise ZestError("corr_a, corr_b: expected finite correlations, got NaN or infinity")
    return float(np.abs(a - b).mean())


def _as_outputs(outputs: np.ndarray | torch.Tensor) -> np.ndarray:
    if isinstance(outputs, torch.Tensor):
        outputs = outputs.detach().cpu().to(torch.float64).numpy()
    array = np.asarray(outputs, dtype=np.float64)
    if array.ndim != 2 or array.shape[0] < 2 or array.shape[1] < 1:
        raise ZestError(
            f"outputs: expected a (samples, classes) matrix with at least 2 samples, got shape {array.shape}"
        )
    if not np.isfinite(array).all():
        raise ZestError("outputs: expected finite model outputs, got NaN or infinity")
    return array


def model_correlation(
    model: ModelFn, images: torch.Tensor, *, batch_size: int | None = None, device: str | torch.device = "auto",
    name: str | None = None, counter: QueryCount | None = None,
) -> np.ndarray:
    """:func:`sample_correlation` of a black-box model's outputs on ``images``: one :func:`query_scores` pass.

    ``counter`` (a :class:`~zest_core.pipeline.queries.QueryCount`) counts the model's calls and images.
    """
    scores = query_scores(model, images, batch_size=batch_size, device=device, name=name, counter=counter)
    return sample_correlation(scores)


class SAC:
    """SAC-m from one source model: the CutMix images made once, the source's correlation matrix kept.

    Parameters
    ----------
    source : callable
        The owner's model, images [B, C, H, W] in [0, 1] → scores (black-box: only queried).
    refset : ReferenceSet
        The images the CutMix images are made from.
    num_images : int, default 100
        CutMix images per model (the paper uses 50-100); ≥ 2. The first n images of a larger
        ``num_images`` with the same seed are the n-image set.
    seed : int, default 0
        Seed of the CutMix draw (boxes and partners).
    cut_ratio : float, default 0.2
        The box side as a fraction of the image side (the authors' ``cut_rat``).
    batch_size : int, optional
        Images per model call; None picks it as :class:`~zest_core.ZestConfig` does.
    device : {"auto", "cpu", "cuda"} or torch.device

    Attributes
    ----------
    images : Tensor [num_images, C, H, W]
        The CutMix images every model is asked about, in order.
    source_queries : QueryCount
        The source's calls and images (``.to_dict()``: ``{"calls": …, "images": …}``).

    Examples
    --------
    >>> detector = SAC(my_model, load_mnist(100, split="test"), num_images=100)   # doctest: +SKIP
    >>> detector.compare(suspect)                                                  # doctest: +SKIP
    0.012

    References
    ----------
    .. [1] Guan, Liang & He, "Are You Stealing My Model? Sample Correlation for Fingerprinting Deep
       Neural Networks", NeurIPS 2022.
    """

    def __init__(
        self,
        source: ModelFn,
        refset: ReferenceSet,
        *,
        num_images: int = DEFAULT_NUM_IMAGES,
        seed: int = 0,
        cut_ratio: float = DEFAULT_CUT_RATIO,
        batch_size: int | None = None,
        device: str | torch.device = "auto",
    ) -> None:
        self.source = check_model("source", source)
        self.refset = check_refset(refset)
        self.options = sac_params(num_images=num_images, seed=seed, cut_ratio=cut_ratio)
        self.batch_size = check_batch_size(batch_size)
        self.device = device
        self.images = cutmix_images(
            refset, self.options["num_images"], rng=self.options["seed"], cut_ratio=self.options["cut_ratio"]
        )
        self.source_queries = QueryCount()
        self._source_correlation: np.ndarray | None = None

    @property
    def source_correlation(self) -> np.ndarray:
        """The source's correlation matrix on the CutMix images (computed on first use)."""
        if self._source_correlation is None:
            self._source_correlation = self.correlation(self.source, counter=self.source_queries)
        return self._source_correlation

    def outputs(self, model: ModelFn, *, counter: QueryCount | None = None) -> np.ndarray:
        """``model``'s scores on the CutMix images, float64 (num_images, classes), in the images' order.

        Rows are in the images' order, so the outputs of one pass at the largest budget give every
        smaller one: ``sample_correlation(outputs[:n])`` is ``SAC(..., num_images=n)``'s correlation.
        """
        return query_scores(
            check_model("model", model), self.images, batch_size=self.batch_size, device=self.device, counter=counter
        )

    def correlation(self, model: ModelFn, *, counter: QueryCount | None = None) -> np.ndarray:
        """``model``'s :func:`sample_correlation` on the CutMix images (``counter`` counts its queries)."""
        return sample_correlation(self.outputs(model, counter=counter))

    def compare(self, suspect: ModelFn, *, counter: QueryCount | None = None) -> float:
        """SAC distance of ``suspect`` to the source, in [0, 1] (0: the same sample correlations).

        ``counter`` counts the suspect's queries; the source's are in :attr:`source_queries`.
        """
        return sac_distance(self.source_correlation, self.correlation(suspect, counter=counter))
