"""``zest audit REFERENCE SUSPECT``: is the suspect derived from the reference? A calibrated verdict."""
from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from .._shared.checks import check_int
from .._shared.progress import ProgressBar
from ..errors import NullError
from ..explain import evidence_views, image_evidence
from ..pipeline.budget import DEFAULT_AUDIT_BUDGET, BudgetPlan
from ..pipeline.fingerprint import model_fingerprint
from ..sources.checkpoints import CHECKPOINT_EXTENSIONS, folder_models
from ..sources.models import is_model_folder
from ..studies.accounting import count_text, describe_entry
from ..studies.audit import ALL, COMBINED_METHODS, REFERENCE, SUSPECT, AuditResult, audit
from ..studies.commitment import zest_queries_digest
from ..studies.handover import audit_record
from ..studies.sequential import sequential_audit
from ..zoo import MatchedNull, load_zoo, matched_null, resolve_null
from ..zoo.nulls import ZOO_PREFIX, model_facts, zoo_facts
from .inputs import (EXIT_OK, CLIError, adapted, budgeted, cache_from_request, config_from_request, load_classifier,
                     load_refset, requested_budget)
from .requests import AuditRequest, QueryFlags
from .reports import check_report_path, read_commitment, write_report


@dataclass
class AuditPlan:
    """What an audit will send every suspect, decided from the flags alone (before any model is loaded).

    Attributes
    ----------
    pool : ReferenceSet
        The ``--refset`` images (AKH's pool).
    refset : ReferenceSet
        The reference images the audit uses (a budget's N for Zest).
    config : ZestConfig
    refsets : dict or None
        Per method, for ``--method all``.
    split : dict or None
        The budget split of ``--method all``.
    options : dict
        ``sac_options`` and ``akh_options`` of :func:`zest_core.studies.audit`.
    budget_plan : BudgetPlan or None
        Zest's N × L plan of ``--budget`` (of its share, for ``--method all``); None without a budget.
    """

    pool: Any
    refset: Any
    config: Any
    refsets: dict[str, Any] | None
    split: dict[str, Any] | None
    options: dict[str, Any]
    budget_plan: BudgetPlan | None = None


def plan_audit(request: QueryFlags) -> AuditPlan:
    """The reference images, config and method options ``zest audit`` and ``zest commit`` derive from the flags."""
    check_int("--sac-images", request.sac_images, minimum=2)  # before any model is loaded
    check_int("--akh-queries", request.akh_queries, minimum=1)
    config = config_from_request(request)
    pool = load_refset(request.refset or "mnist", request.image_size)
    refsets, split, budget_plan = None, None, None
    sac_images, akh_queries = request.sac_images, request.akh_queries
    if request.method == ALL:
        refset, config, refsets, split, budget_plan = _split_budget(request, pool, config)
        sac_images, akh_queries = split["sac"]["queries"], split["akh"]["queries"]
    elif request.method.startswith("zest"):  # the other methods have their own query counts (--sac-images, the seeds)
        refset, config, budget_plan = budgeted(request, pool, config, default=DEFAULT_AUDIT_BUDGET)
    else:
        refset = pool
    options = {"sac_options": {"num_images": sac_images}, "akh_options": {"num_queries": akh_queries, "pool": pool}}
    return AuditPlan(pool, refset, config, refsets, split, options, budget_plan)


def cmd_audit(request: AuditRequest) -> int:
    """``zest audit REFERENCE SUSPECT [--unrelated SPEC ...] [--alpha A] [--method M] [--json] [--report F]``."""
    report_path = check_report_path(request.report)  # before any work
    commitment = read_commitment(request.commitment)
    if request.sequential:
        if request.report or request.commitment:
            raise CLIError("--sequential: --report and --commitment take a fixed audit, not a sequential one")
        return _sequential(request, plan_audit(request))
    result, report, record, figures_in = run_audit(request, commitment=commitment)
    for warning in result.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    if report_path is not None:
        write_report(report_path, record, figures_in)
        print(f"report: {report_path} (check it with `zest verify {report_path}`)", file=sys.stderr)
    print(json.dumps(report, indent=2) if request.json else describe(result, report["budget_split"]))
    return EXIT_OK


