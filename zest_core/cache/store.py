"""On-disk signature cache, keyed by the content of the model, the reference set and the config."""
from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import tempfile
import warnings
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

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
        from ..pipeline.signature import Signature, SignatureFileError

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

    # Segmentations are model-independent and the slowest part of the probe on large images
    # (quickshift takes about 0.5 s per 224×224 image), so they are cached too.

    @staticmethod
    def segments_key(refset_fingerprint: str, method: str, params: dict[str, Any], seed: int) -> str:
        text = json.dumps([refset_fingerprint, method, params, seed], sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:40]

    def segments_path(self, key: str) -> Path:
        return self.root / f"{key}.segments.npz"

    def load_segments(self, key: str) -> np.ndarray | None:
        """Cached segment maps for ``key``, or None if absent or unreadable (with a warning)."""
        path = self.segments_path(key)
        if not path.exists():
            return None
        try:
            with np.load(path, allow_pickle=False) as data:
                segments, checksum = data["segments"], str(data["checksum"])
            if checksum != array_checksum(segments):
                raise ValueError("checksum mismatch")
            return segments
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as error:
            warnings.warn(f"ignoring corrupt segmentation cache file {path}: {error}; recomputing", stacklevel=3)
            with contextlib.suppress(OSError):
                path.unlink()
            return None

    def store_segments(self, key: str, segments: np.ndarray) -> Path:
        buffer = io.BytesIO()
        np.savez(buffer, segments=segments, checksum=np.array(array_checksum(segments)))
        path = self.segments_path(key)
        atomic_write_bytes(path, buffer.getvalue())
        return path


def array_checksum(array: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()[:32]


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
