"""Handing a verdict over: the audit record a report embeds, and the check that recomputes it (``zest verify``).

The record holds everything needed to re-check a verdict later: both models' and every unrelated
model's SHA-256, the reference set's fingerprint, the full config, each method's query digest (and
the commitment made before the audit, if any), every method's distance, null distances and p-value,
the package version, the command line and the UTC time. Its own ``digest`` (SHA-256 of the rest, as
canonical JSON) makes an edit of the file evident; recomputing the audit (:func:`compare_records`)
shows what a forger would have had to change.
"""
from __future__ import annotations

import datetime as _dt
import json
import math
import re
import shlex
from importlib import metadata
from pathlib import Path
from typing import Any, Mapping, Sequence

from ..errors import ZestError
from ..pipeline.config import ZestConfig
from ..pipeline.reference import ReferenceSet
from .commitment import canonical_digest

REPORT_VERSION = 1
RECORD_ID = "zest-audit-record"
MAX_REPORT_BYTES = 64 * 2**20  # a report with its inlined Plotly is ~5 MB; a larger file is not one of ours
# Distances and p-values recomputed on another CPU may differ in their last float32 bits: relative 1e-4.
RTOL, ATOL = 1e-4, 1e-9


def package_version() -> str:
    """zest-explorer's installed version (``pyproject.toml``), or "unknown" when it is not installed."""
    try:
        return metadata.version("zest-explorer")
    except metadata.PackageNotFoundError:
        return "unknown"


