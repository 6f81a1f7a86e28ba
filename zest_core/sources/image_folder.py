"""Reference sets from image files: a folder on disk (flat, or one subfolder per class) or uploaded bytes.

Every image goes through one decoder, :func:`decode_image`, with these rules:

* any format Pillow reads; multi-frame files (GIF, TIFF) give their first frame;
* the EXIF orientation tag is applied (``PIL.ImageOps.exif_transpose``), so photos come out upright;
* transparency (RGBA, LA, palette images with a transparent colour) is flattened onto a **white**
  background, as browsers and image viewers show it; the alpha channel is then dropped;
* 16-bit greyscale is scaled to 8 bits (``round(v / 257)``);
* ``mode="auto"`` keeps images greyscale (L) when every image of the set is greyscale and makes them
  all RGB otherwise. An image counts as greyscale by its file's mode (1, L, LA, I, I;16, F), not its
  content: palette images count as colour, since their palette may hold any colour;
* ``size=(H, W)`` resizes every image to exactly H×W with Pillow's antialiased bilinear filter (the
  aspect ratio is not kept); without it every image must already have the same size.

Folders follow torchvision's ``ImageFolder`` layout when they have subfolders: each subfolder is a class
(sorted by name, label = position), holding images at any depth. A folder of loose images has no
labels. Hidden files and folders (names starting with ".") and files of other extensions are skipped;
images are read in sorted path order.
"""
from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Sequence, Union

import numpy as np
from PIL import Image, ImageOps

