"""Reference-set sources: seeded draws, image folders, uploaded images, CIFAR files and the REF specs."""
from __future__ import annotations

import io
import pickle
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from zest_core import cli
from zest_core.cli import inputs as cli_inputs
from zest_core.sources.cifar import load_cifar
from zest_core.sources.image_folder import IMAGE_EXTENSIONS, load_image_folder, reference_from_uploads
from zest_core.pipeline.reference import ReferenceSet

RNG = np.random.default_rng(0)
RGB = RNG.integers(0, 256, (4, 6, 8, 3), dtype=np.uint8)  # four 6×8 colour images
GREY = RNG.integers(0, 256, (2, 6, 8), dtype=np.uint8)  # two 6×8 greyscale images


def save(path: Path, pixels: np.ndarray | Image.Image, **options) -> Path:
    """Write an image (array or PIL image) with Pillow, creating the folder; the format follows the suffix."""
    path.parent.mkdir(parents=True, exist_ok=True)
    image = pixels if isinstance(pixels, Image.Image) else Image.fromarray(pixels)
    image.save(path, **options)
    return path


def numbered(n: int, labels=None, **kwargs) -> ReferenceSet:
    """n 2×2 images, image i filled with the value i, so each image names itself."""
    images = np.repeat(np.arange(n, dtype=np.uint8), 4).reshape(n, 2, 2)
    return ReferenceSet.from_arrays(images, labels, **kwargs)


@pytest.fixture
def root(tmp_path) -> Path:
    """An empty folder of its own (tmp_path also holds the test's signature-cache folder)."""
    folder = tmp_path / "data"
    folder.mkdir()
    return folder


def drawn(refset: ReferenceSet) -> list[int]:
    return refset.images[:, 0, 0].tolist()


# --- ReferenceSet.sample ----------------------------------------------------------------------------


def test_ten_drawn_from_ten_classes_are_one_of_each():
    refset = numbered(30, np.arange(30) % 10)
    sample = refset.sample(10, seed=3)
    assert sorted(sample.labels.tolist()) == list(range(10))
    assert len(set(drawn(sample))) == 10
    assert "10 drawn stratified with seed 3" in sample.provenance


def test_the_same_seed_draws_the_same_images_and_another_seed_others():
    refset = numbered(30, np.arange(30) % 10)
    assert drawn(refset.sample(10, 1)) == drawn(refset.sample(10, 1))
    assert drawn(refset.sample(10, 1)) != drawn(refset.sample(10, 2))
    np.testing.assert_array_equal(refset.sample(10, 1).labels, refset.labels[drawn(refset.sample(10, 1))])


def test_without_labels_a_draw_is_a_seeded_permutation():
    refset = numbered(12)
    whole = refset.sample(12, seed=5)
    assert sorted(drawn(whole)) == list(range(12)) and drawn(whole) != list(range(12))
    assert drawn(refset.sample(4, seed=5)) == drawn(whole)[:4]
    assert whole.labels is None and "drawn at random" in whole.provenance


@pytest.mark.parametrize("labels", [None, np.arange(5) % 2])
@pytest.mark.parametrize("n", [0, 6])
def test_drawing_more_images_than_there_are_is_refused(labels, n):
    with pytest.raises(ValueError, match=rf"1 <= n <= 5 .*got {n}"):
        numbered(5, labels).sample(n)


def test_class_names_follow_subsets_and_draws_and_must_fit_the_labels():
    refset = numbered(4, [0, 1, 0, 1], class_names=["cat", "dog"])
    assert refset.sample(2).class_names == ("cat", "dog")
    assert refset.subset([3]).class_names == ("cat", "dog")
    assert numbered(2).class_names is None
    with pytest.raises(ValueError, match=r"expected values in \[0, 1\].*got values in \[0, 2\]"):
        numbered(3, [0, 1, 2], class_names=["cat", "dog"])
    with pytest.raises(ValueError, match="class_names: expected labels"):
        numbered(2, class_names=["cat"])


# --- load_image_folder: layout, order, pixels --------------------------------------------------------


def test_class_subfolders_give_labels_and_class_names(root):
    save(root / "dog" / "b.png", RGB[0])
    save(root / "dog" / "a.png", RGB[1])
    save(root / "cat" / "nested" / "z.png", RGB[2])
    save(root / "cat" / "c.jpg", np.full((6, 8, 3), (200, 40, 90), np.uint8), quality=100)
    (root / "cat" / "notes.txt").write_text("not an image")
    (root / "dog" / ".hidden.png").write_bytes(b"skipped: hidden")
    refset = load_image_folder(root)
    assert refset.class_names == ("cat", "dog")
    assert refset.labels.tolist() == [0, 0, 1, 1]
    assert refset.images.shape == (4, 6, 8, 3) and refset.images.dtype == np.uint8
    np.testing.assert_allclose(refset.images[0], np.full((6, 8, 3), (200, 40, 90)), atol=3)  # cat/c.jpg
    np.testing.assert_array_equal(refset.images[1:], RGB[[2, 1, 0]])  # cat/nested/z, dog/a, dog/b: PNG exact
    assert "2 classes" in refset.provenance and str(root) in refset.provenance


