"""Reference data: the N images every model is probed on, in pixel space."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import torch


@dataclass(frozen=True)
class ReferenceSet:
    """N reference images in pixel space.

    Attributes
    ----------
    images : ndarray, shape (N, H, W, 3) or (N, H, W), dtype uint8
        The images; greyscale images keep no channel axis.
    labels : ndarray of int, shape (N,), optional
        Their true classes, when known.
    provenance : str
        Where the images came from, for display and reports.
    """

    images: np.ndarray
    labels: np.ndarray | None = None
    provenance: str = "arrays"
    _fingerprint: str = field(default="", repr=False, compare=False)

    @classmethod
    def from_arrays(
        cls,
        images: np.ndarray | Sequence[np.ndarray],
        labels: np.ndarray | Sequence[int] | None = None,
        *,
        provenance: str = "arrays",
    ) -> "ReferenceSet":
        """Build a reference set from images in pixel space.

        Parameters
        ----------
        images : array-like, shape (N, H, W), (N, H, W, 1) or (N, H, W, 3)
            uint8 in [0, 255], or floats in [0, 1] (converted to uint8).
        labels : array-like of int, shape (N,), optional

        Raises
        ------
        ValueError
            If there are no images, they differ in size, have an unsupported shape or values out of
            range, or the labels do not match them.
        """
        if isinstance(images, (list, tuple)):
            if len(images) == 0:
                raise ValueError("images: the reference set is empty (0 images)")
            shapes = {np.asarray(im).shape for im in images}
            if len(shapes) > 1:
                raise ValueError(f"images: all images must have the same size, got shapes {sorted(shapes)}")
            images = np.stack([np.asarray(im) for im in images])
        array = np.asarray(images)
        if array.ndim == 0 or array.shape[0] == 0:
            raise ValueError("images: the reference set is empty (0 images)")
        if array.ndim == 4 and array.shape[-1] == 1:
            array = array[..., 0]
        if not (array.ndim == 3 or (array.ndim == 4 and array.shape[-1] == 3)):
            raise ValueError(
                "images: expected shape (N, H, W) or (N, H, W, 3) in pixel space (channels last), "
                f"got {array.shape}"
            )
        array = _to_uint8(array)
        label_array = None
        if labels is not None:
            label_array = np.asarray(labels)
            if label_array.shape != (array.shape[0],) or not np.issubdtype(label_array.dtype, np.integer):
                raise ValueError(
                    f"labels: expected {array.shape[0]} integer labels, got shape {label_array.shape} "
                    f"of dtype {label_array.dtype}"
                )
        array.setflags(write=False)
        return cls(images=array, labels=label_array, provenance=provenance)

    def __len__(self) -> int:
        return int(self.images.shape[0])

    @property
    def image_size(self) -> tuple[int, int]:
        return int(self.images.shape[1]), int(self.images.shape[2])

    @property
    def channels(self) -> int:
        return 1 if self.images.ndim == 3 else 3

    def fingerprint(self) -> str:
        """Content hash of the images (labels and provenance do not change a signature)."""
        if not self._fingerprint:
            digest = hashlib.sha256()
            digest.update(str(self.images.shape).encode())
            digest.update(np.ascontiguousarray(self.images).tobytes())
            object.__setattr__(self, "_fingerprint", digest.hexdigest()[:32])
        return self._fingerprint

    def subset(self, indices: Sequence[int]) -> "ReferenceSet":
        index = np.asarray(indices, dtype=np.int64)
        labels = None if self.labels is None else self.labels[index]
        return ReferenceSet.from_arrays(self.images[index], labels, provenance=f"{self.provenance}[subset]")

    def as_tensor(self, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """The images as a float tensor [N, C, H, W] in [0, 1]."""
        tensor = torch.from_numpy(np.array(self.images)).to(device=device)  # a writable copy
        tensor = tensor.unsqueeze(1) if self.images.ndim == 3 else tensor.permute(0, 3, 1, 2)
        return tensor.to(dtype) / 255.0

    def describe(self) -> dict[str, Any]:
        return {
            "n": len(self),
            "image_size": list(self.image_size),
            "channels": self.channels,
            "provenance": self.provenance,
            "fingerprint": self.fingerprint(),
        }


def _to_uint8(array: np.ndarray) -> np.ndarray:
    if array.dtype == np.uint8:
        return np.array(array, copy=True)
    if np.issubdtype(array.dtype, np.floating):
        if not np.all(np.isfinite(array)):
            raise ValueError("images: contain NaN or inf")
        low, high = float(array.min()), float(array.max())
        if low < 0.0 or high > 1.0:
            raise ValueError(
                f"images: float images must lie in [0, 1] (pixel space), got values in [{low:.3g}, {high:.3g}]"
            )
        return np.round(array * 255.0).astype(np.uint8)
    if np.issubdtype(array.dtype, np.integer):
        low, high = int(array.min()), int(array.max())
        if low < 0 or high > 255:
            raise ValueError(f"images: integer images must lie in [0, 255], got values in [{low}, {high}]")
        return array.astype(np.uint8)
    raise ValueError(f"images: unsupported dtype {array.dtype}")
