"""The Ray backend: one Ray task per model, the probe shared through the object store.

Ray is imported only when this backend runs (:func:`import_ray`), so that ``import zest_core`` and
the local backend work without it (``pip install 'zest-explorer[ray]'`` adds it). Each task declares
its resources, ``threads`` CPUs and, when the models run on CUDA, ``gpus_per_task`` GPUs, so that
Ray packs as many models on a machine as it has room for. The reference set and the probe
(segments, masks, fit operators) are put in the object store once; a worker fetches them on its
first task and keeps them for the next ones. A worker that dies is replaced and its task retried
by Ray; a model that fails is retried or reported by :func:`~zest_core.hub.backend.signature_outcome`'s
rules; the run goes on either way.

Started here, a local Ray has no dashboard, reports no usage statistics
(``RAY_USAGE_STATS_ENABLED=0``), listens on 127.0.0.1 only (every service: the GCS, the raylet, the
agents, the workers), and is gone when the process that started it is, however it ends: shut down on
leaving, on SIGINT and SIGTERM, and killed by a reaper process when it dies by SIGKILL.

References
----------
Moritz et al., "Ray: A Distributed Framework for Emerging AI Applications", OSDI 2018.
"""
from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
from collections import deque
from typing import Any, Callable, Iterator, Mapping, Sequence

from ..errors import ZestError
from ..pipeline.probe import Probe, adopt_probe
from ..pipeline.device import resolve_device
from ..pipeline.reference import ReferenceSet
from .backend import ModelSource, Outcome, TaskSpec, signature_outcome, torch_threads

# Set before Ray is imported, so that the driver and every process it starts inherit them.
RAY_ENVIRONMENT = {"RAY_USAGE_STATS_ENABLED": "0"}
LOCAL_ADDRESS = "127.0.0.1"
CONNECT_TIMEOUT_S = 10.0  # how long a named cluster has to answer before the run gives up
# Tasks kept submitted per slot: enough to keep every worker busy, few enough that results do not
# pile up in the object store faster than the driver writes them to the stack.
TASKS_PER_SLOT = 2


def import_ray() -> Any:
    """The ``ray`` module, with usage statistics off.

    Raises
    ------
    ZestError
        If Ray is not installed.
    """
    for name, value in RAY_ENVIRONMENT.items():
        os.environ.setdefault(name, value)
    try:
        import ray
    except ImportError as error:
        raise ZestError(
            "backend: expected Ray to be installed for the 'ray' backend (pip install 'zest-explorer[ray]'), "
            "got no module named 'ray'"
        ) from error
    return ray


@contextlib.contextmanager
def ray_session(address: str = "auto", *, workers: int | None = None, timeout: float = CONNECT_TIMEOUT_S
                ) -> Iterator[Any]:
    """Ray, initialised for the block: a running session is used as it is, else one is joined or started.

    Parameters
    ----------
    address : str
        "auto": join the cluster that ``RAY_ADDRESS`` or a ``ray start`` on this machine names, else
        start a local Ray; "local": always start one; anything else: ``HOST:PORT`` (or ``ray://HOST:PORT``)
        of a cluster, which must answer a TCP connection within ``timeout`` seconds.
    workers : int, optional
        CPUs of a local Ray started here (default: all of this machine's); a joined cluster has its own.
    timeout : float
        Seconds to wait for a named cluster to answer before giving up with a ZestError.

    Yields
    ------
    module
        ``ray``. A session started or joined here is shut down on leaving, on SIGTERM too; one the
        caller had started is left running.

    Notes
    -----
    A local Ray started here binds every service to 127.0.0.1 (:func:`_start_local`), and a reaper
    process (:func:`start_reaper`) kills whatever it started if this process dies without shutting
    it down, even by SIGKILL: nothing is left behind.
    """
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise ZestError(f"workers: expected an integer ≥ 1, got {workers!r}")
    if address not in ("auto", "local"):
        check_reachable(address, timeout)
    ray = import_ray()
    if ray.is_initialized():
        yield ray
        return
    quiet = {"log_to_driver": False, "logging_level": logging.WARNING}
    reaper = None
    if address == "auto":
        try:
            ray.init(address="auto", **quiet)
        except ConnectionError:  # no cluster to join
            reaper = _start_local(ray, workers, quiet)
    elif address == "local":
        reaper = _start_local(ray, workers, quiet)
    else:
        ray.init(address=address, **quiet)
    previous = signal.getsignal(signal.SIGTERM)
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _terminate)  # SIGTERM unwinds through the finally below
    try:
        yield ray
    finally:
        try:
            ray.shutdown()
        finally:
            if threading.current_thread() is threading.main_thread():
                signal.signal(signal.SIGTERM, previous)
            if reaper is not None:
                stop_reaper(reaper)


