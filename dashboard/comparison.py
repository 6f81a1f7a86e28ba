"""A comparison of two models: both signatures, the baseline's, and what zest_core makes of them.

:func:`run_comparison` loads the models through :mod:`dashboard.services`, computes the signatures
with progress and calls :func:`zest_core.explain.compare_signatures`; the :class:`Comparison` it
returns is kept in session state (:mod:`dashboard.state`) for every page.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import streamlit as st

from zest_core import Classifier, ReferenceSet, Signature, ZestConfig, Zoo
from zest_core.explain import (
    AlignmentSummary,
    ComparisonResult,
    compare_alignments,
    compare_signatures,
    comparison_report,
)

from .services import (
    JobError,
    ModelChoice,
    ProgressSink,
    cached_model,
    check_input_shape,
    checked_models,
    signatures_with_progress,
)


def model_metadata(model: Classifier, choice: ModelChoice, zoo: Zoo | None) -> dict[str, Any]:
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
    if zoo is not None and name in zoo.entries:
        entry = zoo.entries[name]
        meta["zoo"] = {
            "name": entry.name, "arch": entry.arch, "relation": entry.relation, "parent": entry.parent,
            "source": entry.source, "task": entry.task, "accuracy": entry.accuracy, "epochs": entry.epochs,
            "description": entry.description,
        }
    return meta


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
        """Model A's or B's class names, or their numbers when the model does not name them."""
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
    """:func:`zest_core.explain.compare_alignments` of a comparison, cached by its key (not hashed whole)."""
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
    zoo: Zoo | None,
    sink: ProgressSink | None = None,
) -> Comparison:
    """Load both models (and the baseline's), compute their signatures and compare them.

    Raises
    ------
    JobError, ModelInputError, ZestError
        For bad input; the dashboard shows them with st.error.
    """
    start = time.perf_counter()
    models = {}
    for slot in ("A", "B"):
        try:
            models[slot] = cached_model(choices[slot].spec)
        except ValueError as error:  # zest_core's errors are ValueErrors (ZestError)
            raise JobError(f"Model {slot}: {error}") from error
        check_input_shape(models[slot], refset, f"Model {slot} ({choices[slot].label})")
    jobs = [(f"Model {slot}", models[slot]) for slot in ("A", "B")]
    jobs += checked_models({f"Baseline {name}": f"zoo:{name}" for name in baseline}, refset)
    loaded = time.perf_counter()
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
