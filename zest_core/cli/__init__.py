"""The ``zest`` command: signatures, distances and distance matrices of image classifiers from files.

Usage (``zest SUBCOMMAND --help`` for every flag)::

    zest signature MODEL --refset REF -o OUT.npz
    zest distance A B --refset REF [--metric cosine|l1|l2|linf] [--align auto|none|greedy|hungarian] [--json]
    zest matrix M1 M2 ... --refset REF [--format csv|json] [-o FILE]
    zest demo [--epochs E] [--n N]
    zest zoo build [--out DIR] [--tiny] [--seed S]
    zest zoo list [--root DIR] [--json]
    zest bench reuse|epochs|refsize|unlearning [--zoo DIR] [--n N] [--samples L] [--out DIR]

MODEL is any spec of :func:`zest_core.sources.models.load_model`: a TorchScript or ONNX file, ``ARCH:WEIGHTS.pt``
(a state_dict of an architecture of :data:`zest_core.sources.architectures.ARCHITECTURES` or of a torchvision
classification model), an ``http(s)://`` endpoint or ``zoo:NAME``; files holding pickled objects need
``--trust-pickle``. For ``distance`` and ``matrix`` it may also be a signature file (``*.npz``) written
by ``zest signature``. REF is ``mnist``, ``mnist:N`` (N stratified built-in MNIST
digits, default 128), ``cifar10:ROOT[:N]`` or ``cifar100:ROOT[:N]`` (N stratified test images of the
dataset in ROOT, default 128), a folder of images (class subfolders give labels; ``--image-size H W``
resizes them) or an ``.npz`` file with an ``images`` array.

Errors in the inputs are reported as ``zest: error: ...`` on stderr with exit status 2.
"""
from __future__ import annotations

import argparse
import csv
import io
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..pipeline.alignment import align_classes
from ..sources.architectures import ARCHITECTURES
from ..cache.store import SignatureCache
from ..sources.cifar import CIFAR_DATASETS, load_cifar
from ..pipeline.config import DEVICES, FILLS, MODES, SEGMENTATION_METHODS, TARGETS, ZestConfig
from ..sources.datasets import load_mnist, load_npz_reference
from ..zoo.demo import DEMO_NUM_SAMPLES, run_demo
from ..pipeline.distance import ALIGN_CHOICES, METRICS, alignment_method, check_compatible, signature_distance_matrix, zest_distance
from ..sources.image_folder import load_image_folder
from ..sources.models import Classifier, load_model
from .._shared.progress import ProgressBar
from ..pipeline.reference import ReferenceSet
from ..pipeline.signature import Signature, compute_signature

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
class Input:
    """One MODEL argument of ``distance``/``matrix``: a model to probe, or a precomputed signature."""

    spec: str
    model: Classifier | None = None
    signature: Signature | None = None


def is_signature_spec(spec: str) -> bool:
    """Whether a MODEL argument names a signature file (by its ``.npz`` suffix)."""
    return spec.lower().endswith(SIGNATURE_SUFFIX)


def load_classifier(spec: str, *, trust_pickle: bool = False) -> Classifier:
    """A MODEL argument that is a model: any spec of :func:`zest_core.sources.models.load_model`.

    Raises
    ------
    CLIError
        If ``spec`` names a signature file; ModelLoadError (naming the file or spec and the
        problem) if the model cannot be loaded.
    """
    if is_signature_spec(spec):
        raise CLIError(f"{spec}: is a signature file; expected a model (a TorchScript, ONNX or ARCH:WEIGHTS.pt file)")
    return load_model(spec, trust_pickle=trust_pickle)


def load_signature(spec: str) -> Signature:
    """Read a signature file written by ``zest signature`` (or :meth:`Signature.save`)."""
    if not Path(spec).is_file():
        problem = "is a directory" if Path(spec).is_dir() else "no such file"
        raise CLIError(f"{spec}: {problem} (expected a signature file)")
    return Signature.load(spec)  # SignatureFileError names the file and the problem


def load_input(spec: str, *, trust_pickle: bool = False) -> Input:
    """A MODEL argument of ``distance``/``matrix``: a signature file if it ends in .npz, else a model."""
    if is_signature_spec(spec):
        return Input(spec=spec, signature=load_signature(spec))
    return Input(spec=spec, model=load_classifier(spec, trust_pickle=trust_pickle))


