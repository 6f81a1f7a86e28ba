"""``zest commit``, ``zest audit --report`` and ``zest verify``: commit to the queries, hand the verdict over, re-check it.

- ``zest commit [--reference SPEC] --refset ... [flags] -o commitment.json`` hashes every image the audit
  will send a suspect (:mod:`zest_core.studies.commitment`), before any suspect is seen;
- ``zest audit ... --commitment commitment.json`` refuses to query with other images;
- ``zest audit ... --report audit.html`` (or ``.json``) writes the self-contained report;
- ``zest verify audit.html`` recomputes the audit from the recorded command (optionally with other
  ``--reference``, ``--suspect`` or ``--refset``) and says what differs. Exit 0: everything matches;
  1: something differs (each difference on its own line); 2: bad input.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .._shared.atomic import atomic_write_bytes
from ..studies.audit import audit_query_digests
from ..studies.commitment import commitment_record
from ..studies.handover import compare_records, read_report, record_intact
from .audit import plan_audit, run_audit
from .inputs import EXIT_OK, CLIError, cache_from_args, check_writable, load_classifier, model_options

EXIT_DIFFERS = 1


def cmd_commit(args: argparse.Namespace) -> int:
    """``zest commit [--reference SPEC] --refset REF [flags] -o FILE``: the queries' digests, before any suspect."""
    out = Path(args.out)
    if out.suffix.lower() != ".json":
        raise CLIError(f"-o: expected a .json file, got {args.out}")
    check_writable("-o", out)
    plan = plan_audit(args)
    needs_reference = args.method in ("modeldiff", "akh", "all")
    if needs_reference and args.reference is None:
        raise CLIError(f"--reference: expected the reference model, whose own queries {args.method} commits to")
    reference = None if args.reference is None else load_classifier(args.reference, **model_options(args))
    digests = audit_query_digests(reference, plan.refset, method=args.method, config=plan.config,
                                  refsets=plan.refsets, cache=cache_from_args(args), **plan.options)
    fingerprint = None if reference is None else reference.fingerprint
    options = {"method": args.method, "sac_images": plan.options["sac_options"]["num_images"],
               "akh_queries": plan.options["akh_options"]["num_queries"], "reference": args.reference}
    record = commitment_record(plan.refset, plan.config, digests, reference_fingerprint=fingerprint, options=options)
    atomic_write_bytes(out, json.dumps(record, indent=1, sort_keys=True).encode())
    print(f"commitment {record['digest']}: {len(digests)} method(s), {len(plan.refset)} reference images; "
          f"written to {out}. Publish the digest before you query any suspect, then run "
          f"`zest audit ... --commitment {out}` with the same flags.", file=sys.stderr)
    print(record["digest"])
    return EXIT_OK


def cmd_verify(args: argparse.Namespace) -> int:
    """``zest verify REPORT [--reference SPEC] [--suspect SPEC] [--refset REF]``: recompute and compare."""
    reported = read_report(args.report)
    command = reported.get("command", [])
    if len(command) < 2 or command[:2] != ["zest", "audit"]:
        raise CLIError(f"REPORT: expected the record of a `zest audit`, got the command {command!r}")
    try:
        again = args.build_parser().parse_args(command[1:])  # the parser hands itself over: it imports this module
    except SystemExit as exit_:
        raise CLIError(f"REPORT: its command does not parse: {' '.join(command)}") from exit_
    for flag in ("reference", "suspect", "refset"):
        if getattr(args, flag, None) is not None:
            setattr(again, flag, getattr(args, flag))
    again.report, again.commitment, again.json = None, None, True
    again.trust_pickle = args.trust_pickle or False
    if args.zoo is not None:
        again.zoo = args.zoo
    again.argv = command[1:]
    recorded = reported.get("working_directory")
    if recorded and Path(recorded) != Path.cwd():
        print(f"note: the report was made in {recorded}; relative paths in its command are read from here, "
              f"{Path.cwd()}", file=sys.stderr)
    _, _, recomputed, _ = run_audit(again, commitment=None)
    lines = []
    if not record_intact(reported):
        lines.append("the report's record was edited after it was written: its digest does not match its content")
    lines += compare_records(reported, recomputed)
    if lines:
        for line in lines:
            print(f"differs: {line}")
        return EXIT_DIFFERS
    methods = ", ".join(reported["audit"]["methods"])
    print(f"verified: the models' and the null's SHA-256, the reference set, the queries and every distance and "
          f"p-value ({methods}) match the report; the verdict is {recomputed['audit']['verdict']}")
    return EXIT_OK
