"""``zest audit REFERENCE SUSPECT``: is the suspect derived from the reference? A calibrated verdict."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Mapping

from .._shared.checks import check_int
from .._shared.progress import ProgressBar
from ..errors import NullError
from ..pipeline.budget import DEFAULT_AUDIT_BUDGET, apply_budget
from ..sources.checkpoints import CHECKPOINT_EXTENSIONS
from ..studies.accounting import count_text, describe_entry
from ..studies.audit import ALL, COMBINED_METHODS, AuditResult, audit
from ..studies.sequential import sequential_audit
from ..zoo import MatchedNull, load_zoo, matched_null, resolve_null
from ..zoo.nulls import ZOO_PREFIX
from .inputs import (EXIT_OK, CLIError, budgeted, cache_from_args, config_from_args, load_classifier, load_refset,
                     model_options, named_as_flags)


def cmd_audit(args: argparse.Namespace) -> int:
    """``zest audit REFERENCE SUSPECT [--unrelated SPEC ...] [--alpha A] [--method M] [--json]``."""
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
    if args.sequential:
        return _sequential(args, refset, config)
    reference, suspect, unrelated, null = _audit_models(args)
    options = dict(method=args.method, config=config, alpha=args.alpha, align=args.align, cache=cache_from_args(args),
                   sac_options={"num_images": sac_images}, akh_options={"num_queries": akh_queries, "pool": pool})
    with ProgressBar("audit: ") as bar:
        result = audit(reference, suspect, unrelated, refset, null=null, refsets=refsets, progress=bar, **options)
    for warning in result.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    budget = None if args.budget_plan is None else args.budget_plan.to_dict()
    report = {**result.to_dict(), "budget": budget, "budget_split": split}
    print(json.dumps(report, indent=2) if args.json else describe(result, split))
    return EXIT_OK


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
        images, chosen, plan = apply_budget(share, refset, config,
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
        elif Path(value).is_dir():
            files = sorted(str(p) for p in Path(value).iterdir() if p.suffix.lower() in CHECKPOINT_EXTENSIONS)
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
