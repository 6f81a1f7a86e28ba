"""Quickshift at full size against the default shrunk rule for large images: time, super-pixel counts, agreement.

On scikit-image's photographs resized to each side (the images of ``tests/test_segmentation.py``):
seconds per image, the super-pixel counts (median, min, max) of each, and the adjusted Rand index
between the two segmentations, beside two references: the full-size segmentation against itself with
another seed, and SLIC against it.

Usage: python bench/bench_quickshift_scale.py [--sides 224 256 320 448]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from sklearn.metrics import adjusted_rand_score

from zest_core import segment_image

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from test_segmentation import _photos as photos  # noqa: E402 - the photographs the segmentation tests hold to 10-40


def timed(images: list[np.ndarray], **params) -> tuple[float, list[np.ndarray]]:
    start = time.perf_counter()
    labels = [segment_image(image, **params) for image in images]
    return (time.perf_counter() - start) / len(images), labels


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sides", type=int, nargs="+", default=[224, 256, 320, 448])
    args = parser.parse_args()
    ari = lambda a, b: float(np.mean([adjusted_rand_score(x.ravel(), y.ravel()) for x, y in zip(a, b)]))  # noqa: E731
    counts = lambda labels: [int(x.max()) + 1 for x in labels]  # noqa: E731
    for side in args.sides:
        images = photos(side)
        full_params = {"downscale": 1, "kernel_size": round(side / 45.0, 2)}
        full_s, full = timed(images, **full_params)
        shrunk_s, shrunk = timed(images)
        _, other_seed = timed(images, seed=1, **full_params)
        _, slic = timed(images, method="slic")
        for name, seconds, labels in (("full", full_s, full), ("shrunk", shrunk_s, shrunk)):
            c = counts(labels)
            print(f"{side} px {name:>6}: {seconds:.3f} s per image, super-pixels median {np.median(c):g} "
                  f"({min(c)}-{max(c)})")
        print(f"{side} px: full/shrunk time {full_s / shrunk_s:.1f}x; adjusted Rand index full vs shrunk "
              f"{ari(full, shrunk):.3f}, full vs full (seed 1) {ari(full, other_seed):.3f}, full vs SLIC {ari(full, slic):.3f}")


if __name__ == "__main__":
    main()