def test_a_flat_folder_has_no_labels_and_sorted_order(root):
    for name, pixels in zip(["b.png", "a.PNG", "c.bmp"], RGB):
        save(root / name, pixels)
    refset = load_image_folder(root)
    assert refset.labels is None and refset.class_names is None
    np.testing.assert_array_equal(refset.images, RGB[[1, 0, 2]])


def test_max_images_draws_per_class_and_keeps_path_order(root):
    for index in range(6):
        save(root / f"class{index % 2}" / f"{index}.png", GREY[0] // 2 + index)
    refset = load_image_folder(root, max_images=2, seed=1)
    assert refset.labels.tolist() == [0, 1]
    assert len(load_image_folder(root, max_images=10)) == 6


# --- load_image_folder: conversions ------------------------------------------------------------------


def test_exif_orientation_is_applied(root):
    pixels = np.zeros((16, 32), np.uint8)
    pixels[:, 16:] = 255  # left half black, right half white
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display"
    save(root / "photo.jpg", pixels, exif=exif, quality=95)
    image = load_image_folder(root).images[0]
    assert image.shape == (32, 16)
    np.testing.assert_allclose(image, np.rot90(pixels, k=-1), atol=40)  # the right half now at the bottom
    assert image[:12].max() < 40 and image[20:].min() > 215


def test_greyscale_stays_greyscale_and_mixes_with_colour_as_rgb(root):
    save(root / "grey" / "a.png", GREY[0])
    save(root / "grey" / "b.png", GREY[1])
    np.testing.assert_array_equal(load_image_folder(root / "grey").images, GREY)
    save(root / "grey" / "c.png", RGB[0])
    mixed = load_image_folder(root / "grey").images
    assert mixed.shape == (3, 6, 8, 3)
    np.testing.assert_array_equal(mixed[0], np.stack([GREY[0]] * 3, axis=-1))
    np.testing.assert_array_equal(mixed[2], RGB[0])


def test_forced_modes_convert(root):
    save(root / "a.png", RGB[0])
    as_l = load_image_folder(root, mode="L").images[0]
    np.testing.assert_array_equal(as_l, np.asarray(Image.fromarray(RGB[0]).convert("L")))
    save(root / "b.png", GREY[0])
    assert load_image_folder(root, mode="RGB").images.shape == (2, 6, 8, 3)


def test_transparency_is_flattened_onto_white(root):
    rgba = np.zeros((6, 8, 4), np.uint8)
    rgba[..., :3] = (10, 20, 30)
    rgba[:, :4, 3] = 255  # left half opaque, right half transparent
    save(root / "rgba.png", rgba)
    image = load_image_folder(root).images[0]
    assert (image[:, :4] == (10, 20, 30)).all() and (image[:, 4:] == 255).all()


def test_greyscale_with_alpha_stays_greyscale(root):
    la = np.stack([GREY[0], np.where(np.arange(8) < 4, 255, 0)[None].repeat(6, 0).astype(np.uint8)], axis=-1)
    save(root / "la.png", la)  # two channels: Pillow's LA mode
    image = load_image_folder(root).images[0]
    assert image.shape == (6, 8)
    np.testing.assert_array_equal(image[:, :4], GREY[0][:, :4])
    assert (image[:, 4:] == 255).all()


def test_palette_images_become_rgb_and_their_transparent_colour_white(root):
    palette = Image.fromarray(np.tile(np.arange(4, dtype=np.uint8), (6, 2)))
    palette.putpalette([255, 0, 0, 0, 255, 0, 0, 0, 255, 9, 9, 9])
    save(root / "palette.png", palette, transparency=3)
    image = load_image_folder(root).images[0]
    assert image.shape == (6, 8, 3)
    assert image[0, :4].tolist() == [[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 255]]


def test_sixteen_bit_greyscale_is_scaled_to_eight_bits(root):
    deep = np.minimum(GREY[0].astype(np.int64) * 257 + 100, 65535).astype(np.uint16)
    save(root / "deep.png", Image.fromarray(deep))
    np.testing.assert_array_equal(load_image_folder(root).images[0], GREY[0])


# --- load_image_folder: sizes and errors -------------------------------------------------------------


def test_mixed_sizes_name_two_files_and_ask_for_a_size(root):
    save(root / "small.png", GREY[0])
    save(root / "wide.png", np.zeros((10, 12), np.uint8))
    with pytest.raises(ValueError, match=r"mixed sizes: .*small.png is 6×8 \(H×W\) but .*wide.png is 10×12.*size="):
        load_image_folder(root)
    resized = load_image_folder(root, size=(4, 5))
    assert resized.images.shape == (2, 4, 5)
    assert (resized.images[1] == 0).all()  # a constant image stays constant


@pytest.mark.parametrize(
    "layout, message",
    [
        ({}, "no images found"),
        ({"readme.txt": b"text"}, "no images found"),
        ({"broken.png": b"not an image"}, "broken.png: expected an image file Pillow can read"),
        ({"a.png": "png", "cls/b.png": "png"}, "either loose images or class subfolders"),
        ({"cls/b.png": "png", "empty/readme.txt": b"text"}, "empty: class folder has no images"),
    ],
)
def test_bad_folders_name_the_folder_or_file(root, layout, message):
    for name, content in layout.items():
        if content == "png":
            save(root / name, GREY[0])
        else:
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            (root / name).write_bytes(content)
    with pytest.raises(ValueError, match=message) as info:
        load_image_folder(root)
    assert str(root) in str(info.value)
    if message == "no images found":
        assert ", ".join(IMAGE_EXTENSIONS) in str(info.value)


def test_truncated_image_is_named(root):
    data = (save(root / "whole.png", RGB[0])).read_bytes()
    (root / "whole.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="whole.png: expected an image file"):
        load_image_folder(root)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"mode": "CMYK"}, "mode: expected one of"),
        ({"size": (0, 4)}, r"size: expected \(H, W\)"),
        ({"max_images": 0}, "max_images: expected a positive integer"),
    ],
)
def test_bad_arguments_are_refused(root, kwargs, message):
    save(root / "a.png", GREY[0])
    with pytest.raises(ValueError, match=message):
        load_image_folder(root, **kwargs)


