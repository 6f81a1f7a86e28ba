"""End to end in a real browser: `streamlit run app.py`, driven by Playwright with Debian's chromium.

The app runs as a subprocess on a free port; the test types two TorchScript model files into the
Setup page, runs a comparison and visits every page, checking that Plotly drew its charts in the DOM
and that no exception box appeared. Screenshots go to a temporary folder, and also to
``$ZEST_SCREENSHOT_DIR`` when it is set. Every wait is bounded, and the server is stopped in a finally.

The dashboard must request nothing outside the machine (issue 9, item 11: auditors compare models
they must not leak): every request and WebSocket the pages open, and every URL the DOM links to (the
favicon among them), must go to 127.0.0.1 or localhost.

Playwright never downloads a browser here: it drives /usr/bin/chromium (``make test`` installs it).
"""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
import warnings
from pathlib import Path

import pytest
import torch

from conftest import make_cnn

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run", "--disable-quic",
]
IDLE = "[data-testid='stApp'][data-test-script-state='notRunning']"
START_TIMEOUT_S = 90
RUN_TIMEOUT_MS = 180_000
PAGE_TIMEOUT_MS = 60_000
# Page link label in the sidebar → how many Plotly charts the page draws once a comparison exists (no
# unrelated model is named, so the Overview has no verdict and draws no matched null).
PAGES = {"Overview": 2, "Super-pixels": 3, "LIME heatmaps": 2, "Class alignment": 2}
LOCAL_HOSTS = {"127.0.0.1", "localhost"}
# Every URL an element of the page loads from (favicons, styles, scripts, images, frames, media):
# a browser may skip fetching some (headless chromium and favicons), so the DOM is checked as well.
LOADERS = "link[href], script[src], img[src], iframe[src], source[src], video[src], audio[src], embed[src]"
DOM_URLS = f"Array.from(document.querySelectorAll({LOADERS!r}), e => e.href || e.src).filter(Boolean)"

# The bar traces of the figure titled "Reuse detection, calibrated", from the Plotly JSON in the DOM (null until drawn).
BAR_COLOURS = """(() => {
  const plot = Array.from(document.querySelectorAll('.js-plotly-plot')).find(
    p => p.layout && p.layout.title && String(p.layout.title.text || p.layout.title).includes('Reuse detection'));
  if (!plot) return null;
  return plot.data.filter(t => t.type === 'bar').map(
    t => ({group: t.legendgroup, color: t.marker && t.marker.color, legend: t.showlegend !== false}));
})()"""

