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

import json
import sys
from pathlib import Path

from .._shared.atomic import atomic_write_bytes
from ..studies.audit import audit_query_digests
from ..studies.commitment import commitment_record
from ..studies.handover import compare_records, read_report, record_intact
from .audit import plan_audit, run_audit
from .inputs import EXIT_OK, CLIError, cache_from_request, check_writable, load_classifier
from .parser import parse_request
from .requests import AuditRequest, CommitRequest, VerifyRequest

EXIT_DIFFERS = 1


def cmd_commit(request: CommitRequest) -> int:
    """``zest commit [--reference SPEC] --refset REF [flags] -o FILE``: the queries' digests, before any suspect."""
    out = Path(request.out)
    if out.suffix.lower() != ".json":
        raise CLIError(f"-o: expected a .json file, got {request.out}")
    check_writable("-o", out)
    plan = plan_audit(request)
    needs_reference = request.method in ("modeldiff", "akh", "all")
    if needs_reference and request.reference is None:
        raise CLIError(f"--reference: expected the reference model, whose own queries {request.method} commits to")
    reference = None if request.reference is None else load_classifier(request.reference, **request.model_options())
    digests = audit_query_digests(reference, plan.refset, method=request.method, config=plan.config,
                                  refsets=plan.refsets, cache=cache_from_request(request), **plan.options)
    fingerprint = None if reference is None else reference.fingerprint
    options = {"method": request.method, "sac_images": plan.options["sac_options"]["num_images"],
               "akh_queries": plan.options["akh_options"]["num_queries"], "reference": request.reference}
    record = commitment_record(plan.refset, plan.config, digests, reference_fingerprint=fingerprint, options=options)
    atomic_write_bytes(out, json.dumps(record, indent=1, sort_keys=True).encode())
    print(f"commitment {record['digest']}: {len(digests)} method(s), {len(plan.refset)} reference images; "
          f"written to {out}. Publish the digest before you query any suspect, then run "
          f"`zest audit ... --commitment {out}` with the same flags.", file=sys.stderr)
    print(record["digest"])
    return EXIT_OK


def cmd_verify(request: VerifyRequest) -> int:
    """``zest verify REPORT [--reference SPEC] [--suspect SPEC] [--refset REF]``: recompute and compare."""
    reported = read_report(request.report)
    command = reported.get("command", [])
    if len(command) < 2 or command[:2] != ["zest", "audit"]:
        raise CLIError(f"REPORT: expected the record of a `zest audit`, got the command {command!r}")
    try:
        recorded_request = parse_request(command[1:])
    except SystemExit as exit_:
        raise CLIError(f"REPORT: its command does not parse: {' '.join(command)}") from exit_
    if not isinstance(recorded_request, AuditRequest):
        raise CLIError(f"REPORT: expected the record of a `zest audit`, got the command {command!r}")
    # What to check against instead, where given; the recorded command as typed stays the report's.
    instead = {name: getattr(request, name) for name in ("reference", "suspect", "refset", "zoo")
               if getattr(request, name) is not None}
    again = recorded_request.replace(report=None, commitment=None, json=True, trust_pickle=request.trust_pickle,
                                     **instead)
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
