"""Issue 20: commit, audit with a report, verify; each tampering fails and names what differs; the report opens offline."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from zest_core.cli import main
from zest_core.studies.commitment import canonical_digest
from zest_core.studies.handover import read_report

ROOT = Path(__file__).resolve().parents[1]
ZOO = ROOT / "assets" / "zoo"
CHROMIUM = Path("/usr/bin/chromium")
# Small and fast: 16 digits, L = 64, on the shipped zoo (a fine-tuned copy and the matched null of 12).
QUERY_FLAGS = ["--refset", "mnist:16", "--budget", "0", "--samples", "64", "--zoo", str(ZOO)]
PAIR = ["zoo:cnn-s0", "zoo:cnn-s0.prune50"]

pytestmark = pytest.mark.skipif(not (ZOO / "zoo.json").exists(), reason="the demo zoo is not shipped here")


@pytest.fixture(scope="module")
def handed_over(tmp_path_factory):
    """commit → audit --commitment --report (HTML and JSON), once for the module."""
    folder = tmp_path_factory.mktemp("handover")
    os.environ.setdefault("ZEST_CACHE_DIR", str(folder / "cache"))
    commitment = folder / "commitment.json"
    assert main(["commit", *QUERY_FLAGS, "-o", str(commitment)]) == 0
    html, twin = folder / "audit.html", folder / "audit.json"
    assert main(["audit", *PAIR, *QUERY_FLAGS, "--commitment", str(commitment), "--report", str(html)]) == 0
    assert main(["audit", *PAIR, *QUERY_FLAGS, "--report", str(twin)]) == 0
    return {"folder": folder, "commitment": commitment, "html": html, "json": twin}


def test_the_report_holds_what_a_court_needs(handed_over):
    record = read_report(handed_over["html"])
    audit = record["audit"]
    assert audit["verdict"] == "related" and audit["p_value"] < 0.05  # a 50%-pruned copy, as the zoo built it
    assert record["commitment"]["digest"] == json.loads(handed_over["commitment"].read_text())["digest"]
    assert record["commitment"]["queries"]["zest-cosine"] == audit["query_digests"]["zest-cosine"]
    for role in ("reference", "suspect"):
        assert len(record["models"][role]["fingerprint"]) == 64  # SHA-256 of the model file
    assert len(record["models"]["unrelated"]) == len(audit["null"]["models"]) >= 3
    assert all(m["arch"] == "small_cnn" and m["task"] for m in record["models"]["unrelated"])
    assert record["command"][:2] == ["zest", "audit"] and record["created_utc"].endswith("Z")
    assert record["config"]["num_samples"] == 64 and record["refset"]["size"] == 16
    evidence = record["evidence"]
    assert "not a second test" in evidence["note"] and len(evidence["images"]) == 16
    text = handed_over["html"].read_text()
    for needed in ("not a second test", "power bound", record["models"]["suspect"]["fingerprint"],
                   record["commitment"]["digest"], "zest verify"):
        assert needed in text


@pytest.mark.parametrize("kind", ["html", "json"])
def test_verify_recomputes_and_matches(handed_over, kind, capsys):
    assert main(["verify", str(handed_over[kind])]) == 0
    assert "verified" in capsys.readouterr().out


def _tampered(handed_over, name: str, change, *, fix_digest: bool) -> Path:
    record = json.loads(handed_over["json"].read_text())
    change(record)
    if fix_digest:  # a careful forger recomputes the digest: recomputing the audit still catches it
        record["digest"] = canonical_digest({k: v for k, v in record.items() if k != "digest"})
    path = handed_over["folder"] / name
    path.write_text(json.dumps(record))
    return path


def test_an_edited_report_fails_verification(handed_over, capsys):
    def smaller_p(record):
        record["audit"]["methods"]["zest-cosine"]["p_value"] = 1e-9

    path = _tampered(handed_over, "edited.json", smaller_p, fix_digest=False)
    assert main(["verify", str(path)]) == 1
    out = capsys.readouterr().out
    assert "edited after it was written" in out and "zest-cosine's p_value differs" in out
    path = _tampered(handed_over, "forged.json", smaller_p, fix_digest=True)
    assert main(["verify", str(path)]) == 1
    out = capsys.readouterr().out
    assert "edited" not in out and "zest-cosine's p_value differs: 1e-09 in the report" in out


def test_another_model_or_reference_set_fails_verification(handed_over, capsys):
    assert main(["verify", str(handed_over["json"]), "--suspect", "zoo:cnn-s0.prune80"]) == 1
    assert "the suspect model differs: SHA-256" in capsys.readouterr().out
    assert main(["verify", str(handed_over["json"]), "--refset", "mnist:12"]) == 1
    out = capsys.readouterr().out
    assert "the reference set differs" in out and "zest-cosine's queries differ" in out


def test_an_audit_with_other_queries_than_committed_is_refused(handed_over, capsys):
    flags = [*QUERY_FLAGS[:-4], "--samples", "80", "--zoo", str(ZOO)]  # L = 80: other masks
    assert main(["audit", *PAIR, *flags, "--commitment", str(handed_over["commitment"])]) == 2
    err = capsys.readouterr().err
    assert "--commitment: zest-cosine's queries differ from the committed ones" in err
    edited = handed_over["folder"] / "edited_commitment.json"
    committed = json.loads(handed_over["commitment"].read_text())
    committed["queries"]["zest-cosine"] = "0" * 64
    edited.write_text(json.dumps(committed))
    assert main(["audit", *PAIR, *QUERY_FLAGS, "--commitment", str(edited)]) == 2
    assert "edited after `zest commit`" in capsys.readouterr().err


def test_report_flags_are_checked_before_any_work(tmp_path, capsys):
    assert main(["audit", *PAIR, *QUERY_FLAGS, "--report", str(tmp_path / "audit.txt")]) == 2
    assert "--report: expected a file ending in .html" in capsys.readouterr().err
    assert main(["audit", *PAIR, *QUERY_FLAGS, "--report", str(tmp_path / "no" / "audit.html")]) == 2
    assert "--report: expected a file in an existing folder" in capsys.readouterr().err
    assert main(["verify", str(tmp_path / "absent.html")]) == 2
    (tmp_path / "other.html").write_text("<html>not a report</html>")
    assert main(["verify", str(tmp_path / "other.html")]) == 2
    assert "no embedded audit record" in capsys.readouterr().err


@pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} is absent (`make test` installs chromium)")
def test_the_report_opens_offline_and_draws_its_figures(handed_over):
    os.environ.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
    from playwright.sync_api import sync_playwright

    blocked: list[str] = []

    def only_files(route):
        if route.request.url.startswith("file:"):
            route.continue_()
        else:
            blocked.append(route.request.url)
            route.abort()

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), timeout=60_000,
                                             args=["--headless", "--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page(viewport={"width": 1000, "height": 1400})
            page.route("**/*", only_files)
            errors: list[str] = []
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.goto(handed_over["html"].as_uri(), timeout=60_000)
            page.wait_for_function("document.querySelectorAll('.js-plotly-plot .main-svg').length >= 2",
                                   timeout=60_000)
            plots = page.locator(".js-plotly-plot").count()
            images = page.locator(".js-plotly-plot image").count()
            pdf = page.pdf(format="A4", print_background=True)
        finally:
            browser.close()
    assert not blocked, f"the report requested something outside the file: {blocked}"
    assert not errors
    assert plots == 2  # the null (one method) and the evidence
    assert images >= 4 * 4  # 4 evidence rows × (super-pixels + 3 heatmaps' base images)
    assert pdf.startswith(b"%PDF") and pdf.count(b"/Type /Page") >= 2
