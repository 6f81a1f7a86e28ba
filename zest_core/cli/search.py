"""``zest search SUSPECT --hub DIR|LIST``: the hub's models ranked by distance to a suspect, with verdicts.

Also the pieces ``zest matrix`` shares with it: the backend flags (``--backend``, ``--address``, ...),
the models-done progress bar, and the signatures of MODEL arguments computed on a backend.
"""
from __future__ import annotations

import csv
import io
import json
import sys
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .._shared.atomic import atomic_write_bytes
from .._shared.progress import ProgressBar
from ..hub import HubModel, ModelFailure, SearchResult, SignatureStack, compute_signatures, load_hub, search_hub
from ..pipeline.config import ZestConfig
from ..pipeline.distance import check_compatible
from ..pipeline.signature import Signature
from .audit import unrelated_specs
from .inputs import (
    CONFIG_FIELD_FLAGS,
    EXIT_OK,
    CLIError,
    budgeted,
    cache_from_request,
    config_from_request,
    is_signature_spec,
    load_refset,
    load_signature,
    named_as_flags,
)
from .requests import ComputeFlags, MatrixRequest, SearchRequest

EXIT_PARTIAL = 1  # the command's output covers the models that succeeded; the others are listed on stderr
# Engine parameter → the flag that gives it, for messages.
BACKEND_FLAGS = {
    "threads": "--threads", "retries": "--task-retries", "workers": "--workers", "gpus_per_task": "--gpus-per-task",
    "block_size": "--block-size", "top": "--top", "alpha": "--alpha", "backend": "--backend",
}


class ModelProgress(ProgressBar):
    """The bar of a hub run: models done of the total, and how many are left; then blocks of distances."""

    UNITS = {"signatures": "model", "distances": "block"}

    def __call__(self, done: int, total: int, stage: str) -> None:
        if stage != self._stage:
            self._stage = stage
            self._restart(total, f"{self.label}{stage}")
            self._bar.unit = self.UNITS.get(stage, "it")
        self._bar.set_postfix_str(f"{total - done} left", refresh=False)
        self._bar.update(done - self._bar.n)


def model_source(spec: str, request: ComputeFlags) -> HubModel:
    """A MODEL argument as a hub model: loaded by its task, with the command's --trust-pickle/--timeout/--retries."""
    endpoint = {"timeout": request.timeout, "retries": request.retries}
    return HubModel(spec, spec, trust_pickle=request.trust_pickle,
                    endpoint_options={k: v for k, v in endpoint.items() if v is not None})


def backend_options(request: MatrixRequest | SearchRequest) -> dict[str, Any]:
    """:func:`zest_core.hub.compute_signatures`'s options that the backend and cache flags give."""
    return {
        "backend": request.backend, "address": request.address, "workers": request.workers, "threads": request.threads,
        "gpus_per_task": request.gpus_per_task, "retries": request.task_retries, "cache": cache_from_request(request),
        "allow_nondeterministic": request.allow_nondeterministic,
    }


def hub_flags_named() -> Any:
    """Errors about config or backend parameters reported against the flags the user typed."""
    return named_as_flags({**CONFIG_FIELD_FLAGS, **BACKEND_FLAGS})


def report_failures(failures: Sequence[ModelFailure]) -> None:
    for failure in failures:
        print(f"zest: error: {failure.name}: {failure.error} (after {failure.attempts} attempt(s))", file=sys.stderr)


