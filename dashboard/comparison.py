"""A comparison of two models: both signatures, the matched null's, and what zest_core makes of them.

:func:`run_comparison` loads the models through :mod:`dashboard.services`, computes the signatures
with progress, calls :func:`zest_core.explain.compare_signatures` for the pair and measures the
distances of the unrelated models (the *null*, :func:`comparison_null`); the :class:`PairComparison` it
returns is kept in session state (:mod:`dashboard.state`) for every page. Its calibrated verdict,
:meth:`PairComparison.audit`, is the engine's :func:`zest_core.studies.audit_signatures` at the level α the user sets.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import streamlit as st

from zest_core import BudgetPlan, Classifier, QueryCount, ReferenceSet, Signature, ZestConfig, Zoo, zest_distance
from zest_core.explain import (
    AlignmentSummary,
    EvidenceView,
    ImageEvidence,
    ComparisonResult,
    compare_alignments,
    compare_signatures,
    comparison_report,
    evidence_views,
    image_evidence,
)
from zest_core.studies import (
    AuditResult,
    audit,
    audit_record,
    audit_signatures,
    queries_report,
    signature_queries,
    signature_query_detail,
    zest_queries_digest,
)
from zest_core.zoo import matched_null, model_facts, resolve_null, zoo_facts

from .services import (
    JobError,
    ModelChoice,
    ProgressSink,
    cached_model,
    checked_models,
    input_model,
    signatures_with_progress,
    zoo_checkpoints,
    zoo_series,
)
from .uploads import upload_error


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
    name = zoo_name(choice, zoo)
    if name is not None:
        entry = zoo.entries[name]
        meta["zoo"] = {
            "name": entry.name, "arch": entry.arch, "relation": entry.relation, "parent": entry.parent,
            "source": entry.source, "task": entry.task, "accuracy": entry.accuracy, "epochs": entry.epochs,
            "description": entry.description,
        }
    return meta


def zoo_name(choice: ModelChoice, zoo: Zoo | None) -> str | None:
    """The zoo model a choice names (``zoo:cnn-s0@epoch3`` → ``cnn-s0``), or None when it names none of ``zoo``'s."""
    name = choice.spec.removeprefix("zoo:").partition("@")[0] if choice.from_zoo else None
    return name if zoo is not None and name in zoo.entries else None


@dataclass(frozen=True)
class NullModels:
    """The unrelated models a comparison is judged against, and why they are the right ones.

    Attributes
    ----------
    specs : dict of str to str
        Name → :func:`zest_core.load_model` spec of each unrelated model.
    reason : str
        Why these models match, for people.
    automatic : bool
        Whether the demo zoo's manifest picked them (:func:`zest_core.zoo.matched_null`); otherwise
        the user named them on Setup.
    excluded : tuple of str
        Zoo models of B's task and architecture left out because they are relatives of A or B.
    warnings : tuple of str
        What the engine's null check (:func:`zest_core.zoo.check_null`) found unusual.
    """

    specs: dict[str, str]
    reason: str
    automatic: bool
    excluded: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()


def comparison_null(
    choices: Mapping[str, ModelChoice], zoo: Zoo | None, unrelated: Sequence[tuple[str, str]]
) -> NullModels:
    """The null of a comparison of A (the reference) with B (the suspect).

    Two zoo models get their matched null from the manifest: models trained from scratch for B's
    task with B's architecture, outside both lineages. Any other pair is judged against the models
    the user named (``unrelated``, (name, spec) pairs), never against a default: only the user knows
    which models were trained independently for B's task. Whether they may serve is the engine's
    call (:func:`checked_null`): model A or B among them, a copy, or a model of another task is refused.
    """
    names = {slot: zoo_name(choices[slot], zoo) for slot in ("A", "B")}
    if names["A"] is not None and names["B"] is not None:
        null = matched_null(zoo, names["A"], names["B"])
        return NullModels({n: f"zoo:{n}" for n in null.models}, null.reason, True, null.excluded)
    return NullModels(dict(unrelated), _named_reason(len(unrelated)), False)


def _named_reason(count: int) -> str:
    return (f"{count} model(s) named on Setup as trained independently, from scratch, for B's task with B's "
            "architecture (for models outside the demo zoo the dashboard cannot check this: it is your claim)")


NULL_FIELD = "Unrelated models (Setup)"


