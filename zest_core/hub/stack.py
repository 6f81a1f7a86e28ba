"""A stack of signature matrices: M models over one reference set and config, in memory or in a file.

The distance phase of a hub reads signatures block by block (:mod:`zest_core.hub.matrix`), so the
stack never needs all M matrices in memory: a file-backed stack appends each model's C × ΣK matrix
to a flat float64 file as it arrives (from any backend, in any order) and reads the models of one
block back on demand. A sidecar JSON file records the names, class counts and row offsets.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .._shared.atomic import atomic_write_bytes
from ..errors import ZestError
from ..pipeline.config import ZestConfig
from ..pipeline.signature import Signature

STACK_FORMAT = 1
SIDECAR_SUFFIX = ".json"


class SignatureStack:
    """The signature matrices of M models computed on one reference set with one config.

    Parameters
    ----------
    image_columns : sequence of int
        Start column of each reference image in a signature matrix (N + 1 values, the last ΣK),
        :meth:`Signature.image_columns`.
    refset_fingerprint : str
    config : ZestConfig
    path : path, optional
        Keep the matrices in this file (float64 rows, appended) instead of in memory; the sidecar
        ``<path>.json`` is written by :meth:`close`. Use it for hubs whose signatures do not fit in
        memory: reading a block then costs one read per model, and nothing stays resident.

    Notes
    -----
    Model ``i``'s matrix is rows ``offsets[i]:offsets[i + 1]`` of one (R, ΣK) array; models may
    have different class counts (a 5-class transfer model beside 10-class ones).
    """

    def __init__(
        self,
        image_columns: Sequence[int],
        *,
        refset_fingerprint: str,
        config: ZestConfig,
        path: str | os.PathLike | None = None,
    ) -> None:
        self.image_columns = np.asarray(image_columns, dtype=np.int64)
        if self.image_columns.ndim != 1 or self.image_columns.size < 2 or self.image_columns[0] != 0:
            raise ZestError(f"image_columns: expected N + 1 ≥ 2 column starts from 0, got {image_columns!r}")
        self.width = int(self.image_columns[-1])
        self.refset_fingerprint = refset_fingerprint
        self.config = config
        self.names: list[str] = []
        self.class_names: list[list[str] | None] = []
        self.fingerprints: list[str | None] = []
        self.offsets: list[int] = [0]
        self.path = None if path is None else Path(path)
        self._index: dict[str, int] = {}
        self._matrices: list[np.ndarray] = []
        self._file = None
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = open(self.path, "wb")  # noqa: SIM115 - held open for appends until close()

    # -- building ------------------------------------------------------------------------------

    @classmethod
    def from_signatures(
        cls, names: Sequence[str], signatures: Sequence[Signature], path: str | os.PathLike | None = None
    ) -> "SignatureStack":
        """A stack of computed signatures (the first one's reference set and config for all)."""
        if len(names) != len(signatures) or not signatures:
            raise ZestError(
                f"signatures: expected one or more signatures, one per name, got {len(signatures)} for {len(names)} names"
            )
        first = signatures[0]
        stack = cls(first.image_columns(), refset_fingerprint=first.refset_fingerprint, config=first.config, path=path)
        for name, signature in zip(names, signatures):
            stack.append(name, signature.matrix(), class_names=signature.class_names,
                         fingerprint=signature.model_fingerprint)
        return stack

    def append(
        self, name: str, matrix: np.ndarray, *, class_names: Sequence[str] | None = None, fingerprint: str | None = None
    ) -> int:
        """Add one model's C × ΣK signature matrix; returns its index in the stack.

        Raises
        ------
        ZestError
            If the matrix is not a finite 2-D array of this stack's ΣK columns, or the name is taken.
        """
        matrix = np.asarray(matrix, dtype=np.float64)
        if matrix.ndim != 2 or matrix.shape[0] < 1 or matrix.shape[1] != self.width:
            raise ZestError(f"{name}: expected a signature matrix of shape (C, {self.width}), got {matrix.shape}")
        if not np.all(np.isfinite(matrix)):
            raise ZestError(f"{name}: expected a finite signature matrix, got NaN or inf")
        if name in self._index:
            raise ZestError(f"{name}: expected a model name new to the stack, got one already in it")
        if self.path is None:
            self._matrices.append(matrix)
        else:
            if self._file is None:  # closed before: appended to, and its sidecar rewritten on close
                self._file = open(self.path, "ab")  # noqa: SIM115
            self._file.write(np.ascontiguousarray(matrix).tobytes())
        self.names.append(name)
        self.class_names.append(None if class_names is None else [str(c) for c in class_names])
        self.fingerprints.append(fingerprint)
        self.offsets.append(self.offsets[-1] + matrix.shape[0])
        self._index[name] = len(self.names) - 1
        return len(self.names) - 1

    def close(self) -> None:
        """Finish a file-backed stack: flush the rows and write the sidecar (nothing for an in-memory one)."""
        if self._file is None:
            return
        self._file.close()
        self._file = None
        meta = {
            "format": STACK_FORMAT, "dtype": "float64", "width": self.width, "names": self.names,
            "offsets": self.offsets, "class_names": self.class_names, "fingerprints": self.fingerprints,
            "image_columns": self.image_columns.tolist(), "refset_fingerprint": self.refset_fingerprint,
            "config": self.config.to_dict(),
        }
        atomic_write_bytes(_sidecar(self.path), json.dumps(meta).encode())

    def __enter__(self) -> "SignatureStack":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @classmethod
    def open(cls, path: str | os.PathLike) -> "SignatureStack":
        """A file-backed stack written (and closed) before, read-only.

        Raises
        ------
        ZestError
            If the sidecar is missing or unreadable, or the rows file is not as long as it says.
        """
        path = Path(path)
        try:
            meta = json.loads(_sidecar(path).read_text())
            if meta.get("format") != STACK_FORMAT:
                raise ZestError(f"format: expected {STACK_FORMAT}, got {meta.get('format')!r}")
            stack = cls(meta["image_columns"], refset_fingerprint=meta["refset_fingerprint"],
                        config=ZestConfig.from_dict(meta["config"]))
            stack.names, stack.offsets = list(meta["names"]), [int(o) for o in meta["offsets"]]
            stack.class_names, stack.fingerprints = list(meta["class_names"]), list(meta["fingerprints"])
            stack._index = {name: i for i, name in enumerate(stack.names)}
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise ZestError(f"{path}: expected a signature stack with its {SIDECAR_SUFFIX} sidecar, got {error}") from error
        expected = stack.offsets[-1] * stack.width * 8
        if not path.is_file() or path.stat().st_size != expected:
            got = path.stat().st_size if path.is_file() else "no such file"
            raise ZestError(f"{path}: expected {expected} bytes of signature rows, got {got}")
        stack.path = path
        return stack

    # -- reading -------------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.names)

    def index(self, name: str) -> int:
        """The stack index of a model, by name."""
        try:
            return self._index[name]
        except KeyError:
            raise ZestError(f"{name}: expected a model of the stack, got no such name") from None

    @property
    def num_classes(self) -> np.ndarray:
        """Each model's class count (rows of its matrix)."""
        return np.diff(np.asarray(self.offsets, dtype=np.int64))

    def matrix(self, index: int) -> np.ndarray:
        """Model ``index``'s C × ΣK signature matrix (read from the file for a file-backed stack)."""
        if self.path is None:
            return self._matrices[index]
        if self._file is not None:
            self._file.flush()
        start, stop = self.offsets[index], self.offsets[index + 1]
        with open(self.path, "rb") as handle:
            return _read_rows(handle, start, stop, self.width)

    def gather(self, indices: Sequence[int]) -> list[np.ndarray]:
        """The matrices of several models, in the given order (one open file for all of them)."""
        if self.path is None:
            return [self._matrices[i] for i in indices]
        if self._file is not None:
            self._file.flush()
        with open(self.path, "rb") as handle:
            return [_read_rows(handle, self.offsets[i], self.offsets[i + 1], self.width) for i in indices]

    def signature(self, index: int, segments: np.ndarray) -> Signature:
        """Model ``index`` as a :class:`Signature` (the stack keeps no segments: the caller gives the probe's)."""
        matrix = self.matrix(index)
        columns = self.image_columns
        return Signature(
            weights=[matrix[:, columns[i]:columns[i + 1]] for i in range(len(columns) - 1)],
            intercepts=None, segments=segments, config=self.config, model_fingerprint=self.fingerprints[index],
            refset_fingerprint=self.refset_fingerprint, class_names=self.class_names[index],
        )

    def describe(self) -> dict[str, Any]:
        """Sizes for reports: models, rows, ΣK, bytes."""
        return {"models": len(self), "rows": self.offsets[-1], "columns": self.width, "bytes": self.offsets[-1] * self.width * 8}


def _read_rows(handle: Any, start: int, stop: int, width: int) -> np.ndarray:
    # A plain read into a fresh array (not a memory map): nothing of the file stays resident afterwards.
    handle.seek(start * width * 8)
    data = np.fromfile(handle, dtype=np.float64, count=(stop - start) * width)
    return data.reshape(stop - start, width)


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + SIDECAR_SUFFIX)
