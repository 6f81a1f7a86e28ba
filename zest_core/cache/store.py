"""The content-addressed on-disk store: one folder of checked records, each named by a content key.

The store knows the kinds of file it keeps (:data:`SIGNATURE_FILE`, :data:`SEGMENTS_FILE`,
:data:`PAIRS_FILE`) and how their keys are made, not the classes they hold: a caller hands it
arrays and metadata (an :class:`~zest_core._shared.npzfile.NpzRecord`) and, to read, a decoder
that turns a record back into its object. A file that fails its checks or its decoder is
reported, deleted and recomputed by the caller, never trusted; so is a file that does not carry the
identity (fingerprints and parameters) of the key it was read under.

The store never costs a result: a folder it cannot write to is reported once, and the result is
returned uncached. Temporary files orphaned by a killed writer are removed when the store first
writes to a folder.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import threading
import warnings
from pathlib import Path
from typing import Any, Callable, Mapping, TypeVar, Union

from .._shared.atomic import atomic_write_bytes, remove_stale_temporaries
from .._shared.npzfile import NpzFormat, NpzRecord
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

# The folders this process already reported as unwritable, and those it already swept of orphaned
# temporary files: each is done once per folder, however many stores are made on it (compute_signature
# makes one per call when given cache=None).
_REPORTED_UNWRITABLE: set[Path] = set()
_SWEPT: set[Path] = set()
_LOCK = threading.Lock()


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
    # (quickshift takes about 0.1 s per 224×224 image, run shrunk to 112 px), so they are cached too.
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

    def load(
        self, key: str, kind: NpzFormat, decode: Callable[[NpzRecord], T], identity: Mapping[str, Any] | None = None
    ) -> T | None:
        """The record of ``kind`` under ``key``, decoded; None if absent, unreadable or not the key's.

        Parameters
        ----------
        key : str
        kind : NpzFormat
        decode : callable (NpzRecord) -> object
            Turns the checked arrays and metadata into the object; it raises a ZestError for a
            record it cannot use, which is then treated as a corrupt file.
        identity : mapping, optional
            The metadata the record must carry: the inputs its key was made from (fingerprints,
            parameters), each compared as JSON. A key is a one-way hash, so this is what shows that
            the file under it was written for it, and not copied, renamed or mixed up.

        Warns
        -----
        UserWarning
            For a file that fails its checks, its decoder or its identity; the file is deleted, so
            that the caller's recomputed record replaces it.
        """
        path = self.path(key, kind)
        try:
            present = path.exists()
        except OSError:  # a folder that cannot be searched (no x permission): nothing can be read from it
            present = False
        if not present:
            return None
        try:
            record = kind.read(path)
            mismatch = _identity_mismatch(record.meta, identity or {})
            if mismatch is None:
                return decode(record)
            problem = f"ignoring {kind.what} cache file {path}: it does not hold the {kind.what} of its key ({mismatch})"
        except ZestError as error:
            problem = f"ignoring corrupt {kind.what} cache file {path}: {error}"
        warnings.warn(f"{problem}; recomputing", stacklevel=3)
        with contextlib.suppress(OSError):
            path.unlink()
        return None

    def store(self, key: str, kind: NpzFormat, record: NpzRecord) -> Path | None:
        """Write ``record`` as the file of ``kind`` under ``key``, atomically; returns its path.

        Returns None when the folder cannot be written (read-only, full, not a folder): the
        caller's result stands, uncached, and the folder is reported once per process.

        Warns
        -----
        UserWarning
            The first time a folder cannot be written, naming it and the ways out.
        """
        self._sweep_once()
        try:
            return kind.write(self.path(key, kind), record)
        except OSError as error:
            self._report_unwritable(error)
            return None

    def seed_from(self, folder: str | os.PathLike) -> int:
        """Copy into this cache every cache file of ``folder`` it lacks (shipped signatures); returns how many.

        A seeded file is an ordinary cache file: it is used only if its checksum holds and it carries
        the identity (model, reference-set and config fingerprints) of the key it is looked up under,
        like any other (:meth:`load`). Files this cache has are never overwritten; an unwritable cache
        copies nothing, quietly.
        """
        source = Path(folder)
        if not source.is_dir():
            return 0
        copied = 0
        for path in sorted(source.glob("*.npz")):
            target = self.root / path.name
            if target.exists():
                continue
            try:
                self.root.mkdir(parents=True, exist_ok=True)
                atomic_write_bytes(target, path.read_bytes())
            except OSError:
                return copied
            copied += 1
        return copied

    def remove_stale_temporaries(self) -> list[Path]:
        """Remove the temporary files that killed writers left in the folder; returns those removed.

        Only files named as this store's writes name their temporaries (``.<key><suffix>.<8
        characters>.tmp``, for the store's own kinds), regular files (never links) and older than
        :data:`~zest_core._shared.atomic.STALE_TEMPORARY_SECONDS` are removed; nothing else is touched.
        """
        return remove_stale_temporaries(self.root, _CACHE_FILE_NAME.match)

    def _sweep_once(self) -> None:
        root = self.root.absolute()
        with _LOCK:
            if root in _SWEPT:
                return
            _SWEPT.add(root)
        self.remove_stale_temporaries()

    def _report_unwritable(self, error: OSError) -> None:
        root = self.root.absolute()
        with _LOCK:
            if root in _REPORTED_UNWRITABLE:
                return
            _REPORTED_UNWRITABLE.add(root)
        reason = error.strerror or type(error).__name__
        warnings.warn(
            f"cannot write to the cache folder {root} ({reason}); results are computed but not cached. "
            "Choose a writable folder (zest: --cache-dir DIR; Python: cache=DIR) or turn the cache off "
            "(zest: --no-cache; Python: cache=False)",
            stacklevel=3,
        )


# The names of the store's files: a key (40 hex digits, see _digest) and one of its kinds' suffixes.
_CACHE_FILE_NAME = re.compile(
    "^[0-9a-f]{40}(?:" + "|".join(re.escape(kind.suffix) for kind in (SIGNATURE_FILE, SEGMENTS_FILE, PAIRS_FILE)) + ")$"
)


def _as_json(value: Any) -> str:
    # As the keys hash their inputs, so that a value and its JSON round trip (a tuple and a list) agree.
    return json.dumps(value, sort_keys=True, default=str)


def _identity_mismatch(meta: Mapping[str, Any], identity: Mapping[str, Any]) -> str | None:
    """The first identity field the metadata lacks or holds another value of, in words; None if all match."""
    for name, expected in identity.items():
        if name not in meta:
            return f"it carries no {name}"
        if _as_json(meta[name]) != _as_json(expected):
            return f"its {name} is {_short(meta[name])}, expected {_short(expected)}"
    return None


def _short(value: Any, limit: int = 80) -> str:
    text = _as_json(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


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
