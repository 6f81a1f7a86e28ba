"""`make run` serves the dashboard on 127.0.0.1 only (issue 9, item 2).

The Setup page reads paths, image folders and URLs on the server's behalf, so a dashboard listening on
every interface lets anyone on the network probe the server's files and make it send requests. The
test starts the app exactly as `make run` does (the Makefile's own recipe, run by make, with the
environment make gives it), on a free port, and reads the kernel's table of listening sockets.
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
START_TIMEOUT_S = 90
LISTEN = "0A"  # TCP_LISTEN in /proc/net/tcp{,6}

pytestmark = pytest.mark.skipif(
    shutil.which("make") is None or not Path("/proc/net/tcp").exists(), reason="needs make and Linux's /proc/net/tcp"
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _address(hex_address: str) -> str:
    """/proc/net/tcp's address (host byte order, 32-bit words) as text: ``0100007F`` → ``127.0.0.1``."""
    raw = bytes.fromhex(hex_address)
    words = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
    return socket.inet_ntop(socket.AF_INET if len(raw) == 4 else socket.AF_INET6, words)


def listening_addresses(port: int) -> set[str]:
    """The local addresses of every TCP socket listening on ``port`` (IPv4 and IPv6)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        if not Path(table).exists():
            continue
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            local, state = fields[1], fields[3]
            address, _, port_hex = local.partition(":")
            if state == LISTEN and int(port_hex, 16) == port:
                found.add(_address(address))
    return found


def make_run_command() -> list[str]:
    """``make run``, without remaking the virtualenv (the tests already run inside an installed one)."""
    venv = ROOT / ".venv"
    if (venv / "bin" / "streamlit").exists():
        return ["make", "--no-print-directory", "-o", ".venv/.installed-stamp", "run"]
    # Tests run by another interpreter: the same recipe, with the Makefile's VENV pointed at it.
    prefix = Path(sys.executable).resolve().parents[1]
    return ["make", "--no-print-directory", f"VENV={prefix}", "-o", f"{prefix}/.installed-stamp", "run"]


def test_make_run_listens_on_localhost_only(tmp_path):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREAMLIT_") and k not in ("ARGS", "MAKEFLAGS")}
    env.update(
        STREAMLIT_SERVER_PORT=str(port),  # a free port, given the way that leaves the command line as it is
        STREAMLIT_SERVER_HEADLESS="true",  # no browser tab and no e-mail prompt; the address is untouched
        ZEST_ZOO_DIR=str(tmp_path / "no-zoo"), ZEST_CACHE_DIR=str(tmp_path / "cache"),
    )
    log = tmp_path / "make-run.log"
    with open(log, "w") as output:
        server = subprocess.Popen(make_run_command(), cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=output,
                                  stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:  # the health check answers once the server has bound every socket it will
            if server.poll() is not None:
                pytest.fail(f"`make run` exited with {server.returncode}:\n{log.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"`make run` did not answer within {START_TIMEOUT_S} s:\n{log.read_text()[-3000:]}")
            time.sleep(0.3)
        addresses = listening_addresses(port)
        assert addresses == {"127.0.0.1"}, (
            f"`make run` listens on {sorted(addresses)}; it must listen on 127.0.0.1 only, not on every "
            f"interface (0.0.0.0 or ::)"
        )
    finally:
        # make, its shell and streamlit share the session started above (its id is make's pid); end them all.
        stop(server, signal.SIGTERM)
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            stop(server, signal.SIGKILL)
            server.wait(timeout=15)


def stop(server: subprocess.Popen, signum: int) -> None:
    try:
        os.killpg(server.pid, signum)
    except ProcessLookupError:  # every process of the group has already exited
        pass
