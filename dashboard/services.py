"""The services the pages call: the demo zoo, cached loaders, and signature runs with progress.

Everything here is a call into zest_core's public API, cached for the dashboard: models live in
``st.cache_resource`` (one instance per spec), reference sets in ``st.cache_data``, and signatures
in zest_core's on-disk signature cache (keyed by model content, reference images and config), so
that every page and every rerun reuses them. A comparison of two models is
:mod:`dashboard.comparison`. No science is done here: it is zest_core's.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping, Sequence

import streamlit as st

from zest_core import (
    Classifier,
    QueryCount,
    ReferenceSet,
    Signature,
    SignatureCache,
    ZestConfig,
    ZestError,
    fit_input,
    compute_signature,
    epoch_curves,
    load_image_folder,
    load_mnist,
    load_model,
    reference_from_uploads,
)
from zest_core.studies import EpochCurves
from zest_core.zoo import MANIFEST_NAME, SHIPPED_SIGNATURES, Zoo, default_zoo_dir, load_zoo

from .progress import RunProgress


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


ADAPTER_LABEL = "Adapt the reference images to each model"


def input_model(spec: str, refset: ReferenceSet, label: str, adapt: bool) -> Classifier:
    """The model of ``spec`` (cached), fed the reference images as it takes them when ``adapt`` (the Setup box).

    Without ``adapt`` a model that declares other images is refused before any query (``fit_input``): images are
    never converted silently. With it, :func:`zest_core.adapt_input` converts grey ↔ RGB and resizes, and the
    adapted model's fingerprint records it.
    """
    return fit_input(cached_model(spec), refset, adapt=adapt, name=label, remedy=(
        f"tick **{ADAPTER_LABEL}** under Parameters to convert them (grey ↔ RGB, resize), "
        "or pick reference images of that size"))


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


