"""The files of an audit's hand-over: ``--report`` (written atomically) and ``--commitment`` (read, bounded)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping

from .._shared.atomic import atomic_write_bytes
from ..errors import CommitmentError
from ..studies.audit import REFERENCE
from ..studies.commitment import COMMITMENT_FLAG
from .inputs import CLIError, check_writable

REPORT_SUFFIXES = (".html", ".htm", ".json")
MAX_COMMITMENT_BYTES = 2**20


def check_report_path(value: str | None) -> Path | None:
    """``--report``'s path, checked before any work: a known suffix, in a folder that exists and can be written."""
    if value is None:
        return None
    path = Path(value)
    if path.suffix.lower() not in REPORT_SUFFIXES:
        raise CLIError(f"--report: expected a file ending in {', '.join(REPORT_SUFFIXES)}, got {value}")
    check_writable("--report", path)
    return path


def read_commitment(value: str | None) -> dict[str, Any] | None:
    """``--commitment``'s file as JSON (at most 1 MiB), or None without the flag."""
    if value is None:
        return None
    path = Path(value)
    if not path.is_file():
        raise CLIError(f"{COMMITMENT_FLAG}: expected a commitment file of `zest commit`, got {value} (no such file)")
    if path.stat().st_size > MAX_COMMITMENT_BYTES:
        raise CLIError(f"{COMMITMENT_FLAG}: expected a commitment of at most 1 MiB, got {value}")
    try:
        committed = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise CLIError(f"{COMMITMENT_FLAG}: expected JSON in {value}, got unreadable content ({error})") from error
    if not isinstance(committed, dict):
        raise CommitmentError(f"{COMMITMENT_FLAG}: expected a zest commitment in {value}, got another file")
    return committed


def write_report(path: Path, record: Mapping[str, Any], parts: Mapping[str, Any]) -> None:
    """The report, atomically: the record as JSON (``.json``) or the self-contained HTML with its figures."""
    if path.suffix.lower() == ".json":
        atomic_write_bytes(path, json.dumps(record, indent=1, sort_keys=True).encode())
        return
    from ..figures import (  # Plotly only for HTML
        audit_report_html,
        evidence_figure,
        method_null_figures,
    )

    drawn = method_null_figures(record["audit"], suspect=record["models"]["suspect"]["spec"])
    if parts["views"]:
        refset, signatures = parts["refset"], parts["signatures"]
        drawn.append(evidence_figure(refset.images, signatures[REFERENCE].segments, parts["views"]))
    atomic_write_bytes(path, audit_report_html(record, drawn).encode("utf-8"))
