"""Mask designs: which super-pixels each of the L perturbed samples of an image hides.

LIME, and Zest after it, draws every mask independently: each super-pixel is kept with probability
1/2 (``"bernoulli"``). A local fit has only K ≈ 20 unknowns per class, and two designs estimate the
same linear model with less noise from the same number of queries:

``"antithetic"``
    Bernoulli masks in complementary pairs (x, 1 − x). In ±1 coding a pairwise interaction
    hᵢhⱼ of the model's response is the same for x and its complement while each main effect hᵢ
    changes sign, so every two-way interaction cancels exactly from the main-effect estimates
    instead of adding noise to them: the *fold-over* of Box & Wilson.
``"orthogonal"``
    Blocks of a two-level regular fractional factorial of resolution IV: the rows of a Sylvester
    Hadamard matrix of order B (the smallest power of two with B ≥ 2K), on K distinct columns of odd
    weight chosen at random. In each block every super-pixel is hidden in exactly half of the rows
    and all columns are orthogonal, so XᵀX equals its expectation under the Bernoulli design, and no
    main effect is aliased with a two-way interaction (the XOR of two odd-weight columns has even
    weight). Each block draws its own columns and complements them at random, so blocks are
    independent and a design of L rows is the first L rows of a longer one.

All three have the Bernoulli design's moments (each super-pixel kept with probability 1/2,
independently in pairs), so they estimate the same population least-squares fit; only the noise
differs. Every design is *nested*: its first L rows are the design of L rows, which lets one query
pass serve every smaller L (see :mod:`zest_core.studies.budget`).

References
----------
.. [1] Ribeiro, Singh & Guestrin, "Why Should I Trust You?", KDD 2016 (arXiv:1602.04938): the
   Bernoulli masks.
.. [2] Box & Wilson, "On the experimental attainment of optimum conditions", JRSS B 13, 1951; Box &
   Hunter, "The 2^(k−p) fractional factorial designs", Technometrics 3, 1961: fold-over and
   resolution-IV fractions.
.. [3] Sylvester, "Thoughts on inverse orthogonal matrices", Phil. Mag. 34, 1867: H[r, c] =
   (−1)^popcount(r & c).
"""
from __future__ import annotations

import numpy as np

from .._shared.checks import check_choice
from ..errors import ZestError

MASK_DESIGNS = ("bernoulli", "antithetic", "orthogonal")
# What each design's L masks do, in one clause for people (the Super-pixels page's caption).
DESIGN_DESCRIPTIONS = {
    "bernoulli": "hides each super-pixel independently with probability ½ (LIME's masks)",
    "antithetic": "hides a random half of its super-pixels, in complementary pairs (each mask, then its complement)",
    "orthogonal": ("comes from blocks of orthogonal masks (a resolution-IV fractional factorial): in each block every "
                   "super-pixel is hidden in exactly half of the samples"),
}


def sample_masks(
    num_segments: int, num_samples: int, rng: np.random.Generator, design: str = "bernoulli"
) -> np.ndarray:
    """Draw the masks of one image: ``num_samples`` rows over its ``num_segments`` super-pixels.

    Parameters
    ----------
    num_segments : int
        K, the image's super-pixels.
    num_samples : int
        L, the masks.
    rng : numpy.random.Generator
    design : {"bernoulli", "antithetic", "orthogonal"}
        See the module docstring. The first Bernoulli or antithetic mask keeps every super-pixel, as
        LIME's does, so that the unperturbed image is among the samples.

    Returns
    -------
    masks : ndarray of uint8, shape (num_samples, num_segments); 1 keeps a super-pixel, 0 hides it.
    """
    if num_segments < 1 or num_samples < 1:
        raise ZestError(
            f"num_segments, num_samples: expected at least one segment and one sample, got {num_segments} "
            f"and {num_samples}"
        )
    check_choice("mask_design", design, MASK_DESIGNS)
    if design == "orthogonal":
        return orthogonal_masks(num_segments, num_samples, rng)
    if design == "antithetic":
        return antithetic_masks(num_segments, num_samples, rng)
    masks = rng.integers(0, 2, size=(num_samples, num_segments), dtype=np.uint8)
    masks[0, :] = 1
    return masks


def minimum_samples(num_segments: int, design: str = "bernoulli") -> int:
    """The fewest masks with which the design can determine a local fit of ``num_segments`` super-pixels.

    Bernoulli: K + 1 (see :func:`~zest_core.pipeline.local_fit.check_samples_determine_fits`).
    Antithetic: 2K, because every pair (x, 1 − x) spans only {x, 1}, so L masks have rank at most
    L / 2 + 1. Orthogonal: one whole block, B ≥ 2K rows; a truncated block can repeat a column.
    """
    check_choice("mask_design", design, MASK_DESIGNS)
    if design == "antithetic":
        return 2 * num_segments
    if design == "orthogonal":
        return orthogonal_block_size(num_segments)
    return num_segments + 1


def antithetic_masks(num_segments: int, num_samples: int, rng: np.random.Generator) -> np.ndarray:
    """Bernoulli masks in complementary pairs: row 2i + 1 = 1 − row 2i (row 0 keeps everything)."""
    first = rng.integers(0, 2, size=((num_samples + 1) // 2, num_segments), dtype=np.uint8)
    first[0, :] = 1
    masks = np.empty((2 * first.shape[0], num_segments), dtype=np.uint8)
    masks[0::2], masks[1::2] = first, 1 - first
    return masks[:num_samples]


def orthogonal_block_size(num_segments: int) -> int:
    """B, the smallest power of two with B ≥ 2K: the rows of one resolution-IV block for K super-pixels.

    The columns of odd weight below B number B / 2, so they suffice for K ≤ B / 2.
    """
    return max(2, 1 << int(np.ceil(np.log2(2 * num_segments))))


def orthogonal_masks(num_segments: int, num_samples: int, rng: np.random.Generator) -> np.ndarray:
    """Concatenated random resolution-IV blocks of a Sylvester Hadamard matrix, cut to ``num_samples`` rows."""
    block = orthogonal_block_size(num_segments)
    rows = np.arange(block)
    parity_of = _parity(rows)  # popcount(x) mod 2 for every x < block: a row & column index is one of them
    odd_columns = np.flatnonzero(parity_of)
    blocks = []
    for _ in range(-(-num_samples // block)):
        columns = rng.choice(odd_columns, size=num_segments, replace=False)
        flips = rng.integers(0, 2, size=num_segments, dtype=np.uint8)
        parity = parity_of[rows[:, None] & columns[None, :]]
        blocks.append(parity ^ flips)  # H = +1 (even parity) keeps, before the column's random complement
    return np.concatenate(blocks)[:num_samples] ^ 1


def _parity(values: np.ndarray) -> np.ndarray:
    """popcount(v) mod 2 of non-negative integers, as uint8, by folding their bits together."""
    parity = np.zeros(values.shape, dtype=np.uint8)
    remaining = values.copy()
    while remaining.any():
        parity ^= (remaining & 1).astype(np.uint8)
        remaining >>= 1
    return parity
