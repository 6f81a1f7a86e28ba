"""On-disk signature cache, keyed by the content of the model, the reference set and the config."""
from __future__ import annotations

import contextlib
import hashlib
import os
import warnings
from pathlib import Path

DEFAULT_CACHE_ENV = "ZEST_CACHE_DIR"


def default_cache_dir() -> Path:
    """``$ZEST_CACHE_DIR``, else ``~/.cache/zest``."""
    return Path(os.environ.get(DEFAULT_CACHE_ENV) or Path.home() / ".cache" / "zest")


class SignatureCache:
    """A folder of signature files, one per (model, reference set, config) key.

    Files are written to a temporary name and renamed into place, so a reader never sees a
    half-written signature; a file that fails to load is reported and recomputed, never trusted.
    """

    def __init__(self, root: str | os.PathLike | None = None) -> None:
        self.root = Path(root) if root is not None else default_cache_dir()

    @staticmethod
    def key(model_fingerprint: str, refset_fingerprint: str, config_fingerprint: str) -> str:
        text = f"{model_fingerprint}|{refset_fingerprint}|{config_fingerprint}"
        return hashlib.sha256(text.encode()).hexdigest()[:40]

    def path(self, key: str) -> Path:
        return self.root / f"{key}.zsig.npz"

    def load(self, key: str):
        """The cached signature for ``key``, or None if absent or unreadable (with a warning)."""
        from .signature import Signature, SignatureFileError

        path = self.path(key)
        if not path.exists():
            return None
        try:
            return Signature.load(path)
        except SignatureFileError as error:
            warnings.warn(f"ignoring corrupt signature cache file {path}: {error}; recomputing", stacklevel=3)
            with contextlib.suppress(OSError):
                path.unlink()
            return None

    def store(self, key: str, signature) -> Path:
        path = self.path(key)
        signature.save(path)
        return path
