"""The ``zest`` command: signatures, distances and distance matrices of image classifiers from files.

Usage (``zest SUBCOMMAND --help`` for every flag)::

    zest signature MODEL --refset REF -o OUT.npz
    zest distance A B --refset REF [--metric cosine|l1|l2|linf] [--align auto|none|greedy|hungarian] [--json]
    zest matrix M1 M2 ... --refset REF [--format csv|json] [-o FILE]
    zest demo [--epochs E] [--n N]

MODEL is a TorchScript file, ``ARCH:WEIGHTS.pt`` (a state_dict of an architecture of
:data:`zest_core.architectures.ARCHITECTURES`), or, for ``distance`` and ``matrix``, a signature file
(``*.npz``) written by ``zest signature``. REF is ``mnist``, ``mnist:N`` (N stratified built-in MNIST
digits, default 128) or an ``.npz`` file with an ``images`` array.

Errors in the inputs are reported as ``zest: error: ...`` on stderr with exit status 2.
"""
from __future__ import annotations

import argparse
import contextlib
import csv
import io
import json
import sys
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
import torch

from .alignment import align_classes
from .architectures import ARCHITECTURES, build_architecture
from .cache import SignatureCache
from .config import DEVICES, FILLS, MODES, SEGMENTATION_METHODS, TARGETS, ZestConfig
from .datasets import load_mnist, load_npz_reference
from .demo import DEMO_NUM_SAMPLES, run_demo
from .distance import ALIGN_CHOICES, METRICS, alignment_method, check_compatible, signature_distance_matrix, zest_distance
from .progress import ProgressBar
from .reference import ReferenceSet
from .signature import Signature, compute_signature

EXIT_OK = 0
EXIT_USAGE = 2  # bad input of any kind, as argparse uses for bad arguments
DEFAULT_MNIST_N = 128
SIGNATURE_SUFFIX = ".npz"

# Command-line flag → ZestConfig field, for the flags every computing subcommand shares.
CONFIG_FLAGS = {
    "samples": "num_samples",
    "segmentation": "segmentation",
    "fill": "fill",
    "mode": "mode",
    "targets": "targets",
    "seed": "seed",
    "batch_size": "batch_size",
    "device": "device",
}


class CLIError(Exception):
    """An input the command cannot use; its message names the input and the problem."""


# --------------------------------------------------------------------------------------------------
# Inputs: models, signature files, reference sets
# --------------------------------------------------------------------------------------------------


@dataclass
class LoadedModel:
    """A model read from a file, ready for :func:`zest_core.compute_signature`.

    Attributes
    ----------
    spec : str
        The MODEL argument it was read from.
    module : nn.Module
    in_channels : int or None
        The image channels it was trained with, when known (ARCH:WEIGHTS); None for TorchScript.
    """

    spec: str
    module: torch.nn.Module
    in_channels: int | None = None


@dataclass
class Input:
    """One MODEL argument of ``distance``/``matrix``: a model to probe, or a precomputed signature."""

    spec: str
    model: LoadedModel | None = None
    signature: Signature | None = None


def is_signature_spec(spec: str) -> bool:
    """Whether a MODEL argument names a signature file (by its ``.npz`` suffix)."""
    return spec.lower().endswith(SIGNATURE_SUFFIX)


def load_model(spec: str) -> LoadedModel:
    """Read a model from a TorchScript file or from ``ARCH:WEIGHTS`` (an architecture and its state_dict).

    Parameters
    ----------
    spec : str
        A path to a TorchScript file, or ``ARCH:PATH`` with ARCH a key of
        :data:`zest_core.architectures.ARCHITECTURES` and PATH a ``torch.save``'d state_dict.

    Raises
    ------
    CLIError
        Naming the file (or architecture) and the problem.
    """
    if is_signature_spec(spec):
        raise CLIError(f"{spec}: is a signature file; expected a model (a TorchScript file or ARCH:WEIGHTS.pt)")
    arch, separator, weights = spec.partition(":")
    if separator and not Path(spec).exists():
        return _load_state_dict_model(spec, arch, weights)
    return _load_torchscript(spec)


