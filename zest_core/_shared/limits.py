"""Resource limits: every size a user or a file controls is bounded before any work, here and only here.

Each limit has a default that fits a 2 GB process with room to spare, an environment variable, and a
CLI flag (``zest … --max-mask-memory 8G``; the flags set these for the process) to raise it:

============================  ==========  ===========================  ============================
limit                         default     environment                  flag
============================  ==========  ===========================  ============================
masks and local fits          1 GiB       ``ZEST_MAX_MASK_MEMORY``     ``--max-mask-memory``
pixels per image              16,777,216  ``ZEST_MAX_IMAGE_PIXELS``    ``--max-image-pixels``
unpacked model or .npz file   2 GiB       ``ZEST_MAX_MODEL_BYTES``     ``--max-model-bytes``
endpoint response body        64 MiB      ``ZEST_MAX_RESPONSE_BYTES``  ``--max-response-bytes``
============================  ==========  ===========================  ============================

The mask memory bounds L: each mask row of an image with K super-pixels costs about
:func:`mask_row_bytes` (the mask, its row of the fit operator, and the fit's design matrix, in
float64), so N images of L masks need ``N · L · mask_row_bytes(K)`` (:func:`check_mask_memory`).
"""
from __future__ import annotations

import io
import os
import zipfile
from dataclasses import dataclass

from ..errors import ZestError

GIB, MIB = 2**30, 2**20


@dataclass(frozen=True)
class Limit:
    """One resource limit: its name, default, environment variable and flag, and what it bounds."""

    name: str
    default: int
    env: str
    flag: str
    what: str

    def value(self) -> int:
        """The limit now: the environment's, else the default."""
        text = os.environ.get(self.env)
        if text is None:
            return self.default
        try:
            return parse_size(text)
        except ValueError as error:
            raise ZestError(f"{self.env}: expected a size in bytes (e.g. 4G, 512M, 1000000), got {text!r}") from error

    def refuse(self, got: str, source: str) -> ZestError:
        """The error for ``source`` (the flag, file or URL) asking for more than this limit."""
        return ZestError(f"{source}: expected {self.what} of at most {_size(self.value(), self.name)}, got {got}; "
                         f"raise the limit with {self.flag} or {self.env} if this is intended")


MASK_MEMORY = Limit("mask_memory", GIB, "ZEST_MAX_MASK_MEMORY", "--max-mask-memory",
                    "memory for the masks and local fits (N images × L masks)")
IMAGE_PIXELS = Limit("image_pixels", 4096 * 4096, "ZEST_MAX_IMAGE_PIXELS", "--max-image-pixels", "images")
MODEL_BYTES = Limit("model_bytes", 2 * GIB, "ZEST_MAX_MODEL_BYTES", "--max-model-bytes",
                    "a model or reference file whose content unpacks")
RESPONSE_BYTES = Limit("response_bytes", 64 * MIB, "ZEST_MAX_RESPONSE_BYTES", "--max-response-bytes",
                       "an endpoint answer")
LIMITS = (MASK_MEMORY, IMAGE_PIXELS, MODEL_BYTES, RESPONSE_BYTES)


def parse_size(text: str) -> int:
    """``"4G"``, ``"512M"``, ``"64K"`` or a plain number of bytes (pixels for the pixel limit) → int > 0."""
    text = text.strip().upper().removesuffix("B").removesuffix("I")
    scale = {"K": 2**10, "M": MIB, "G": GIB, "T": 2**40}.get(text[-1:], 1)
    number = float(text[:-1] if scale > 1 else text)
    if not number > 0 or number * scale > 2**62:
        raise ValueError(text)
    return int(number * scale)


def mask_row_bytes(num_segments: int) -> int:
    """Memory of one mask row of an image with K super-pixels: the mask (1 byte and 1 padded bool per
    super-pixel), its column of the (K + 1) × L fit operator and its row of the fit's design matrix (float64)."""
    return 2 * int(num_segments) + 16 * (int(num_segments) + 1)


def check_mask_memory(num_images: int, num_samples: int, max_segments: int, source: str = "--samples") -> None:
    """Refuse N images × L masks whose masks and local fits would take more than :data:`MASK_MEMORY`.

    Raises
    ------
    ZestError
        Naming ``source`` (the flag that chose L), the memory it would take, and the largest L that fits.
    """
    row = mask_row_bytes(max_segments)
    needed = int(num_images) * int(num_samples) * row
    limit = MASK_MEMORY.value()
    if needed > limit:
        largest = max(0, limit // (int(num_images) * row))
        raise MASK_MEMORY.refuse(
            f"L = {num_samples:,} masks per image for N = {num_images} images with up to K = {max_segments} "
            f"super-pixels ({row} bytes per mask row): {_size(needed, 'mask_memory')}; at most L = {largest:,} fits",
            source)


def check_image_pixels(height: int, width: int, source: str) -> None:
    """Refuse an image of ``height`` × ``width`` pixels above :data:`IMAGE_PIXELS` (before it is decoded or made)."""
    if int(height) * int(width) > IMAGE_PIXELS.value():
        raise IMAGE_PIXELS.refuse(f"{height} × {width} = {int(height) * int(width):,} pixels", source)


def _size(value: int, name: str) -> str:
    if name == "image_pixels":
        return f"{value:,} pixels"
    for unit, scale in (("GiB", GIB), ("MiB", MIB), ("KiB", 2**10)):
        if value >= scale:
            return f"{value / scale:.3g} {unit}"
    return f"{value} bytes"


def check_unpacked(source: str, data: bytes | None = None) -> None:
    """Refuse a zip archive (``torch.save``'s and ``.npz``'s format) that unpacks to more than :data:`MODEL_BYTES`.

    The members' sizes are read from the archive's central directory, before anything is
    decompressed: a zip bomb of a few hundred kilobytes that would unpack to gigabytes is refused at
    once. ``data`` is the file's content when it is already read; otherwise ``source`` is opened.
    Anything that is not a readable zip passes (its loader says what it is not).

    Raises
    ------
    ZestError
        Naming ``source``, the size it would unpack to, and how to raise the limit.
    """
    if data is not None and not data.startswith(b"PK"):
        return
    try:
        with zipfile.ZipFile(io.BytesIO(data) if data is not None else source) as archive:
            unpacked = sum(info.file_size for info in archive.infolist())
    except (zipfile.BadZipFile, OSError, ValueError):
        return
    if unpacked > MODEL_BYTES.value():
        raise MODEL_BYTES.refuse(f"an archive that unpacks to {unpacked:,} bytes", source)
