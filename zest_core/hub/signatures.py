"""Signatures of many models: one task per model, on this process ("local") or on a Ray cluster ("ray").

:func:`compute_signatures` builds the probe once, hands the models to a backend
(:func:`zest_core.hub.backend.run_local`, or :func:`zest_core.hub.ray_backend.run_ray`, which alone
imports Ray, and only when it is asked for), and puts each finished signature in a
:class:`~zest_core.hub.stack.SignatureStack` as it arrives. What a task does, and which failures
are retried, is :mod:`zest_core.hub.backend`'s.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np
import torch

from .._shared.checks import check_choice, check_int, check_number, check_type
from ..cache.store import CacheArg, resolve_cache
from ..errors import ZestError
from ..pipeline.config import ZestConfig
from ..pipeline.local_fit import check_samples_determine_fits
from ..pipeline.probe import prepare_probe
from ..pipeline.reference import ReferenceSet, check_refset
from ..pipeline.signature import Signature
from .backend import (
    BACKENDS,
    DEFAULT_RETRIES,
    ModelFailure,
    ModelSource,
    Outcome,
    ProgressFn,
    TaskSpec,
    probe_columns,
    run_local,
)
from .stack import SignatureStack


@dataclass
class SignatureRun:
    """The signatures of a run, their stack, and what went wrong.

    Attributes
    ----------
    stack : SignatureStack
        The models whose signature was computed, in the order they finished.
    failures : list of ModelFailure
    cached, computed : list of str
        The models read from the cache, and those computed in this run.
    seconds : float
        Wall time of the run (the probe and, for Ray, starting or joining the cluster included).
    backend : str
    slots : int
        Models computed at the same time.
    segments : ndarray (N, H, W)
        The probe's segments, shared by every signature of the run.
    task_seconds : float
        The time the tasks took, added up (their loading, cache look-up and computing), without
        waiting, shipping or starting workers.
    """

    stack: SignatureStack
    failures: list[ModelFailure]
    cached: list[str]
    computed: list[str]
    seconds: float
    backend: str
    slots: int
    segments: np.ndarray
    task_seconds: float = 0.0

    def order(self, names: Sequence[str]) -> list[int]:
        """Stack indices of the given models (each must have succeeded)."""
        return [self.stack.index(name) for name in names]

    def signature(self, name: str) -> Signature:
        """One model's signature, rebuilt from the stack and the probe's segments."""
        return self.stack.signature(self.stack.index(name), self.segments)


def compute_signatures(
    models: Mapping[str, ModelSource],
    refset: ReferenceSet,
    config: ZestConfig | None = None,
    *,
    backend: str = "local",
    cache: CacheArg = None,
    retries: int = DEFAULT_RETRIES,
    threads: int | None = None,
    gpus_per_task: float = 1.0,
    address: str = "auto",
    workers: int | None = None,
    stack_path: str | os.PathLike | None = None,
    progress: ProgressFn | None = None,
    allow_nondeterministic: bool = False,
) -> SignatureRun:
    """The signatures of many models, one task per model, on this process or on a Ray cluster.

    Parameters
    ----------
    models : mapping of str to model source
        Name → a :func:`zest_core.load_model` spec, a :class:`HubModel`, or a model (callable;
        with ``backend="ray"`` it must pickle). Specs and hub models are loaded by their task.
    refset : ReferenceSet
    config : ZestConfig, optional
    backend : {"local", "ray"}
        "local" computes one model after another in this process; "ray" submits one Ray task per
        model (see :func:`zest_core.hub.ray_backend.run_ray`).
    cache : SignatureCache, folder, bool or None
        As in :func:`compute_signature`. A folder shared by a cluster's machines means that no
        signature is computed twice, by any worker or any run.
    retries : int, default 1
        Further attempts for a task whose failure may be transient (the model raised, an endpoint
        failed, a worker died). Bad inputs (a model that cannot be loaded or returns bad scores)
        are reported at once.
    threads : int, optional
        Torch threads per model: the CPUs each Ray task declares (default 1 there); locally,
        torch's own default unless given.
    gpus_per_task : float, default 1.0
        Ray: the GPUs each task declares when the models run on CUDA (``config.device`` "cuda",
        or "auto" on a cluster with GPUs); a fraction lets several small models share one GPU.
    address : str, default "auto"
        Ray: "auto" joins a running cluster and otherwise starts a local Ray; "local" always
        starts one; anything else is a cluster address (``HOST:PORT``, ``ray://HOST:PORT``).
    workers : int, optional
        Ray: the CPUs of a local Ray started here (default: all of this machine's).
    stack_path : path, optional
        Keep the signature matrices in this file instead of in memory (see :class:`SignatureStack`).
    progress : callable (done, total, stage), optional
        Called as models finish, with stage "signatures"; done counts failures too.
    allow_nondeterministic : bool, default False
        As in :func:`compute_signature`.

    Returns
    -------
    SignatureRun

    Raises
    ------
    ZestError
        For a bad argument, before any model is run; failures of models are reported in the run.
    """
    config = config or ZestConfig()
    check_refset(refset)
    check_choice("backend", backend, BACKENDS)
    check_int("retries", retries, minimum=0)
    if threads is not None:
        check_int("threads", threads, minimum=1)
    check_number("gpus_per_task", gpus_per_task, minimum=0.0, strict=True)
    check_type("allow_nondeterministic", allow_nondeterministic, bool, "a bool")
    if not models:
        raise ZestError("models: expected at least one model, got none")
    if backend == "ray":
        from .ray_backend import import_ray  # Ray is imported only here, when it is asked for

        import_ray()  # a missing Ray is reported before the probe is built
    started = time.perf_counter()
    store = resolve_cache(cache)
    # The probe is built once, here, from the cached segments when there are some: the local tasks
    # find it in this process's memory, Ray ships it to every worker through the object store.
    probe = prepare_probe(refset, config, torch.device("cpu"), cache=store)
    check_samples_determine_fits(probe.num_segments, config.num_samples, config.mask_design)  # a config fault: before any model
    stack = SignatureStack(probe_columns(probe), refset_fingerprint=refset.fingerprint(), config=config, path=stack_path)
    collected = _Collector(stack, len(models), progress)
    task = TaskSpec(
        config=config, cache_root=None if store is None else str(store.root), threads=threads,
        allow_nondeterministic=allow_nondeterministic,
    )
    jobs = list(models.items())
    try:
        if backend == "local":
            slots = 1
            run_local(jobs, refset, task, retries, collected.add)
        else:
            from .ray_backend import run_ray

            slots = run_ray(
                jobs, refset, probe, task, retries=retries, gpus_per_task=gpus_per_task, address=address,
                workers=workers, emit=collected.add,
            )
    finally:
        stack.close()
    return SignatureRun(
        stack=stack, failures=collected.failures, cached=collected.cached, computed=collected.computed,
        seconds=time.perf_counter() - started, backend=backend, slots=slots, segments=probe.segments,
        task_seconds=collected.task_seconds,
    )


class _Collector:
    """Puts each finished model in the stack (or the failures) and advances the progress."""

    def __init__(self, stack: SignatureStack, total: int, progress: ProgressFn | None) -> None:
        self.stack, self.total, self.progress = stack, total, progress
        self.failures: list[ModelFailure] = []
        self.cached: list[str] = []
        self.computed: list[str] = []
        self.task_seconds = 0.0

    def add(self, outcome: Outcome, attempts: int) -> None:
        self.task_seconds += outcome.seconds
        if outcome.error is not None:
            self.failures.append(ModelFailure(outcome.name, outcome.error, attempts))
        else:
            self.stack.append(outcome.name, outcome.matrix, class_names=outcome.class_names,
                              fingerprint=outcome.fingerprint)
            (self.cached if outcome.cached else self.computed).append(outcome.name)
        if self.progress is not None:
            self.progress(len(self.failures) + len(self.stack), self.total, "signatures")