def test_missing_folder_and_file_instead_of_folder(root):
    with pytest.raises(ValueError, match="absent: no such folder"):
        load_image_folder(root / "absent")
    with pytest.raises(ValueError, match="a.png: is a file, not a folder"):
        load_image_folder(save(root / "a.png", GREY[0]))


# --- uploads -----------------------------------------------------------------------------------------


def test_uploads_equal_the_folder_loader_on_the_same_bytes(root):
    save(root / "a.png", RGB[0])
    save(root / "b.jpg", RGB[1], quality=90)
    save(root / "c.png", GREY[0])
    uploads = [(path.name, path.read_bytes()) for path in sorted(root.iterdir())]
    from_folder, uploaded = load_image_folder(root, size=(5, 5)), reference_from_uploads(uploads, size=(5, 5))
    np.testing.assert_array_equal(uploaded.images, from_folder.images)
    assert uploaded.labels is None and "a.png, b.jpg, c.png" in uploaded.provenance


def test_bad_uploads_are_named():
    with pytest.raises(ValueError, match="notes.png: expected an image file"):
        reference_from_uploads([("ok.png", _png_bytes(GREY[0])), ("notes.png", b"hello")])
    with pytest.raises(ValueError, match="uploads: expected at least one image"):
        reference_from_uploads([])
    with pytest.raises(ValueError, match="mixed sizes"):
        reference_from_uploads([("a.png", _png_bytes(GREY[0])), ("b.png", _png_bytes(RGB[0, :5]))])


def _png_bytes(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


# --- CIFAR -------------------------------------------------------------------------------------------


def write_cifar(root: Path, name: str = "CIFAR10", per_batch: int = 3) -> dict[str, np.ndarray]:
    """A tiny dataset in the CIFAR "python version" layout; returns the test images (N, 32, 32, 3) and labels.

    The official batches are Python 2 pickles whose str keys torchvision reads back as str (it unpickles
    with encoding="latin1"), so these use str keys too.
    """
    if name == "CIFAR10":
        folder, meta, label_key, names_key = "cifar-10-batches-py", "batches.meta", "labels", "label_names"
        batches, test_file = [f"data_batch_{i}" for i in range(1, 6)], "test_batch"
    else:
        folder, meta, label_key, names_key = "cifar-100-python", "meta", "fine_labels", "fine_label_names"
        batches, test_file = ["train"], "test"
    (root / folder).mkdir(parents=True)
    rng = np.random.default_rng(len(name))
    written = {}
    for file in [*batches, test_file]:
        data = rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8)
        labels = [(i + len(written)) % 4 for i in range(per_batch)]
        with open(root / folder / file, "wb") as handle:
            pickle.dump({"data": data, label_key: labels}, handle)
        written[file] = (data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1), np.array(labels))
    with open(root / folder / meta, "wb") as handle:
        pickle.dump({names_key: ["plane", "car", "bird", "cat"]}, handle)
    return {"images": written[test_file][0], "labels": written[test_file][1], "train": written[batches[0]][0]}