def load_refset(spec: str, image_size: Sequence[int] | None = None) -> ReferenceSet:
    """A REF argument: ``mnist[:N]``, ``cifar10:ROOT[:N]``, ``cifar100:ROOT[:N]``, a folder or an ``.npz`` file.

    ``image_size`` (H, W) resizes the images of a folder; it is refused for any other REF.
    """
    if Path(spec).is_dir():
        return load_image_folder(spec, size=tuple(image_size) if image_size else None)
    if image_size:
        raise CLIError(f"--image-size: applies only to a folder of images, got --refset {spec!r}")
    name, separator, rest = spec.partition(":")
    if name in CIFAR_DATASETS and separator:
        root, count = _split_count(rest)
        if not root:
            raise CLIError(f"--refset: expected '{name}:ROOT' or '{name}:ROOT:N' with ROOT a folder, got {spec!r}")
        return load_cifar(name, root, n=_ref_count(spec, count, f"'{name}:ROOT:N'") if count else DEFAULT_MNIST_N)
    if name != "mnist":
        return load_npz_reference(spec)
    return load_mnist(_ref_count(spec, rest, "'mnist' or 'mnist:N'") if separator else DEFAULT_MNIST_N)


def _split_count(text: str) -> tuple[str, str]:
    """'ROOT:N' → (ROOT, N); a ROOT without a numeric ':N' (it may hold ':' itself) → (ROOT, '')."""
    root, _, count = text.rpartition(":")
    return (root, count) if root and count.isdigit() else (text, "")


def _ref_count(spec: str, count: str, forms: str) -> int:
    if not count.isdigit() or int(count) < 1:
        raise CLIError(f"--refset: expected {forms} with N a positive integer, got {spec!r}")
    return int(count)


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
    spec: str, model: Classifier, refset: ReferenceSet, config: ZestConfig, cache: SignatureCache | bool | None,
    label: str = "",
) -> Signature:
    """Compute a model's signature with a progress bar; engine errors are reported against its spec."""
    channels = model.input_shape[0] if model.input_shape is not None else None
    if channels is not None and channels != refset.channels:
        raise CLIError(
            f"{spec}: the model takes {channels}-channel images but the reference set "
            f"({refset.provenance}) has {refset.channels}-channel images; use a reference set of "
            f"{channels}-channel images (images are never converted silently)"
        )
    with ProgressBar(label or f"{spec}: ") as progress:
        try:
            return compute_signature(model, refset, config, progress, cache=cache)
        except (ValueError, RuntimeError) as error:
            raise CLIError(f"{spec}: {error}") from error


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
            result.append(signature_of(item.spec, item.model, refset, config, cache, label))
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
    return load_refset(args.refset, args.image_size)


# --------------------------------------------------------------------------------------------------
# Subcommands
# --------------------------------------------------------------------------------------------------


def cmd_signature(args: argparse.Namespace) -> int:
    """``zest signature MODEL --refset REF -o OUT.npz``."""
    if not args.output.lower().endswith(SIGNATURE_SUFFIX):
        raise CLIError(f"-o: expected an output path ending in {SIGNATURE_SUFFIX}, got {args.output!r}")
    model = load_classifier(args.model, trust_pickle=args.trust_pickle)
    refset = load_refset(args.refset, args.image_size)
    signature = signature_of(args.model, model, refset, config_from_args(args), cache_from_args(args))
    signature.metadata.update(model=args.model, refset=refset.describe())
    path = signature.save(args.output)
    print(
        f"wrote {path}: {signature.num_classes} classes × {signature.matrix().shape[1]} super-pixel weights "
        f"over {signature.num_images} reference images"
    )
    return EXIT_OK


def cmd_distance(args: argparse.Namespace) -> int:
    """``zest distance A B --refset REF``: the Zest distance, as a number or one JSON object."""
    inputs = [load_input(spec, trust_pickle=args.trust_pickle) for spec in (args.a, args.b)]
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
    inputs = [load_input(spec, trust_pickle=args.trust_pickle) for spec in args.models]
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


