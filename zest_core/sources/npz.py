"""Reference sets in ``.npz`` files: an ``images`` array and, optionally, ``labels``."""
from __future__ import annotations

import os
import zipfile
from pathlib import Path

import numpy as np

from .._shared.limits import check_unpacked
from ..errors import ZestError
from ..pipeline.reference import ReferenceSet


def load_npz_reference(path: str | os.PathLike) -> ReferenceSet:
    """Read a reference set from an ``.npz`` file holding ``images`` (and optionally ``labels``).

    Parameters
    ----------
    path : str or path-like
        An ``.npz`` archive (``numpy.savez``) with an ``images`` array of shape (N, H, W),
        (N, H, W, 1) or (N, H, W, 3), uint8 in [0, 255] or float in [0, 1], and optionally an integer
        ``labels`` array of shape (N,).

    Returns
    -------
    ReferenceSet

    Raises
    ------
    ZestError
        Naming the file and the problem: it is missing, is not a readable ``.npz`` archive, has no
        ``images`` array, or its arrays have the wrong shape, type or values.
    """
    path = Path(path)
    if not path.is_file():
        raise ZestError(f"{path}: no such reference file (expected an .npz with an 'images' array)")
    arrays = _read_npz(path)
    if arrays is None:
        raise ZestError(f"{path}: expected an .npz archive of named arrays, got a single .npy array")
    if "images" not in arrays:
        names = sorted(arrays)
        found = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
        found = found or "no arrays"
        raise ZestError(f"{path}: expected an 'images' array in the .npz, found {found}")
    try:
        return ReferenceSet.from_arrays(arrays["images"], arrays.get("labels"), provenance=str(path))
    except ValueError as error:
        raise ZestError(f"{path}: {error}") from error


def _read_npz(path: Path) -> dict[str, np.ndarray] | None:
    """The named arrays of an .npz archive; None if the file holds a single .npy array instead."""
    check_unpacked(str(path))  # before np.load decompresses anything
    try:
        data = np.load(path, allow_pickle=False)
        if not hasattr(data, "files"):
            return None
        with data:
            return {name: data[name] for name in data.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
        raise ZestError(f"{path}: not a readable .npz file ({type(error).__name__}: {error})") from error
