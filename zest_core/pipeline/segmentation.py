"""Segmentation: split each reference image into super-pixels (quickshift, as LIME does)."""
from __future__ import annotations

import inspect
import multiprocessing
import os
import sys
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from typing import Any, Callable

import numpy as np
from skimage import segmentation as sk_segmentation
from skimage import transform

from .._shared.checks import check_choice, check_int
from .reference import ReferenceSet


def default_segmentation_params(method: str, image_size: tuple[int, int]) -> dict[str, Any]:
    """Parameters that give about 10–40 super-pixels at the given image size.

    LIME's own quickshift defaults (kernel_size=4, max_dist=200, ratio=0.2) are tuned for 224×224
    photographs and give 1–2 super-pixels on a 32×32 image, which makes every local model trivial.
    These values scale the kernel and the region size with the image side instead.

    From :data:`QUICKSHIFT_SHRINK_SIDE` (224) pixels a side, quickshift runs on the image shrunk by the
    integer ``downscale`` = side // 112 (to 112–223 px), with the kernel of that size, and its labels are
    scaled back (:func:`segment_image`): quickshift's cost grows with the pixels times the kernel's area,
    so a 224-px image is segmented about 10× faster, into super-pixels that follow the same edges
    at a 2-px grain. The rule is part of every cache key of such images (:func:`quickshift_downscale`).

    Parameters
    ----------
    method : {"quickshift", "slic", "felzenszwalb"}
    image_size : (int, int)
        Height and width of the images.
    """
    check_choice("method", method, tuple(_ALGORITHMS))
    side = float(min(image_size))
    if method == "quickshift":
        # Measured on MNIST digits and scikit-image's photographs resized to 28, 32, 48…224 px: these give
        # a median of 17–33 super-pixels per image (tests/test_segmentation.py checks 10–40).
        if side < 40:
            return {"kernel_size": 1.0, "max_dist": 8.0, "ratio": 0.5}
        if side < QUICKSHIFT_SHRINK_SIDE:
            return {"kernel_size": round(side / 45.0, 2), "max_dist": 200.0, "ratio": 0.2}
        downscale = int(side // (QUICKSHIFT_SHRINK_SIDE // 2))
        return {"kernel_size": round(side / downscale / 45.0, 2), "max_dist": 200.0, "ratio": 0.2,
                "downscale": downscale}
    if method == "slic":
        return {"n_segments": 25, "compactness": 10.0, "start_label": 0}
    return {"scale": side, "sigma": 0.5, "min_size": max(2, int(side * side / 100))}


# Quickshift of images from this many pixels a side runs on them shrunk (default_segmentation_params).
QUICKSHIFT_SHRINK_SIDE = 224


def quickshift_downscale(method: str, params: dict[str, Any], image_size: tuple[int, int]) -> int:
    """The factor quickshift shrinks images of ``image_size`` by under ``params`` (over the defaults); 1 for none.

    Part of the cache keys of signatures and segmentations (:mod:`zest_core.pipeline.signature`,
    :mod:`zest_core.pipeline.probe`) whenever it is above 1, so that no segmentation made at another
    scale is ever read back for these images.
    """
    if method != "quickshift":
        return 1
    chosen = {**default_segmentation_params(method, image_size), **params}
    return int(chosen.get("downscale", 1))


def segment_image(image: np.ndarray, method: str = "quickshift", *, seed: int = 0, **params: Any) -> np.ndarray:
    """Segment one image into super-pixels numbered 0..K-1.

    Parameters
    ----------
    image : ndarray, shape (H, W, 3) or (H, W), uint8
    method : {"quickshift", "slic", "felzenszwalb"}
    seed : int
        Random seed of quickshift's tie-breaking noise.
    **params
        Keyword arguments of the scikit-image function; missing ones come from
        :func:`default_segmentation_params`. Quickshift also takes ``downscale`` (an integer ≥ 1): it
        then runs on the image shrunk by that factor (anti-aliased), with the other parameters in the
        shrunk image's pixels, and each pixel takes the label of its place in the shrunk image.

    Returns
    -------
    segments : ndarray of int32, shape (H, W)
        Labels 0..K-1, every label used.

    References
    ----------
    .. [1] Vedaldi & Soatto, "Quick Shift and Kernel Methods for Mode Seeking", ECCV 2008.
    .. [2] Ribeiro, Singh & Guestrin, "Why Should I Trust You?", KDD 2016 (arXiv:1602.04938).
    """
    rgb = np.stack([image] * 3, axis=-1) if image.ndim == 2 else image
    chosen = {**default_segmentation_params(method, rgb.shape[:2]), **params}
    function = _ALGORITHMS[method]
    height, width = rgb.shape[:2]
    if method == "quickshift":
        # scikit-image 0.26 renamed random_seed to rng; lime still passes the old name, which is dropped.
        seed_name = "rng" if "rng" in inspect.signature(function).parameters else "random_seed"
        chosen.setdefault(seed_name, seed)
        downscale = check_int("downscale", chosen.pop("downscale", 1), minimum=1)
        if downscale > 1:
            small = (max(1, round(height / downscale)), max(1, round(width / downscale)))
            rgb = np.clip(np.rint(transform.resize(rgb, small + (3,), anti_aliasing=True, preserve_range=True)),
                          0, 255).astype(np.uint8)
    labels = function(rgb, **chosen)
    if labels.shape != (height, width):  # nearest: each pixel the label of the shrunk pixel it lies in
        rows = np.minimum((np.arange(height) * labels.shape[0]) // height, labels.shape[0] - 1)
        columns = np.minimum((np.arange(width) * labels.shape[1]) // width, labels.shape[1] - 1)
        labels = labels[rows[:, None], columns[None, :]]
    # Renumber to 0..K-1 so that every label is a mask column.
    _, dense = np.unique(labels, return_inverse=True)
    return dense.reshape(labels.shape).astype(np.int32)


def segment_reference_set(
    refset: ReferenceSet,
    method: str = "quickshift",
    params: dict[str, Any] | None = None,
    *,
    seed: int = 0,
    progress: Callable[[int, int, str], None] | None = None,
) -> np.ndarray:
    """Segment every reference image; returns int32 labels of shape (N, H, W)."""
    params = params or {}
    result = np.empty((len(refset),) + refset.image_size, dtype=np.int32)
    workers = min(8, os.cpu_count() or 1)
    pixels = len(refset) * refset.image_size[0] * refset.image_size[1]
    if method == "quickshift" and workers > 1 and pixels >= PROCESS_PIXELS and sys.platform.startswith("linux"):
        # scikit-image's quickshift holds the GIL (measured: 8 photos of 224 px took 8.7 s alone and 7.6 s
        # on 2 threads), and takes about 1 s per 224-px image unshrunk (0.07-0.15 s shrunk): large sets go to forked worker
        # processes (as torch's DataLoader forks its workers on Linux; spawn would re-run the caller's
        # script), joined before this returns. Same function, same seeds: the same labels.
        context = multiprocessing.get_context("fork")
        with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
            jobs = pool.map(_segment_one, ((refset.images[i], method, seed, params) for i in range(len(refset))))
            for index, labels in enumerate(jobs):
                result[index] = labels
                if progress is not None:
                    progress(index + 1, len(refset), "segment")
        return result

    def segment(index: int) -> int:
        result[index] = segment_image(refset.images[index], method, seed=seed, **params)
        return index

    with ThreadPoolExecutor(max_workers=workers) as pool:
        for done, _ in enumerate(pool.map(segment, range(len(refset))), start=1):
            if progress is not None:
                progress(done, len(refset), "segment")
    return result


# Quickshift of at least this many pixels in all (20 images of 224 px, about 20 s) runs in processes;
# below it (MNIST, CIFAR) threads do, as before.
PROCESS_PIXELS = 1_000_000


def _segment_one(job: tuple[np.ndarray, str, int, dict[str, Any]]) -> np.ndarray:
    image, method, seed, params = job
    return segment_image(image, method, seed=seed, **params)


_ALGORITHMS: dict[str, Callable[..., np.ndarray]] = {
    "quickshift": sk_segmentation.quickshift,
    "slic": sk_segmentation.slic,
    "felzenszwalb": sk_segmentation.felzenszwalb,
}