def stack_of_inputs(
    specs: Sequence[str], request: MatrixRequest, *, stack_path: str | Path | None = None
) -> tuple[SignatureStack, np.ndarray, list[ModelFailure]]:
    """The signatures of MODEL arguments (each spec once): signature files read, models computed on the backend.

    Returns the stack (named by spec), the segments its signatures share, and the models that failed.
    """
    loaded = {spec: load_signature(spec) for spec in specs if is_signature_spec(spec)}
    first = next(iter(loaded.values()), None)
    # Unset config flags follow a given signature file's config, so a model can be compared with it.
    config = config_from_request(request, ZestConfig(**first.config.science_dict()) if first else None)
    models = [spec for spec in specs if spec not in loaded]
    if not models:
        _check_all_compatible(next(iter(loaded)), first, loaded)
        return SignatureStack.from_signatures(list(loaded), list(loaded.values()), path=stack_path), first.segments, []
    if request.refset is None:
        raise CLIError(f"--refset is required to compute the signature of {models[0]}")
    refset, config, _ = budgeted(request, load_refset(request.refset, request.image_size), config)
    if first is not None and first.refset_fingerprint != refset.fingerprint():
        raise CLIError(f"{next(iter(loaded))} was computed on another reference set than --refset {request.refset}; use the same one")
    with ModelProgress("") as bar, hub_flags_named():
        run = compute_signatures({spec: model_source(spec, request) for spec in models}, refset, config, progress=bar,
                                 stack_path=stack_path, **backend_options(request))
    if loaded and len(run.stack):
        reference = run.stack.names[0]
        _check_all_compatible(reference, run.signature(reference), loaded)
    elif loaded:
        _check_all_compatible(next(iter(loaded)), first, loaded)
    for spec, signature in loaded.items():
        run.stack.append(spec, signature.matrix(), class_names=signature.class_names,
                         fingerprint=signature.model_fingerprint)
    run.stack.close()
    return run.stack, run.segments, run.failures


def _check_all_compatible(reference: str, signature: Signature, others: dict[str, Signature]) -> None:
    for spec, other in others.items():
        try:
            check_compatible(signature, other)
        except ValueError as error:
            raise CLIError(f"{reference} vs {spec}: {error}") from error


def cmd_search(request: SearchRequest) -> int:
    """``zest search SUSPECT --hub DIR|LIST [--top K] [--unrelated SPEC ...] [--json] [-o RANKING.csv]``."""
    hub = load_hub(request.hub, checkpoints=not request.no_checkpoints, trust_pickle=request.trust_pickle,
                   endpoint_options=model_source("", request).endpoint_options)
    refset, config, plan = budgeted(request, load_refset(request.refset or "mnist", request.image_size),
                                    config_from_request(request))
    unrelated = None
    if request.unrelated:
        unrelated = {spec: model_source(spec, request) for spec in unrelated_specs(request.unrelated)}
    with ModelProgress("") as bar, hub_flags_named():
        result = search_hub(
            model_source(request.suspect, request), hub, refset, config, top=request.top, alpha=request.alpha,
            align=request.align, unrelated=unrelated, block_size=request.block_size, progress=bar, **backend_options(request),
        )
    if request.output:
        write_ranking(request.output, result)
    budget = None if plan is None else plan.to_dict()
    print(json.dumps({**result.to_dict(), "budget": budget}, indent=2) if request.json else describe_search(result))
    report_failures(result.failures)
    return EXIT_PARTIAL if result.failures else EXIT_OK


def write_ranking(path: str | Path, result: SearchResult) -> None:
    """Every ranked hub model as CSV: rank, model, distance."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["rank", "model", "distance"])
    writer.writerows((rank, name, format(d, ".10g")) for rank, (name, d) in enumerate(result.ranking, start=1))
    atomic_write_bytes(path, buffer.getvalue().encode())  # whole or absent


def describe_search(result: SearchResult) -> str:
    """The ranking's top for people: one line per candidate, then how the signatures were obtained."""
    run = result.run
    lines = [
        f"suspect: {result.suspect}; {len(result.ranking)} models of the {result.info['hub']} ranked by Zest cosine "
        f"distance (align {result.align}), verdicts at α = {result.alpha:g}",
        f"{'rank':>4}  {'distance':>10}  {'verdict':<12}  {'p':>9}  model (null)",
    ]
    for c in result.candidates:
        p = "n/a" if c.decision.p_value is None else f"{c.decision.p_value:.3g}"
        lines.append(f"{c.rank:>4}  {c.distance:>10.6f}  {c.decision.verdict:<12}  {p:>9}  {c.name} "
                     f"({len(c.null_models)} unrelated)")
    reasons = {c.null_reason for c in result.candidates if not c.null_models}
    lines += [f"null: {reason}" for reason in sorted(reasons)]
    lines.append(
        f"signatures: {len(run.computed)} computed, {len(run.cached)} from the cache, {len(run.failures)} failed, "
        f"in {run.seconds:.1f} s on the {run.backend} backend ({run.slots} at a time)"
    )
    return "\n".join(lines)