def run_audit(request: AuditRequest, *, commitment: Mapping[str, Any] | None = None,
              ) -> tuple[AuditResult, dict[str, Any], dict[str, Any], dict[str, Any]]:
    """Run the audit the flags describe: its result, its JSON report, its record, and what its figures need.

    The record (:func:`zest_core.studies.audit_record`) holds the fingerprints, the reference set, the
    config, the query digests, the commitment and the per-image evidence; ``zest verify`` recomputes it
    from ``request.argv`` through this same function.
    """
    plan = plan_audit(request)
    reference, suspect, unrelated, null = _audit_models(request)
    adapt = request.input_adapter
    reference = adapted(request.reference, reference, plan.refset, adapt)
    suspect = adapted(request.suspect, suspect, plan.refset, adapt)
    unrelated = {name: adapted(name, model, plan.refset, adapt) for name, model in unrelated.items()}
    with ProgressBar("audit: ") as bar:
        result = audit(reference, suspect, unrelated, plan.refset, null=null, refsets=plan.refsets, progress=bar,
                       method=request.method, config=plan.config, alpha=request.alpha, align=request.align,
                       cache=cache_from_request(request), commitment=commitment, **plan.options)
    budget = None if plan.budget_plan is None else plan.budget_plan.to_dict()
    report = {**result.to_dict(), "budget": budget, "budget_split": plan.split}
    evidence, views = audit_evidence(result, plan, align=request.align)
    models = {
        "reference": {"spec": request.reference, "fingerprint": model_fingerprint(reference)},
        "suspect": {"spec": request.suspect, "fingerprint": model_fingerprint(suspect)},
        "unrelated": _null_models(unrelated, request),
    }
    record = audit_record(report, models=models, refset=plan.refset, refset_spec=request.refset or "mnist",
                          config=plan.config, command=["zest", *request.argv],
                          working_directory=os.getcwd(), commitment=commitment,
                          evidence=None if evidence is None else evidence.to_dict())
    return result, report, record, {"views": views, "refset": plan.refset, "signatures": result.signatures}


def audit_evidence(result: AuditResult, plan: AuditPlan, *, align: str) -> tuple[Any, list[Any]]:
    """The per-image evidence of a Zest audit and the pictures of its 4 strongest images (None, [] without Zest)."""
    sigs = result.signatures
    method = next((name for name in result.methods if name.startswith("zest")), None)
    if method is None or len(result.null_models) < 2:
        return None, []
    null = {name: sigs[name] for name in result.null_models}
    metric = method.removeprefix("zest-")
    evidence = image_evidence(sigs[REFERENCE], sigs[SUSPECT], null, metric=metric, align=align)
    refset = plan.refset
    labels = None
    if refset.labels is not None:
        labels = [refset.class_names[k] if refset.class_names else str(k) for k in refset.labels]
    views = evidence_views(sigs[REFERENCE], sigs[SUSPECT], null, evidence, evidence.most(4), labels=labels,
                           align=align)
    return evidence, views


def _null_models(unrelated: Mapping[str, Any], request: AuditRequest) -> list[dict[str, Any]]:
    """The unrelated models as the record lists them: name, spec, SHA-256, and what makes each a matched model."""
    zoo = None if request.unrelated else load_zoo(request.zoo)  # without --unrelated, the zoo's matched null
    listed = []
    for name, model in unrelated.items():
        facts = model_facts(name, model) if zoo is None else zoo_facts(zoo, name, model)
        listed.append({"name": name, "spec": name if zoo is None else f"{ZOO_PREFIX}{name}",
                       "fingerprint": model_fingerprint(model), "arch": facts.arch, "task": facts.task,
                       "classes": facts.num_classes})
    return listed


