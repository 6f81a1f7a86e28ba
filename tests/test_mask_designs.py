"""Mask designs (issue 12, item 3): structure, nesting, and the least-squares fit they give.

The known answer is the *population* fit: the no-intercept least squares of a response over all 2^K
masks, each equally likely (what Bernoulli(1/2) masks estimate), computed by enumeration in float64.
"""
from __future__ import annotations

import itertools

import numpy as np
import pytest

from zest_core import ZestConfig, ZestError
from zest_core.pipeline.designs import MASK_DESIGNS, orthogonal_block_size, sample_masks
from zest_core.pipeline.local_fit import zest_operator
from zest_core.pipeline.perturbation import image_masks


def all_masks(k: int) -> np.ndarray:
    return np.array(list(itertools.product([0, 1], repeat=k)), dtype=np.uint8)


def second_order_response(k: int, rng: np.random.Generator):
    """z(x) = a + b·x + Σ_{i<j} c_ij x_i x_j: main effects and every two-way interaction, no higher ones."""
    a, b, c = rng.normal(), rng.normal(size=k), np.triu(rng.normal(size=(k, k)) * 2.0, 1)
    return lambda x: a + x @ b + np.einsum("li,ij,lj->l", x, c, x)


def population_fit(k: int, response) -> np.ndarray:
    x = all_masks(k).astype(np.float64)
    return np.linalg.solve(x.T @ x, x.T @ response(x))


def fit(masks: np.ndarray, response) -> np.ndarray:
    return (zest_operator(masks) @ response(masks.astype(np.float64)))[:-1]


@pytest.mark.parametrize("design", MASK_DESIGNS)
def test_every_design_is_binary_seeded_and_nested(design):
    long = sample_masks(13, 300, np.random.default_rng([4, 1]), design)
    assert long.shape == (300, 13) and long.dtype == np.uint8 and set(np.unique(long)) <= {0, 1}
    for length in (14, 64, 99, 256):
        assert np.array_equal(sample_masks(13, length, np.random.default_rng([4, 1]), design), long[:length])
    assert not np.array_equal(sample_masks(13, 300, np.random.default_rng([4, 2]), design), long)
    # Every super-pixel is hidden about half of the time (the Bernoulli design's marginal).
    assert np.all(np.abs(long.mean(axis=0) - 0.5) < 0.12)


def test_antithetic_masks_come_in_complementary_pairs():
    masks = sample_masks(9, 41, np.random.default_rng(0), "antithetic")
    assert np.all(masks[0] == 1) and np.all(masks[1] == 0)
    assert np.array_equal(masks[1:40:2], 1 - masks[0:40:2])


@pytest.mark.parametrize("k", [1, 5, 8, 13, 30])
def test_orthogonal_blocks_are_balanced_orthogonal_and_of_resolution_iv(k):
    block = orthogonal_block_size(k)
    assert block >= 2 * k and block & (block - 1) == 0
    masks = sample_masks(k, 3 * block, np.random.default_rng(k), "orthogonal")
    for start in range(0, 3 * block, block):
        h = 2.0 * masks[start:start + block] - 1.0  # ±1 coding
        assert np.all(h.sum(axis=0) == 0)  # balanced: each super-pixel hidden in half the rows
        assert np.array_equal(h.T @ h, block * np.eye(k))  # orthogonal columns
        for i, j in itertools.combinations(range(k), 2):  # no main effect aliased with a 2-way interaction
            assert np.all(h.T @ (h[:, i] * h[:, j]) == 0)
    if k >= 5:  # blocks draw their own columns: the design does not repeat itself (K = 1 has 2 blocks in all)
        assert not np.array_equal(masks[:block], masks[block:2 * block])


@pytest.mark.parametrize("k", [4, 6, 9])
def test_orthogonal_design_recovers_the_population_fit_of_a_second_order_response(k):
    """Resolution IV: with whole blocks the fit equals the 2^K enumeration exactly; Bernoulli's does not."""
    rng = np.random.default_rng(k)
    response = second_order_response(k, rng)
    truth = population_fit(k, response)
    length = 2 * orthogonal_block_size(k)
    orthogonal = fit(sample_masks(k, length, np.random.default_rng(1), "orthogonal"), response)
    bernoulli = fit(sample_masks(k, length, np.random.default_rng(1), "bernoulli"), response)
    np.testing.assert_allclose(orthogonal, truth, rtol=0, atol=1e-9)
    assert np.abs(bernoulli - truth).max() > 1e-3


def test_antithetic_and_orthogonal_fits_are_closer_to_the_population_fit_than_bernoulli():
    """Averaged over 40 seeds at L = 64 on a response with strong interactions (K = 10)."""
    k, length = 10, 64
    response = second_order_response(k, np.random.default_rng(7))
    truth = population_fit(k, response)
    error = {
        design: np.mean([
            np.sum((fit(sample_masks(k, length, np.random.default_rng([s]), design), response) - truth) ** 2)
            for s in range(40)
        ])
        for design in MASK_DESIGNS
    }
    assert error["antithetic"] < 0.7 * error["bernoulli"]
    assert error["orthogonal"] < 1e-12 < error["bernoulli"]


def test_config_carries_the_design_without_changing_earlier_fingerprints():
    default = ZestConfig()
    assert "mask_design" not in default.to_dict()  # earlier cache keys and signature files stay valid
    assert ZestConfig.from_dict(default.to_dict()) == default
    other = ZestConfig(mask_design="orthogonal")
    assert other.to_dict()["mask_design"] == "orthogonal"
    assert other.fingerprint() != default.fingerprint()
    assert ZestConfig.from_dict(other.to_dict()) == other
    with pytest.raises(ZestError, match="mask_design"):
        ZestConfig(mask_design="sobol")


def test_image_masks_use_the_design():
    masks = image_masks(np.array([7, 12]), 32, 0, "antithetic")
    assert [m.shape for m in masks] == [(32, 7), (32, 12)]
    assert np.array_equal(masks[1][1::2], 1 - masks[1][0::2])


def test_each_design_needs_enough_masks_to_determine_a_fit(digits_refset):
    from zest_core.pipeline.designs import minimum_samples
    from zest_core.pipeline.local_fit import check_samples_determine_fits

    # Complementary pairs span only {x, 1}: 16 pairs over 30 super-pixels have rank at most 17.
    masks = sample_masks(30, 32, np.random.default_rng(0), "antithetic")
    assert np.linalg.matrix_rank(masks.astype(float)) <= 17 < 30
    assert np.linalg.matrix_rank(sample_masks(30, 60, np.random.default_rng(0), "antithetic").astype(float)) == 30
    assert [minimum_samples(30, d) for d in ("bernoulli", "antithetic", "orthogonal")] == [31, 60, 64]
    check_samples_determine_fits([30, 12], 64, "orthogonal")
    with pytest.raises(ZestError, match=r"at least 64 maskings.*K = 30.*orthogonal masks.*got 32"):
        check_samples_determine_fits([30, 12], 32, "orthogonal")
    with pytest.raises(ZestError, match=r"at least 60 maskings.*antithetic"):
        check_samples_determine_fits([30], 59, "antithetic")
    with pytest.raises(ZestError, match=r"num_samples: expected at least \d+ maskings.*orthogonal masks"):
        from zest_core import compute_signature

        # The digits have 17 to 28 super-pixels: whole orthogonal blocks are 64 rows, so 32 masks are refused.
        compute_signature(lambda x: x.flatten(1)[:, :3], digits_refset,
                          ZestConfig(num_samples=32, mask_design="orthogonal", device="cpu"), cache=False)