def _terminate(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)


def _start_local(ray: Any, workers: int | None, quiet: Mapping[str, Any]) -> Any:
    """Start a local Ray bound to 127.0.0.1, watched by a reaper (:func:`start_reaper`); return the reaper.

    Ray turns a node address of 127.0.0.1 into this machine's network address unless it believes
    clusters are off (``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0``, read by its ``get_node_ip_address``):
    then the GCS, the raylet, the agents and the workers all listen on 127.0.0.1.
    """
    saved = os.environ.get(LOCAL_ONLY_ENV)
    os.environ[LOCAL_ONLY_ENV] = "0"  # inherited by every process Ray starts
    # Read at call time by ray._private.services.get_node_ip_address (absent from stand-ins of Ray in tests).
    constants = getattr(getattr(ray, "_private", None), "ray_constants", None)
    cluster = getattr(constants, "ENABLE_RAY_CLUSTER", None)
    if constants is not None:
        constants.ENABLE_RAY_CLUSTER = False
    reaper = start_reaper()
    try:
        ray.init(num_cpus=workers, include_dashboard=False, _node_ip_address=LOCAL_ADDRESS, **quiet)
    except BaseException:
        stop_reaper(reaper)
        raise
    finally:
        if constants is not None:
            constants.ENABLE_RAY_CLUSTER = cluster
        if saved is None:
            os.environ.pop(LOCAL_ONLY_ENV, None)
        else:
            os.environ[LOCAL_ONLY_ENV] = saved
    return reaper


def check_reachable(address: str, timeout: float) -> None:
    """Refuse a cluster ``address`` that is malformed or where nothing answers a TCP connection within ``timeout``.

    Raises
    ------
    ZestError
        Naming ``address`` (the ``--address`` flag), before Ray is asked to connect (it would retry
        for minutes and fill its logs).
    """
    host, separator, port = address.removeprefix("ray://").rpartition(":")
    if not separator or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ZestError(f"address: expected auto, local, HOST:PORT or ray://HOST:PORT, got {address!r}")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout):
            pass
    except OSError as error:
        reason = "timed out" if isinstance(error, TimeoutError) else (error.strerror or type(error).__name__)
        raise ZestError(f"address: expected a Ray cluster answering at {address}, got no answer within {timeout:g} s "
                        f"({reason}); start one with `ray start --head` or use --address local") from None


# The reaper: a child that watches this process's descendants while the session lasts, and when its pipe
# closes (what any death of this process does, SIGKILL included, and stop_reaper on a normal exit) kills
# every Ray process it saw (by command line: "ray::…" or a program under ray/; by start time, so that a
# reused PID is spared) that is still alive: Ray's agents, reparented to init, would otherwise live on.
LOCAL_ONLY_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"
_REAPER_SOURCE = """
import os, select, signal, sys, time
driver, me = int(sys.argv[1]), os.getpid()

def stat(pid):
    try:
        with open(f"/proc/{pid}/stat") as handle:
            fields = handle.read().rpartition(")")[2].split()
        return int(fields[1]), fields[19], fields[0]
    except (OSError, ValueError, IndexError):
        return None

def is_ray(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            line = handle.read().replace(bytes(1), b" ")
    except OSError:
        return False
    return line.startswith(b"ray::") or b"/ray/" in line

def alive(pid, started):
    info = stat(pid)
    return info is not None and info[1] == started and info[2] != "Z"

seen = {}
while True:
    ready, _, _ = select.select([sys.stdin], [], [], 0.3)
    if ready and not os.read(sys.stdin.fileno(), 4096):
        break
    table = {int(e): stat(int(e)) for e in os.listdir("/proc") if e.isdigit()}
    frontier, visited = {driver}, set()
    while frontier:
        visited |= frontier
        frontier = {pid for pid, info in table.items() if info and info[0] in frontier} - visited - {me}
    for pid in visited - {driver}:
        if pid not in seen and table.get(pid) and is_ray(pid):
            seen[pid] = table[pid][1]
for _ in range(40):
    living = [pid for pid, started in seen.items() if alive(pid, started)]
    for pid in living:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    if not living:
        break
    time.sleep(0.25)
"""


