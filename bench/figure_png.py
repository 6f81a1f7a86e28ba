"""Render a self-contained Plotly HTML file (``zest bench`` writes them) to a PNG, in Debian's chromium.

    .venv/bin/python bench/figure_png.py bench/results/budget.html assets/budget.png [--width 1400 --height 460]

Used for the README's figures; nothing is fetched (the HTML carries plotly.js, and the browser runs
with its background networking off).
"""
from __future__ import annotations

import argparse
from pathlib import Path

from playwright.sync_api import sync_playwright

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("html", type=Path)
    parser.add_argument("png", type=Path)
    parser.add_argument("--width", type=int, default=1400)
    parser.add_argument("--height", type=int, default=460)
    args = parser.parse_args()
    if not args.html.is_file():
        raise SystemExit(f"figure_png: {args.html}: no such file")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS, timeout=60_000)
        page = browser.new_page(viewport={"width": args.width, "height": args.height})
        page.goto(args.html.resolve().as_uri())
        page.wait_for_selector(".main-svg", timeout=60_000)
        page.screenshot(path=str(args.png), full_page=True)
        browser.close()
    print(f"wrote {args.png}")


if __name__ == "__main__":
    main()
