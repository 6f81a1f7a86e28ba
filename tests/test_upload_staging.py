"""Uploaded model files are staged privately (issue 9, item 3).

The dashboard hands an uploaded model to ``zest_core.load_model`` as a file. It used to write it to
``$TMPDIR/zest-explorer-uploads/<digest>/<name>``, a path anyone on the machine could predict: a
file planted there in advance was loaded in place of the upload, and a symlink planted at the
``.part`` path was followed, overwriting its target. Every test here redirects ``$TMPDIR`` to its
own folder, so nothing is planted in the real temp folder.
"""
from __future__ import annotations

import hashlib
import os
import stat
import tempfile
from pathlib import Path

import pytest

from dashboard import uploads as services  # the upload staging lives in dashboard.uploads (issue 21)

pytestmark = pytest.mark.skipif(os.name != "posix", reason="file modes and symlinks as POSIX has them")

NAME = "model.pt"
DATA = b"the bytes the user uploaded" * 100


@pytest.fixture(autouse=True)
def private_tmpdir(tmp_path, monkeypatch):
    """``tempfile.gettempdir()`` is a folder of this test's; the staging folder is made afresh and removed after."""
    shared = tmp_path / "shared-tmp"
    shared.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(shared))
    if hasattr(services, "UPLOAD_DIR"):  # the old code fixed its folder at import: point it here too
        monkeypatch.setattr(services, "UPLOAD_DIR", shared / "zest-explorer-uploads")
    services.remove_staged_uploads()
    yield shared
    services.remove_staged_uploads()


def old_predictable_path(shared: Path, data: bytes, name: str) -> Path:
    """Where the old code staged an upload: computable by anyone who knows (or guesses) the file."""
    return shared / "zest-explorer-uploads" / hashlib.sha256(data).hexdigest()[:16] / name


def test_a_file_planted_at_the_old_predictable_path_is_not_loaded(private_tmpdir):
    planted = old_predictable_path(private_tmpdir, DATA, NAME)
    planted.parent.mkdir(parents=True)
    planted.write_bytes(b"an attacker's model")
    staged = services.save_upload(NAME, DATA)
    assert staged.read_bytes() == DATA
    assert planted.read_bytes() == b"an attacker's model"
    assert private_tmpdir / "zest-explorer-uploads" not in staged.parents


@pytest.fixture
def victim(tmp_path) -> Path:
    """A file a planted symlink points at: it must never change."""
    path = tmp_path / "victim.txt"
    path.write_bytes(b"precious")
    return path


def assert_staged_and_untouched(staged: Path, victim: Path) -> None:
    assert victim.read_bytes() == b"precious"
    assert staged.read_bytes() == DATA and not staged.is_symlink()


def test_a_symlink_at_the_old_part_path_is_not_followed(private_tmpdir, victim):
    partial = old_predictable_path(private_tmpdir, DATA, NAME + ".part")
    partial.parent.mkdir(parents=True)
    partial.symlink_to(victim)
    assert_staged_and_untouched(services.save_upload(NAME, DATA), victim)


def test_a_symlink_in_place_of_a_staged_file_is_replaced_not_followed(victim):
    staged = services.save_upload(NAME, DATA)
    staged.unlink()
    staged.symlink_to(victim)
    assert_staged_and_untouched(services.save_upload(NAME, DATA), victim)


def test_a_staged_file_that_changed_is_written_again():
    staged = services.save_upload(NAME, DATA)
    staged.write_bytes(b"changed on disk")
    assert services.save_upload(NAME, DATA).read_bytes() == DATA


def test_the_staging_folders_are_private_and_unpredictable():
    first = services.save_upload(NAME, DATA)
    root = first.parent.parent
    for folder in (root, first.parent):
        mode = os.lstat(folder).st_mode
        assert stat.S_ISDIR(mode) and stat.S_IMODE(mode) == 0o700 and os.lstat(folder).st_uid == os.getuid()
    assert stat.S_IMODE(os.lstat(first).st_mode) == 0o600
    assert root.name != "zest-explorer-uploads" and root.name.startswith("zest-explorer-uploads-")
    services.remove_staged_uploads()
    assert not root.exists()
    assert services.save_upload(NAME, DATA).parent.parent != root  # a new private folder, another name


def test_the_same_upload_is_staged_once_and_names_are_kept_safe():
    first = services.save_upload("../../escape.onnx", DATA)
    assert first.name == "escape.onnx" and first.suffix == ".onnx"
    assert services.save_upload("../../escape.onnx", DATA) == first
    assert services.save_upload("", DATA).name == "model"
    assert services.save_upload("..", DATA).name == "model"


def test_what_was_written_is_verified(monkeypatch):
    real_write = os.write
    monkeypatch.setattr(os, "write", lambda fd, data: real_write(fd, bytes(len(data))))  # a disk that writes zeros
    with pytest.raises(services.ZestError, match="does not match the upload"):
        services.save_upload(NAME, DATA)
    monkeypatch.setattr(os, "write", real_write)
    assert services.save_upload(NAME, DATA).read_bytes() == DATA
