"""Reading model files: their bytes, their content hash, and one-line summaries of what went wrong.

Shared by every format of :mod:`zest_core.sources.models.formats`, so that each names a file's
problems the same way (``"<path>: <problem>"``, as :class:`~zest_core.errors.ModelLoadError` says).
"""
from __future__ import annotations

import contextlib
import hashlib
import warnings
from pathlib import Path
from typing import Iterator

from ..._shared.limits import MODEL_BYTES, check_unpacked
from ...errors import ModelLoadError, ZestError


def read_file(path: str, what: str) -> bytes:
    """The bytes of the file at ``path``; ``what`` says what it should be, for the error message.

    Raises
    ------
    ModelLoadError
        If there is no such file, it is a directory, or it cannot be read.
    """
    target = Path(path)
    if not target.is_file():
        problem = "is a directory" if target.is_dir() else "no such file"
        raise ModelLoadError(f"{path}: {problem} (expected {what})")
    try:
        size = target.stat().st_size
        if size > MODEL_BYTES.value():
            raise ModelLoadError(str(MODEL_BYTES.refuse(f"a file of {size:,} bytes", path)))
        data = target.read_bytes()
    except OSError as error:
        raise ModelLoadError(f"{path}: cannot be read ({first_line(error)})") from error
    try:
        check_unpacked(path, data)
    except ZestError as error:
        raise ModelLoadError(str(error)) from None
    return data


def sha256(data: bytes) -> str:
    """The hex sha256 of ``data``: a model file's fingerprint."""
    return hashlib.sha256(data).hexdigest()


def first_line(error: BaseException) -> str:
    """``"<Type>: <first sentence>"`` of an exception: libraries' messages can run to pages."""
    lines = str(error).strip().splitlines()
    first_sentence = lines[0].split(". ")[0] if lines else ""
    return f"{type(error).__name__}: {first_sentence}".rstrip(": ")


@contextlib.contextmanager
def quiet_torch() -> Iterator[None]:
    """Silence torch's deprecation and dispatch warnings while loading; failures still raise."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", UserWarning)
        yield