def cmd_zoo_build(args: argparse.Namespace) -> int:
    """``zest zoo build``: train the demo zoo (about 2-5 minutes on 2 CPU cores) with a progress bar."""
    from ..zoo import build as zoo

    config = zoo.ZooConfig.tiny(seed=args.seed) if args.tiny else zoo.ZooConfig(seed=args.seed)
    target = Path(args.out) if args.out else zoo.default_zoo_dir()
    print(f"Building the demo zoo in {target} ({'tiny' if args.tiny else 'full'} configuration, seed {args.seed})",
          file=sys.stderr)
    with ProgressBar("zoo: ") as bar:
        built = zoo.build_zoo(target, config, progress=bar)
    size = sum(f.stat().st_size for f in built.root.rglob("*") if f.is_file())
    print(f"{len(built.entries)} models, {size / 2**20:.1f} MiB, built in {built.info['build']['seconds']:.0f} s: "
          f"{built.root / zoo.MANIFEST_NAME}")
    return EXIT_OK


def cmd_zoo_list(args: argparse.Namespace) -> int:
    """``zest zoo list``: the zoo's models, their relations and held-out accuracies."""
    from ..zoo import build as zoo

    built = zoo.load_zoo(args.root)
    if args.json:
        print(json.dumps([entry.to_dict() for entry in built.entries.values()], indent=1))
        return EXIT_OK
    print(f"{'name':<34} {'arch':<10} {'relation':<18} {'source':<9} {'task':<6} {'accuracy':>8}  checkpoints")
    for entry in built.entries.values():
        epochs = ",".join(map(str, entry.checkpoints)) or "-"
        print(f"{entry.name:<34} {entry.arch:<10} {entry.relation:<18} {entry.source or '-':<9} {entry.task:<6} "
              f"{100 * entry.accuracy:7.2f}%  {epochs}")
    return EXIT_OK


def cmd_bench(args: argparse.Namespace) -> int:
    """``zest bench STUDY``: one of the papers' studies on the demo zoo, written as JSON + Plotly HTML."""
    from ..studies import zoo_studies as studies
    from ..zoo import build as zoo

    built = zoo.load_zoo(args.zoo)
    config = config_from_args(args)
    cache = cache_from_args(args)
    out = Path(args.out)
    refset = load_mnist(args.n, split="test", seed=args.ref_seed)
    with ProgressBar(f"bench {args.study}: ") as bar:
        if args.study == "reuse":
            result = studies.reuse_study(built, refset, config, methods=args.methods, align=args.align,
                                         baseline=args.baseline, progress=bar, cache=cache)
            paths = studies.write_reuse(result, out)
            print(result.to_markdown())
        elif args.study == "epochs":
            data = studies.epochs_study(built, refset, config, k=args.k, progress=bar, cache=cache)
            paths = studies.write_study(data, studies.epochs_figure(data), out, "epochs")
        elif args.study == "refsize":
            data = studies.refsize_study_on_zoo(built, refset, config, repeats=args.repeats, progress=bar, cache=cache)
            paths = studies.write_study(data, studies.refsize_figure(data), out, "refsize")
        else:
            data = studies.unlearning_study(built, config, progress=bar, cache=cache)
            paths = studies.write_study(data, studies.unlearning_figure(data), out, "unlearning")
    if args.study != "reuse":
        print(studies.summary_markdown(data))
    print("wrote " + ", ".join(str(p) for p in paths.values()), file=sys.stderr)
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


def _image_size_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--image-size", nargs=2, type=int, metavar=("H", "W"), help="resize the images of a folder REF to H×W"
    )


def _trust_pickle_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--trust-pickle", action="store_true",
        help="load model files that hold pickled Python objects (torch.save(model)); unpickling runs code "
        "from the file, so only for files you trust",
    )


def _comparison_flags(parser: argparse.ArgumentParser) -> None:
    _trust_pickle_flag(parser)
    parser.add_argument("--refset", metavar="REF", help=f"{REF_HELP} (needed unless every input is a signature file)")
    _image_size_flag(parser)
    parser.add_argument(
        "--metric", choices=METRICS, default="cosine", help="distance between signatures (default: cosine)"
    )
    parser.add_argument(
        "--align", choices=ALIGN_CHOICES, default="auto",
        help="class matching; auto matches greedily only when the class counts differ (default: auto)",
    )