def _split_budget(request: QueryFlags, refset: Any, config: Any,
                  ) -> tuple[Any, Any, dict[str, Any], dict[str, Any], BudgetPlan | None]:
    """``--method all --budget Q``: Q queries per suspect in all, split equally among the four methods.

    Each method gets ⌊Q/4⌋: Zest the N × L plan of :func:`~zest_core.pipeline.budget.apply_budget`,
    ModelDiff ⌊Q/8⌋ seed images (it asks 2 per seed), SAC that many CutMix images, AKH that many
    queries. Without a budget (``--budget 0``, or ``--samples`` given) each method uses its own setting.
    """
    budget = requested_budget(request, DEFAULT_AUDIT_BUDGET)
    if not budget:
        refsets = {"zest-cosine": refset, "modeldiff": refset, "sac": refset, "akh": refset}
        return refset, config, refsets, {
            "budget": None, "sac": {"queries": request.sac_images}, "akh": {"queries": request.akh_queries},
        }, None
    share = budget // len(COMBINED_METHODS)
    seeds = share // 2
    if seeds < 1:
        raise CLIError(f"--budget: expected at least {2 * len(COMBINED_METHODS)} queries to split among "
                       f"{', '.join(COMBINED_METHODS)}, got {budget}")
    print(f"--budget {budget}, split equally: {share} queries per method ({', '.join(COMBINED_METHODS)})",
          file=sys.stderr)
    images, chosen, plan = budgeted(request, refset, config, budget=share)
    refsets = {"zest-cosine": images, "modeldiff": refset.subset(list(range(min(seeds, len(refset))))),
               "sac": refset, "akh": refset}
    split = {
        "budget": budget, "per_method": share,
        "zest-cosine": {"queries": plan.queries, "plan": plan.to_dict()},
        "modeldiff": {"queries": 2 * min(seeds, len(refset)), "seeds": min(seeds, len(refset))},
        "sac": {"queries": share}, "akh": {"queries": share},
    }
    return images, chosen, refsets, split, plan


def _sequential(request: AuditRequest, plan: AuditPlan) -> int:
    """``zest audit --sequential``: Zest cosine in rounds of reference images, stopping once decided.

    The JSON has the fixed audit's keys (the verdict, its p-value, α, distance, detection threshold,
    reason, null, queries), from the round it stopped at, plus ``rounds``.
    """
    if request.method != "zest-cosine":
        raise CLIError(f"--sequential: expected --method zest-cosine, got {request.method}")
    refset, config = plan.refset, plan.config
    reference, suspect, unrelated, null = _audit_models(request)
    with ProgressBar("sequential audit: "):
        decision, signatures = sequential_audit(reference, suspect, unrelated, refset, config=config, alpha=request.alpha,
                                                align=request.align, cache=cache_from_request(request))
    asked = {name: signatures.joined(name, decision.stopped_round).recorded_queries()
             for name in ("reference", "suspect", *unrelated)}
    last = decision.decisions[-1]
    fixed = last.to_dict()
    report = {
        "verdict": decision.verdict, "p_value": last.p_value, "rank_p_value": last.rank_p_value,
        "alpha": decision.rule.alpha, "distance": last.distance, "detection_threshold": last.detection_threshold,
        "method": "zest-cosine", "reason": last.reason,
        "methods": {"zest-cosine": fixed}, "combination": None,
        "null": {"models": list(unrelated), "distances": dict(zip(unrelated, last.null_distances)),
                 "reason": null.reason, "warnings": list(null.warnings)},
        "queries": {name: None if q is None else q.to_dict() for name, q in asked.items()},
        "budget": None if plan.budget_plan is None else plan.budget_plan.to_dict(), "budget_split": None,
        # The images every round could ask: a suspect is asked the rounds up to the one it stopped at.
        "query_digests": {"zest-cosine": zest_queries_digest(refset, config)},
        "rounds": decision.to_dict(),
    }
    if request.json:
        print(json.dumps(report, indent=2))
        return EXIT_OK
    rounds = ", ".join(f"N = {n}: p = {'n/a' if p is None else f'{p:.3g}'}" for n, p in
                       zip(decision.sizes, report["rounds"]["p_values"]))
    suspect_asked = asked["suspect"]
    print("\n".join([
        f"verdict: {decision.verdict} after round {decision.stopped_round} of {decision.rule.rounds} "
        f"(each round at α / {decision.rule.rounds} = {decision.rule.round_alpha:.4g})",
        f"rounds: {rounds}",
        f"why: {last.reason}",
        f"null: {null.reason}",
        f"queries of the suspect: {'not recorded' if suspect_asked is None else count_text(suspect_asked.to_dict())}",
    ]))
    return EXIT_OK


