"""``zest signature``, ``zest distance`` and ``zest matrix``: one model's signature, and distances between models."""
from __future__ import annotations

import argparse
import csv
import io
import json
import sys
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..pipeline.distance import compare, signature_distance_matrix
from .inputs import (
    EXIT_OK,
    SIGNATURE_SUFFIX,
    CLIError,
    cache_from_args,
    config_from_args,
    load_classifier,
    load_input,
    load_refset,
    model_options,
    signature_of,
    signatures_of,
)


def cmd_signature(args: argparse.Namespace) -> int:
    """``zest signature MODEL --refset REF -o OUT.npz``."""
    if not args.output.lower().endswith(SIGNATURE_SUFFIX):
        raise CLIError(f"-o: expected an output path ending in {SIGNATURE_SUFFIX}, got {args.output!r}")
    model = load_classifier(args.model, **model_options(args))
    refset = load_refset(args.refset, args.image_size)
    signature = signature_of(
        args.model, model, refset, config_from_args(args), cache_from_args(args),
        allow_nondeterministic=args.allow_nondeterministic,
    )
    signature.metadata.update(model=args.model, refset=refset.describe())
    path = signature.save(args.output)
    print(
        f"wrote {path}: {signature.num_classes} classes × {signature.matrix().shape[1]} super-pixel weights "
        f"over {signature.num_images} reference images"
    )
    return EXIT_OK


def cmd_distance(args: argparse.Namespace) -> int:
    """``zest distance A B --refset REF``: the Zest distance, as a number or one JSON object."""
    inputs = [load_input(spec, **model_options(args)) for spec in (args.a, args.b)]
    sig_a, sig_b = signatures_of(inputs, args)
    comparison = compare(sig_a, sig_b, metric=args.metric, align=args.align)
    distance, method = comparison.distance, comparison.method
    if not args.json:
        print(_format_number(distance))
        return EXIT_OK
    report: dict[str, Any] = {
        "distance": distance,
        "metric": args.metric,
        "align": args.align,
        "alignment_method": method,
        "models": [
            {"input": item.spec, "fingerprint": sig.model_fingerprint, "num_classes": sig.num_classes}
            for item, sig in zip(inputs, (sig_a, sig_b))
        ],
        "refset_fingerprint": sig_a.refset_fingerprint,
        "config": sig_a.config.science_dict(),
    }
    if method is not None:
        report["pairs"] = comparison.pairs.tolist()
    print(json.dumps(report))
    return EXIT_OK


def cmd_matrix(args: argparse.Namespace) -> int:
    """``zest matrix M1 M2 ... --refset REF``: every pairwise distance, each signature computed once."""
    if len(args.models) < 2:
        raise CLIError(f"matrix: expected at least 2 models, got {len(args.models)}")
    inputs = [load_input(spec, **model_options(args)) for spec in args.models]
    matrix = signature_distance_matrix(signatures_of(inputs, args), metric=args.metric, align=args.align)
    names = [item.spec for item in inputs]
    text = _matrix_csv(names, matrix) if args.format == "csv" else _matrix_json(names, matrix, args)
    if args.output:
        Path(args.output).write_text(text)
    else:
        sys.stdout.write(text)
    return EXIT_OK


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