def _load_torchscript(spec: str) -> LoadedModel:
    _require_file(spec, "model file")
    try:
        with _quiet_torch():
            module = torch.jit.load(spec, map_location="cpu")
    except Exception as error:  # noqa: BLE001 - torch raises many types for a file it cannot read
        hint = (
            f"; if it is a state_dict, pass it as ARCH:{spec} with ARCH one of {', '.join(sorted(ARCHITECTURES))}"
            if zipfile.is_zipfile(spec) else ""
        )
        raise CLIError(f"{spec}: not a TorchScript model ({_first_line(error)}){hint}") from error
    return LoadedModel(spec=spec, module=module)


def _load_state_dict_model(spec: str, arch: str, weights: str) -> LoadedModel:
    if arch not in ARCHITECTURES:
        raise CLIError(
            f"{spec}: unknown architecture {arch!r}; expected one of {', '.join(sorted(ARCHITECTURES))} "
            "(or the path of a TorchScript file)"
        )
    _require_file(weights, "weights file")
    try:
        with _quiet_torch():
            state = torch.load(weights, weights_only=True, map_location="cpu")
    except Exception as error:  # noqa: BLE001 - pickle and zip errors alike mean "not a state_dict file"
        raise CLIError(f"{weights}: not a readable state_dict file ({_first_line(error)})") from error
    state = _check_state_dict(weights, state)
    num_classes, in_channels = infer_shape(weights, state)
    module = build_architecture(arch, num_classes=num_classes, in_channels=in_channels)
    try:
        module.load_state_dict(state)
    except RuntimeError as error:
        problem = _mismatch(module, state)
        raise CLIError(f"{weights}: the weights do not fit architecture {arch!r}: {problem}") from error
    return LoadedModel(spec=spec, module=module.eval(), in_channels=in_channels)


@contextlib.contextmanager
def _quiet_torch() -> Iterator[None]:
    """Silence torch's deprecation and dispatch warnings while loading; failures still raise."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", UserWarning)
        yield


def _check_state_dict(path: str, state: Any) -> dict[str, torch.Tensor]:
    if not isinstance(state, dict) or not state:
        raise CLIError(
            f"{path}: expected a state_dict (a dict of parameter names to tensors, as torch.save(model.state_dict())), "
            f"got {'an empty dict' if isinstance(state, dict) else type(state).__name__}"
        )
    name = next((k for k, v in state.items() if not isinstance(v, torch.Tensor)), None)
    if name is not None:
        raise CLIError(
            f"{path}: expected a state_dict of tensors, but its entry {name!r} is a {type(state[name]).__name__} "
            "(a training checkpoint? save model.state_dict() itself)"
        )
    return state


def _mismatch(module: torch.nn.Module, state: dict[str, torch.Tensor]) -> str:
    """How a state_dict differs from a module's: missing, unexpected or differently shaped entries."""
    expected = module.state_dict()
    problems = [
        ("missing", [k for k in expected if k not in state]),
        ("unexpected", [k for k in state if k not in expected]),
        ("of another shape", [k for k in expected if k in state and expected[k].shape != state[k].shape]),
    ]
    return "; ".join(f"{len(keys)} {what} (e.g. {keys[0]!r})" for what, keys in problems if keys) or "incompatible"


def infer_shape(path: str, state: dict[str, torch.Tensor]) -> tuple[int, int]:
    """(num_classes, in_channels) of a state_dict: rows of its last 2-D weight, inputs of its first conv.

    Parameters
    ----------
    path : str
        The weights file, for error messages.
    state : dict of str to Tensor
        Entries in registration order, as ``Module.state_dict()`` returns them.
    """
    convs = [t for name, t in state.items() if name.endswith(".weight") and t.ndim == 4]
    linears = [t for name, t in state.items() if name.endswith(".weight") and t.ndim == 2]
    if not convs or not linears:
        raise CLIError(
            f"{path}: expected a state_dict with convolution (4-D) and linear (2-D) weights, "
            f"got {len(convs)} and {len(linears)}"
        )
    return int(linears[-1].shape[0]), int(convs[0].shape[1])


