"""``zest signature``, ``zest distance`` and ``zest matrix``: one model's signature, and distances between models."""
from __future__ import annotations

import argparse
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
    cache_from_args,
    budgeted,
    config_from_args,
    load_classifier,
    load_input,
    load_refset,
    model_options,
    signature_of,
    signatures_of,
)
from .search import EXIT_PARTIAL, hub_flags_named, report_failures, stack_of_inputs


def cmd_signature(args: argparse.Namespace) -> int:
    """``zest signature MODEL --refset REF -o OUT.npz``."""
    if not args.output.lower().endswith(SIGNATURE_SUFFIX):
        raise CLIError(f"-o: expected an output path ending in {SIGNATURE_SUFFIX}, got {args.output!r}")
    model = load_classifier(args.model, **model_options(args))
    refset, config = budgeted(args, load_refset(args.refset, args.image_size), config_from_args(args))
    made = QueryCount()
    signature = signature_of(
        args.model, model, refset, config, cache_from_args(args),
        allow_nondeterministic=args.allow_nondeterministic, counter=made, adapt=args.input_adapter,
    )
    signature.metadata.update(model=args.model, refset=refset.describe())
    if args.budget_plan is not None:
        signature.metadata["budget"] = args.budget_plan.to_dict()
    path = signature.save(args.output)
    print(
        f"wrote {path}: {signature.num_classes} classes × {signature.matrix().shape[1]} super-pixel weights "
        f"over {signature.num_images} reference images"
    )
    print(f"queries: {describe_entry(with_http(signature_queries(signature, made), model))}")
    return EXIT_OK


def cmd_distance(args: argparse.Namespace) -> int:
    """``zest distance A B --refset REF``: the Zest distance, as a number or one JSON object."""
    inputs = [load_input(spec, **model_options(args)) for spec in (args.a, args.b)]
    counters: list[QueryCount] = []
    sig_a, sig_b = signatures_of(inputs, args, counters=counters)
    queries = [
        with_http(signature_queries(sig, made), item.model) for item, sig, made in zip(inputs, (sig_a, sig_b), counters)
    ]
    comparison = compare(sig_a, sig_b, metric=args.metric, align=args.align)
    distance, method = comparison.distance, comparison.method
    if not args.json:
        print(_format_number(distance))
        # On stderr, with the progress bars: stdout stays the one number that scripts read.
        for item, entry in zip(inputs, queries):
            print(f"queries of {item.spec}: {describe_entry(entry)}", file=sys.stderr)
        return EXIT_OK
    report: dict[str, Any] = {
        "distance": distance,
        "metric": args.metric,
        "align": args.align,
        "alignment_method": method,
        "models": [
            {"input": item.spec, "fingerprint": sig.model_fingerprint, "num_classes": sig.num_classes,
             "queries": entry}
            for item, sig, entry in zip(inputs, (sig_a, sig_b), queries)
        ],
        "refset_fingerprint": sig_a.refset_fingerprint,
        "config": sig_a.config.science_dict(),
        "budget": None if args.budget_plan is None else args.budget_plan.to_dict(),
    }
    detail = signature_query_detail(sig_a.num_images, sig_a.config.num_samples)
    totals = queries_report({"a": queries[0], "b": queries[1]}, f"{detail}; per model in models[].queries")
    report["queries"] = {"total": totals["total"], "now": totals["now"], "detail": totals["detail"]}
    if method is not None:
        report["pairs"] = comparison.pairs.tolist()
    print(json.dumps(report))
    return EXIT_OK


def cmd_matrix(args: argparse.Namespace) -> int:
    """``zest matrix M1 M2 ... --refset REF [--backend local|ray]``: every pairwise distance, each signature once.

    The signatures are computed on the backend, one task per model; a model that fails is reported
    on stderr and left out of the matrix (exit status 1). Cosine distances are computed blockwise
    (:func:`zest_core.hub.hub_distance_matrix`); ``--format npy`` streams them to ``-o FILE``.
    """
    if len(args.models) < 2:
        raise CLIError(f"matrix: expected at least 2 models, got {len(args.models)}")
    if args.format == "npy" and not args.output:
        raise CLIError("--format npy: expected -o FILE.npy to stream the matrix to, got no -o")
    specs = list(dict.fromkeys(args.models))  # a model given twice is computed once
    with tempfile.TemporaryDirectory(dir=Path(args.output).parent if args.format == "npy" else None) as scratch:
        # Streaming: the signatures wait in a file too, so that neither they nor the matrix fill the memory.
        stack_path = Path(scratch) / "signatures.f64" if args.format == "npy" else None
        stack, segments, failures = stack_of_inputs(specs, args, stack_path=stack_path)
        names = [spec for spec in args.models if spec in stack.names]
        if len(names) < 2:
            report_failures(failures)
            raise CLIError(f"matrix: expected at least 2 models with a signature, got {len(names)} ({len(failures)} failed)")
        order = [stack.index(name) for name in names]
        # Streamed into the scratch folder (beside -o), then moved into place: -o is whole or absent.
        out = str(Path(scratch) / "matrix.npy") if args.format == "npy" else None
        with hub_flags_named():
            if args.metric == "cosine":
                matrix = hub_distance_matrix(stack, align=args.align, block_size=args.block_size, out=out, order=order)
            else:
                signatures = [stack.signature(index, segments) for index in order]
                matrix = signature_distance_matrix(signatures, metric=args.metric, align=args.align)
                if out is not None:
                    np.save(out, matrix)
        if args.format == "npy":
            del matrix  # the memory map of the scratch file, before it moves
            atomic_write_bytes(Path(args.output).with_suffix(".names.txt"), ("\n".join(names) + "\n").encode())
            os.replace(out, args.output)
        else:
            text = _matrix_csv(names, matrix) if args.format == "csv" else _matrix_json(names, matrix, args)
            if args.output:
                atomic_write_bytes(args.output, text.encode())
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


def _matrix_json(names: Sequence[str], matrix: np.ndarray, args: argparse.Namespace) -> str:
    report = {"models": list(names), "metric": args.metric, "align": args.align, "matrix": matrix.tolist()}
    return json.dumps(report) + "\n"


def _format_number(value: float) -> str:
    return format(float(value), ".10g")
