"""Screenshots of the Overview's "Why the verdict" view and of the audit report it downloads, from the real app.

    .venv/bin/python bench/screenshot_why.py assets/why.png assets/report.png [--overview assets/screenshot.png]

Starts ``streamlit run app.py`` on 127.0.0.1 with the default comparison computed (``ZEST_AUTORUN=1``, as
``make run`` does), opens the Overview in Debian's chromium, screenshots the Why section, clicks
"Download the audit report (HTML)", opens the file with every non-file request blocked and screenshots
its first screen. The server is stopped in a finally.
"""
from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from figure_png import CHROMIUM_ARGS  # bench/ is on the path when this script runs
from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parents[1]
IDLE = "[data-testid='stApp'][data-test-script-state='notRunning']"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("why", type=Path)
    parser.add_argument("report", type=Path)
    parser.add_argument("--overview", type=Path, help="also the top of the Overview page (the README's first picture)")
    args = parser.parse_args()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, "ZEST_AUTORUN": "1", "TQDM_DISABLE": "1"}
    server = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(ROOT / "app.py"), "--server.port", str(port),
         "--server.headless", "true", "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            try:
                urllib.request.urlopen(f"{url}/_stcore/health", timeout=2)
                break
            except OSError:
                time.sleep(1)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 4000})  # tall: Streamlit scrolls a div
            page.goto(url)
            page.get_by_text("Zest distance").first.wait_for(timeout=600_000)  # the default comparison ran
            page.get_by_role("link", name="Overview").first.click()
            page.wait_for_selector(IDLE, timeout=120_000)
            header = page.get_by_text("Why the verdict: where B kept").first
            header.wait_for(timeout=120_000)
            page.wait_for_function("document.querySelectorAll('.js-plotly-plot .main-svg').length >= 4")
            time.sleep(1.5)
            if args.overview:
                page.screenshot(path=str(args.overview), clip={"x": 0, "y": 0, "width": 1400, "height": 1150})
            box = header.bounding_box()
            plots = [page.locator(".js-plotly-plot").nth(k).bounding_box()
                     for k in range(page.locator(".js-plotly-plot").count())]
            figure = next(p for p in plots if p["y"] > box["y"])  # the evidence figure, under its header
            page.screenshot(path=str(args.why), clip={"x": 300, "y": box["y"] - 10, "width": 1100,
                                                      "height": figure["y"] + figure["height"] - box["y"] + 20})
            with page.expect_download(timeout=120_000) as download:
                page.get_by_role("button", name="Download the audit report (HTML)").click()
            saved = Path(tempfile.mkdtemp()) / "zest_audit.html"
            download.value.save_as(str(saved))
            report = browser.new_page(viewport={"width": 1000, "height": 1300})
            report.route("**/*", lambda route: route.continue_() if route.request.url.startswith("file:")
                         else route.abort())
            report.goto(saved.as_uri())
            report.wait_for_function("document.querySelectorAll('.js-plotly-plot .main-svg').length >= 2")
            time.sleep(1)
            report.screenshot(path=str(args.report))
            browser.close()
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
    print(f"wrote {args.why} and {args.report}")


if __name__ == "__main__":
    main()
