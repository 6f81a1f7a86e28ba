"""Reading model files: their bytes, their content hash, and one-line summaries of what went wrong.

Shared by every format of :mod:`zest_core.sources.models.formats`, so that each names a file's
problems the same way (``"<path>: <problem>"``, as :class:`~zest_core.errors.ModelLoadError` says).
"""
from __future__ import annotations

import contextlib
import hashlib
import io
import warnings
import zipfile
from pathlib import Path
from typing import Iterator

from ..._shared.limits import MODEL_BYTES
from ...errors import ModelLoadError


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
    check_unpacked_size(path, data)
    return data


def check_unpacked_size(path: str, data: bytes) -> None:
    """Refuse a zip archive (``torch.save``'s format) whose members unpack to more than :data:`MODEL_BYTES`.

    The sizes are read from the archive's central directory, before anything is decompressed: a zip
    bomb of a few hundred kilobytes that would unpack to gigabytes is refused at once.

    Raises
    ------
    ModelLoadError
        Naming the file, the size it would unpack to, and how to raise the limit.
    """
    if not data.startswith(b"PK"):
        return
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            unpacked = sum(info.file_size for info in archive.infolist())
    except (zipfile.BadZipFile, OSError, ValueError):
        return  # not a readable zip: the format loaders say what it is not
    if unpacked > MODEL_BYTES.value():
        raise ModelLoadError(str(MODEL_BYTES.refuse(f"an archive that unpacks to {unpacked:,} bytes", path)))


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
