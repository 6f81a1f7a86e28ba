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
(``RAY_USAGE_STATS_ENABLED=0``) and listens on 127.0.0.1 only.

References
----------
Moritz et al., "Ray: A Distributed Framework for Emerging AI Applications", OSDI 2018.
"""
from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
from collections import deque
from typing import Any, Callable, Iterator, Mapping, Sequence

from ..errors import ZestError
from ..pipeline.probe import Probe, adopt_probe
from ..pipeline.queries import resolve_device
from ..pipeline.reference import ReferenceSet
from .backend import ModelSource, Outcome, TaskSpec, signature_outcome, torch_threads

# Set before Ray is imported, so that the driver and every process it starts inherit them.
RAY_ENVIRONMENT = {"RAY_USAGE_STATS_ENABLED": "0"}
LOCAL_ADDRESS = "127.0.0.1"
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
def ray_session(address: str = "auto", *, workers: int | None = None) -> Iterator[Any]:
    """Ray, initialised for the block: a running session is used as it is, else one is joined or started.

    Parameters
    ----------
    address : str
        "auto": join the cluster that ``RAY_ADDRESS`` or a ``ray start`` on this machine names, else
        start a local Ray; "local": always start one; anything else: the address of a cluster.
    workers : int, optional
        CPUs of a local Ray started here (default: all of this machine's); a joined cluster has its own.

    Yields
    ------
    module
        ``ray``. A session started or joined here is shut down on leaving; one the caller had
        started is left running.
    """
    ray = import_ray()
    if ray.is_initialized():
        yield ray
        return
    quiet = {"log_to_driver": False, "logging_level": logging.WARNING}
    local = {"num_cpus": workers, "include_dashboard": False, "_node_ip_address": LOCAL_ADDRESS, **quiet}
    if address == "auto":
        try:
            ray.init(address="auto", **quiet)
        except ConnectionError:  # no cluster to join
            ray.init(**local)
    elif address == "local":
        ray.init(**local)
    else:
        ray.init(address=address, **quiet)
    try:
        yield ray
    finally:
        ray.shutdown()


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