def checked_null(
    null: NullModels, choices: Mapping[str, ModelChoice], zoo: Zoo | None, pair: Mapping[str, Classifier],
    named: Mapping[str, Classifier],
) -> NullModels:
    """``null`` as the engine's one null resolver (:func:`zest_core.zoo.resolve_null`) checks it, with its warnings.

    Raises
    ------
    NullError
        Model A or B among the unrelated models (by content, whatever the file), two copies of one
        model, or a model of another class count, input shape or task; the message names the Setup field.
    """
    if not null.specs:
        return null  # nothing to check: the verdict is "inconclusive", and says why
    if null.automatic:
        names = {slot: zoo_name(choices[slot], zoo) for slot in ("A", "B")}
        models = {**named, names["A"]: pair["A"], names["B"]: pair["B"]}  # the loaded models, not loaded again
        resolved = resolve_null(names["A"], names["B"], zoo=zoo, models=models)
    else:
        models = {"Model A": pair["A"], "Model B": pair["B"], **named}
        resolved = resolve_null("Model A", "Model B", models=models, unrelated=list(named), flag=NULL_FIELD,
                                reason=null.reason)
    return NullModels(null.specs, null.reason, null.automatic, null.excluded, resolved.warnings)


@dataclass
class PairComparison:
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
    null : NullModels
        The unrelated models (those that answered; see ``null_signatures``).
    null_signatures : dict of str to Signature
    null_distances : dict of str to float
        d(A, U) for each unrelated model U, with the comparison's metric and class alignment.
    result : ComparisonResult
    ground_truth : bool
        Whether the class names are the ground truth of class alignment (both models from the zoo).
    timings : dict of str to float
    queries_now : dict of str to QueryCount
        The queries each signature made in this run ("Model A", "Model B", "Unrelated <name>"); none
        for a cached one (:meth:`query_entries` then reports what computing it took).
    budget : BudgetPlan or None
        The query budget that chose N and L, if one was set.
    audit_argv : list of str or None
        The ``zest audit`` arguments that recompute the verdict (:meth:`dashboard.setup.Setup.audit_argv`), or
        None when the CLI cannot name the inputs.
    adapt : bool
        Whether each model is fed the reference images converted to the channels and size it declares.
    """

    key: str
    choices: dict[str, ModelChoice]
    meta: dict[str, dict[str, Any]]
    refset: ReferenceSet
    config: ZestConfig
    signatures: dict[str, Signature]
    null: NullModels
    null_signatures: dict[str, Signature]
    null_distances: dict[str, float]
    result: ComparisonResult
    ground_truth: bool
    timings: dict[str, float] = field(default_factory=dict)
    queries_now: dict[str, QueryCount] = field(default_factory=dict)
    budget: BudgetPlan | None = None
    audit_argv: list[str] | None = None
    adapt: bool = False

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

    def query_entries(self) -> dict[str, dict[str, Any]]:
        """The measured queries of "Model A", "Model B" and every unrelated model (by its name), per signature.

        See :func:`zest_core.studies.signature_queries`: a cached signature reports what computing it took.
        """
        jobs = {f"Model {slot}": (f"Model {slot}", self.signatures[slot]) for slot in ("A", "B")}
        jobs.update({name: (f"Unrelated {name}", sig) for name, sig in self.null_signatures.items()})
        return {name: signature_queries(sig, self.queries_now.get(job, QueryCount()))
                for name, (job, sig) in jobs.items()}

    def audit(self, alpha: float) -> AuditResult:
        """The engine's calibrated verdict at level ``alpha`` (:func:`zest_core.studies.audit_signatures`).

        d(A, B) against the null distances d(A, U); with fewer than :data:`zest_core.explain.MIN_NULL`
        unrelated models it is "inconclusive".
        """
        detail = signature_query_detail(len(self.refset), self.config.num_samples)
        return audit_signatures(
            self.signatures["A"], self.signatures["B"], self.null_signatures, metric=self.result.metric,
            align=self.result.align, alpha=alpha,
            null_reason=self.null.reason, warnings=self.null.warnings,
            queries=queries_report(self.query_entries(), detail),
        )

    def model(self, slot: str) -> Classifier:
        """Model A or B as the comparison queried it (adapted to the reference images when ``adapt``)."""
        return input_model(self.choices[slot].spec, self.refset, f"Model {slot}", self.adapt)

    def throughput(self) -> float | None:
        """Images per second the models answered in this comparison's run (None when every signature was cached)."""
        images = sum(count.images for count in self.queries_now.values())
        seconds = self.timings.get("signatures_s", 0.0)
        return images / seconds if images and seconds > 0 else None

    def evidence(self) -> ImageEvidence | None:
        """Per reference image, how unusually close B is to A against the null (:func:`zest_core.explain.image_evidence`).

        None with fewer than 2 unrelated models (no spread to compare with).
        """
        if len(self.null_signatures) < 2:
            return None
        return image_evidence(self.signatures["A"], self.signatures["B"], self.null_signatures,
                              metric=self.result.metric, align=self.result.align)

    def evidence_views(self, evidence: ImageEvidence, count: int) -> list[EvidenceView]:
        """The pictures of the ``count`` images that carry the most evidence (:func:`zest_core.explain.evidence_views`)."""
        refset = self.refset
        labels = None
        if refset.labels is not None:
            labels = [refset.class_names[k] if refset.class_names else str(k) for k in refset.labels]
        return evidence_views(self.signatures["A"], self.signatures["B"], self.null_signatures, evidence,
                              evidence.most(count), labels=labels, align=self.result.align)

    def audit_record(self, alpha: float, zoo: Zoo | None) -> dict[str, Any]:
        """The record an audit report embeds (:func:`zest_core.studies.audit_record`), as ``zest audit --report`` makes it."""
        audit = self.audit(alpha)
        summary = {**audit.to_dict(), "budget": None if self.budget is None else self.budget.to_dict(),
                   "budget_split": None}
        summary["query_digests"] = {audit.method: zest_queries_digest(self.refset, self.config)}
        models = {slot_name: {"spec": self.choices[slot].spec, "fingerprint": self.meta[slot]["fingerprint"]}
                  for slot, slot_name in (("A", "reference"), ("B", "suspect"))}
        models["unrelated"] = []
        for name, spec in self.null.specs.items():
            model = input_model(spec, self.refset, name, self.adapt)
            facts = zoo_facts(zoo, name, model) if self.null.automatic and zoo is not None else model_facts(name, model)
            models["unrelated"].append({"name": name, "spec": spec, "fingerprint": model.fingerprint, "arch": facts.arch,
                                        "task": facts.task, "classes": facts.num_classes})
        argv = [] if self.audit_argv is None else ["zest", *self.audit_argv, "--alpha", f"{alpha:g}"]
        evidence = self.evidence()
        return audit_record(summary, models=models, refset=self.refset, refset_spec=self.refset.provenance,
                            config=self.config, command=argv, working_directory=os.getcwd(),
                            evidence=None if evidence is None else evidence.to_dict())

    def report(self, alpha: float) -> dict[str, Any]:
        """The JSON-ready report of the comparison, with its calibrated verdict at level ``alpha``."""
        audit = self.audit(alpha).to_dict()
        audit["null"].update(automatic=self.null.automatic, excluded=list(self.null.excluded))
        report = comparison_report(
            self.result,
            models=self.meta,
            refset=self.refset,
            config=self.config,
            alignments=self.alignments(self.ground_truth),
            extra={
                "timings_s": self.timings,
                "class_names_are_ground_truth": self.ground_truth,
                "verdict": audit["verdict"],
                "audit": audit,
            },
        )
        return report