def _audit_models(request: AuditRequest) -> tuple[Any, Any, dict[str, Any], MatchedNull]:
    """The reference, the suspect, the unrelated models and their null, resolved and checked by ``resolve_null``.

    Named ``--unrelated`` models take precedence; two ``zoo:`` models otherwise get the zoo's matched
    null. A null that would make the verdict wrong is refused before any query (a ``NullError``
    naming ``--unrelated``).
    """
    both_zoo = request.reference.startswith(ZOO_PREFIX) and request.suspect.startswith(ZOO_PREFIX)
    zoo = load_zoo(request.zoo) if both_zoo or any(
        spec.startswith(ZOO_PREFIX) for spec in (request.unrelated or [])) else None
    if request.unrelated:
        specs = unrelated_specs(request.unrelated)
        models: dict[str, Any] = {}
        for spec in (request.reference, request.suspect, *specs):
            if spec not in models:
                models[spec] = load_classifier(spec, **request.model_options())
        null = resolve_null(request.reference, request.suspect, zoo=zoo, models=models, unrelated=specs)
        return models[request.reference], models[request.suspect], {spec: models[spec] for spec in specs}, null
    if both_zoo:
        reference, suspect = request.reference.removeprefix(ZOO_PREFIX), request.suspect.removeprefix(ZOO_PREFIX)
        # Every model loaded once: the matched null's too, which resolve_null then checks as they are.
        names = (reference, suspect, *matched_null(zoo, reference, suspect).models)
        models = {name: zoo.load(name) for name in dict.fromkeys(names)}
        null = resolve_null(reference, suspect, zoo=zoo, models=models)
        return models[reference], models[suspect], {name: models[name] for name in null.models}, null
    raise NullError(
        "--unrelated: expected the models trained independently for the suspect's task with its "
        "architecture (zoo models get them from the zoo's manifest); without them there is no "
        "calibrated verdict"
    )


def unrelated_specs(values: Sequence[str]) -> list[str]:
    """``--unrelated`` values: model specs, folders (every model file inside) or @FILE (one spec per line)."""
    specs: list[str] = []
    for value in values:
        if value.startswith("@"):
            path = Path(value[1:])
            if not path.is_file():
                raise CLIError(f"--unrelated: expected @FILE to name a list of models, got {value!r} (no such file)")
            specs += [line.strip() for line in path.read_text().splitlines() if line.strip() and not line.startswith("#")]
        elif Path(value).is_dir() and not is_model_folder(value):
            files = [str(p) for p in folder_models(value)]
            if not files:
                raise CLIError(f"--unrelated: expected model files ({', '.join(CHECKPOINT_EXTENSIONS)}) in {value}, got none")
            specs += files
        else:
            specs.append(value)
    return specs


def describe(result: AuditResult, split: Mapping[str, Any] | None = None) -> str:
    """The verdict for people: the verdict, each method's p-value and threshold, the null and the queries."""
    d = result.decision
    p = "n/a" if d.p_value is None else f"{d.p_value:.3g}"
    lines = [f"verdict: {d.verdict} (p = {p}, α = {d.alpha:g}; method: {result.method})", f"why: {d.reason}"]
    for name, m in result.methods.items():
        mp = "n/a" if m.p_value is None else f"{m.p_value:.3g}"
        adjusted = (result.combination or {}).get("adjusted", {}).get(name)
        holm = "" if adjusted is None else f", Holm-adjusted {adjusted:.3g}"
        threshold = "" if m.detection_threshold is None else f", detectable below {m.detection_threshold:.4g}"
        lines.append(f"  {name}: {m.verdict}, d = {m.distance:.6g}, p = {mp}{holm}{threshold}")
    null = ", ".join(f"{name} {dist:.4g}" for name, dist in zip(result.null_models, d.null_distances))
    if not null and len(result.methods) == 1:
        only = next(iter(result.methods.values()))
        null = ", ".join(f"{name} {dist:.4g}" for name, dist in zip(result.null_models, only.null_distances))
    lines += [f"null: {result.null_reason}", f"null distances: {null or 'see each method'}"]
    lines += [f"warning: {w}" for w in result.warnings]
    if split and split.get("budget"):
        lines.append("budget split: " + ", ".join(f"{name} {split[name]['queries']}" for name in COMBINED_METHODS))
    if "methods" in result.queries:
        for name, report in result.queries["methods"].items():
            lines += [f"[{name}]", *query_lines(report)]
    else:
        lines += query_lines(result.queries)
    return "\n".join(lines)


def query_lines(queries: Mapping[str, Any]) -> list[str]:
    """The measured queries for people: what one model's are, one line per model, and the totals."""
    lines = [f"queries ({queries['detail']}):"]
    lines += [f"  {name}: {describe_entry(entry)}" for name, entry in queries["per_model"].items()]
    total, now = queries["total"], queries["now"]
    taken = "not recorded for every model" if total is None else count_text(total)
    lines.append(f"  total: {taken}; made now: {count_text(now)}")
    return lines
