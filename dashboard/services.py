"""The services the pages call: the demo zoo, cached loaders, and signature runs with progress.

Everything here is a call into zest_core's public API, cached for the dashboard: models live in
``st.cache_resource`` (one instance per spec), reference sets in ``st.cache_data``, and signatures
in zest_core's on-disk signature cache (keyed by model content, reference images and config), so
that every page and every rerun reuses them. A comparison of two models is
:mod:`dashboard.comparison`. No science is done here: it is zest_core's.
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
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Mapping, Sequence

import streamlit as st

from zest_core import (
    Classifier,
    ModelInputError,
    QueryCount,
    ReferenceSet,
    Signature,
    SignatureCache,
    ZestConfig,
    ZestError,
    adapt_input,
    compute_signature,
    epoch_curves,
    load_image_folder,
    load_mnist,
    load_model,
    reference_from_uploads,
)
from zest_core.sources import state_dict_architectures
from zest_core.studies import EpochCurves
from zest_core.zoo import MANIFEST_NAME, SHIPPED_SIGNATURES, Zoo, default_zoo_dir, load_zoo

from .progress import RunProgress

if TYPE_CHECKING:  # the comparison module builds on this one
    from .comparison import Comparison

UPLOAD_PREFIX = "zest-explorer-uploads-"  # of this process's private staging folder (random suffix)
_staging: list[Path] = []  # that folder, once made (see save_upload)
_staging_lock = threading.Lock()  # sessions run in threads of one process: make one folder, not two
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)  # POSIX; other systems have no such flag
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)

ProgressSink = Callable[[RunProgress], None]


class JobError(ZestError):
    """zest_core refused one model of a run; the message names the model, then zest_core's reason."""


# --------------------------------------------------------------------------------------------------
# The demo zoo (optional: the app works without it)
# --------------------------------------------------------------------------------------------------


def zoo_status() -> tuple[Zoo | None, str]:
    """The demo zoo, or None and why not (not built)."""
    try:
        zoo = _cached_zoo(str(default_zoo_dir()), _manifest_stamp())
    except ZestError as error:  # a ZooError: no manifest, or an unreadable one
        return None, f"The demo zoo is not built: {error}"
    # The zoo ships the default comparison's signatures (A, B and their matched null at the default settings):
    # they seed the signature cache, so that a first visit shows its verdict without computing them. Each is
    # checked against its key like any cache file.
    if os.environ.get("ZEST_SHIPPED_SIGNATURES") != "off":  # benchmarks of computing signatures turn it off
        _seed_cache(str(SignatureCache().root), str(zoo.root))
    return zoo, ""


def _manifest_stamp() -> float:
    manifest = default_zoo_dir() / MANIFEST_NAME
    return manifest.stat().st_mtime if manifest.is_file() else 0.0


@st.cache_resource(show_spinner=False, max_entries=4)
def _cached_zoo(root: str, stamp: float) -> Zoo:
    """The zoo's manifest, read again whenever it changes (``stamp`` is its modification time)."""
    return load_zoo(root)


@st.cache_resource(show_spinner=False, max_entries=8)
def _seed_cache(cache_root: str, zoo_root: str) -> int:
    """Seed the signature cache at ``cache_root`` with the zoo's shipped signatures, once per (cache, zoo)."""
    return SignatureCache(cache_root).seed_from(Path(zoo_root) / SHIPPED_SIGNATURES)


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


def zoo_label(zoo: Zoo, name: str) -> str:
    """``'cnn-s0.prune80 · prune-80 of cnn-s0 · 97.1%'`` for a picker."""
    entry = zoo.entries[name]
    lineage = entry.relation if entry.source in (None, name) else f"{entry.relation} of {entry.source}"
    return f"{name} · {lineage} · {100 * entry.accuracy:.1f}%"


def zoo_checkpoints(zoo: Zoo, name: str) -> list[int]:
    """The epochs with a stored checkpoint of a zoo model."""
    return sorted(int(k) for k in zoo.entries[name].checkpoints)


def zoo_series(zoo: Zoo, name: str) -> list[tuple[int, str]]:
    """A zoo model's training run as [(epoch, spec)], one per stored checkpoint."""
    return [(k, f"zoo:{name}@epoch{k}") for k in zoo_checkpoints(zoo, name)]