@st.cache_data(show_spinner=False, max_entries=32)
def cached_alignments(key: str, names_as_truth: bool, *, _comparison: PairComparison) -> dict[str, AlignmentSummary]:
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
    unrelated: Sequence[tuple[str, str]],
    n_boot: int,
    level: float,
    seed: int,
    zoo: Zoo | None,
    sink: ProgressSink | None = None,
    budget: BudgetPlan | None = None,
    audit_argv: list[str] | None = None,
    adapt: bool = False,
) -> PairComparison:
    """Load both models and the unrelated ones, compute their signatures, compare the pair and measure the null.

    Parameters
    ----------
    unrelated : sequence of (str, str)
        (name, spec) of the unrelated models the user named; used unless both models come from the
        demo zoo (see :func:`comparison_null`).

    Raises
    ------
    JobError, ModelInputError, ZestError
        For bad input; the dashboard shows them with st.error.
    """
    start = time.perf_counter()
    models = _load_pair(choices, refset, adapt)
    null = comparison_null(choices, zoo, unrelated)
    null_models = checked_models({f"Unrelated {name}": spec for name, spec in null.specs.items()}, refset, adapt)
    null = checked_null(null, choices, zoo, models, {job.removeprefix("Unrelated "): m for job, m in null_models})
    jobs = [(f"Model {slot}", models[slot]) for slot in ("A", "B")]
    jobs += [(job, model) for job, model in null_models if job.removeprefix("Unrelated ") in null.specs]
    loaded = time.perf_counter()
    queries_now: dict[str, QueryCount] = {}
    signatures = signatures_with_progress(jobs, refset, config, sink, counters=queries_now)
    computed = time.perf_counter()
    pair = {"A": signatures["Model A"], "B": signatures["Model B"]}
    null_signatures = {name: signatures[f"Unrelated {name}"] for name in null.specs}
    result = compare_signatures(pair["A"], pair["B"], metric=metric, align=align, n_boot=n_boot, level=level,
                                seed=seed)
    null_distances = {name: zest_distance(pair["A"], sig, metric, align) for name, sig in null_signatures.items()}
    done = time.perf_counter()
    return PairComparison(
        key=key,
        choices=dict(choices),
        meta={slot: model_metadata(models[slot], choices[slot], zoo) for slot in ("A", "B")},
        refset=refset,
        config=config,
        signatures=pair,
        null=null,
        null_signatures=null_signatures,
        null_distances=null_distances,
        result=result,
        ground_truth=choices["A"].from_zoo and choices["B"].from_zoo,
        timings={
            "load_s": loaded - start, "signatures_s": computed - loaded, "compare_s": done - computed,
            "total_s": done - start,
        },
        queries_now=queries_now,
        budget=budget,
        audit_argv=audit_argv,
        adapt=adapt,
    )


