"""The content-addressed on-disk store: signatures, segment maps and ModelDiff input pairs."""
from .store import SignatureCache, array_checksum, atomic_write_bytes, default_cache_dir

__all__ = ["SignatureCache", "array_checksum", "atomic_write_bytes", "default_cache_dir"]
