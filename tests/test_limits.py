"""Issue 18: bounded resources, endpoints that cannot lead us astray, and errors that name the flag as typed.

Each test reproduces one defect of the issue and fails on the code before the fix: a limit that was
not checked (a plan of 12.5 million masks, a 10⁵ × 10⁵ image, a zip bomb, a 1 GB answer), a redirect
that was followed, or a message that named an internal field.
"""
from __future__ import annotations

import http.server
import threading
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from zest_core import load_model
from zest_core._shared.limits import MASK_MEMORY, check_mask_memory, mask_row_bytes, parse_size
from zest_core.cli import main
from zest_core.errors import EndpointError, ModelLoadError, ZestError
from zest_core.sources.endpoint import EndpointModel

pytestmark = pytest.mark.timeout(120)
PAIR = ["zoo:cnn-s0", "zoo:cnn-s0.prune50"]


@pytest.fixture(autouse=True)
def scratch_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("ZEST_CACHE_DIR", str(tmp_path / "cache"))
    for name in ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)


def run(argv, capsys) -> tuple[int, str]:
    start = time.monotonic()
    code = main(argv)
    err = capsys.readouterr().err
    assert time.monotonic() - start < 60, "refused, but only after the work"
    return code, err


# ----------------------------------------------------------------------------- resources


@pytest.mark.parametrize("budget", ["100000000", "99999999999999999999"])
def test_a_huge_budget_is_refused_before_any_mask_is_drawn(budget, capsys):
    code, err = run(["audit", *PAIR, "--refset", "mnist:8", "--budget", budget], capsys)
    assert code == 2
    assert err.startswith("zest: error: --budget: expected memory for the masks") and "--max-mask-memory" in err
    assert err.count("\n") == 1


def test_huge_l_is_refused_naming_samples_and_the_limit_can_be_raised(capsys, monkeypatch):
    code, err = run(["distance", *PAIR, "--refset", "mnist:8", "--samples", "10000000"], capsys)
    assert code == 2 and err.startswith("zest: error: --samples: expected memory") and "at most L = " in err
    # The check is the formula: N × L × row bytes against the limit, whatever raises it.
    monkeypatch.setenv(MASK_MEMORY.env, "100")
    with pytest.raises(ZestError, match="num_samples: .* at most L = 0 fits"):
        check_mask_memory(2, 10, 4, source="num_samples")
    monkeypatch.setenv(MASK_MEMORY.env, str(2 * 10 * mask_row_bytes(4)))
    check_mask_memory(2, 10, 4, source="num_samples")  # exactly at the limit: allowed


def test_limit_sizes_parse_and_the_flag_sets_the_limit(capsys):
    assert parse_size("4G") == 4 * 2**30 and parse_size("512M") == 512 * 2**20 and parse_size("1000") == 1000
    code, err = run(["distance", *PAIR, "--refset", "mnist:8", "--samples", "100", "--max-mask-memory", "1K"], capsys)
    assert code == 2 and "--samples: expected memory for the masks" in err and "at most 1 KiB" in err
    code, err = run(["distance", *PAIR, "--refset", "mnist:8", "--max-mask-memory", "lots"], capsys)
    assert code == 2 and "--max-mask-memory: expected a size" in err


def test_a_huge_image_size_is_refused_before_anything_is_decoded(tmp_path, capsys):
    folder = tmp_path / "images"
    folder.mkdir()
    Image.fromarray(np.zeros((28, 28), np.uint8)).save(folder / "a.png")
    code, err = run(["distance", *PAIR, "--samples", "64", "--refset", str(folder), "--image-size", "100000", "100000"],
                    capsys)
    assert code == 2 and err.startswith("zest: error: --image-size: expected images of at most")
    # An image file whose header declares 6,000 × 6,000 pixels (Pillow's own bomb check starts at 89 million)
    # is refused by name from its header.
    bomb = folder / "b.png"
    Image.new("1", (6000, 6000)).save(bomb, optimize=True)
    assert bomb.stat().st_size < 200_000
    code, err = run(["distance", *PAIR, "--samples", "64", "--refset", str(folder)], capsys)
    assert code == 2 and f"{bomb}: expected images of at most 16,777,216 pixels, got 6000 × 6000" in err