os.environ.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} is absent (`make test` installs chromium)")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_health(url: str, server: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise AssertionError(f"streamlit exited with {server.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise AssertionError(f"streamlit did not answer within {START_TIMEOUT_S} s:\n{log.read_text()[-3000:]}")


@pytest.fixture
def app_url(tmp_path):
    """The app, served by `streamlit run` on a free port, without a demo zoo and with its own cache."""
    env = dict(
        os.environ, TQDM_DISABLE="1", ZEST_CACHE_DIR=str(tmp_path / "cache"), ZEST_ZOO_DIR=str(tmp_path / "no-zoo"),
        PYTHONPATH=str(ROOT),
    )
    port = free_port()
    log = tmp_path / "streamlit.log"
    # The settings in .streamlit/config.toml apply (the cwd is the repository's root), usage statistics
    # among them: what the browser requests is checked as the app ships.
    command = [
        sys.executable, "-m", "streamlit", "run", str(ROOT / "app.py"), "--server.address", "127.0.0.1",
        "--server.port", str(port), "--server.headless", "true",
    ]
    with open(log, "w") as output:
        server = subprocess.Popen(command, cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_for_health(url, server, log)
        yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=15)


@pytest.fixture
def model_files(tmp_path):
    paths = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracing warnings about the input check
        for seed in (0, 1):
            path = tmp_path / f"model_{seed}.pt"
            torch.jit.trace(make_cnn(seed), torch.zeros(1, 1, 28, 28)).save(str(path))
            paths.append(path)
    return paths


def settle(page, expect: str | None = None, timeout: int = PAGE_TIMEOUT_MS) -> None:
    """Wait (bounded) until the script has run, and until ``expect`` is on the page if given."""
    try:  # the rerun may start a moment after the action; catch it if it does
        page.wait_for_selector("[data-testid='stApp'][data-test-script-state='running']", timeout=1500)
    except Exception:  # noqa: BLE001 - Playwright's TimeoutError: the run was already over
        pass
    page.wait_for_selector(IDLE, timeout=timeout)
    if expect is not None:
        page.get_by_text(expect).first.wait_for(timeout=timeout)


def external(urls) -> list[str]:
    """The URLs among ``urls`` that leave the machine (data: and blob: URLs never do)."""
    outside = []
    for url in urls:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme in ("data", "blob", "about", "javascript"):
            continue
        if parts.scheme not in ("http", "https", "ws", "wss") or parts.hostname not in LOCAL_HOSTS:
            outside.append(url)
    return outside


def type_into(page, label: str, value: str, index: int = 0) -> None:
    box = page.get_by_label(label, exact=True).nth(index)
    box.fill(value)
    box.press("Enter")
    settle(page)


def check_audit_report(browser, page, tmp_path: Path) -> None:
    """The Overview's report button downloads one HTML file that opens with every non-file request blocked."""
    with page.expect_download(timeout=PAGE_TIMEOUT_MS) as download:
        page.get_by_role("button", name="Download the audit report (HTML)").click()
    path = tmp_path / "zest_audit.html"
    download.value.save_as(str(path))
    blocked: list[str] = []

    def only_files(route) -> None:
        if route.request.url.startswith("file:"):
            route.continue_()
        else:
            blocked.append(route.request.url)
            route.abort()

    report = browser.new_page()
    try:
        report.route("**/*", only_files)
        report.goto(path.as_uri(), timeout=PAGE_TIMEOUT_MS)
        report.get_by_text("What was compared, and how to check it").wait_for(timeout=PAGE_TIMEOUT_MS)
        # No unrelated model was named: the report says there is no calibrated verdict, and why.
        assert report.get_by_text("Verdict: inconclusive").count() == 1
        assert report.evaluate("typeof Plotly") == "object"  # the inlined plotly.js ran, offline
    finally:
        report.close()
    assert not blocked, f"the audit report requested something outside the file: {blocked}"


def test_the_app_compares_two_models_in_a_real_browser(app_url, model_files, tmp_path):
    from playwright.sync_api import sync_playwright

    shots = [tmp_path / "screenshots"]
    if os.environ.get("ZEST_SCREENSHOT_DIR"):
        shots.append(Path(os.environ["ZEST_SCREENSHOT_DIR"]))
    for folder in shots:
        folder.mkdir(parents=True, exist_ok=True)

    def screenshot(page, name: str) -> None:
        path = shots[0] / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        for folder in shots[1:]:
            shutil.copy(path, folder / path.name)

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, timeout=60_000)
        requested: list[str] = []
        linked: set[str] = set()
        try:
            context = browser.new_context(viewport={"width": 1400, "height": 1800})
            context.on("request", lambda request: requested.append(request.url))
            page = context.new_page()
            page.on("websocket", lambda socket: requested.append(socket.url))
            page.set_default_timeout(PAGE_TIMEOUT_MS)
            page.goto(app_url, timeout=PAGE_TIMEOUT_MS)
            settle(page, expect="Run comparison")
            linked.update(page.evaluate(DOM_URLS))
            assert page.get_by_text("The demo zoo is not built").count() >= 1
            type_into(page, "Model file or spec", str(model_files[0]), 0)
            type_into(page, "Model file or spec", str(model_files[1]), 1)
            type_into(page, "N (reference images)", "10")
            type_into(page, "Query budget per model (0: none)", "0")  # L is the budget's while one is set
            type_into(page, "L (masked samples per image)", "100")
            page.get_by_role("button", name="Run comparison").click()
            settle(page, expect="Zest distance", timeout=RUN_TIMEOUT_MS)
            assert page.locator("[data-testid='stException']").count() == 0
            assert page.locator("[data-testid='stMetric']").count() == 3
            assert page.get_by_text("no calibrated verdict").count() >= 1
            screenshot(page, "0_setup")
            for number, (label, charts) in enumerate(PAGES.items(), start=1):
                page.get_by_role("link", name=label).first.click()
                settle(page, expect="Download figure (HTML)")
                page.wait_for_function(
                    # every chart drawn (one chart has several .main-svg layers, so count the charts that have one)
                    "Array.from(document.querySelectorAll('.js-plotly-plot'))"
                    f".filter(p => p.querySelector('.main-svg')).length >= {charts}",
                    timeout=PAGE_TIMEOUT_MS,
                )
                assert page.locator("[data-testid='stException']").count() == 0, label
                assert page.locator(".js-plotly-plot").count() == charts, label
                linked.update(page.evaluate(DOM_URLS))
                screenshot(page, f"{number}_{label.replace(' ', '_')}")
                if label == "Overview":
                    check_audit_report(browser, page, tmp_path)
            for label in ("Distance vs epoch", "Zoo and reuse"):  # without a zoo they explain what they need
                page.get_by_role("link", name=label).first.click()
                settle(page)
                assert page.locator("[data-testid='stException']").count() == 0, label
                assert page.locator("[data-testid='stAlertContentInfo']").count() >= 1, label
                linked.update(page.evaluate(DOM_URLS))
            # The shipped benchmark's rates: every bar has the colour of its method's legend entry (issue 19).
            page.get_by_text("False-positive rate and power per method").scroll_into_view_if_needed()  # drawn when seen
            page.wait_for_function(BAR_COLOURS + " !== null", timeout=PAGE_TIMEOUT_MS)
            bars = page.evaluate(BAR_COLOURS)
            legend = {b["group"]: b["color"] for b in bars if b["legend"]}
            assert len(legend) >= 4 and len(set(legend.values())) == len(legend)
            assert all(b["color"] == legend[b["group"]] for b in bars), bars
        finally:
            browser.close()
    assert len(list(shots[0].glob("*.png"))) == 1 + len(PAGES)
    assert requested, "no request was recorded"
    outside = sorted(set(external(requested)))
    assert not outside, f"the dashboard made requests outside the machine: {outside}"
    assert not external(linked), f"the dashboard's pages link outside the machine: {sorted(external(linked))}"


