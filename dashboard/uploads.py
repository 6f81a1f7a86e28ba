"""Uploaded model files, staged privately for :func:`zest_core.load_model`, and what the upload form says about them.

``load_model`` reads files, so an upload is written to a private per-process folder first (see
:func:`save_upload` for how planted files and links are kept out), and removed at exit.
"""
from __future__ import annotations

import atexit
import contextlib
import hashlib
import os
import secrets
import shutil
import stat
import tempfile
import threading
from pathlib import Path

import streamlit as st

from zest_core import ZestError
from zest_core.sources import state_dict_architectures

UPLOAD_PREFIX = "zest-explorer-uploads-"  # of this process's private staging folder (random suffix)
_staging: list[Path] = []  # that folder, once made (see save_upload)
_staging_lock = threading.Lock()  # sessions run in threads of one process: make one folder, not two
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)  # POSIX; other systems have no such flag
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)


@st.cache_data(show_spinner=False)
def upload_architectures() -> list[str]:
    """The architectures an uploaded state_dict may belong to (every ARCH that ``ARCH:PATH`` accepts)."""
    return state_dict_architectures()


def upload_error(message: str, staged: str, name: str) -> str:
    """An error about an uploaded model, for the form: its own name, never the private staging path.

    Advice meant for the command line (pass ``ARCH:PATH``) becomes advice the form can follow:
    choose the architecture under **Format**.
    """
    text = message.replace(staged, name)
    head, separator, _ = text.partition("; pass it as ARCH:")
    if separator:
        text = (f"{head}; choose its architecture under Format (this project's networks or any torchvision "
                "classification model) and run again")
    return text.replace("(loaded as ARCH:PATH)", "(uploaded with its architecture chosen under Format)")


def save_upload(name: str, data: bytes) -> Path:
    """Stage an uploaded model file for :func:`zest_core.load_model`, privately, and return its path.

    ``load_model`` reads files, so the upload is written to ``<private folder>/<digest>/<name>``
    (its name kept, for the format's suffix). The private folder is made once per process with
    :func:`tempfile.mkdtemp` (mode 0700, an unpredictable name) and removed at exit: a shared,
    predictable folder let another local user plant a model or a symlink in advance. Files are
    created with ``O_CREAT | O_EXCL | O_NOFOLLOW`` (mode 0600) under a random name and renamed into
    place, so no link is ever followed; the staged file is then read back and must have the
    upload's size and sha256. The same upload is staged once: a staged file is reused only while
    its bytes still are the upload's.

    Raises
    ------
    ZestError
        If the staging folder is not private, or the staged copy does not match the upload.
    """
    digest = hashlib.sha256(data).hexdigest()
    folder = _private_folder(_staging_root() / digest[:16])
    path = folder / _upload_name(name)
    if _holds(path, len(data), digest):
        return path
    partial = folder / f".{secrets.token_hex(8)}.part"
    try:
        _write_new(partial, data)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(partial)
        raise
    os.replace(partial, path)  # a link planted at ``path`` is replaced, never written through
    if not _holds(path, len(data), digest):
        os.unlink(path)
        raise ZestError(f"upload {name!r}: the staged copy does not match the upload (size or sha256 differ)")
    return path


def remove_staged_uploads() -> None:
    """Remove this process's staging folder and every upload in it (also run at exit)."""
    while _staging:
        shutil.rmtree(_staging.pop(), ignore_errors=True)


atexit.register(remove_staged_uploads)


def _upload_name(name: str) -> str:
    """The uploaded file's own name, without any folder part; "model" when nothing usable is left."""
    base = name.replace("\0", "").replace("\\", "/").rpartition("/")[2]
    return base if base.strip(".") else "model"


def _staging_root() -> Path:
    """This process's private staging folder, made on first use (and removed at exit)."""
    with _staging_lock:
        if not _staging or not _staging[0].is_dir():
            _staging[:] = [Path(tempfile.mkdtemp(prefix=UPLOAD_PREFIX))]  # mode 0700, a random name
        return _private_folder(_staging[0])


def _private_folder(folder: Path) -> Path:
    """``folder``, made (mode 0700) if missing, checked to be a real folder of ours that no one else can enter."""
    with contextlib.suppress(FileExistsError):
        os.mkdir(folder, 0o700)
    info = os.lstat(folder)  # lstat: a symlink in place of the folder is refused, not followed
    others = hasattr(os, "getuid") and (info.st_uid != os.getuid() or info.st_mode & 0o077)  # POSIX owners and modes
    if not stat.S_ISDIR(info.st_mode) or others:
        raise ZestError(f"{folder}: expected a private folder (mode 0700, ours) for uploads, got another")
    return folder


def _write_new(path: Path, data: bytes) -> None:
    """Write ``data`` to a file that must not exist yet (a planted file or link there makes this fail)."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW | _CLOEXEC, 0o600)
    try:
        with memoryview(data) as view:
            written = 0
            while written < len(view):  # os.write may write less than it was given
                written += os.write(descriptor, view[written:])
    finally:
        os.close(descriptor)


def _holds(path: Path, size: int, digest: str) -> bool:
    """Whether ``path`` is a regular file (not a link) of ``size`` bytes whose sha256 is ``digest``."""
    try:
        descriptor = os.open(path, os.O_RDONLY | _NOFOLLOW | _CLOEXEC)
    except OSError:  # missing, or a link (ELOOP)
        return False
    with os.fdopen(descriptor, "rb") as file:
        info = os.fstat(file.fileno())
        if not stat.S_ISREG(info.st_mode) or info.st_size != size:
            return False
        sha = hashlib.sha256()
        for block in iter(lambda: file.read(1 << 20), b""):
            sha.update(block)
        return sha.hexdigest() == digest
