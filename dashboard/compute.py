"""The dashboard's calls into zest_core: cached loaders, signature runs with progress, and their results.

Models live in ``st.cache_resource`` (one instance per spec), reference sets in ``st.cache_data``,
signatures in zest_core's on-disk signature cache (keyed by model content, reference images and
config), and finished comparisons in session state, so that every page and every rerun reuses them.
"""
from __future__ import annotations

import hashlib
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import streamlit as st

from zest_core import (
    Classifier,
    ModelInputError,
    ReferenceSet,
    Signature,
    ZestConfig,
    compute_signature,
    load_image_folder,
    load_mnist,
    load_model,
    reference_from_uploads,
)
from zest_core.explain import (
    AlignmentSummary,
    ComparisonResult,
    compare_alignments,
    compare_signatures,
    comparison_report,
)

from .progress import RunProgress

UPLOAD_DIR = Path(tempfile.gettempdir()) / "zest-explorer-uploads"
RESULTS_KEY = "zx_results"
CURRENT_KEY = "zx_current"
MAX_RESULTS = 12

ProgressSink = Callable[[RunProgress], None]


class JobError(ValueError):
    """zest_core refused one model of a run; the message names the model, then zest_core's reason."""


# --------------------------------------------------------------------------------------------------
# The demo zoo (optional: the app works without it)
# --------------------------------------------------------------------------------------------------


def autorun_once() -> bool:
    """True on a session's first run when the app was started with ZEST_AUTORUN=1 (as `make run` does)."""
    if os.environ.get("ZEST_AUTORUN") != "1" or st.session_state.get("autorun_done"):
        return False
    st.session_state["autorun_done"] = True
    return True


def zoo_status() -> tuple[Any | None, str]:
    """The demo zoo, or None and why not (not built)."""
    from zest_core import zoo as zoo_module

    try:
        return _cached_zoo(str(zoo_module.default_zoo_dir()), _manifest_stamp(zoo_module)), ""
    except ValueError as error:  # zest_core.zoo.ZooError
        return None, f"The demo zoo is not built: {error}"


def _manifest_stamp(zoo_module: Any) -> float:
    manifest = Path(zoo_module.default_zoo_dir()) / zoo_module.MANIFEST_NAME
    return manifest.stat().st_mtime if manifest.is_file() else 0.0


@st.cache_resource(show_spinner=False, max_entries=4)
def _cached_zoo(root: str, stamp: float) -> Any:
    """The zoo's manifest, read again whenever it changes (``stamp`` is its modification time)."""
    from zest_core.zoo import load_zoo

    return load_zoo(root)


def zoo_label(zoo: Any, name: str) -> str:
    """``'cnn-s0.prune80 · prune-80 of cnn-s0 · 97.1%'`` for a picker."""
    entry = zoo.entries[name]
    lineage = entry.relation if entry.source in (None, name) else f"{entry.relation} of {entry.source}"
    return f"{name} · {lineage} · {100 * entry.accuracy:.1f}%"


def zoo_checkpoints(zoo: Any, name: str) -> list[int]:
    """The epochs with a stored checkpoint of a zoo model."""
    return sorted(int(k) for k in zoo.entries[name].checkpoints)


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
    """Write an uploaded model file to a content-addressed temporary path (its name and suffix kept)."""
    digest = hashlib.sha256(data).hexdigest()[:16]
    folder = UPLOAD_DIR / digest
    path = folder / (Path(name).name or "model")
    if not path.is_file():
        folder.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(path.name + ".part")
        partial.write_bytes(data)
        os.replace(partial, path)
    return path


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
    """Raise ModelInputError when a model declares an input shape that the reference images do not have."""
    images = (refset.channels, *refset.image_size)
    if model.input_shape is not None and tuple(model.input_shape) != images:
        c, h, w = model.input_shape
        raise ModelInputError(
            f"{label} takes {c}-channel {h}×{w} images, but the reference images are {images[0]}-channel "
            f"{images[1]}×{images[2]}; pick reference images of that size (or resize them)"
        )