@pytest.mark.parametrize("name", ["CIFAR10", "CIFAR100"])
def test_cifar_files_round_trip_exactly(root, name):
    expected = write_cifar(root, name)
    refset = load_cifar(name, root, verify=False)
    np.testing.assert_array_equal(refset.images, expected["images"])
    np.testing.assert_array_equal(refset.labels, expected["labels"])
    assert refset.class_names == ("plane", "car", "bird", "cat") and refset.images.shape == (3, 32, 32, 3)
    train = load_cifar(name.lower(), root, train=True, verify=False)
    np.testing.assert_array_equal(train.images[:3], expected["train"])


def test_cifar_draw_is_stratified(root):
    write_cifar(root, per_batch=8)
    sample = load_cifar("CIFAR10", root, n=4, seed=2, verify=False)
    assert sorted(sample.labels.tolist()) == [0, 1, 2, 3]
    assert sample.class_names == ("plane", "car", "bird", "cat")


def test_cifar_files_other_than_the_official_ones_fail_the_checksum(root):
    write_cifar(root)
    with pytest.raises(ValueError, match=r"data_batch_1: expected the official CIFAR10 file .*verify=False"):
        load_cifar("CIFAR10", root)


def test_missing_cifar_says_where_it_looked_and_how_to_download(root):
    with pytest.raises(ValueError, match=r"no folder .*cifar-10-batches-py.*download=True.*internet"):
        load_cifar("CIFAR10", root)
    write_cifar(root)
    (root / "cifar-10-batches-py" / "test_batch").unlink()
    with pytest.raises(ValueError, match="cifar-10-batches-py has no test_batch"):
        load_cifar("CIFAR10", root, verify=False)
    with pytest.raises(ValueError, match="expected 'CIFAR10' or 'CIFAR100'"):
        load_cifar("SVHN", root)


def test_cifar_batches_without_cifar_keys_are_refused(root):
    write_cifar(root)
    with open(root / "cifar-10-batches-py" / "test_batch", "wb") as handle:
        pickle.dump({b"data": np.zeros((1, 3072), np.uint8)}, handle)  # bytes keys, as a Python 3 pickle has
    with pytest.raises(ValueError, match="expected CIFAR10 batches"):
        load_cifar("CIFAR10", root, verify=False)


# --- REF specs on the command line -------------------------------------------------------------------


def test_a_folder_ref_reads_the_folder_with_the_given_size(root):
    save(root / "cat" / "a.png", GREY[0])
    save(root / "dog" / "b.png", np.zeros((9, 9), np.uint8))
    refset = cli.load_refset(str(root), image_size=[4, 4])
    assert refset.images.shape == (2, 4, 4) and refset.class_names == ("cat", "dog")
    with pytest.raises(ValueError, match="mixed sizes"):
        cli.load_refset(str(root))
    with pytest.raises(cli.CLIError, match="--image-size: applies only to a folder"):
        cli.load_refset("mnist:4", image_size=[4, 4])


@pytest.mark.parametrize(
    "spec, expected",
    [
        ("cifar10:/data", ("cifar10", "/data", cli.DEFAULT_MNIST_N)),
        ("cifar100:/data:16", ("cifar100", "/data", 16)),
        ("cifar10:C:/data:7", ("cifar10", "C:/data", 7)),
        ("cifar10:/a:b", ("cifar10", "/a:b", cli.DEFAULT_MNIST_N)),
    ],
)
def test_cifar_specs_name_the_root_and_count(monkeypatch, spec, expected):
    calls = []
    monkeypatch.setattr(cli_inputs, "load_cifar", lambda name, root, n: calls.append((name, root, n)))
    cli.load_refset(spec)
    assert calls == [expected]


@pytest.mark.parametrize("spec, message", [("cifar10:/data:0", "positive integer"), ("cifar10:", "ROOT a folder")])
def test_bad_cifar_specs_are_refused(spec, message):
    with pytest.raises(cli.CLIError, match=message):
        cli.load_refset(spec)


def test_a_cifar_spec_reads_from_its_root(root):
    with pytest.raises(ValueError, match=re.escape(f"no folder {root / 'cifar-10-batches-py'}")):
        cli.load_refset(f"cifar10:{root}:4")
