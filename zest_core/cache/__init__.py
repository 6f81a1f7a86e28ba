"""The content-addressed on-disk store: signatures, segment maps and ModelDiff input pairs.

It sits below the pipeline and knows file kinds and keys, not the classes stored: see
:mod:`zest_core.cache.store`.
"""
from .._shared.atomic import atomic_write_bytes
from .._shared.npzfile import array_checksum
from .store import (
    PAIRS_FILE,
    SEGMENTS_FILE,
    SIGNATURE_FILE,
    CacheArg,
    SignatureCache,
    default_cache_dir,
    resolve_cache,
)

__all__ = [
    "PAIRS_FILE",
    "SEGMENTS_FILE",
    "SIGNATURE_FILE",
    "CacheArg",
    "SignatureCache",
    "array_checksum",
    "atomic_write_bytes",
    "default_cache_dir",
    "resolve_cache",
]
