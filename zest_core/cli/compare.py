"""``zest signature``, ``zest distance`` and ``zest matrix``: one model's signature, and distances between models."""
from __future__ import annotations

import csv
import io
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .._shared.atomic import atomic_write_bytes
from ..hub import hub_distance_matrix
from ..pipeline.distance import compare, signature_distance_matrix
from ..pipeline.counting import QueryCount
from ..studies.accounting import (
    describe_entry,
    queries_report,
    signature_queries,
    signature_query_detail,
    with_http,
)
from .inputs import (
    EXIT_OK,
    SIGNATURE_SUFFIX,
    CLIError,
    budgeted,
    cache_from_request,
    config_from_request,
    load_classifier,
    load_input,
    load_refset,
    signature_of,
    signatures_of,
)
from .requests import DistanceRequest, MatrixRequest, SignatureRequest
from .search import EXIT_PARTIAL, hub_flags_named, report_failures, stack_of_inputs


def cmd_signature(request: SignatureRequest) -> int:
    """``zest signature MODEL --refset REF -o OUT.npz``."""
    if not request.output.lower().endswith(SIGNATURE_SUFFIX):
        raise CLIError(f"-o: expected an output path ending in {SIGNATURE_SUFFIX}, got {request.output!r}")
    model = load_classifier(request.model, **request.model_options())
    refset, config, plan = budgeted(request, load_refset(request.refset, request.image_size), config_from_request(request))
    made = QueryCount()
    signature = signature_of(
        request.model, model, refset, config, cache_from_request(request),
        allow_nondeterministic=request.allow_nondeterministic, counter=made, adapt=request.input_adapter,
    )
    signature.metadata.update(model=request.model, refset=refset.describe())
    if plan is not None:
        signature.metadata["budget"] = plan.to_dict()
    path = signature.save(request.output)
    print(
        f"wrote {path}: {signature.num_classes} classes × {signature.matrix().shape[1]} super-pixel weights "
        f"over {signature.num_images} reference images"
    )
    print(f"queries: {describe_entry(with_http(signature_queries(signature, made), model))}")
    return EXIT_OK


def cmd_distance(request: DistanceRequest) -> int:
    """``zest distance A B --refset REF``: the Zest distance, as a number or one JSON object."""
    inputs = [load_input(spec, **request.model_options()) for spec in (request.a, request.b)]
    counters: list[QueryCount] = []
    (sig_a, sig_b), plan = signatures_of(inputs, request, counters=counters)
    queries = [
        with_http(signature_queries(sig, made), item.model) for item, sig, made in zip(inputs, (sig_a, sig_b), counters)
    ]
    comparison = compare(sig_a, sig_b, metric=request.metric, align=request.align)
    distance, method = comparison.distance, comparison.method
    if not request.json:
        print(_format_number(distance))
        # On stderr, with the progress bars: stdout stays the one number that scripts read.
        for item, entry in zip(inputs, queries):
            print(f"queries of {item.spec}: {describe_entry(entry)}", file=sys.stderr)
        return EXIT_OK
    report: dict[str, Any] = {
        "distance": distance,
        "metric": request.metric,
        "align": request.align,
        "alignment_method": method,
        "models": [
            {"input": item.spec, "fingerprint": sig.model_fingerprint, "num_classes": sig.num_classes,
             "queries": entry}
            for item, sig, entry in zip(inputs, (sig_a, sig_b), queries)
        ],
        "refset_fingerprint": sig_a.refset_fingerprint,
        "config": sig_a.config.science_dict(),
        "budget": None if plan is None else plan.to_dict(),
    }
    detail = signature_query_detail(sig_a.num_images, sig_a.config.num_samples)
    totals = queries_report({"a": queries[0], "b": queries[1]}, f"{detail}; per model in models[].queries")
    report["queries"] = {"total": totals["total"], "now": totals["now"], "detail": totals["detail"]}
    if method is not None:
        report["pairs"] = comparison.pairs.tolist()
    print(json.dumps(report))
    return EXIT_OK


def cmd_matrix(request: MatrixRequest) -> int:
    """``zest matrix M1 M2 ... --refset REF [--backend local|ray]``: every pairwise distance, each signature once.

    The signatures are computed on the backend, one task per model; a model that fails is reported
    on stderr and left out of the matrix (exit status 1). Cosine distances are computed blockwise
    (:func:`zest_core.hub.hub_distance_matrix`); ``--format npy`` streams them to ``-o FILE``.
    """
    if len(request.models) < 2:
        raise CLIError(f"matrix: expected at least 2 models, got {len(request.models)}")
    if request.format == "npy" and not request.output:
        raise CLIError("--format npy: expected -o FILE.npy to stream the matrix to, got no -o")
    specs = list(dict.fromkeys(request.models))  # a model given twice is computed once
    with tempfile.TemporaryDirectory(dir=Path(request.output).parent if request.format == "npy" else None) as scratch:
        # Streaming: the signatures wait in a file too, so that neither they nor the matrix fill the memory.
        stack_path = Path(scratch) / "signatures.f64" if request.format == "npy" else None
        stack, segments, failures = stack_of_inputs(specs, request, stack_path=stack_path)
        names = [spec for spec in request.models if spec in stack.names]
        if len(names) < 2:
            report_failures(failures)
            raise CLIError(f"matrix: expected at least 2 models with a signature, got {len(names)} ({len(failures)} failed)")
        order = [stack.index(name) for name in names]
        # Streamed into the scratch folder (beside -o), then moved into place: -o is whole or absent.
        out = str(Path(scratch) / "matrix.npy") if request.format == "npy" else None
        with hub_flags_named():
            if request.metric == "cosine":
                matrix = hub_distance_matrix(stack, align=request.align, block_size=request.block_size, out=out, order=order)
            else:
                signatures = [stack.signature(index, segments) for index in order]
                matrix = signature_distance_matrix(signatures, metric=request.metric, align=request.align)
                if out is not None:
                    np.save(out, matrix)
        if request.format == "npy":
            del matrix  # the memory map of the scratch file, before it moves
            atomic_write_bytes(Path(request.output).with_suffix(".names.txt"), ("\n".join(names) + "\n").encode())
            os.replace(out, request.output)
        else:
            text = _matrix_csv(names, matrix) if request.format == "csv" else _matrix_json(names, matrix, request)
            if request.output:
                atomic_write_bytes(request.output, text.encode())
            else:
                sys.stdout.write(text)
    report_failures(failures)
    return EXIT_PARTIAL if failures else EXIT_OK


def _matrix_csv(names: Sequence[str], matrix: np.ndarray) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["model", *names])
    for name, row in zip(names, matrix):
        writer.writerow([name, *map(_format_number, row)])
    return buffer.getvalue()


def _matrix_json(names: Sequence[str], matrix: np.ndarray, request: MatrixRequest) -> str:
    report = {"models": list(names), "metric": request.metric, "align": request.align, "matrix": matrix.tolist()}
    return json.dumps(report) + "\n"


def _format_number(value: float) -> str:
    return format(float(value), ".10g")