from .._shared.limits import check_image_pixels
from ..errors import ZestError
from ..pipeline.reference import ReferenceSet, draw_indices

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm")
MODES = ("auto", "RGB", "L")
ALPHA_BACKGROUND = (255, 255, 255, 255)  # transparency is flattened onto white
GREYSCALE_MODES = frozenset({"1", "L", "LA", "La", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"})
SIXTEEN_BIT_MODES = frozenset({"I", "I;16", "I;16B", "I;16L", "I;16N"})
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError)

ImageSource = Union[Path, bytes]  # a file to read, or the bytes of one


def load_image_folder(
    path: str | os.PathLike,
    *,
    size: tuple[int, int] | None = None,
    mode: str = "auto",
    max_images: int | None = None,
    seed: int = 0,
) -> ReferenceSet:
    """Read a folder of images as a reference set.

    Parameters
    ----------
    path : str or path-like
        A folder of images, or of class subfolders of images (torchvision's ``ImageFolder`` layout).
    size : (int, int), optional
        (H, W) to resize every image to; needed when the images differ in size.
    mode : {"auto", "RGB", "L"}
        Colour mode of the result; "auto" is L when every image is greyscale, else RGB.
    max_images : int, optional
        Read at most this many images: a seeded draw of the files, stratified by class subfolder,
        kept in path order. None reads them all.
    seed : int
        Seed of the ``max_images`` draw.

    Returns
    -------
    ReferenceSet
        uint8 images in sorted path order; with class subfolders, their labels and ``class_names``.

    Raises
    ------
    ZestError
        Naming the folder or file: the folder is missing or holds no images (or mixes loose images
        with class subfolders, or has an empty class subfolder), a file is not a readable image, the
        images differ in size and no ``size`` was given, or an argument is invalid.
    """
    folder = Path(path)
    _check_options(mode, size)
    if max_images is not None and (isinstance(max_images, bool) or not isinstance(max_images, int) or max_images < 1):
        raise ZestError(f"max_images: expected a positive integer or None, got {max_images!r}")
    files, labels, class_names = _list_images(folder)
    if max_images is not None and max_images < len(files):
        keep = np.sort(draw_indices(len(files), max_images, labels, np.random.default_rng(seed)))
        files = [files[i] for i in keep]
        labels = None if labels is None else labels[keep]
    images = decode_images([(str(file), file) for file in files], mode=mode, size=size)
    layout = f"{len(class_names)} classes" if class_names else "no labels"
    return ReferenceSet.from_arrays(
        images, labels, provenance=f"image folder {folder} ({len(files)} images, {layout})", class_names=class_names
    )


def reference_from_uploads(
    files: Sequence[tuple[str, bytes]], *, size: tuple[int, int] | None = None, mode: str = "auto"
) -> ReferenceSet:
    """A reference set (without labels) from uploaded image files, e.g. Streamlit's ``file_uploader``.

    Parameters
    ----------
    files : sequence of (str, bytes)
        Each upload's file name (for messages) and content, in the order wanted.
    size : (int, int), optional
        (H, W) to resize every image to; needed when the images differ in size.
    mode : {"auto", "RGB", "L"}

    Returns
    -------
    ReferenceSet
        uint8 images in the order of ``files``, without labels.

    Raises
    ------
    ZestError
        If there are no files, one is not a readable image (naming it), or the images differ in size
        and no ``size`` was given.
    """
    _check_options(mode, size)
    if len(files) == 0:
        raise ZestError(f"uploads: expected at least one image ({', '.join(IMAGE_EXTENSIONS)}), got none")
    images = decode_images([(name, bytes(data)) for name, data in files], mode=mode, size=size)
    names = ", ".join(name for name, _ in files[:3]) + (f" and {len(files) - 3} more" if len(files) > 3 else "")
    return ReferenceSet.from_arrays(images, provenance=f"uploaded images ({names})")


def decode_images(
    sources: Sequence[tuple[str, ImageSource]], *, mode: str = "auto", size: tuple[int, int] | None = None
) -> np.ndarray:
    """Decode named image files into one uint8 array of shape (N, H, W) or (N, H, W, 3).

    Parameters
    ----------
    sources : sequence of (str, Path or bytes)
        Each image's name (for messages) and its file or content.
    mode : {"auto", "RGB", "L"}
    size : (int, int), optional
        (H, W) to resize to; without it the images must all have the same size.

    Raises
    ------
    ZestError
        If a file is not a readable image (naming it), or two images differ in size (naming both).
    """
    arrays: list[np.ndarray] = []
    for name, source in sources:
        array = decode_image(source, name=name, mode=mode, size=size)
        if arrays and array.shape[:2] != arrays[0].shape[:2]:
            raise ZestError(_mixed_sizes(sources[0][0], arrays[0], name, array))
        arrays.append(array)
    if any(array.ndim == 3 for array in arrays):  # "auto" with some colour images: all become RGB
        arrays = [np.repeat(a[..., None], 3, axis=-1) if a.ndim == 2 else a for a in arrays]
    return np.stack(arrays)


def decode_image(
    source: ImageSource, *, name: str, mode: str = "auto", size: tuple[int, int] | None = None
) -> np.ndarray:
    """Decode one image file into a uint8 array, following the module's conversion rules.

    Parameters
    ----------
    source : Path or bytes
        The file, or its content.
    name : str
        What to call it in error messages.
    mode : {"auto", "RGB", "L"}
        "auto" gives (H, W) for a greyscale file and (H, W, 3) otherwise.
    size : (int, int), optional
        (H, W) to resize to.

    Raises
    ------
    ZestError
        If the content is not an image Pillow can read, naming ``name``.
    """
    try:
        with Image.open(source if isinstance(source, Path) else io.BytesIO(source)) as image:
            check_image_pixels(image.height, image.width, name)  # from the header, before any pixel is decoded
            image = ImageOps.exif_transpose(image)  # loads the pixels: decoding errors surface here
            target = mode if mode != "auto" else ("L" if image.mode in GREYSCALE_MODES else "RGB")
            image = _flatten(image).convert(target)
            if size is not None:
                image = image.resize((size[1], size[0]), Image.Resampling.BILINEAR)
            return np.asarray(image, dtype=np.uint8)
    except _DECODE_ERRORS as error:
        raise ZestError(
            f"{name}: expected an image file Pillow can read, got unreadable data ({type(error).__name__}: {error})"
        ) from error


def _flatten(image: Image.Image) -> Image.Image:
    """16-bit greyscale scaled to 8 bits, and transparency flattened onto white (RGBA out)."""
    if image.mode in SIXTEEN_BIT_MODES:
        pixels = np.asarray(image, dtype=np.float64) / 257.0
        image = Image.fromarray(np.clip(np.round(pixels), 0, 255).astype(np.uint8))
    if image.has_transparency_data:
        background = Image.new("RGBA", image.size, ALPHA_BACKGROUND)
        image = Image.alpha_composite(background, image.convert("RGBA"))
    return image


def _list_images(folder: Path) -> tuple[list[Path], np.ndarray | None, tuple[str, ...] | None]:
    """The image files of a folder in sorted order, with labels and class names in ImageFolder layout."""
    if not folder.is_dir():
        problem = "is a file, not a folder" if folder.exists() else "no such folder"
        raise ZestError(f"{folder}: {problem} (expected a folder of images, or of class subfolders of images)")
    loose = sorted(p for p in _visible(folder) if _is_image(p))
    classes = sorted(p for p in _visible(folder) if p.is_dir())
    if loose and any(_images_below(c) for c in classes):
        raise ZestError(
            f"{folder}: expected either loose images or class subfolders of images, got both "
            f"(e.g. {loose[0].name} and {classes[0].name}/)"
        )
    if loose:
        return loose, None, None
    if not classes:
        raise ZestError(f"{folder}: no images found (expected files ending in {', '.join(IMAGE_EXTENSIONS)})")
    per_class = [_images_below(c) for c in classes]
    empty = [c for c, files in zip(classes, per_class) if not files]
    if empty:
        raise ZestError(
            f"{empty[0]}: class folder has no images (expected files ending in {', '.join(IMAGE_EXTENSIONS)})"
        )
    labels = np.concatenate([np.full(len(files), label, dtype=np.int64) for label, files in enumerate(per_class)])
    return [file for files in per_class for file in files], labels, tuple(c.name for c in classes)


def _images_below(folder: Path) -> list[Path]:
    """The image files anywhere below ``folder``, skipping hidden files and folders, sorted."""
    found = []
    for entry in _visible(folder):
        if entry.is_dir():
            found.extend(_images_below(entry))
        elif _is_image(entry):
            found.append(entry)
    return sorted(found)


def _visible(folder: Path) -> list[Path]:
    return [entry for entry in folder.iterdir() if not entry.name.startswith(".")]


def _is_image(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in IMAGE_EXTENSIONS


def _mixed_sizes(first: str, first_array: np.ndarray, name: str, array: np.ndarray) -> str:
    (h1, w1), (h2, w2) = first_array.shape[:2], array.shape[:2]
    return (
        f"images of mixed sizes: {first} is {h1}×{w1} (H×W) but {name} is {h2}×{w2}; "
        "pass size=(H, W) (--image-size H W on the command line) to resize them all"
    )


def _check_options(mode: str, size: tuple[int, int] | None) -> None:
    if mode not in MODES:
        raise ZestError(f"mode: expected one of {', '.join(map(repr, MODES))}, got {mode!r}")
    if size is not None:
        if len(size) != 2 or not all(isinstance(s, (int, np.integer)) and s >= 1 for s in size):
            raise ZestError(f"size: expected (H, W) with two positive integers, got {size!r}")
        check_image_pixels(size[0], size[1], "size")