def model_metadata(model: Classifier, choice: ModelChoice, zoo: Any | None) -> dict[str, Any]:
    """What to show (and report) about a model."""
    meta: dict[str, Any] = {
        "label": choice.label,
        "kind": choice.kind,
        "source": model.source,
        "classes": None if model.class_names is None else len(model.class_names),
        "class_names": model.class_names,
        "input_shape": None if model.input_shape is None else list(model.input_shape),
        "outputs": model.outputs,
        "fingerprint": model.fingerprint,
    }
    name = choice.spec.removeprefix("zoo:").partition("@")[0] if choice.from_zoo else None
    if zoo is not None and name in getattr(zoo, "entries", {}):
        entry = zoo.entries[name]
        meta["zoo"] = {
            "name": entry.name, "arch": entry.arch, "relation": entry.relation, "parent": entry.parent,
            "source": entry.source, "task": entry.task, "accuracy": entry.accuracy, "epochs": entry.epochs,
            "description": entry.description,
        }
    return meta


# --------------------------------------------------------------------------------------------------
# Signatures with progress
# --------------------------------------------------------------------------------------------------


def signatures_with_progress(
    jobs: Sequence[tuple[str, Classifier]],
    refset: ReferenceSet,
    config: ZestConfig,
    sink: ProgressSink | None = None,
) -> dict[str, Signature]:
    """Compute (or read from the signature cache) one signature per named model, reporting progress.

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

        try:
            results[name] = compute_signature(model, refset, config, report)
        except ValueError as error:
            raise JobError(f"{name}: {error}") from error
    return results


# --------------------------------------------------------------------------------------------------
# A comparison of two models
# --------------------------------------------------------------------------------------------------


@dataclass
class Comparison:
    """One finished comparison, kept in session state for every page.

    Attributes
    ----------
    key : str
        Hash of everything that determines it (see :meth:`dashboard.setup.Setup.key`).
    choices : dict of {"A", "B"} to ModelChoice
    meta : dict of {"A", "B"} to dict
    refset : ReferenceSet
    config : ZestConfig
    signatures : dict of {"A", "B"} to Signature
    baseline_signatures : dict of str to Signature
    result : ComparisonResult
    ground_truth : bool
        Whether the class names are the ground truth of class alignment (both models from the zoo).
    timings : dict of str to float
    """

    key: str
    choices: dict[str, ModelChoice]
    meta: dict[str, dict[str, Any]]
    refset: ReferenceSet
    config: ZestConfig
    signatures: dict[str, Signature]
    baseline_signatures: dict[str, Signature]
    result: ComparisonResult
    ground_truth: bool
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def title(self) -> str:
        return f"{self.choices['A'].label} vs {self.choices['B'].label}"

    def class_names(self, model: str) -> list[str]:
        names = self.meta[model]["class_names"]
        count = self.signatures[model].num_classes
        return list(names) if names is not None and len(names) == count else [str(k) for k in range(count)]

    def alignments(self, names_as_truth: bool) -> dict[str, AlignmentSummary]:
        """Greedy and Hungarian matchings of the classes, scored when the names are the ground truth."""
        return cached_alignments(self.key, names_as_truth, _comparison=self)

    def report(self) -> dict[str, Any]:
        """The JSON-ready report of the comparison."""
        return comparison_report(
            self.result,
            models=self.meta,
            refset=self.refset,
            config=self.config,
            alignments=self.alignments(self.ground_truth),
            extra={
                "timings_s": self.timings,
                "class_names_are_ground_truth": self.ground_truth,
                "baseline_source": "independently trained demo-zoo models" if self.baseline_signatures else None,
            },
        )


@st.cache_data(show_spinner=False, max_entries=32)
def cached_alignments(key: str, names_as_truth: bool, *, _comparison: Comparison) -> dict[str, AlignmentSummary]:
    comparison = _comparison
    names = (comparison.class_names("A"), comparison.class_names("B")) if names_as_truth else (None, None)
    return compare_alignments(
        comparison.signatures["A"], comparison.signatures["B"], names_a=names[0], names_b=names[1]
    )


def run_comparison(
    key: str,
    choices: Mapping[str, ModelChoice],
    refset: ReferenceSet,
    config: ZestConfig,
    *,
    metric: str,
    align: str,
    baseline: Sequence[str],
    n_boot: int,
    level: float,
    seed: int,
    zoo: Any | None,
    sink: ProgressSink | None = None,
) -> Comparison:
    """Load both models (and the baseline's), compute their signatures and compare them.

    Raises
    ------
    ModelLoadError, ModelInputError, ModelOutputError, EndpointError, ValueError
        For bad input; the dashboard shows them with st.error.
    """
    start = time.perf_counter()
    models = {}
    for slot in ("A", "B"):
        try:
            models[slot] = cached_model(choices[slot].spec)
        except ValueError as error:
            raise JobError(f"Model {slot}: {error}") from error
        check_input_shape(models[slot], refset, f"Model {slot} ({choices[slot].label})")
    baseline_models = {name: cached_model(f"zoo:{name}") for name in baseline}
    for name, model in baseline_models.items():
        check_input_shape(model, refset, f"Baseline model {name}")
    loaded = time.perf_counter()
    jobs = [(f"Model {slot}", models[slot]) for slot in ("A", "B")]
    jobs += [(f"Baseline {name}", model) for name, model in baseline_models.items()]
    signatures = signatures_with_progress(jobs, refset, config, sink)
    computed = time.perf_counter()
    pair = {"A": signatures["Model A"], "B": signatures["Model B"]}
    baseline_signatures = {name: signatures[f"Baseline {name}"] for name in baseline}
    result = compare_signatures(
        pair["A"], pair["B"], metric=metric, align=align, baseline=baseline_signatures or None,
        n_boot=n_boot, level=level, seed=seed,
    )
    done = time.perf_counter()
    return Comparison(
        key=key,
        choices=dict(choices),
        meta={slot: model_metadata(models[slot], choices[slot], zoo) for slot in ("A", "B")},
        refset=refset,
        config=config,
        signatures=pair,
        baseline_signatures=baseline_signatures,
        result=result,
        ground_truth=choices["A"].from_zoo and choices["B"].from_zoo,
        timings={
            "load_s": loaded - start, "signatures_s": computed - loaded, "compare_s": done - computed,
            "total_s": done - start,
        },
    )


def store_comparison(comparison: Comparison) -> None:
    """Keep a finished comparison (the most recent :data:`MAX_RESULTS`) and make it the current one."""
    results: dict[str, Comparison] = st.session_state.setdefault(RESULTS_KEY, {})
    results.pop(comparison.key, None)
    results[comparison.key] = comparison
    while len(results) > MAX_RESULTS:
        results.pop(next(iter(results)))
    st.session_state[CURRENT_KEY] = comparison.key


def stored_comparison(key: str | None) -> Comparison | None:
    """A finished comparison by key, or None."""
    return st.session_state.get(RESULTS_KEY, {}).get(key) if key else None


def current_comparison() -> Comparison | None:
    """The comparison the pages show: the last one run or revisited."""
    return stored_comparison(st.session_state.get(CURRENT_KEY))


# --------------------------------------------------------------------------------------------------
# Model collections: training runs and distance matrices
# --------------------------------------------------------------------------------------------------


def series_signatures(
    series: Mapping[str, Sequence[tuple[int, str]]],
    refset: ReferenceSet,
    config: ZestConfig,
    sink: ProgressSink | None = None,
) -> dict[str, list[tuple[int, Signature]]]:
    """Signatures of every checkpoint of named runs: {run: [(epoch, spec)]} → {run: [(epoch, Signature)]}."""
    jobs, where = [], []
    for run, checkpoints in series.items():
        for epoch, spec in checkpoints:
            model = cached_model(spec)
            check_input_shape(model, refset, f"{run} epoch {epoch}")
            jobs.append((f"{run} epoch {epoch}", model))
            where.append((run, epoch))
    signatures = signatures_with_progress(jobs, refset, config, sink)
    result: dict[str, list[tuple[int, Signature]]] = {run: [] for run in series}
    for (run, epoch), (name, _) in zip(where, jobs):
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
) -> Any:
    """:func:`zest_core.studies.benchmarks.epoch_curves` of two runs given as [(epoch, spec)].

    Run it after :func:`series_signatures`: every checkpoint's signature then comes from the cache.
    """
    from zest_core.studies.benchmarks import epoch_curves

    return epoch_curves(
        [cached_model(spec) for _, spec in series], [cached_model(spec) for _, spec in unrelated or []],
        refset, config, k=k, metric=metric, align=align, epochs=[epoch for epoch, _ in series],
    )


def model_signatures(
    specs: Mapping[str, str], refset: ReferenceSet, config: ZestConfig, sink: ProgressSink | None = None
) -> dict[str, Signature]:
    """Signatures of named model specs (for a distance matrix)."""
    jobs = []
    for name, spec in specs.items():
        model = cached_model(spec)
        check_input_shape(model, refset, name)
        jobs.append((name, model))
    return signatures_with_progress(jobs, refset, config, sink)


def distance_table(matrix: np.ndarray, names: Sequence[str]) -> "Any":
    """A labelled distance matrix as a DataFrame."""
    import pandas as pd

    return pd.DataFrame(np.asarray(matrix), index=list(names), columns=list(names)).rename_axis("model").reset_index()
