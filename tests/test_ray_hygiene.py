"""Issue 18: a local Ray listens on loopback only, refuses bad --workers/--address at once, and leaves nothing behind.

The sockets are read from /proc (Linux): every TCP socket listening in a process this test started,
directly or through Ray, must be bound to a loopback address. After the session, and after a SIGKILL
of a process that had started Ray, no process Ray started may remain.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

ray = pytest.importorskip("ray")

from zest_core.cli import main  # noqa: E402
from zest_core.errors import ZestError  # noqa: E402
from zest_core.hub.ray_backend import ray_session  # noqa: E402

pytestmark = [
    pytest.mark.timeout(300),
    pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="reads Linux's /proc"),
]
ROOT = Path(__file__).resolve().parents[1]
LOOPBACK = {"127.0.0.1", "::1", "::ffff:127.0.0.1"}
LISTEN = "0A"  # TCP_LISTEN in /proc/net/tcp{,6}


def _address(hex_address: str) -> str:
    raw = bytes.fromhex(hex_address)
    words = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
    return socket.inet_ntop(socket.AF_INET if len(raw) == 4 else socket.AF_INET6, words)


def listening_by_inode() -> dict[str, tuple[str, int]]:
    found = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        if Path(table).exists():
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                address, _, port = fields[1].partition(":")
                if fields[3] == LISTEN:
                    found[fields[9]] = (_address(address), int(port, 16))
    return found


def descendants(pid: int) -> set[int]:
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = int((entry / "stat").read_text().rpartition(")")[2].split()[1])
            except (OSError, ValueError, IndexError):
                pass
    found, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def listening_sockets(pids) -> list[tuple[int, str, int]]:
    sockets, out = listening_by_inode(), []
    for pid in pids:
        try:
            links = [os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")]
        except OSError:
            continue
        out += [(pid, *sockets[link[8:-1]]) for link in links if link.startswith("socket:[") and link[8:-1] in sockets]
    return out


def alive(pids) -> list[int]:
    living = []
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
        except OSError:
            continue
        if state != "Z":  # a zombie is dead, waiting for its parent to read its status
            living.append(pid)
    return living


def test_a_local_ray_listens_on_loopback_only_and_is_gone_after():
    assert not ray.is_initialized()
    with ray_session("local", workers=2) as session:
        @session.remote
        def one() -> int:
            return 1

        assert session.get([one.remote() for _ in range(4)]) == [1] * 4
        started = descendants(os.getpid())
        sockets = listening_sockets(started)
        assert len(sockets) >= 4  # the GCS, the raylet's two, the runtime-env agent, the workers
        outside = [s for s in sockets if s[1] not in LOOPBACK]
        assert not outside, f"listening beyond loopback: {outside}"
    assert not wait_gone(started, 20), "Ray processes outlived the session"


DRIVER = """
import sys, time
sys.path.insert(0, {root!r})
from zest_core.hub.ray_backend import ray_session
with ray_session("local", workers=1) as ray:
    ray.get(ray.remote(lambda: 1).remote())
    print("ready", flush=True)
    time.sleep(600)
"""


def start_driver() -> tuple[subprocess.Popen, set[int]]:
    """A process that starts a local Ray and waits; it and the processes it started, once Ray is up."""
    driver = subprocess.Popen([sys.executable, "-c", DRIVER.format(root=str(ROOT))], stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, text=True, start_new_session=True)
    assert driver.stdout.readline().strip() == "ready"
    return driver, descendants(driver.pid)


def wait_gone(pids: set[int], seconds: float) -> list[int]:
    """The processes of ``pids`` still alive after waiting up to ``seconds`` for them to end."""
    deadline = time.monotonic() + seconds
    while alive(pids) and time.monotonic() < deadline:
        time.sleep(0.25)
    return alive(pids)


def test_nothing_survives_a_sigkill_of_the_process_that_started_ray():
    driver, started = start_driver()
    try:
        agents = [pid for pid in started if Path(f"/proc/{pid}/cmdline").read_bytes().startswith(b"ray::")]
        assert len(started) >= 4 and agents  # the dashboard and runtime-env agents, the workers
        driver.send_signal(signal.SIGKILL)
        driver.wait(timeout=10)
        left = wait_gone(started, 30)
        assert not left, f"left behind: {left}"
    finally:
        if driver.poll() is None:
            driver.kill()


def test_sigterm_shuts_the_session_down():
    driver, started = start_driver()
    try:
        driver.send_signal(signal.SIGTERM)
        assert driver.wait(timeout=60) == 128 + signal.SIGTERM
        assert not wait_gone(started, 20)
    finally:
        if driver.poll() is None:
            driver.kill()


def test_an_unreachable_address_fails_fast_naming_the_flag(capsys):
    start = time.monotonic()
    code = main(["matrix", "zoo:cnn-s0", "zoo:cnn-u2", "--refset", "mnist:4", "--samples", "64", "--backend", "ray",
                 "--address", "127.0.0.1:1"])
    err = capsys.readouterr().err
    assert code == 2 and time.monotonic() - start < 15
    assert err.startswith("zest: error: --address: expected a Ray cluster answering at 127.0.0.1:1, got no answer")
    with pytest.raises(ZestError, match="address: expected auto, local, HOST:PORT"):
        with ray_session("nowhere"):
            pass
    assert not ray.is_initialized()
