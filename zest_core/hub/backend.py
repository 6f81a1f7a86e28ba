"""What one signature task does, on any backend, and the local backend that runs the tasks in this process.

A task (:func:`signature_outcome`) loads its model, computes the signature with
:func:`~zest_core.pipeline.signature.compute_signature` (and so through the content-addressed cache,
with its atomic writes and identity checks), and returns the C × ΣK matrix, never the segments,
which are the probe's. A failure that may be transient (the model raised an exception of its own,
an endpoint failed, the worker died) is retried; any other is reported by the model's name at once,
and a model's failure never stops the others. A run that was stopped part-way resumes from the
cache: the signatures it had finished are read back, not computed again.

This module needs no Ray; :mod:`zest_core.hub.ray_backend` runs the same tasks on a cluster.
"""
from __future__ import annotations

import contextlib
import dataclasses
import os
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Sequence, Union

import numpy as np
import torch

from ..errors import EndpointError, ModelRuntimeError, ZestError
from ..pipeline.config import ZestConfig
from ..pipeline.probe import Probe
from ..pipeline.reference import ReferenceSet
from ..pipeline.signature import compute_signature
from .catalog import HubModel

BACKENDS = ("local", "ray")
DEFAULT_RETRIES = 1
# What an exception's message may say of it at most in a report (a traceback stays in the log).
_MESSAGE_LIMIT = 500

ModelSource = Union[str, HubModel, Callable[[torch.Tensor], Any]]
ProgressFn = Callable[[int, int, str], None]


@dataclass(frozen=True)
class ModelFailure:
    """A model whose signature could not be computed.

    Attributes
    ----------
    name : str
    error : str
        ``"ExceptionType: message"``.
    attempts : int
        How many times its task ran.
    """

    name: str
    error: str
    attempts: int

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class Outcome:
    """What one task returns: the signature matrix and its labels, or the error (small enough to ship)."""

    name: str
    matrix: np.ndarray | None = None
    class_names: list[str] | None = None
    fingerprint: str | None = None
    cached: bool = False
    seconds: float = 0.0
    error: str | None = None
    retryable: bool = False


def probe_columns(probe: Probe) -> np.ndarray:
    """Start column of each image in a signature matrix computed with this probe (N + 1 values)."""
    return np.concatenate([[0], np.cumsum(probe.num_segments)])


@dataclass(frozen=True)
class TaskSpec:
    """What every signature task of a run shares, besides the reference set and the probe."""

    config: ZestConfig
    cache_root: str | None
    threads: int | None
    allow_nondeterministic: bool


def run_local(
    jobs: Sequence[tuple[str, ModelSource]], refset: ReferenceSet, task: TaskSpec, retries: int,
    emit: Callable[[Outcome, int], None],
) -> None:
    """Every job in this process, one after another, each tried up to ``retries + 1`` times."""
    with torch_threads(task.threads):
        for name, source in jobs:
            for attempt in range(1, retries + 2):
                outcome = signature_outcome(name, source, refset, task)
                if outcome.error is None or not outcome.retryable:
                    break
            emit(outcome, attempt)


def signature_outcome(name: str, source: ModelSource, refset: ReferenceSet, task: TaskSpec) -> Outcome:
    """One task: load the model, compute (or read from the cache) its signature, and say what happened.

    Never raises for a fault of the model: the error is returned, marked retryable when it may be
    transient (the model's own exception, an endpoint's failure, anything not a ZestError).
    """
    started = time.perf_counter()
    stages: list[str] = []
    try:
        model = load_source(source)
        signature = compute_signature(
            model, refset, task.config, lambda done, total, stage: stages.append(stage),
            cache=False if task.cache_root is None else task.cache_root,
            allow_nondeterministic=task.allow_nondeterministic,
        )
    except Exception as error:  # noqa: BLE001 - a model's fault is reported by its name, never raised
        retryable = isinstance(error, (ModelRuntimeError, EndpointError)) or not isinstance(error, ZestError)
        return Outcome(name, seconds=time.perf_counter() - started, error=describe_error(error), retryable=retryable)
    return Outcome(
        name, signature.matrix(), signature.class_names, signature.model_fingerprint, cached="cached" in stages,
        seconds=time.perf_counter() - started,
    )


def load_source(source: ModelSource) -> Any:
    """The model a source names: a spec is loaded with :func:`zest_core.load_model`, a HubModel by itself."""
    if isinstance(source, HubModel):
        return source.load()
    if isinstance(source, (str, os.PathLike)):
        return HubModel(str(source), str(source)).load()
    return source


def describe_error(error: BaseException) -> str:
    text = f"{type(error).__name__}: {error}"
    return text if len(text) <= _MESSAGE_LIMIT else text[: _MESSAGE_LIMIT - 1] + "…"


@contextlib.contextmanager
def torch_threads(threads: int | None) -> Iterator[None]:
    """Run with ``threads`` torch threads (None: as they are), restoring the count after."""
    if threads is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


