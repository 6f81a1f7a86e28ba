"""Segmentation fits the image: about 10–40 super-pixels at 28, 32 and 224 px, on real images."""
import os

import numpy as np
import pytest
from skimage import data, transform

from zest_core import segment_image
from zest_core.pipeline.segmentation import segment_reference_set

PHOTOS = ["astronaut", "coffee", "chelsea", "rocket", "camera", "cat", "hubble_deep_field", "immunohistochemistry", "retina"]


def _photos(side: int) -> list[np.ndarray]:
    out = []
    for name in PHOTOS:
        image = getattr(data, name)()
        image = np.stack([image] * 3, axis=-1) if image.ndim == 2 else image[..., :3]
        out.append((transform.resize(image, (side, side), anti_aliasing=True) * 255).astype(np.uint8))
    return out


@pytest.mark.parametrize("side", [28, 32, 224])
@pytest.mark.parametrize("method", ["quickshift", "slic", "felzenszwalb"])
def test_default_parameters_give_10_to_40_superpixels_on_photographs(side, method):
    counts = [segment_image(image, method).max() + 1 for image in _photos(side)]
    assert 10 <= np.median(counts) <= 40, counts
    if method == "quickshift":  # the default method is held to every image, not just the median
        assert min(counts) >= 5 and max(counts) <= 80, counts


def test_default_quickshift_on_real_digits_is_not_lime_degenerate(mnist_digits):
    images = mnist_digits[0][:40]
    counts = [segment_image(image).max() + 1 for image in images]
    assert 10 <= np.median(counts) <= 40 and min(counts) >= 5, counts
    # LIME's own defaults collapse a 28×28 digit to one or two super-pixels: the reason for the rule.
    lime_counts = [segment_image(image, kernel_size=4, max_dist=200, ratio=0.2).max() + 1 for image in images[:10]]
    assert max(lime_counts) <= 3


def test_labels_are_dense_and_follow_obvious_regions():
    image = np.zeros((32, 32, 3), np.uint8)
    image[:16, 16:] = (255, 0, 0)
    image[16:, :16] = (0, 255, 0)
    image[16:, 16:] = (0, 0, 255)
    for method in ("quickshift", "slic", "felzenszwalb"):
        labels = segment_image(image, method)
        assert labels.dtype == np.int32 and set(np.unique(labels)) == set(range(labels.max() + 1))
        for label in range(labels.max() + 1):  # every super-pixel lies within one colour quadrant
            colours = {tuple(c) for c in image[labels == label]}
            assert len(colours) == 1, (method, label, colours)


def test_greyscale_images_are_segmented(mnist_digits):
    labels = segment_image(mnist_digits[0][0])
    assert labels.shape == (28, 28) and labels.max() >= 1


def test_user_parameters_override_the_defaults(mnist_digits):
    image = mnist_digits[0][0]
    assert not np.array_equal(segment_image(image), segment_image(image, max_dist=2.0))


def test_reference_set_segmentation_reports_progress(digits_refset):
    calls = []
    result = segment_reference_set(digits_refset, progress=lambda d, t, s: calls.append((d, t, s)))
    assert result.shape == (6, 28, 28)
    assert calls[-1] == (6, 6, "segment")


def test_large_sets_segmented_in_worker_processes_get_the_same_labels(digits_refset, monkeypatch):
    """Quickshift holds the GIL, so large sets (224-px photos) go to forked processes: same labels, none left behind."""
    import multiprocessing
    import sys

    from zest_core.pipeline import segmentation

    if not sys.platform.startswith("linux") or (os.cpu_count() or 1) < 2:
        pytest.skip("worker processes are used on Linux with more than one CPU")
    monkeypatch.setattr(segmentation, "PROCESS_PIXELS", 0)  # these small digits take the large sets' path
    params = segmentation.default_segmentation_params("quickshift", digits_refset.image_size)
    in_processes = segmentation.segment_reference_set(digits_refset, "quickshift", params, seed=3)
    one_by_one = [segmentation.segment_image(image, "quickshift", seed=3, **params) for image in digits_refset.images]
    np.testing.assert_array_equal(in_processes, np.stack(one_by_one))
    assert multiprocessing.active_children() == []


def test_large_images_are_segmented_shrunk_by_the_default_rule():
    """From 224 px, quickshift runs on the image shrunk by side // 112, with that size's kernel (issue 22)."""
    from zest_core.pipeline.segmentation import default_segmentation_params, quickshift_downscale

    assert default_segmentation_params("quickshift", (223, 223)).get("downscale") is None
    assert default_segmentation_params("quickshift", (224, 224)) == {
        "kernel_size": round(112 / 45, 2), "max_dist": 200.0, "ratio": 0.2, "downscale": 2}
    assert quickshift_downscale("quickshift", {}, (448, 500)) == 4
    assert quickshift_downscale("quickshift", {"downscale": 1}, (224, 224)) == 1
    assert quickshift_downscale("slic", {}, (448, 448)) == 1
    photo = _photos(224)[0]
    shrunk = segment_image(photo)
    assert shrunk.shape == (224, 224)
    # The same as segmenting the anti-aliased half-size image and giving each pixel its half-size pixel's label.
    half = (transform.resize(photo, (112, 112, 3), anti_aliasing=True, preserve_range=True)).round().astype(np.uint8)
    small = segment_image(half, downscale=1)
    np.testing.assert_array_equal(shrunk, np.repeat(np.repeat(small, 2, axis=0), 2, axis=1))
    assert not np.array_equal(shrunk, segment_image(photo, downscale=1, kernel_size=round(224 / 45, 2)))


def test_shrunk_segments_follow_obvious_regions_at_224_px():
    image = np.zeros((224, 224, 3), np.uint8)
    image[:112, 112:] = (255, 0, 0)
    image[112:, :112] = (0, 255, 0)
    image[112:, 112:] = (0, 0, 255)
    labels = segment_image(image)
    assert set(np.unique(labels)) == set(range(labels.max() + 1))
    for label in range(labels.max() + 1):
        assert len({tuple(c) for c in image[labels == label]}) == 1


def test_a_shrink_factor_below_one_is_refused_by_name():
    with pytest.raises(ValueError, match="downscale"):
        segment_image(_photos(224)[0], downscale=0)
