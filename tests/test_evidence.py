"""Issue 20: per-image evidence against the null, on synthetic signatures whose answer is planted."""
from __future__ import annotations

import numpy as np
import pytest

from zest_core import Signature, ZestConfig
from zest_core.errors import ZestError
from zest_core.explain import EVIDENCE_NOTE, evidence_views, image_evidence, local_distances, standardised_gap

N, C, K = 12, 4, 6


def signature(weights: np.ndarray, fingerprint: str | None = None) -> Signature:
    """Weights (N, C, K) over one 6-super-pixel segmentation of 6×6 images (one row per super-pixel)."""
    segments = np.repeat(np.arange(K, dtype=np.int32)[:, None], K, axis=1)
    return Signature(weights=[w.astype(np.float64) for w in weights], intercepts=None,
                     segments=np.stack([segments] * len(weights)), config=ZestConfig(num_samples=10),
                     model_fingerprint=fingerprint, refset_fingerprint="synthetic",
                     class_names=[str(c) for c in range(C)])


def planted(seed: int = 0, copied: int = 7, shared: int = 3, m: int = 6):
    """P; S copies P on image ``copied`` only; on image ``shared`` every model copies P; noise elsewhere."""
    rng = np.random.default_rng(seed)
    p = rng.normal(size=(N, C, K))
    models = {}
    for name in ["suspect", *[f"u{j}" for j in range(m)]]:
        w = rng.normal(size=(N, C, K))
        w[shared] = p[shared] + 0.01 * rng.normal(size=(C, K))  # every model agrees with P here: no evidence
        if name == "suspect":
            w[copied] = p[copied] + 0.01 * rng.normal(size=(C, K))
        models[name] = signature(w, name)
    suspect = models.pop("suspect")
    return signature(p, "p"), suspect, models


@pytest.mark.parametrize("seed", range(5))
def test_the_planted_image_ranks_first_and_the_shared_one_carries_no_evidence(seed):
    reference, suspect, null = planted(seed)
    evidence = image_evidence(reference, suspect, null)
    assert evidence.most(1)[0] == 7
    assert evidence.scores[7] > 5  # many null spreads closer (log distances 0.01² vs ~1)
    # Every model copies P on image 3: the suspect is as close as the null there. Its |z| is a t-like draw
    # (heavy-tailed with m - 1 = 5 degrees of freedom), far below the planted image's.
    assert abs(evidence.scores[3]) < evidence.scores[7] / 4
    assert evidence.closer_nulls[7] == 0
    assert 7 not in evidence.least(N - 1)[: N - 2]


def test_a_suspect_that_copies_nothing_has_no_standout_image_on_average():
    """Under the null (S one more unrelated draw, images independent here) the suspect's rank among the null is
    uniform on 0..m on every image, and the scores centre near 0 (not exactly: log distances are not normal)."""
    rng = np.random.default_rng(3)
    n = 400
    p = rng.normal(size=(n, C, K))
    sigs = [signature(rng.normal(size=(n, C, K)), f"m{j}") for j in range(7)]
    ref = signature(p)
    evidence = image_evidence(ref, sigs[0], {f"u{j}": s for j, s in enumerate(sigs[1:])})
    counts = np.bincount(evidence.closer_nulls, minlength=7)
    assert counts.min() > 30 and counts.max() < 90  # uniform: 400/7 ≈ 57 each
    assert abs(float(np.median(evidence.scores))) < 0.3
    # Standardised by the null's spread: the spread of z is near √(1 + 1/m) × t-ish, not 0 or huge.
    assert 0.7 < float(np.std(evidence.scores)) < 2.0


def test_the_standardised_gap_is_the_formula():
    suspect = np.array([0.1, 1.0, 0.0])
    null = np.array([[0.5, 1.0, 0.2], [0.2, 2.0, 0.2], [0.4, 4.0, 0.2]])
    logs = np.log(null)
    expected0 = (logs[:, 0].mean() - np.log(0.1)) / logs[:, 0].std(ddof=1)
    expected1 = (logs[:, 1].mean() - np.log(1.0)) / logs[:, 1].std(ddof=1)
    z = standardised_gap(suspect, null)
    assert z[0] == pytest.approx(expected0, rel=1e-12)
    assert z[1] == pytest.approx(expected1, rel=1e-12)
    # An exact copy on an image where the null has no spread: floored, finite, and large.
    assert np.isfinite(z[2]) and z[2] > 1000


def test_local_cosine_distances_are_the_per_block_cosines_and_scale_free():
    reference, suspect, _ = planted()
    d = local_distances(reference, suspect)
    for n in range(N):
        a, b = reference.weights[n].ravel(), suspect.weights[n].ravel()
        assert d[n] == pytest.approx(1 - a @ b / np.linalg.norm(a) / np.linalg.norm(b), rel=1e-10)
    scaled = signature(np.stack(suspect.weights) * 1000.0)
    np.testing.assert_allclose(local_distances(reference, scaled), d, rtol=1e-9)


def test_views_paint_the_reference_suspect_and_closest_unrelated_on_one_scale():
    reference, suspect, null = planted()
    evidence = image_evidence(reference, suspect, null)
    labels = ["2"] * N
    (view,) = evidence_views(reference, suspect, null, evidence, [7], labels=labels)
    assert view.index == 7 and view.reference_class == "2" and view.suspect_class == "2"
    assert view.unrelated == evidence.closest_unrelated(7)
    assert view.maps.shape == (3, K, K)
    assert view.limit == pytest.approx(np.abs(view.maps).max())
    # P's painted row is class 2 of image 7, unit-norm: row r of the map is super-pixel r's weight.
    expected = reference.weights[7][2] / np.linalg.norm(np.stack(reference.weights).reshape(N, C, K).transpose(1, 0, 2))
    np.testing.assert_allclose(view.maps[0][:, 0], expected, rtol=1e-9)


def test_evidence_needs_a_spread_and_says_it_is_no_test():
    reference, suspect, null = planted()
    with pytest.raises(ZestError, match="at least 2"):
        image_evidence(reference, suspect, dict(list(null.items())[:1]))
    record = image_evidence(reference, suspect, null).to_dict()
    assert record["note"] == EVIDENCE_NOTE and "not a second test" in EVIDENCE_NOTE
    assert len(record["images"]) == N
