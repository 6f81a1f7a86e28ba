"""One checked, atomic ``.npz`` file format: named arrays, JSON metadata and a checksum.

Every ``.npz`` file zest_core writes (signatures, cached segment maps, ModelDiff input pairs) has
this layout, the one the first signature files already had:

- each array under its own name, read back with ``allow_pickle=False`` (a file can hold numbers
  and strings, never pickled objects that would run code when loaded);
- ``meta``: the metadata as UTF-8 JSON bytes in a uint8 array, with two keys of its own:
  ``checksum``, the first 32 hex digits of the SHA-256 of the checksummed arrays' bytes (in the
  order the format names them), and ``format_version`` when the format has one.

Files are written to a temporary name and renamed into place (:func:`atomic_write_bytes`), so a
reader never sees half a file; reading checks the version and the checksum and raises the
format's error, whose message starts with the file's path.

The segment cache's first files kept their checksum in a string array ``checksum`` and had no
``meta``; :meth:`NpzFormat.read` still reads them.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from ..errors import ZestError, ZestTypeError
from .atomic import atomic_write_bytes

META = "meta"
# Keys of ``meta`` that belong to the format, not to the caller: written by write, removed by read.
CHECKSUM_KEY = "checksum"
VERSION_KEY = "format_version"
# What np.load and the JSON decoder raise on a damaged or foreign file.
_UNREADABLE = (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, TypeError, UnicodeDecodeError)


def array_checksum(*arrays: np.ndarray) -> str:
    """First 32 hex digits of the SHA-256 of the arrays' bytes (C order), one after the other.

    The bytes alone are hashed, not the shapes or dtypes: a format that needs those checked keeps
    them in its metadata or checks them when it decodes.
    """
    digest = hashlib.sha256()
    for array in arrays:
        # A uint8 view of the contiguous array: its bytes without the copy tobytes() would make.
        digest.update(np.ascontiguousarray(array).reshape(-1).view(np.uint8))
    return digest.hexdigest()[:32]


@dataclass(frozen=True)
class NpzRecord:
    """What one file holds: its arrays, and its metadata without the format's own keys."""

    arrays: dict[str, np.ndarray]
    meta: dict[str, Any]


@dataclass(frozen=True)
class NpzFormat:
    """One kind of checked ``.npz`` file.

    Attributes
    ----------
    what : str
        The file kind in words, for messages ("signature", "ModelDiff pairs").
    suffix : str
        The file name's conventional ending (".zsig.npz"); the cache names its files with it.
    checksummed : tuple of str, optional
        The arrays the checksum covers, in this order; None covers every array, by sorted name.
    version : int, optional
        The ``format_version`` a file must carry; None for a format without versions.
    error : type of ZestError
        What :meth:`read` raises for a missing, unreadable, altered or foreign file.
    """

    what: str
    suffix: str
    checksummed: tuple[str, ...] | None = None
    version: int | None = None
    error: type[ZestError] = ZestError

    def _checksum(self, arrays: Mapping[str, np.ndarray]) -> str:
        names = self.checksummed if self.checksummed is not None else sorted(arrays)
        return array_checksum(*(arrays[name] for name in names))

    def write(self, path: str | os.PathLike, record: NpzRecord) -> Path:
        """Write a record's arrays and JSON-serialisable metadata to ``path`` atomically; returns the path.

        The path is used as given (NumPy's ``savez`` would append ".npz" to a name without it).
        """
        arrays, meta = record.arrays, record.meta
        reserved = {META} & set(arrays) or {CHECKSUM_KEY, VERSION_KEY} & set(meta)
        if reserved:
            raise ZestError(f"record: expected array and metadata names other than the format's own, got {sorted(reserved)}")
        header: dict[str, Any] = {} if self.version is None else {VERSION_KEY: self.version}
        header.update(meta)
        header[CHECKSUM_KEY] = self._checksum(arrays)
        buffer = io.BytesIO()
        np.savez(buffer, **arrays, **{META: np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)})
        return atomic_write_bytes(path, buffer.getvalue())

    def read(self, path: str | os.PathLike) -> NpzRecord:
        """Read a file written by :meth:`write` (or by the code before it), checked.

        Raises
        ------
        ZestError (``self.error``)
            If the file is missing, unreadable, truncated, of another format version, or its
            checksum does not match its arrays.
        """
        path = Path(path)
        if not path.is_file():
            raise self.error(f"{path}: no such {self.what} file")
        try:
            with np.load(path, allow_pickle=False) as data:
                arrays = {name: data[name] for name in data.files}
            meta = _take_meta(arrays)
            checksum = self._checksum(arrays)
        except _UNREADABLE as error:
            raise self.error(f"{path}: not a readable {self.what} file ({type(error).__name__}: {error})") from error
        version = meta.pop(VERSION_KEY, None)
        if self.version is not None and version != self.version:
            raise self.error(f"{path}: expected format version {self.version}, got {version}")
        if meta.pop(CHECKSUM_KEY, None) != checksum:
            raise self.error(f"{path}: checksum mismatch, the file was altered or damaged")
        return NpzRecord(arrays=arrays, meta=meta)


def _take_meta(arrays: dict[str, np.ndarray]) -> dict[str, Any]:
    """Remove the metadata from ``arrays`` and decode it (a first-format file: its checksum array)."""
    if META not in arrays and CHECKSUM_KEY in arrays:
        return {CHECKSUM_KEY: str(arrays.pop(CHECKSUM_KEY))}
    meta = json.loads(arrays.pop(META).tobytes().decode())
    if not isinstance(meta, dict):
        raise ZestTypeError(f"meta: expected a JSON object, got {type(meta).__name__}")
    return meta