# --------------------------------------------------------------------------------------------------
# Models and reference sets
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelChoice:
    """A model as the user chose it: what to show, and the spec :func:`zest_core.load_model` takes."""

    label: str
    spec: str
    kind: str  # "zoo", "upload", "path" or "endpoint"

    @property
    def from_zoo(self) -> bool:
        return self.spec.startswith("zoo:")


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


@st.cache_resource(show_spinner="Loading model…", max_entries=64)
def cached_model(spec: str) -> Classifier:
    """:func:`zest_core.load_model` of a spec, loaded once per process."""
    return load_model(spec)


@st.cache_data(show_spinner="Loading reference images…", max_entries=16)
def mnist_refset(n: int, seed: int) -> ReferenceSet:
    """``n`` held-out MNIST digits (test split), stratified by class."""
    return load_mnist(n, split="test", seed=seed)


@st.cache_data(show_spinner="Reading the image folder…", max_entries=16)
def folder_refset(path: str, n: int | None, seed: int, size: tuple[int, int] | None) -> ReferenceSet:
    """Up to ``n`` images of a folder (stratified by class subfolder)."""
    return load_image_folder(path, size=size, max_images=n, seed=seed)


@st.cache_data(show_spinner="Reading the uploaded images…", max_entries=16)
def upload_refset(files: tuple[tuple[str, bytes], ...], size: tuple[int, int] | None) -> ReferenceSet:
    """The uploaded images, in upload order."""
    return reference_from_uploads(list(files), size=size)


def check_input_shape(model: Classifier, refset: ReferenceSet, label: str) -> None:
    """Raise ModelInputError when a model declares an input shape that the reference images do not have.

    zest_core checks this too, but only once the queries start; checking first names the model in
    the user's words and costs no signature work.
    """
    images = (refset.channels, *refset.image_size)
    if model.input_shape is not None and tuple(model.input_shape) != images:
        c, h, w = model.input_shape
        raise ModelInputError(
            f"{label} takes {c}-channel {h}×{w} images, but the reference images are {images[0]}-channel "
            f"{images[1]}×{images[2]}; tick **{ADAPTER_LABEL}** under Parameters to convert them (grey ↔ RGB, "
            "resize), or pick reference images of that size"
        )


ADAPTER_LABEL = "Adapt the reference images to each model"


def input_model(spec: str, refset: ReferenceSet, label: str, adapt: bool) -> Classifier:
    """The model of ``spec`` (cached), fed the reference images as it takes them when ``adapt`` (the Setup box).

    Without ``adapt`` a model that declares other images is refused (:func:`check_input_shape`): images are
    never converted silently. With it, :func:`zest_core.adapt_input` converts grey ↔ RGB and resizes, and the
    adapted model's fingerprint records it.
    """
    model = cached_model(spec)
    images = (refset.channels, *refset.image_size)
    if adapt and model.input_shape is not None and tuple(model.input_shape) != images:
        return adapt_input(model, images)
    check_input_shape(model, refset, label)
    return model


# --------------------------------------------------------------------------------------------------
# Signatures with progress
# --------------------------------------------------------------------------------------------------


def signatures_with_progress(
    jobs: Sequence[tuple[str, Classifier]],
    refset: ReferenceSet,
    config: ZestConfig,
    sink: ProgressSink | None = None,
    *,
    counters: dict[str, QueryCount] | None = None,
) -> dict[str, Signature]:
    """Compute (or read from the signature cache) one signature per named model, reporting progress.

    ``counters``, when given, gets each model's queries made now (none for a cached signature), by name.

    Raises
    ------
    JobError
        When zest_core refuses a model (ModelInputError, ModelOutputError, EndpointError...): the
        message names the model, then gives zest_core's reason.
    """
    progress = RunProgress([name for name, _ in jobs])
    results: dict[str, Signature] = {}
    for index, (name, model) in enumerate(jobs):
        progress.start_job(index)
        if sink is not None:
            sink(progress)

        def report(done: int, total: int, stage: str) -> None:
            progress.update(done, total, stage)
            if sink is not None:
                sink(progress)

        made = QueryCount()
        if counters is not None:
            counters[name] = made
        try:
            results[name] = compute_signature(model, refset, config, report, counter=made)
        except ValueError as error:  # zest_core's errors are ValueErrors (ZestError)
            raise JobError(f"{name}: {error}") from error
    return results