def audit_record(
    audit: Mapping[str, Any],
    *,
    models: Mapping[str, Any],
    refset: ReferenceSet,
    refset_spec: str,
    config: ZestConfig,
    command: Sequence[str],
    working_directory: str,
    commitment: Mapping[str, Any] | None = None,
    evidence: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The JSON-ready record of one audit, with its digest.

    Parameters
    ----------
    audit : mapping
        :meth:`~zest_core.studies.AuditResult.to_dict`, with the CLI's ``budget`` and ``budget_split``.
    models : mapping
        ``reference`` and ``suspect``: ``{"spec", "fingerprint"}``; ``unrelated``: a list of
        ``{"name", "spec", "fingerprint", "arch", "task", "classes"}``.
    refset, refset_spec
        The reference set and how it was named (``--refset``).
    config : ZestConfig
    command : sequence of str
        The command line that reproduces the audit (``zest audit ...``).
    working_directory : str
        Where relative model paths in ``command`` are relative to.
    commitment : mapping, optional
        The commitment the audit was checked against.
    evidence : mapping, optional
        :meth:`~zest_core.explain.ImageEvidence.to_dict`.
    """
    body = {
        "zest_audit_report": REPORT_VERSION,
        "zest_version": package_version(),
        "created_utc": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "command": list(command),
        "command_line": shlex.join(command),
        "working_directory": working_directory,
        "models": dict(models),
        "refset": {"spec": refset_spec, "fingerprint": refset.fingerprint(), "provenance": refset.provenance,
                   "size": len(refset)},
        "config": config.to_dict(),
        "audit": dict(audit),
        "commitment": None if commitment is None else dict(commitment),
        "evidence": None if evidence is None else dict(evidence),
    }
    return {**body, "digest": canonical_digest(body)}


def record_intact(record: Mapping[str, Any]) -> bool:
    """Whether the record's digest matches its content (no edit since it was written)."""
    return canonical_digest({k: v for k, v in record.items() if k != "digest"}) == record.get("digest")


def read_report(path: str | Path) -> dict[str, Any]:
    """The record of an audit report: the JSON twin itself, or the one an HTML report embeds.

    Raises
    ------
    ZestError
        Naming the file: missing, larger than :data:`MAX_REPORT_BYTES`, or holding no audit record.
    """
    path = Path(path)
    if not path.is_file():
        raise ZestError(f"REPORT: expected an audit report file, got {path} (no such file)")
    if path.stat().st_size > MAX_REPORT_BYTES:
        raise ZestError(f"REPORT: expected a report of at most {MAX_REPORT_BYTES // 2**20} MiB, got {path} "
                        f"({path.stat().st_size / 2**20:.0f} MiB)")
    text = path.read_text(encoding="utf-8", errors="replace")
    if path.suffix.lower() in (".html", ".htm"):
        found = re.search(rf'<script type="application/json" id="{RECORD_ID}">(.*?)</script>', text, re.S)
        if found is None:
            raise ZestError(f"REPORT: expected a zest audit report, got {path} (no embedded audit record)")
        text = found.group(1).replace("<\\/", "</")
    try:
        record = json.loads(text)
    except json.JSONDecodeError as error:
        raise ZestError(f"REPORT: expected a zest audit record in {path}, got unreadable JSON ({error})") from error
    if not isinstance(record, dict) or record.get("zest_audit_report") != REPORT_VERSION:
        raise ZestError(f"REPORT: expected a zest audit record (version {REPORT_VERSION}) in {path}, got another file")
    return record


def compare_records(reported: Mapping[str, Any], recomputed: Mapping[str, Any]) -> list[str]:
    """What differs between a report's record and the same audit recomputed, one line each (empty: all matches).

    Fingerprints, the reference set, query digests, the commitment and verdicts must be equal;
    distances, null distances, thresholds and p-values equal within ``RTOL`` (relative) / ``ATOL``.
    """
    lines: list[str] = []
    rm, nm = reported["models"], recomputed["models"]
    for role in ("reference", "suspect"):
        if rm[role]["fingerprint"] != nm[role]["fingerprint"]:
            lines.append(f"the {role} model differs: SHA-256 {rm[role]['fingerprint']} in the report, "
                         f"{nm[role]['fingerprint']} in {nm[role]['spec']}")
    ours = {m["name"]: m["fingerprint"] for m in nm["unrelated"]}
    for model in rm["unrelated"]:
        if ours.get(model["name"]) != model["fingerprint"]:
            lines.append(f"the unrelated model {model['name']} differs: SHA-256 {model['fingerprint']} in the report, "
                         f"{ours.get(model['name'], 'absent')} now")
    if reported["refset"]["fingerprint"] != recomputed["refset"]["fingerprint"]:
        lines.append(f"the reference set differs: fingerprint {reported['refset']['fingerprint']} in the report, "
                     f"{recomputed['refset']['fingerprint']} for {recomputed['refset']['spec']}")
    ra, na = reported["audit"], recomputed["audit"]
    for method, digest in ra.get("query_digests", {}).items():
        now = na.get("query_digests", {}).get(method)
        if now != digest:
            lines.append(f"{method}'s queries differ: digest {digest[:16]}… in the report, {str(now)[:16]}… now")
    committed = (reported.get("commitment") or {}).get("queries", {})
    for method, digest in committed.items():
        now = na.get("query_digests", {}).get(method)
        if now is not None and now != digest:
            lines.append(f"{method}'s queries differ from the commitment {reported['commitment']['digest'][:16]}…")
    if ra["verdict"] != na["verdict"]:
        lines.append(f"the verdict differs: {ra['verdict']} in the report, {na['verdict']} now")
    combined = len(ra["methods"]) > 1  # one method: the audit's numbers are that method's, compared below
    if combined:
        lines += _numbers("the combined ", ra, na, ("p_value",))
    for method, decision in ra["methods"].items():
        now = na["methods"].get(method)
        if now is None:
            lines.append(f"{method}: in the report, not in the recomputed audit")
            continue
        if combined and decision["verdict"] != now["verdict"]:
            lines.append(f"{method}'s verdict differs: {decision['verdict']} in the report, {now['verdict']} now")
        lines += _numbers(f"{method}'s ", decision, now, ("p_value", "distance", "detection_threshold"))
        old, new = decision.get("null_distances", []), now.get("null_distances", [])
        if len(old) != len(new) or any(not _close(a, b) for a, b in zip(old, new)):
            lines.append(f"{method}'s null distances differ: {_short(old)} in the report, {_short(new)} now")
    return lines


def _numbers(prefix: str, reported: Mapping[str, Any], now: Mapping[str, Any], keys: Sequence[str]) -> list[str]:
    return [f"{prefix}{key} differs: {reported.get(key)} in the report, {now.get(key)} now"
            for key in keys if not _close(reported.get(key), now.get(key))]


def _close(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return a is None and b is None
    a, b = float(a), float(b)
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return abs(a - b) <= ATOL + RTOL * abs(b)


def _short(values: Sequence[float]) -> str:
    return "[" + ", ".join(f"{v:.6g}" for v in values) + "]"