def load_signature(spec: str) -> Signature:
    """Read a signature file written by ``zest signature`` (or :meth:`Signature.save`)."""
    _require_file(spec, "signature file")
    return Signature.load(spec)  # SignatureFileError names the file and the problem


def load_input(spec: str) -> Input:
    """A MODEL argument of ``distance``/``matrix``: a signature file if it ends in .npz, else a model."""
    if is_signature_spec(spec):
        return Input(spec=spec, signature=load_signature(spec))
    return Input(spec=spec, model=load_model(spec))


def load_refset(spec: str) -> ReferenceSet:
    """A REF argument: ``mnist``, ``mnist:N`` (N stratified built-in digits) or an ``.npz`` file."""
    name, separator, count = spec.partition(":")
    if name != "mnist":
        return load_npz_reference(spec)
    if not separator:
        return load_mnist(DEFAULT_MNIST_N)
    if not count.isdigit() or int(count) < 1:
        raise CLIError(f"--refset: expected 'mnist' or 'mnist:N' with N a positive integer, got {spec!r}")
    return load_mnist(int(count))


def _require_file(path: str, what: str) -> None:
    if not Path(path).is_file():
        problem = "is a directory" if Path(path).is_dir() else "no such file"
        raise CLIError(f"{path}: {problem} (expected a {what})")


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    first_sentence = lines[0].split(". ")[0] if lines else ""
    return f"{type(error).__name__}: {first_sentence}".rstrip(": ")


# --------------------------------------------------------------------------------------------------
# Configuration and signatures
# --------------------------------------------------------------------------------------------------


def config_from_args(args: argparse.Namespace, base: ZestConfig | None = None) -> ZestConfig:
    """``base`` (default ``ZestConfig()``) with the config flags the user gave applied over it."""
    changes = {field: getattr(args, flag) for flag, field in CONFIG_FLAGS.items() if getattr(args, flag) is not None}
    return (base or ZestConfig()).replace(**changes)


def cache_from_args(args: argparse.Namespace) -> SignatureCache | bool | None:
    """False for --no-cache, a cache in --cache-dir, or None (the engine's default folder)."""
    if args.no_cache:
        return False
    return SignatureCache(args.cache_dir) if args.cache_dir else None


def signature_of(
    model: LoadedModel, refset: ReferenceSet, config: ZestConfig, cache: SignatureCache | bool | None, label: str = ""
) -> Signature:
    """Compute a model's signature with a progress bar; engine errors are reported against the model."""
    if model.in_channels is not None and model.in_channels != refset.channels:
        raise CLIError(
            f"{model.spec}: the model takes {model.in_channels}-channel images but the reference set "
            f"({refset.provenance}) has {refset.channels}-channel images; use a reference set of "
            f"{model.in_channels}-channel images (images are never converted silently)"
        )
    with ProgressBar(label or f"{model.spec}: ") as progress:
        try:
            return compute_signature(model.module, refset, config, progress, cache=cache)
        except (ValueError, RuntimeError) as error:
            raise CLIError(f"{model.spec}: {error}") from error


def signatures_of(inputs: Sequence[Input], args: argparse.Namespace) -> list[Signature]:
    """Every input's signature: loaded from its file, or computed once on --refset."""
    loaded = [item.signature for item in inputs if item.signature is not None]
    # Unset config flags follow a given signature file's config, so a model can be compared with it.
    base = ZestConfig(**loaded[0].config.science_dict()) if loaded else None
    config = config_from_args(args, base)
    refset = _refset_for(inputs, args)
    if refset is not None and loaded and loaded[0].refset_fingerprint != refset.fingerprint():
        first = next(item.spec for item in inputs if item.signature is not None)
        raise CLIError(f"{first} was computed on another reference set than --refset {args.refset}; use the same one")
    cache = cache_from_args(args)
    result = []
    for index, item in enumerate(inputs):
        if item.signature is not None:
            result.append(item.signature)
        else:
            label = f"model {index + 1}/{len(inputs)} ({item.spec}): "
            result.append(signature_of(item.model, refset, config, cache, label))
    for item, signature in zip(inputs[1:], result[1:]):
        try:
            check_compatible(result[0], signature)
        except ValueError as error:
            raise CLIError(f"{inputs[0].spec} vs {item.spec}: {error}") from error
    return result


