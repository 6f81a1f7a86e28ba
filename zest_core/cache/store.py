"""The content-addressed on-disk store: one folder of checked records, each named by a content key.

The store knows the kinds of file it keeps (:data:`SIGNATURE_FILE`, :data:`SEGMENTS_FILE`,
:data:`PAIRS_FILE`) and how their keys are made, not the classes they hold: a caller hands it
arrays and metadata (an :class:`~zest_core._shared.npzfile.NpzRecord`) and, to read, a decoder
that turns a record back into its object. A file that fails its checks or its decoder is
reported, deleted and recomputed by the caller, never trusted.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import warnings
from pathlib import Path
from typing import Any, Callable, TypeVar, Union

from .._shared.atomic import atomic_write_bytes  # re-exported: zoo and studies import it from here
from .._shared.npzfile import NpzFormat, NpzRecord, array_checksum  # array_checksum: re-exported
from ..errors import SignatureFileError, ZestError, ZestTypeError

DEFAULT_CACHE_ENV = "ZEST_CACHE_DIR"
# Part of the ModelDiff pairs' cache key (as it was when PairsCache made it): bump it to orphan old pairs.
PAIRS_KEY_VERSION = 1

# The kinds of file. The checksummed arrays and versions are those of the files written before the
# store was shared (issue 10), so that every cached file from then still loads.
SIGNATURE_FILE = NpzFormat("signature", ".zsig.npz", checksummed=("matrix",), version=1, error=SignatureFileError)
SEGMENTS_FILE = NpzFormat("segmentation", ".segments.npz")
PAIRS_FILE = NpzFormat("ModelDiff pairs", ".mdpairs.npz", checksummed=("seeds", "perturbed"), version=1)

T = TypeVar("T")


def default_cache_dir() -> Path:
    """``$ZEST_CACHE_DIR``, else ``~/.cache/zest``."""
    return Path(os.environ.get(DEFAULT_CACHE_ENV) or Path.home() / ".cache" / "zest")


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:40]


class SignatureCache:
    """The store: a folder of signatures, segment maps and ModelDiff pairs, each under its content key.

    Parameters
    ----------
    root : path, optional
        The folder; by default ``$ZEST_CACHE_DIR``, else ``~/.cache/zest``.

    Notes
    -----
    Files are written to a temporary name and renamed into place, so a reader never sees a
    half-written record. Keys are content hashes (of the model, the reference set and the
    parameters), so a changed input gets a new file instead of a stale one.
    """

    def __init__(self, root: str | os.PathLike | None = None) -> None:
        self.root = Path(root) if root is not None else default_cache_dir()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.root)!r})"

    # -- keys ---------------------------------------------------------------------------------

    @staticmethod
    def key(model_fingerprint: str, refset_fingerprint: str, config_fingerprint: str) -> str:
        """A signature's key: the model's, the reference set's and the config's fingerprints."""
        return _digest(f"{model_fingerprint}|{refset_fingerprint}|{config_fingerprint}")

    # Segmentations are model-independent and the slowest part of the probe on large images
    # (quickshift takes about 0.5 s per 224×224 image), so they are cached too.
    @staticmethod
    def segments_key(refset_fingerprint: str, method: str, params: dict[str, Any], seed: int) -> str:
        """A segmentation's key: the reference set, the method, its parameters and the seed."""
        return _digest(json.dumps([refset_fingerprint, method, params, seed], sort_keys=True, default=str))

    @staticmethod
    def pairs_key(source_fingerprint: str, refset_fingerprint: str, params: dict[str, Any]) -> str:
        """ModelDiff pairs' key: the source model, the reference set and every search parameter."""
        return _digest(json.dumps(
            ["modeldiff-pairs", PAIRS_KEY_VERSION, source_fingerprint, refset_fingerprint, params],
            sort_keys=True, default=str,
        ))

    # -- records ------------------------------------------------------------------------------

    def path(self, key: str, kind: NpzFormat = SIGNATURE_FILE) -> Path:
        """Where the record of ``kind`` under ``key`` lives (it may not exist)."""
        return self.root / f"{key}{kind.suffix}"

    def load(self, key: str, kind: NpzFormat, decode: Callable[[NpzRecord], T]) -> T | None:
        """The record of ``kind`` under ``key``, decoded; None if absent or unreadable.

        Parameters
        ----------
        key : str
        kind : NpzFormat
        decode : callable (NpzRecord) -> object
            Turns the checked arrays and metadata into the object; it raises a ZestError for a
            record it cannot use, which is then treated as a corrupt file.

        Warns
        -----
        UserWarning
            For a file that fails its checks or its decoder; the file is deleted, so that the
            caller's recomputed record replaces it.
        """
        path = self.path(key, kind)
        if not path.exists():
            return None
        try:
            return decode(kind.read(path))
        except ZestError as error:
            warnings.warn(f"ignoring corrupt {kind.what} cache file {path}: {error}; recomputing", stacklevel=3)
            with contextlib.suppress(OSError):
                path.unlink()
            return None

    def store(self, key: str, kind: NpzFormat, record: NpzRecord) -> Path:
        """Write ``record`` as the file of ``kind`` under ``key``, atomically; returns its path."""
        return kind.write(self.path(key, kind), record)


CacheArg = Union[SignatureCache, str, os.PathLike, bool, None]


def resolve_cache(cache: CacheArg) -> SignatureCache | None:
    """The store a ``cache=`` argument names.

    Parameters
    ----------
    cache : SignatureCache, folder, bool or None
        None or True: the default folder ($ZEST_CACHE_DIR, else ~/.cache/zest); False: no cache;
        a folder: a store there; a SignatureCache: itself.

    Raises
    ------
    ZestTypeError
        For anything else.
    """
    if cache is False:
        return None
    if cache is None or cache is True:
        return SignatureCache()
    if isinstance(cache, SignatureCache):
        return cache
    if isinstance(cache, (str, os.PathLike)):
        return SignatureCache(cache)
    raise ZestTypeError(f"cache: expected None, a bool, a folder or a SignatureCache, got {cache!r}")
