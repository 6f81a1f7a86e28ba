"""Atomic file writes: a reader sees the old file or the whole new one, never a half-written one.

A write goes through a temporary file beside its target, named ``.<target name>.<8 characters>.tmp``
(what :func:`tempfile.mkstemp` makes of the prefix and suffix used here). A process killed between
creating it and renaming it leaves that file behind; :func:`remove_stale_temporaries` removes such
orphans, and nothing else.
"""
from __future__ import annotations

import contextlib
import os
import re
import stat
import tempfile
import time
from pathlib import Path
from typing import Callable

# The random part of a mkstemp name: 8 characters of tempfile's alphabet (lower-case letters, digits, "_").
_TEMPORARY_NAME = re.compile(r"^\.(?P<target>.+)\.[a-z0-9_]{8}\.tmp$")
# A temporary file lives for the seconds a write takes; one this old belongs to a process that died.
# Hours, not minutes, so that a slow write on a network file system (or a clock skewed against its
# server) is never taken for an orphan.
STALE_TEMPORARY_SECONDS = 6 * 3600.0


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` through a temporary file in the same folder, then ``os.replace``.

    The temporary file lives beside the target so that the rename stays on one file system (where
    ``os.replace`` is atomic); it is fsynced first, so a crash leaves the old file or the new one.
    The parent folders are created as needed.

    Returns
    -------
    Path
        ``path``.
    """
    path = Path(path)
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
    return path


def temporary_target(name: str) -> str | None:
    """The target file name a temporary file of :func:`atomic_write_bytes` was for, or None if ``name`` is not one."""
    match = _TEMPORARY_NAME.match(name)
    return match.group("target") if match else None


def remove_stale_temporaries(
    folder: str | os.PathLike,
    is_target: Callable[[str], bool],
    *,
    older_than: float = STALE_TEMPORARY_SECONDS,
    now: float | None = None,
) -> list[Path]:
    """Remove the orphaned temporary files of :func:`atomic_write_bytes` in ``folder``; returns those removed.

    A file is removed only if all of these hold: its name is a temporary name whose target name
    satisfies ``is_target``; it is a regular file, not a link (``lstat``, so a link is never
    followed); and it was last modified more than ``older_than`` seconds ago, so that another
    process's write in progress is left alone. Anything that cannot be read or removed is skipped.

    Parameters
    ----------
    folder : path
    is_target : callable (str) -> bool
        Whether a target file name is one of the caller's (e.g. a cache key with a cache suffix).
    older_than : float
        Age in seconds (by modification time) from which a temporary file counts as orphaned.
    now : float, optional
        The current time (``time.time()``), for tests.
    """
    now = time.time() if now is None else now
    removed = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        target = temporary_target(entry.name)
        if target is None or not is_target(target):
            continue
        try:
            info = os.lstat(entry.path)
            if not stat.S_ISREG(info.st_mode) or now - info.st_mtime <= older_than:
                continue
            os.unlink(entry.path)
        except OSError:
            continue
        removed.append(Path(entry.path))
    return removed