def _refset_for(inputs: Sequence[Input], args: argparse.Namespace) -> ReferenceSet | None:
    models = [item.spec for item in inputs if item.model is not None]
    if not models:
        return None
    if args.refset is None:
        raise CLIError(f"--refset is required to compute the signature of {models[0]}")
    return load_refset(args.refset)


# --------------------------------------------------------------------------------------------------
# Subcommands
# --------------------------------------------------------------------------------------------------


def cmd_signature(args: argparse.Namespace) -> int:
    """``zest signature MODEL --refset REF -o OUT.npz``."""
    if not args.output.lower().endswith(SIGNATURE_SUFFIX):
        raise CLIError(f"-o: expected an output path ending in {SIGNATURE_SUFFIX}, got {args.output!r}")
    model = load_model(args.model)
    refset = load_refset(args.refset)
    signature = signature_of(model, refset, config_from_args(args), cache_from_args(args))
    signature.metadata.update(model=args.model, refset=refset.describe())
    path = signature.save(args.output)
    print(
        f"wrote {path}: {signature.num_classes} classes × {signature.matrix().shape[1]} super-pixel weights "
        f"over {signature.num_images} reference images"
    )
    return EXIT_OK


def cmd_distance(args: argparse.Namespace) -> int:
    """``zest distance A B --refset REF``: the Zest distance, as a number or one JSON object."""
    inputs = [load_input(args.a), load_input(args.b)]
    sig_a, sig_b = signatures_of(inputs, args)
    distance = zest_distance(sig_a, sig_b, metric=args.metric, align=args.align)
    if not args.json:
        print(_format_number(distance))
        return EXIT_OK
    method = alignment_method(args.align, sig_a.num_classes, sig_b.num_classes)
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
        report["pairs"] = align_classes(sig_a, sig_b, method).pairs.tolist()
    print(json.dumps(report))
    return EXIT_OK


def cmd_matrix(args: argparse.Namespace) -> int:
    """``zest matrix M1 M2 ... --refset REF``: every pairwise distance, each signature computed once."""
    if len(args.models) < 2:
        raise CLIError(f"matrix: expected at least 2 models, got {len(args.models)}")
    inputs = [load_input(spec) for spec in args.models]
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


def cmd_demo(args: argparse.Namespace) -> int:
    """``zest demo``: train small MNIST models and show what Zest says about them."""
    config = config_from_args(args, ZestConfig(num_samples=DEMO_NUM_SAMPLES))
    run_demo(epochs=args.epochs, n=args.n, config=config, cache=cache_from_args(args))
    return EXIT_OK


# --------------------------------------------------------------------------------------------------
# Parser and entry point
# --------------------------------------------------------------------------------------------------


def _config_parent() -> argparse.ArgumentParser:
    parent = argparse.ArgumentParser(add_help=False)
    group = parent.add_argument_group("signature configuration (defaults: zest_core.ZestConfig)")
    group.add_argument(
        "--samples", type=int, metavar="L",
        help=f"random maskings per reference image (default: {ZestConfig().num_samples}; demo: {DEMO_NUM_SAMPLES})",
    )
    group.add_argument("--segmentation", choices=SEGMENTATION_METHODS, help="super-pixel algorithm")
    group.add_argument("--fill", choices=FILLS, help="what replaces a hidden super-pixel")
    group.add_argument("--mode", choices=MODES, help="local fit: zest (least squares) or lime (kernel ridge)")
    group.add_argument("--targets", choices=TARGETS, help="what the local models regress")
    group.add_argument("--seed", type=int, help="seed of the mask sampler")
    group.add_argument("--batch-size", type=int, help="perturbed images per forward pass")
    group.add_argument("--device", choices=DEVICES, help="where the models run")
    group.add_argument("--cache-dir", help="signature cache folder (default: $ZEST_CACHE_DIR or ~/.cache/zest)")
    group.add_argument("--no-cache", action="store_true", help="neither read nor write cached signatures")
    return parent