def zip_bomb(path: Path, member: str) -> Path:
    """A zip archive whose one member unpacks to 2.5 GiB of zeros (a few MB deflated)."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        with archive.open(member, "w", force_zip64=True) as handle:
            block = bytes(2**24)
            for _ in range(160):
                handle.write(block)
    assert path.stat().st_size < 20_000_000
    return path


def test_a_zip_bomb_reference_file_is_refused_before_numpy_reads_it(tmp_path, capsys):
    bomb = zip_bomb(tmp_path / "bomb.npz", "images.npy")
    code, err = run(["distance", "zoo:cnn-s0", "zoo:cnn-u2", "--refset", str(bomb), "--samples", "64"], capsys)
    assert code == 2 and f"{bomb}: expected a model or reference file whose content unpacks of at most 2 GiB" in err


def test_a_zip_bomb_model_is_refused_from_its_central_directory(tmp_path, capsys):
    bomb = zip_bomb(tmp_path / "bomb.pt", "archive/data/0")
    with pytest.raises(ModelLoadError, match=r"bomb\.pt: expected a model or reference file whose content unpacks of at most 2 GiB, "
                                             r"got an archive that unpacks to 2,684,354,560 bytes"):
        load_model(str(bomb))
    code, err = run(["distance", f"small_cnn:{bomb}", "zoo:cnn-u2", "--refset", "mnist:8", "--samples", "64"], capsys)
    assert code == 2 and "--max-model-bytes" in err


def test_a_url_of_another_scheme_is_named_as_such():
    with pytest.raises(ModelLoadError, match=r"file:///etc/passwd: expected a model file.*got a file:// URL"):
        load_model("file:///etc/passwd")


# ----------------------------------------------------------------------------- endpoints


class _Handler(http.server.BaseHTTPRequestHandler):
    seen: list = []

    def log_message(self, *args) -> None:
        pass

    def do_GET(self) -> None:  # noqa: N802
        self.seen.append(("GET", self.path))
        self.server.behaviour(self)

    def do_POST(self) -> None:  # noqa: N802
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.seen.append(("POST", self.path))
        self.server.behaviour(self)


@pytest.fixture
def http_server():
    servers = []

    def start(behaviour):
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        server.behaviour = behaviour
        _Handler.seen = []
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}", _Handler.seen

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def _redirect(to: str):
    def behaviour(handler) -> None:
        handler.send_response(302)
        handler.send_header("Location", to)
        handler.send_header("Content-Length", "0")
        handler.end_headers()
    return behaviour


def test_a_redirect_to_an_ftp_tarpit_is_refused_at_once(http_server):
    url, seen = http_server(_redirect("ftp://127.0.0.1:9/tarpit"))
    start = time.monotonic()
    with pytest.raises(EndpointError, match=r"HTTP 302 redirect to 'ftp://127.0.0.1:9/tarpit' refused"):
        EndpointModel(url, timeout=2, retries=3)
    assert time.monotonic() - start < 2
    assert seen == [("GET", "/info")]  # asked once: a refused redirect is not retried


def test_a_redirected_post_is_never_resent_elsewhere(http_server):

    def info_then_redirect(handler) -> None:
        if handler.command == "GET":
            payload = b'{"class_names": ["a", "b"], "input_shape": [1, 28, 28]}'
            handler.send_response(200)
            handler.send_header("Content-Length", str(len(payload)))
            handler.end_headers()
            handler.wfile.write(payload)
        else:
            _redirect("http://127.0.0.1:9/elsewhere")(handler)

    url, seen = http_server(info_then_redirect)
    model = EndpointModel(url, timeout=5, retries=0)
    import torch

    with pytest.raises(EndpointError, match=r"redirect to 'http://127.0.0.1:9/elsewhere' refused"):
        model(torch.zeros(2, 1, 28, 28))
    assert [method for method, _ in seen].count("POST") == 1


def test_a_huge_answer_is_refused_while_it_streams(http_server, monkeypatch):
    def endless(handler) -> None:  # no Content-Length: the body streams until the client hangs up
        handler.send_response(200)
        handler.end_headers()
        try:
            for _ in range(4096):
                handler.wfile.write(b" " * 2**20)
        except OSError:
            pass

    url, _ = http_server(endless)
    monkeypatch.setenv("ZEST_MAX_RESPONSE_BYTES", str(8 * 2**20))
    start = time.monotonic()
    with pytest.raises(EndpointError, match=r"expected an endpoint answer of at most 8 MiB, got a body of more than"):
        EndpointModel(url, timeout=30, retries=2)
    assert time.monotonic() - start < 10

    def declared(handler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Length", str(2**40))
        handler.end_headers()

    url, _ = http_server(declared)
    with pytest.raises(EndpointError, match=r"got a declared body of 1,099,511,627,776 bytes"):
        EndpointModel(url, timeout=30, retries=0)


# ----------------------------------------------------------------------------- messages


@pytest.mark.parametrize("flags, expected", [
    (["--alpha", "0"], "--alpha: expected a number > 0.0, got 0.0"),
    (["--alpha", "1.5"], "--alpha: expected a number < 1.0, got 1.5"),
    (["--budget", "-3"], "--budget: expected an integer ≥ 0, got -3"),
    (["--budget", "20"], "--budget: expected at least K + 1 + 16 = "),
])
def test_messages_name_the_flag_as_typed(flags, expected, capsys):
    code, err = run(["audit", *PAIR, "--refset", "mnist:8", *flags], capsys)
    assert code == 2 and err.startswith(f"zest: error: {expected}"), err
    if flags == ["--budget", "20"]:
        assert "determinism check" in err and "got 20" in err


def test_threads_and_workers_are_checked_as_typed(tmp_path, capsys):
    code, err = run(["matrix", *PAIR, "--refset", "mnist:8", "--threads", "0"], capsys)
    assert code == 2 and err.startswith("zest: error: --threads: expected an integer ≥ 1, got 0")
    code, err = run(["matrix", *PAIR, "--refset", "mnist:8", "--workers", "0"], capsys)
    assert code == 2 and err.startswith("zest: error: --workers: expected an integer ≥ 1, got 0")


def test_an_unwritable_output_is_named_before_any_signature_is_computed(tmp_path, capsys):
    # /proc takes no new file, even from root (permission bits would not stop root).
    for fmt in ("csv", "npy"):
        start = time.monotonic()
        code, err = run(["matrix", *PAIR, "--refset", "mnist:8", "--samples", "64", "--format", fmt,
                         "-o", f"/proc/m.{fmt}"], capsys)
        assert code == 2 and err.startswith(f"zest: error: -o: expected a writable folder, got /proc/m.{fmt}")
        assert time.monotonic() - start < 5
    code, err = run(["matrix", *PAIR, "--refset", "mnist:8", "-o", str(tmp_path / "no" / "m.csv")], capsys)
    assert code == 2 and "-o: expected a file in an existing folder" in err
    assert not list((tmp_path / "cache").glob("*.zsig.npz"))  # nothing was computed


def test_matrix_outputs_are_written_whole(tmp_path, capsys):
    out = tmp_path / "m.npy"
    assert main(["matrix", *PAIR, "--refset", "mnist:4", "--samples", "64", "--format", "npy", "-o", str(out)]) == 0
    matrix = np.load(out)
    assert matrix.shape == (2, 2) and matrix[0, 0] == 0 and matrix[0, 1] > 0
    assert out.with_suffix(".names.txt").read_text().split() == PAIR
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != "cache") == ["m.names.txt", "m.npy"]


# ----------------------------------------------------------------------------- budgets are ceilings


@pytest.mark.parametrize("extra", [[], ["--allow-nondeterministic"]])
def test_every_image_an_endpoint_is_sent_fits_in_the_budget(extra, capsys):
    """The server counts every image it receives, the fingerprint probe's included: never more than --budget."""
    import torch

    from conftest import make_cnn
    from zest_core.sources.endpoint import serve_model

    received = []
    cnn = make_cnn(0)

    def counting(images: torch.Tensor) -> torch.Tensor:
        received.append(images.shape[0])
        return cnn(images)

    server, url = serve_model(counting, class_names=[str(k) for k in range(10)], input_shape=(1, 28, 28))
    try:
        for budget in (200, 2000):
            received.clear()
            assert main(["distance", "zoo:cnn-s0", url, "--refset", "mnist:64", "--budget", str(budget), "--no-cache",
                         *extra]) == 0
            assert 0.9 * budget < sum(received) <= budget, (budget, sum(received))
    finally:
        server.shutdown()