def test_a_hugging_face_folder_loads_through_the_path_input(app_url, tmp_path):
    """An auditor's Hugging Face image-classification folder, typed into the Path input, renders the Overview."""
    transformers = pytest.importorskip("transformers")
    from playwright.sync_api import sync_playwright

    folders = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        config = transformers.AutoConfig.for_model(
            "resnet", num_labels=10, num_channels=1, embedding_size=8, hidden_sizes=[8, 16], depths=[1, 1],
            id2label={i: f"digit {i}" for i in range(10)}, label2id={f"digit {i}": i for i in range(10)},
        )
        folder = tmp_path / f"hf-digits-{seed}"
        transformers.AutoModelForImageClassification.from_config(config).save_pretrained(folder)
        (folder / "preprocessor_config.json").write_text(
            '{"do_normalize": true, "image_mean": [0.13], "image_std": [0.31], "size": {"height": 28, "width": 28}}'
        )
        folders.append(folder)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, timeout=60_000)
        try:
            page = browser.new_context(viewport={"width": 1400, "height": 1800}).new_page()
            page.set_default_timeout(PAGE_TIMEOUT_MS)
            page.goto(app_url, timeout=PAGE_TIMEOUT_MS)
            settle(page, expect="Run comparison")
            type_into(page, "Model file or spec", str(folders[0]), 0)
            type_into(page, "Model file or spec", str(folders[1]), 1)
            type_into(page, "N (reference images)", "10")
            type_into(page, "Query budget per model (0: none)", "0")
            type_into(page, "L (masked samples per image)", "100")
            page.get_by_role("button", name="Run comparison").click()
            settle(page, expect="Zest distance", timeout=RUN_TIMEOUT_MS)
            assert page.locator("[data-testid='stException']").count() == 0
            assert page.locator("[data-testid='stAlertContentError']").count() == 0
            page.get_by_role("link", name="Overview").first.click()
            settle(page, expect="Download figure (HTML)")
            assert page.locator("[data-testid='stException']").count() == 0
            assert page.locator("[data-testid='stMetric']").count() >= 3
            assert page.get_by_text("hf-digits-0").count() >= 1  # the model is named by its folder
        finally:
            browser.close()
