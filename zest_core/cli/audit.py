"""``zest audit REFERENCE SUSPECT``: is the suspect derived from the reference? A calibrated verdict."""
from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from .._shared.checks import check_int
from .._shared.progress import ProgressBar
from ..errors import NullError
from ..explain import evidence_views, image_evidence
from ..pipeline.budget import DEFAULT_AUDIT_BUDGET, apply_budget
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
from .inputs import (EXIT_OK, CLIError, adapted, budgeted, cache_from_args, config_from_args, load_classifier, load_refset,
                     model_options, named_as_flags)
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
    """

    pool: Any
    refset: Any
    config: Any
    refsets: dict[str, Any] | None
    split: dict[str, Any] | None
    options: dict[str, Any]


def plan_audit(args: argparse.Namespace) -> AuditPlan:
    """The reference images, config and method options ``zest audit`` and ``zest commit`` derive from the flags."""
    check_int("--sac-images", args.sac_images, minimum=2)  # before any model is loaded
    check_int("--akh-queries", args.akh_queries, minimum=1)
    config = config_from_args(args)
    pool = load_refset(args.refset or "mnist", args.image_size)
    refsets, split = None, None
    sac_images, akh_queries = args.sac_images, args.akh_queries
    if args.method == ALL:
        refset, config, refsets, split = _split_budget(args, pool, config)
        sac_images, akh_queries = split["sac"]["queries"], split["akh"]["queries"]
    elif args.method.startswith("zest"):  # the other methods have their own query counts (--sac-images, the seeds)
        refset, config = budgeted(args, pool, config, default=DEFAULT_AUDIT_BUDGET)
    else:
        refset, args.budget_plan = pool, None
    options = {"sac_options": {"num_images": sac_images}, "akh_options": {"num_queries": akh_queries, "pool": pool}}
    return AuditPlan(pool, refset, config, refsets, split, options)


def cmd_audit(args: argparse.Namespace) -> int:
    """``zest audit REFERENCE SUSPECT [--unrelated SPEC ...] [--alpha A] [--method M] [--json] [--report F]``."""
    report_path = check_report_path(args.report)  # before any work
    commitment = read_commitment(args.commitment)
    if args.sequential:
        if args.report or args.commitment:
            raise CLIError("--sequential: --report and --commitment take a fixed audit, not a sequential one")
        plan = plan_audit(args)
        return _sequential(args, plan.refset, plan.config)
    result, report, record, figures_in = run_audit(args, commitment=commitment)
    for warning in result.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    if report_path is not None:
        write_report(report_path, record, figures_in)
        print(f"report: {report_path} (check it with `zest verify {report_path}`)", file=sys.stderr)
    print(json.dumps(report, indent=2) if args.json else describe(result, report["budget_split"]))
    return EXIT_OK


def run_audit(args: argparse.Namespace, *, commitment: Mapping[str, Any] | None = None,
              ) -> tuple[AuditResult, dict[str, Any], dict[str, Any], dict[str, Any]]:
    """Run the audit the flags describe: its result, its JSON report, its record, and what its figures need.

    The record (:func:`zest_core.studies.audit_record`) holds the fingerprints, the reference set, the
    config, the query digests, the commitment and the per-image evidence; ``zest verify`` recomputes it
    from ``args.argv`` through this same function.
    """
    plan = plan_audit(args)
    reference, suspect, unrelated, null = _audit_models(args)
    adapt = getattr(args, "input_adapter", False)
    reference = adapted(args.reference, reference, plan.refset, adapt)
    suspect = adapted(args.suspect, suspect, plan.refset, adapt)
    unrelated = {name: adapted(name, model, plan.refset, adapt) for name, model in unrelated.items()}
    with ProgressBar("audit: ") as bar:
        result = audit(reference, suspect, unrelated, plan.refset, null=null, refsets=plan.refsets, progress=bar,
                       method=args.method, config=plan.config, alpha=args.alpha, align=args.align,
                       cache=cache_from_args(args), commitment=commitment, **plan.options)
    budget = None if args.budget_plan is None else args.budget_plan.to_dict()
    report = {**result.to_dict(), "budget": budget, "budget_split": plan.split}
    evidence, views = audit_evidence(result, plan, args)
    models = {
        "reference": {"spec": args.reference, "fingerprint": model_fingerprint(reference)},
        "suspect": {"spec": args.suspect, "fingerprint": model_fingerprint(suspect)},
        "unrelated": _null_models(unrelated, args),
    }
    record = audit_record(report, models=models, refset=plan.refset, refset_spec=args.refset or "mnist",
                          config=plan.config, command=["zest", *getattr(args, "argv", [])],
                          working_directory=os.getcwd(), commitment=commitment,
                          evidence=None if evidence is None else evidence.to_dict())
    return result, report, record, {"views": views, "refset": plan.refset, "signatures": result.signatures}


def audit_evidence(result: AuditResult, plan: AuditPlan, args: argparse.Namespace) -> tuple[Any, list[Any]]:
    """The per-image evidence of a Zest audit and the pictures of its 4 strongest images (None, [] without Zest)."""
    sigs = result.signatures
    method = next((name for name in result.methods if name.startswith("zest")), None)
    if method is None or len(result.null_models) < 2:
        return None, []
    null = {name: sigs[name] for name in result.null_models}
    metric = method.removeprefix("zest-")
    evidence = image_evidence(sigs[REFERENCE], sigs[SUSPECT], null, metric=metric, align=args.align)
    refset = plan.refset
    labels = None
    if refset.labels is not None:
        labels = [refset.class_names[k] if refset.class_names else str(k) for k in refset.labels]
    views = evidence_views(sigs[REFERENCE], sigs[SUSPECT], null, evidence, evidence.most(4), labels=labels,
                           align=args.align)
    return evidence, views


def _null_models(unrelated: Mapping[str, Any], args: argparse.Namespace) -> list[dict[str, Any]]:
    """The unrelated models as the record lists them: name, spec, SHA-256, and what makes each a matched model."""
    zoo = None if args.unrelated else load_zoo(args.zoo)  # without --unrelated, the zoo's matched null
    listed = []
    for name, model in unrelated.items():
        facts = model_facts(name, model) if zoo is None else zoo_facts(zoo, name, model)
        listed.append({"name": name, "spec": name if zoo is None else f"{ZOO_PREFIX}{name}",
                       "fingerprint": model_fingerprint(model), "arch": facts.arch, "task": facts.task,
                       "classes": facts.num_classes})
    return listed


def _split_budget(args: argparse.Namespace, refset: Any, config: Any) -> tuple[Any, Any, dict[str, Any], dict | None]:
    """``--method all --budget Q``: Q queries per suspect in all, split equally among the four methods.

    Each method gets ⌊Q/4⌋: Zest the N × L plan of :func:`~zest_core.pipeline.budget.apply_budget`,
    ModelDiff ⌊Q/8⌋ seed images (it asks 2 per seed), SAC that many CutMix images, AKH that many
    queries. Without a budget (``--budget 0``, or ``--samples`` given) each method uses its own setting.
    """
    budget = args.budget if args.budget is not None else (DEFAULT_AUDIT_BUDGET if args.samples is None else 0)
    args.budget_plan = None
    if not budget:
        refsets = {"zest-cosine": refset, "modeldiff": refset, "sac": refset, "akh": refset}
        return refset, config, refsets, {
            "budget": None, "sac": {"queries": args.sac_images}, "akh": {"queries": args.akh_queries},
        }
    if args.samples is not None:
        raise CLIError(f"--budget, --samples: expected one of them (the budget chooses L), got both ({budget} and "
                       f"{args.samples})")
    share = budget // len(COMBINED_METHODS)
    seeds = share // 2
    if seeds < 1:
        raise CLIError(f"--budget: expected at least {2 * len(COMBINED_METHODS)} queries to split among "
                       f"{', '.join(COMBINED_METHODS)}, got {budget}")
    with named_as_flags({"budget": "--budget"}):
        images, chosen, plan = apply_budget(share, refset, config, cache=cache_from_args(args),
                                            repeat_check=not getattr(args, "allow_nondeterministic", False))
    args.budget_plan = plan
    refsets = {"zest-cosine": images, "modeldiff": refset.subset(list(range(min(seeds, len(refset))))),
               "sac": refset, "akh": refset}
    split = {
        "budget": budget, "per_method": share,
        "zest-cosine": {"queries": plan.queries, "plan": plan.to_dict()},
        "modeldiff": {"queries": 2 * min(seeds, len(refset)), "seeds": min(seeds, len(refset))},
        "sac": {"queries": share}, "akh": {"queries": share},
    }
    print(f"--budget {budget}, split equally: {share} queries per method ({', '.join(COMBINED_METHODS)})",
          file=sys.stderr)
    return images, chosen, refsets, split


def _sequential(args: argparse.Namespace, refset: Any, config: Any) -> int:
    """``zest audit --sequential``: Zest cosine in rounds of reference images, stopping once decided.

    The JSON has the fixed audit's keys (the verdict, its p-value, α, distance, detection threshold,
    reason, null, queries), from the round it stopped at, plus ``rounds``.
    """
    if args.method != "zest-cosine":
        raise CLIError(f"--sequential: expected --method zest-cosine, got {args.method}")
    reference, suspect, unrelated, null = _audit_models(args)
    with ProgressBar("sequential audit: "):
        decision, signatures = sequential_audit(reference, suspect, unrelated, refset, config=config, alpha=args.alpha,
                                                align=args.align, cache=cache_from_args(args))
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
        "budget": None if args.budget_plan is None else args.budget_plan.to_dict(), "budget_split": None,
        # The images every round could ask: a suspect is asked the rounds up to the one it stopped at.
        "query_digests": {"zest-cosine": zest_queries_digest(refset, config)},
        "rounds": decision.to_dict(),
    }
    if args.json:
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


def _audit_models(args: argparse.Namespace) -> tuple[Any, Any, dict[str, Any], MatchedNull]:
    """The reference, the suspect, the unrelated models and their null, resolved and checked by ``resolve_null``.

    Named ``--unrelated`` models take precedence; two ``zoo:`` models otherwise get the zoo's matched
    null. A null that would make the verdict wrong is refused before any query (a ``NullError``
    naming ``--unrelated``).
    """
    both_zoo = args.reference.startswith(ZOO_PREFIX) and args.suspect.startswith(ZOO_PREFIX)
    zoo = load_zoo(args.zoo) if both_zoo or any(
        spec.startswith(ZOO_PREFIX) for spec in (args.unrelated or [])) else None
    if args.unrelated:
        specs = unrelated_specs(args.unrelated)
        models: dict[str, Any] = {}
        for spec in (args.reference, args.suspect, *specs):
            if spec not in models:
                models[spec] = load_classifier(spec, **model_options(args))
        null = resolve_null(args.reference, args.suspect, zoo=zoo, models=models, unrelated=specs)
        return models[args.reference], models[args.suspect], {spec: models[spec] for spec in specs}, null
    if both_zoo:
        reference, suspect = args.reference.removeprefix(ZOO_PREFIX), args.suspect.removeprefix(ZOO_PREFIX)
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


def unrelated_specs(values: list[str]) -> list[str]:
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
