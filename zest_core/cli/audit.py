"""``zest audit REFERENCE SUSPECT``: is the suspect derived from the reference? A calibrated verdict."""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any, Mapping

from .._shared.checks import check_int
from .._shared.progress import ProgressBar
from ..pipeline.budget import DEFAULT_AUDIT_BUDGET
from ..sources.checkpoints import CHECKPOINT_EXTENSIONS
from ..studies.accounting import count_text, describe_entry
from ..studies.audit import AuditResult, audit
from ..studies.sequential import sequential_audit
from ..zoo import load_zoo, matched_null
from .inputs import EXIT_OK, CLIError, budgeted, cache_from_args, config_from_args, load_classifier, load_refset, model_options

ZOO_PREFIX = "zoo:"


def cmd_audit(args: argparse.Namespace) -> int:
    """``zest audit REFERENCE SUSPECT [--unrelated SPEC ...] [--alpha A] [--method M] [--json]``."""
    check_int("--sac-images", args.sac_images, minimum=2)  # before any model is loaded
    config = config_from_args(args)
    refset = load_refset(args.refset or "mnist", args.image_size)
    if args.method.startswith("zest"):  # the other methods have their own query counts (--sac-images, the seeds)
        refset, config = budgeted(args, refset, config, default=DEFAULT_AUDIT_BUDGET)
    else:
        args.budget_plan = None
    if args.sequential:
        return _sequential(args, refset, config)
    options = dict(method=args.method, config=config, alpha=args.alpha, align=args.align, cache=cache_from_args(args),
                   sac_options={"num_images": args.sac_images})
    reference, suspect, unrelated, reason = _audit_models(args)
    with ProgressBar("audit: ") as bar:
        result = audit(reference, suspect, unrelated, refset, null_reason=reason, progress=bar, **options)
    budget = None if args.budget_plan is None else args.budget_plan.to_dict()
    print(json.dumps({**result.to_dict(), "budget": budget}, indent=2) if args.json else describe(result))
    return EXIT_OK


def _sequential(args: argparse.Namespace, refset: Any, config: Any) -> int:
    """``zest audit --sequential``: Zest cosine in rounds of reference images, stopping once decided."""
    if args.method != "zest-cosine":
        raise CLIError(f"--sequential: expected --method zest-cosine, got {args.method}")
    reference, suspect, unrelated, reason = _audit_models(args)
    with ProgressBar("sequential audit: "):
        decision, signatures = sequential_audit(reference, suspect, unrelated, refset, config=config, alpha=args.alpha,
                                                align=args.align, cache=cache_from_args(args))
    asked = {name: signatures.joined(name, decision.stopped_round).recorded_queries()
             for name in ("reference", "suspect", *unrelated)}
    report = {**decision.to_dict(), "null": {"models": list(unrelated), "reason": reason},
              "queries": {name: None if q is None else q.to_dict() for name, q in asked.items()},
              "budget": None if args.budget_plan is None else args.budget_plan.to_dict()}
    if args.json:
        print(json.dumps(report, indent=2))
        return EXIT_OK
    rounds = ", ".join(f"N = {n}: p = {'n/a' if p is None else f'{p:.3g}'}" for n, p in
                       zip(decision.sizes, report["p_values"]))
    suspect_asked = asked["suspect"]
    print("\n".join([
        f"verdict: {decision.verdict} after round {decision.stopped_round} of {decision.rule.rounds} "
        f"(each round at α / {decision.rule.rounds} = {decision.rule.round_alpha:.4g})",
        f"rounds: {rounds}",
        f"null: {reason}",
        f"queries of the suspect: {'not recorded' if suspect_asked is None else count_text(suspect_asked.to_dict())}",
    ]))
    return EXIT_OK


def _audit_models(args: argparse.Namespace) -> tuple[Any, Any, dict[str, Any], str]:
    """The reference, the suspect, the unrelated models (named, or the zoo's matched null) and why those."""
    if args.unrelated:
        unrelated = {spec: load_classifier(spec, **model_options(args)) for spec in unrelated_specs(args.unrelated)}
        return (load_classifier(args.reference, **model_options(args)),
                load_classifier(args.suspect, **model_options(args)), unrelated, "named with --unrelated")
    if args.reference.startswith(ZOO_PREFIX) and args.suspect.startswith(ZOO_PREFIX):
        zoo = load_zoo(args.zoo)
        reference, suspect = args.reference.removeprefix(ZOO_PREFIX), args.suspect.removeprefix(ZOO_PREFIX)
        null = matched_null(zoo, reference, suspect)
        return zoo.load(reference), zoo.load(suspect), {name: zoo.load(name) for name in null.models}, null.reason
    raise CLIError(
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


def describe(result: AuditResult) -> str:
    """The verdict for people: one line each for the verdict, the distance, the null and the queries."""
    d = result.decision
    p = "n/a" if d.p_value is None else f"{d.p_value:.3g}"
    null = ", ".join(f"{name} {dist:.4g}" for name, dist in zip(result.null_models, d.null_distances)) or "none"
    return "\n".join([
        f"verdict: {d.verdict} (p = {p}, α = {d.alpha:g}; rank p = {d.rank_p_value if d.rank_p_value is None else round(d.rank_p_value, 3)})",
        f"distance ({result.method}): {d.distance:.6g}",
        f"why: {d.reason}",
        f"null: {result.null_reason}",
        f"null distances: {null}",
        *query_lines(result.queries),
    ])


def query_lines(queries: Mapping[str, Any]) -> list[str]:
    """The measured queries for people: what one model's are, one line per model, and the totals."""
    lines = [f"queries ({queries['detail']}):"]
    lines += [f"  {name}: {describe_entry(entry)}" for name, entry in queries["per_model"].items()]
    total, now = queries["total"], queries["now"]
    taken = "not recorded for every model" if total is None else count_text(total)
    lines.append(f"  total: {taken}; made now: {count_text(now)}")
    return lines