def start_reaper() -> subprocess.Popen | None:
    """The reaper of a local Ray session (Linux, where /proc lists the processes; None elsewhere)."""
    if not os.path.isdir("/proc/self"):
        return None
    return subprocess.Popen([sys.executable, "-c", _REAPER_SOURCE, str(os.getpid())], stdin=subprocess.PIPE,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)


def stop_reaper(reaper: subprocess.Popen | None) -> None:
    """Close the reaper's pipe (it then kills whatever survived ``ray.shutdown``) and wait for it."""
    if reaper is None:
        return
    with contextlib.suppress(OSError):
        reaper.stdin.close()
    try:
        reaper.wait(timeout=30)
    except subprocess.TimeoutExpired:
        reaper.kill()


def uses_cuda(device: str, resources: Mapping[str, float]) -> bool:
    """Whether the tasks run their models on CUDA: ``device`` "cuda", or "auto" on a cluster with GPUs."""
    return device == "cuda" or (device == "auto" and resources.get("GPU", 0) > 0)


def run_ray(
    jobs: Sequence[tuple[str, ModelSource]],
    refset: ReferenceSet,
    probe: Probe,
    task: TaskSpec,
    *,
    retries: int,
    gpus_per_task: float,
    address: str,
    workers: int | None,
    emit: Callable[[Outcome, int], None],
) -> int:
    """Run every job as a Ray task; ``emit(outcome, attempts)`` each as it finishes. Returns the slots used.

    A task whose worker died is retried by Ray (``max_retries=retries``); a task that returned a
    retryable error is submitted again, up to ``retries`` times.
    """
    with ray_session(address, workers=workers) as ray:
        resources = ray.cluster_resources()
        threads = task.threads or 1
        task = dataclasses.replace(task, threads=threads)
        gpus = gpus_per_task if uses_cuda(task.config.device, resources) else 0
        slots = max(1, int(resources.get("CPU", 1) // threads))
        if gpus:
            slots = min(slots, max(1, int(resources.get("GPU", 0) // gpus)))
        remote = ray.remote(_signature_task).options(
            num_cpus=threads, num_gpus=gpus, max_retries=retries, retry_exceptions=False
        )
        # In a list, so that Ray hands the tasks the references rather than the objects: a worker
        # fetches them once (see _shared_inputs), not on every task.
        shared = [ray.put(refset), ray.put(probe)]
        queue = deque((name, source, 1) for name, source in jobs)
        pending: dict[Any, tuple[str, ModelSource, int]] = {}
        while queue or pending:
            while queue and len(pending) < TASKS_PER_SLOT * slots:
                name, source, attempt = queue.popleft()
                pending[remote.remote(name, source, shared, refset.fingerprint(), task)] = (name, source, attempt)
            ready, _ = ray.wait(list(pending), num_returns=1)
            for ref in ready:
                name, source, attempt = pending.pop(ref)
                try:
                    outcome = ray.get(ref)
                except ray.exceptions.RayError as error:  # its worker died, and so did Ray's retries
                    summary = str(error).strip().splitlines()[0] if str(error).strip() else ""
                    emit(Outcome(name, error=f"{type(error).__name__}: {summary}"), attempt + retries)
                    continue
                if outcome.error is not None and outcome.retryable and attempt <= retries:
                    queue.append((name, source, attempt + 1))
                    continue
                emit(outcome, attempt)
    return slots


# Per worker process: the reference set and probe of each (reference set, config) it has served.
_SHARED: dict[tuple[str, str], tuple[ReferenceSet, Probe]] = {}


def _shared_inputs(shared: list, refset_fingerprint: str, task: TaskSpec) -> ReferenceSet:
    import ray

    key = (refset_fingerprint, task.config.fingerprint(science_only=True))
    if key not in _SHARED:
        _SHARED[key] = (ray.get(shared[0]), ray.get(shared[1]))
    refset, probe = _SHARED[key]
    adopt_probe(probe, task.config, resolve_device(task.config.device))
    return refset


def _signature_task(name: str, source: ModelSource, shared: list, refset_fingerprint: str, task: TaskSpec) -> Outcome:
    """One model's signature, on a Ray worker."""
    with torch_threads(task.threads):
        refset = _shared_inputs(shared, refset_fingerprint, task)
        return signature_outcome(name, source, refset, task)