def checked_models(specs: Mapping[str, str], refset: ReferenceSet, adapt: bool = False) -> list[tuple[str, Classifier]]:
    """(name, model) for named specs, each loaded (cached) and checked against (or adapted to) the reference images."""
    return [(name, input_model(spec, refset, name, adapt)) for name, spec in specs.items()]


def model_signatures(
    specs: Mapping[str, str], refset: ReferenceSet, config: ZestConfig, sink: ProgressSink | None = None
) -> dict[str, Signature]:
    """Signatures of named model specs (for a distance matrix)."""
    return signatures_with_progress(checked_models(specs, refset), refset, config, sink)


def series_signatures(
    series: Mapping[str, Sequence[tuple[int, str]]],
    refset: ReferenceSet,
    config: ZestConfig,
    sink: ProgressSink | None = None,
) -> dict[str, list[tuple[int, Signature]]]:
    """Signatures of every checkpoint of named runs: {run: [(epoch, spec)]} → {run: [(epoch, Signature)]}."""
    named = {
        (run, epoch): (f"{run} epoch {epoch}", spec) for run, checkpoints in series.items() for epoch, spec in checkpoints
    }
    signatures = model_signatures(dict(named.values()), refset, config, sink)
    result: dict[str, list[tuple[int, Signature]]] = {run: [] for run in series}
    for (run, epoch), (name, _) in named.items():
        result[run].append((epoch, signatures[name]))
    return result


def epoch_distance_curves(
    series: Sequence[tuple[int, str]],
    unrelated: Sequence[tuple[int, str]] | None,
    refset: ReferenceSet,
    config: ZestConfig,
    *,
    k: int,
    metric: str,
    align: str,
) -> EpochCurves:
    """:func:`zest_core.epoch_curves` of two runs given as [(epoch, spec)].

    Run it after :func:`series_signatures`: every checkpoint's signature then comes from the cache.
    """
    return epoch_curves(
        [cached_model(spec) for _, spec in series], [cached_model(spec) for _, spec in unrelated or []],
        refset, config, k=k, metric=metric, align=align, epochs=[epoch for epoch, _ in series],
    )


def pair_series(comparison: "Comparison | None", zoo: Zoo | None) -> dict[str, list[tuple[int, str]]] | None:
    """The checkpoint series of the current comparison's A and B, when both are zoo runs with checkpoints; else None."""
    if comparison is None or zoo is None:
        return None
    names = [comparison.choices[slot].spec.removeprefix("zoo:").partition("@")[0] for slot in ("A", "B")]
    if not all(comparison.choices[slot].from_zoo for slot in ("A", "B")) or names[0] == names[1]:
        return None
    if not all(name in zoo.entries and zoo_checkpoints(zoo, name) for name in names):
        return None
    return {name: zoo_series(zoo, name) for name in names}


def matrix_candidates(comparison: "Comparison | None", zoo: Zoo | None) -> dict[str, str]:
    """The models a distance matrix can hold, name → spec: the current comparison's A and B, then the zoo's."""
    specs: dict[str, str] = {}
    if comparison is not None:
        for slot in ("A", "B"):
            specs[f"{slot}: {comparison.choices[slot].label}"] = comparison.choices[slot].spec
    for name in zoo.entries if zoo is not None else ():
        if f"zoo:{name}" not in specs.values():  # A or B already is this zoo model
            specs[name] = f"zoo:{name}"
    return specs


def suggested_models(specs: Mapping[str, str], zoo: Zoo | None, count: int) -> list[str]:
    """A first choice of ``count`` models for the matrix, among :func:`matrix_candidates`.

    The current comparison's models, then some independently trained zoo models and the zoo's
    derived models of the digits task: a matrix with both related and unrelated pairs.
    """
    suggested = [name for name in specs if name.startswith(("A: ", "B: "))]
    if zoo is not None:
        suggested += [n for n in zoo.independent() if n in specs][:count // 2]
        suggested += [c for _, c, _ in zoo.pairs() if c in specs and zoo.entries[c].task == "digits"]
    return list(dict.fromkeys(suggested))[:count]
