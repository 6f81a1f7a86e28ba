"""Perturbation: every image's super-pixel masks (drawn by :mod:`.designs`), and the perturbed images they select, in batches."""
from __future__ import annotations

from typing import Iterator

import numpy as np
import torch

from .._shared.checks import check_choice
from .designs import sample_masks


def image_masks(
    num_segments: np.ndarray, num_samples: int, seed: int, design: str = "bernoulli"
) -> list[np.ndarray]:
    """Masks for every image; image n's masks depend only on (seed, n, its segment count, the design).

    See :mod:`.designs` for the designs; every one is nested (its first L rows are its L-row design).
    """
    return [
        sample_masks(int(k), num_samples, np.random.default_rng([seed, index]), design)
        for index, k in enumerate(num_segments)
    ]


def fill_images(
    images: torch.Tensor, segments: torch.Tensor, fill: str, fill_value: float = 0.0
) -> torch.Tensor:
    """The image each hidden super-pixel is replaced from, per reference image.

    Parameters
    ----------
    images : Tensor [N, C, H, W] in [0, 1]
    segments : LongTensor [N, H, W], labels 0..K_n-1
    fill : {"mean_color", "constant", "dataset_mean"}
        Each super-pixel's own mean colour (LIME's ``hide_color=None``), ``fill_value``, or the
        per-channel mean over the whole reference set.
    """
    if fill == "constant":
        return torch.full_like(images, float(fill_value))
    if fill == "dataset_mean":
        return images.mean(dim=(0, 2, 3), keepdim=True).expand_as(images).clone()
    check_choice("fill", fill, ("mean_color", "constant", "dataset_mean"))
    n, channels, height, width = images.shape
    # Offset labels per image so one scatter computes every image's segment means at once.
    counts_per_image = segments.flatten(1).amax(dim=1) + 1
    offsets = torch.cumsum(counts_per_image, 0) - counts_per_image
    flat_labels = (segments + offsets.view(n, 1, 1)).flatten()
    total = int(counts_per_image.sum())
    pixels = images.permute(0, 2, 3, 1).reshape(-1, channels)
    sums = torch.zeros(total, channels, dtype=images.dtype, device=images.device).index_add_(0, flat_labels, pixels)
    sizes = torch.bincount(flat_labels, minlength=total).to(images.dtype).unsqueeze(1)
    means = sums / sizes
    return means[flat_labels].view(n, height, width, channels).permute(0, 3, 1, 2).contiguous()


def compose_samples(
    images: torch.Tensor,
    fills: torch.Tensor,
    segments: torch.Tensor,
    masks: torch.Tensor,
    image_index: torch.Tensor,
    mask_index: torch.Tensor,
) -> torch.Tensor:
    """Perturbed images for any mix of (image, mask) pairs, in one gather: no per-image Python loop.

    Parameters
    ----------
    images, fills : Tensor [N, C, H, W]
    segments : LongTensor [N, H, W]
    masks : BoolTensor [N, L, K_max]
        Every image's masks, padded to the largest segment count (padding is never indexed).
    image_index, mask_index : LongTensor [B]
        Which image and which of its masks each output row shows.

    Returns
    -------
    Tensor [B, C, H, W]
    """
    rows = masks[image_index, mask_index]  # [B, K_max]
    keep = torch.gather(rows, 1, segments[image_index].flatten(1))  # [B, H*W]
    keep = keep.view(image_index.shape[0], 1, *segments.shape[1:])
    # A batch holds runs of one image's masks (a few images per batch): each run selects from its image
    # and fill broadcast, so neither is copied once per row (at 224 px, 2 of the 3 copies of the batch).
    out = torch.empty((image_index.shape[0], *images.shape[1:]), dtype=images.dtype, device=images.device)
    if images.is_contiguous(memory_format=torch.channels_last):
        out = out.contiguous(memory_format=torch.channels_last)
    values, counts = torch.unique_consecutive(image_index, return_counts=True)
    start = 0
    for image, count in zip(values.tolist(), counts.tolist()):
        stop = start + count
        torch.where(keep[start:stop], images[image:image + 1], fills[image:image + 1], out=out[start:stop])
        start = stop
    return out


def batch_plan(num_images: int, num_samples: int, batch_size: int) -> Iterator[list[tuple[int, int, int]]]:
    """Split the N×L perturbed samples into batches of (image, first, stop) runs.

    Batches span image boundaries so that every forward pass but the last is full.
    """
    total = num_images * num_samples
    for start in range(0, total, batch_size):
        stop = min(start + batch_size, total)
        runs = []
        position = start
        while position < stop:
            image, first = divmod(position, num_samples)
            run_stop = min(num_samples, first + (stop - position))
            runs.append((image, first, run_stop))
            position += run_stop - first
        yield runs