def _load_pair(choices: Mapping[str, ModelChoice], refset: ReferenceSet, adapt: bool) -> dict[str, Classifier]:
    """Models A and B, loaded (cached) and checked against (or adapted to) the reference images; errors name the slot."""
    models = {}
    for slot in ("A", "B"):
        choice = choices[slot]
        try:
            cached_model(choice.spec)
        except ValueError as error:  # zest_core's errors are ValueErrors (ZestError)
            message = str(error)
            if choice.kind == "upload":  # the form's words, never the private staging path
                staged = choice.spec if choice.spec.startswith(os.sep) else choice.spec.partition(":")[2]
                message = upload_error(message, staged, choice.label)
            raise JobError(f"Model {slot}: {message}") from error
        models[slot] = input_model(choice.spec, refset, f"Model {slot} ({choice.label})", adapt)
    return models


def all_methods_audit(comparison: PairComparison, alpha: float) -> AuditResult:
    """``zest audit --method all`` on the comparison's models: Zest, ModelDiff, SAC-m and AKH, combined by Holm.

    The engine's :func:`zest_core.studies.audit` with the comparison's reference images, config, class
    alignment and null (the models it already checked). A method that cannot compare these models
    (ModelDiff without white-box access to A, AKH without labelled reference images) is inconclusive
    and left out of the combination, as the engine says.
    """
    models = {slot: comparison.model(slot) for slot in ("A", "B")}
    unrelated = dict(checked_models(comparison.null.specs, comparison.refset, comparison.adapt))
    return audit(models["A"], models["B"], unrelated, comparison.refset, method="all", config=comparison.config,
                 alpha=alpha, align=comparison.result.align, null_reason=comparison.null.reason,
                 akh_options={"pool": comparison.refset})


def pair_series(comparison: PairComparison | None, zoo: Zoo | None) -> dict[str, list[tuple[int, str]]] | None:
    """The checkpoint series of the current comparison's A and B, when both are zoo runs with checkpoints; else None."""
    if comparison is None or zoo is None:
        return None
    names = [comparison.choices[slot].spec.removeprefix("zoo:").partition("@")[0] for slot in ("A", "B")]
    if not all(comparison.choices[slot].from_zoo for slot in ("A", "B")) or names[0] == names[1]:
        return None
    if not all(name in zoo.entries and zoo_checkpoints(zoo, name) for name in names):
        return None
    return {name: zoo_series(zoo, name) for name in names}


def matrix_candidates(comparison: PairComparison | None, zoo: Zoo | None) -> dict[str, str]:
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