MODEL_SPEC_HELP = (
    "a TorchScript or ONNX (.onnx) file, ARCH:WEIGHTS.pt (a state_dict; ARCH: " + ", ".join(sorted(ARCHITECTURES))
    + " or a torchvision classification model such as resnet18), an http(s):// endpoint or zoo:NAME"
)
INPUTS_HELP = (
    f"MODEL is {MODEL_SPEC_HELP}, or a signature .npz written by 'zest signature'. "
    "REF is mnist, mnist:N (N stratified built-in MNIST digits, "
    f"default {DEFAULT_MNIST_N}), cifar10:ROOT[:N] or cifar100:ROOT[:N] (N stratified test images of the dataset "
    "in ROOT), a folder of images (class subfolders give labels) or an .npz file with an 'images' array. Config "
    "flags left unset follow the first signature file's config, so a model can be compared with a saved signature."
)
REF_HELP = "mnist, mnist:N, cifar10:ROOT[:N], cifar100:ROOT[:N], a folder of images or an .npz file"
MODEL_HELP = f"{MODEL_SPEC_HELP}, or a signature .npz"


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
    sign.add_argument("model", metavar="MODEL", help=MODEL_SPEC_HELP)
    _trust_pickle_flag(sign)
    sign.add_argument("--refset", metavar="REF", required=True, help=REF_HELP)
    _image_size_flag(sign)
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

    zoo_parser = commands.add_parser("zoo", help="the demo zoo of related and unrelated MNIST models")
    zoo_commands = zoo_parser.add_subparsers(dest="zoo_command", required=True, metavar="ZOO_COMMAND")
    build = zoo_commands.add_parser("build", help="train the demo zoo (replaces the zoo in --out once complete)")
    build.add_argument("--out", metavar="DIR", help="zoo folder (default: $ZEST_ZOO_DIR or assets/zoo)")
    build.add_argument("--tiny", action="store_true", help="a seconds-long zoo of one source per architecture, for tests")
    build.add_argument("--seed", type=int, default=0, help="seed every model derives from (default: 0)")
    build.set_defaults(handler=cmd_zoo_build)
    listing = zoo_commands.add_parser("list", help="the zoo's models, relations and held-out accuracies")
    listing.add_argument("--root", metavar="DIR", help="zoo folder (default: $ZEST_ZOO_DIR or assets/zoo)")
    listing.add_argument("--json", action="store_true", help="print the manifest's model entries as JSON")
    listing.set_defaults(handler=cmd_zoo_list)

    bench = commands.add_parser(
        "bench", parents=[config], help="the papers' studies on the demo zoo (reuse table, epochs, reference size, unlearning)"
    )
    bench.add_argument("study", choices=("reuse", "epochs", "refsize", "unlearning"),
                       help="reuse: Zest Table 5 with ModelDiff; epochs: Fig. 2; refsize: Fig. 3; unlearning: §5.3")
    bench.add_argument("--zoo", metavar="DIR", help="zoo folder (default: $ZEST_ZOO_DIR or assets/zoo)")
    bench.add_argument("--n", type=int, default=DEFAULT_MNIST_N,
                       help=f"reference digits, stratified from the held-out split (default: {DEFAULT_MNIST_N}; "
                            "unlearning always uses the 128-digit forget set)")
    bench.add_argument("--ref-seed", type=int, default=0, help="seed of the reference-digit draw (default: 0)")
    bench.add_argument("--out", default="bench/results", metavar="DIR", help="output folder (default: bench/results)")
    bench.add_argument("--methods", nargs="+", default=["zest-cosine", "zest-l2", "modeldiff", "agreement"],
                       choices=("zest-cosine", "zest-l2", "modeldiff", "agreement", "cka"), help="reuse: methods")
    bench.add_argument("--align", choices=ALIGN_CHOICES, default="greedy",
                       help="reuse: class matching for Zest (default: greedy, as the authors' code; auto skips "
                            "equal class counts and so misses label-permuted copies)")
    bench.add_argument("--baseline", choices=("pooled", "matched"), default="pooled",
                       help="reuse: judge pairs against all unrelated models (pooled, default) or only those of "
                            "the same architectures (matched)")
    bench.add_argument("--k", type=int, default=1, help="epochs: compare checkpoint t with t+k (default: 1)")
    bench.add_argument("--repeats", type=int, default=10, help="refsize: draws per reference-set size (default: 10)")
    bench.set_defaults(handler=cmd_bench)
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