def _comparison_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--refset", metavar="REF", help="mnist, mnist:N or an .npz file (needed unless every input is a signature file)"
    )
    parser.add_argument(
        "--metric", choices=METRICS, default="cosine", help="distance between signatures (default: cosine)"
    )
    parser.add_argument(
        "--align", choices=ALIGN_CHOICES, default="auto",
        help="class matching; auto matches greedily only when the class counts differ (default: auto)",
    )


INPUTS_HELP = (
    "MODEL is a TorchScript file, ARCH:WEIGHTS.pt (a state_dict; ARCH: " + ", ".join(sorted(ARCHITECTURES)) + ") "
    "or a signature .npz written by 'zest signature'. REF is mnist, mnist:N (N stratified built-in MNIST digits, "
    f"default {DEFAULT_MNIST_N}) or an .npz file with an 'images' array. Config flags left unset follow the first "
    "signature file's config, so a model can be compared with a saved signature."
)
MODEL_HELP = "a TorchScript file, ARCH:WEIGHTS.pt (ARCH: " + ", ".join(sorted(ARCHITECTURES)) + ") or a signature .npz"


def build_parser() -> argparse.ArgumentParser:
    """The ``zest`` argument parser."""
    parser = argparse.ArgumentParser(
        prog="zest",
        description=(
            "Zest model distances (Jia et al., ICLR 2023): how similar two image classifiers are, "
            "from their predictions alone."
        ),
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    config = _config_parent()

    sign = commands.add_parser("signature", parents=[config], help="compute and save a model's signature")
    sign.add_argument("model", metavar="MODEL", help="a TorchScript file or ARCH:WEIGHTS.pt")
    sign.add_argument("--refset", metavar="REF", required=True, help="mnist, mnist:N or an .npz file")
    sign.add_argument("-o", "--output", required=True, metavar="OUT.npz", help="where to write the signature")
    sign.set_defaults(handler=cmd_signature)

    dist = commands.add_parser(
        "distance", parents=[config], help="the Zest distance between two models", description=INPUTS_HELP
    )
    dist.add_argument("a", metavar="A", help=MODEL_HELP)
    dist.add_argument("b", metavar="B", help=MODEL_HELP)
    _comparison_flags(dist)
    dist.add_argument("--json", action="store_true", help="print one JSON object with the details")
    dist.set_defaults(handler=cmd_distance)

    matrix = commands.add_parser(
        "matrix", parents=[config], help="distances between every pair of models", description=INPUTS_HELP
    )
    matrix.add_argument("models", metavar="MODEL", nargs="+", help=MODEL_HELP)
    _comparison_flags(matrix)
    matrix.add_argument("--format", choices=("csv", "json"), default="csv", help="output format (default: csv)")
    matrix.add_argument("-o", "--output", metavar="FILE", help="write here instead of stdout")
    matrix.set_defaults(handler=cmd_matrix)

    demo = commands.add_parser(
        "demo", parents=[config], help="train small MNIST models and compare them (offline, about a minute at most)"
    )
    demo.add_argument("--epochs", type=int, default=2, help="training epochs of the base models (default: 2)")
    demo.add_argument("--n", type=int, default=32, help="reference digits (default: 32)")
    demo.set_defaults(handler=cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``zest`` command; returns its exit status (0 on success, 2 on bad input)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # argparse exits on --help and on bad arguments
        return int(exit_.code or 0)
    try:
        return args.handler(args)
    except (CLIError, ValueError, OSError, RuntimeError) as error:
        print(f"zest: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("zest: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
