"""The ``zest`` argument parser: one subparser per command, the flag groups they share, and their help."""
from __future__ import annotations

import argparse
from typing import Sequence

from ..methods.sac import DEFAULT_NUM_IMAGES as DEFAULT_SAC_IMAGES
from ..pipeline.budget import BUDGET_DESIGN, BUDGET_SAMPLES, DEFAULT_AUDIT_BUDGET
from ..pipeline.config import DEVICES, FILLS, MODES, SEGMENTATION_METHODS, TARGETS, ZestConfig
from ..pipeline.designs import MASK_DESIGNS
from ..hub import BACKENDS, DEFAULT_BLOCK_SIZE
from ..hub.backend import DEFAULT_RETRIES as DEFAULT_TASK_RETRIES
from ..pipeline.distance import ALIGN_CHOICES, METRICS
from ..sources.architectures import ARCHITECTURES
from ..studies.rules import METHODS
from ..sources.endpoint import DEFAULT_RETRIES, DEFAULT_TIMEOUT
from ..zoo.demo import DEMO_NUM_SAMPLES
from .._shared.limits import LIMITS
from .inputs import DEFAULT_MNIST_N
from .requests import (AuditRequest, BenchRequest, CommitRequest, DemoRequest, DistanceRequest, MatrixRequest, Request,
                       SearchRequest, SignatureRequest, VerifyRequest, ZooBuildRequest, ZooListRequest)


def _config_parent() -> argparse.ArgumentParser:
    """The flags of :data:`~zest_core.cli.inputs.CONFIG_FLAGS` and the cache, shared by every computing command."""
    parent = argparse.ArgumentParser(add_help=False)
    group = parent.add_argument_group("signature configuration (defaults: zest_core.ZestConfig)")
    group.add_argument(
        "--samples", type=int, metavar="L",
        help=f"random maskings per reference image (default: {ZestConfig().num_samples}; demo: {DEMO_NUM_SAMPLES})",
    )
    group.add_argument("--segmentation", choices=SEGMENTATION_METHODS, help="super-pixel algorithm")
    group.add_argument("--fill", choices=FILLS, help="what replaces a hidden super-pixel")
    group.add_argument("--mode", choices=MODES, help="local fit: zest (least squares) or lime (kernel ridge)")
    group.add_argument("--targets", choices=TARGETS,
                       help="what the local models regress (default: probabilities; logits is the Zest paper's setting)")
    group.add_argument("--seed", type=int, help="seed of the mask sampler")
    group.add_argument("--mask-design", choices=MASK_DESIGNS,
                       help="how the L masks of an image are drawn (default: bernoulli, LIME's; --budget picks orthogonal)")
    group.add_argument("--batch-size", type=int, help="perturbed images per forward pass")
    group.add_argument("--device", choices=DEVICES, help="where the models run")
    group.add_argument("--cache-dir", help="signature cache folder (default: $ZEST_CACHE_DIR or ~/.cache/zest)")
    group.add_argument("--no-cache", action="store_true", help="neither read nor write cached signatures")
    limits = parent.add_argument_group("resource limits (checked before any work; zest_core._shared.limits)")
    for limit in LIMITS:
        limits.add_argument(limit.flag, metavar="SIZE",
                            help=f"the most {limit.what} (default: {limit.default:,}{'' if 'pixel' in limit.name else ' bytes'}"
                                 f"; also ${limit.env}; 4G, 512M or a number)")
    return parent


def _budget_flag(parser: argparse.ArgumentParser, default: int | None = None) -> None:
    """``--budget Q``: the most queries per model a Zest signature may make; the project picks N and L."""
    parser.add_argument(
        "--budget", type=int, metavar="Q",
        help="at most Q queries per model for a Zest signature: N = Q // %d of the reference images (the first "
             "ones) × L maskings of the %s design, by the rule of zest_core.pipeline.budget measured by 'zest bench "
             "budget'; 0: no budget (all of REF, --samples maskings)%s"
             % (BUDGET_SAMPLES, BUDGET_DESIGN, "" if default is None else f" (default: {default} unless --samples "
                "is given)"),
    )


def _image_size_flag(parser: argparse.ArgumentParser) -> None:
    """``--image-size H W``: resize a folder REF."""
    parser.add_argument(
        "--image-size", nargs=2, type=int, metavar=("H", "W"), help="resize the images of a folder REF to H×W"
    )


def _input_adapter_flag(parser: argparse.ArgumentParser) -> None:
    """``--input-adapter``: feed each model the reference images in the channels and size it declares."""
    parser.add_argument(
        "--input-adapter", action="store_true",
        help="convert the reference images for each model that declares other ones: grey -> RGB by replicating the "
             "channel, RGB -> grey by ITU-R 601 luma, bilinear resize to its size (recorded in its fingerprint); "
             "without it such a model is refused",
    )


def _trust_pickle_flag(parser: argparse.ArgumentParser) -> None:
    """``--trust-pickle``: allow model files that hold pickled objects."""
    parser.add_argument(
        "--trust-pickle", action="store_true",
        help="load model files that hold pickled Python objects (torch.save(model)); unpickling runs code "
        "from the file, so only for files you trust",
    )


def _endpoint_flags(parser: argparse.ArgumentParser) -> None:
    """``--timeout`` and ``--retries``: how long to wait for, and how often to retry, an http(s):// model."""
    group = parser.add_argument_group("http(s):// models")
    group.add_argument(
        "--timeout", type=float, metavar="SECONDS",
        help="the most one request may take, from connecting to the last byte of the answer "
        f"(default: {DEFAULT_TIMEOUT:g})",
    )
    group.add_argument(
        "--retries", type=int, metavar="N",
        help="further attempts after a refused connection, a timeout or an HTTP 429/5xx answer "
        f"(default: {DEFAULT_RETRIES})",
    )


def _nondeterministic_flag(parser: argparse.ArgumentParser) -> None:
    """``--allow-nondeterministic``: accept a model that answers the same images differently."""
    parser.add_argument(
        "--allow-nondeterministic", action="store_true",
        help="accept a model whose answers to the same images differ (a stochastic API); by default the first 16 "
        "perturbed images are queried twice and such a model is refused, since its distance to itself would not be 0",
    )


def _comparison_flags(parser: argparse.ArgumentParser) -> None:
    """The inputs and the distance flags of ``distance`` and ``matrix``."""
    _trust_pickle_flag(parser)
    _nondeterministic_flag(parser)
    _endpoint_flags(parser)
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
    "a TorchScript, ONNX (.onnx) or torch.export (.pt2, with --trust-pickle) file, ARCH:WEIGHTS.pt or "
    "ARCH:WEIGHTS.safetensors (a state_dict; ARCH: " + ", ".join(sorted(ARCHITECTURES))
    + " or a torchvision classification model such as resnet18), timm:NAME:WEIGHTS (a timm architecture), "
    "a Hugging Face or timm model folder (config.json + model.safetensors), an http(s):// endpoint or zoo:NAME"
)
INPUTS_HELP = (
    f"MODEL is {MODEL_SPEC_HELP}, or a signature .npz written by 'zest signature'. "
    "REF is mnist, mnist:N (N stratified built-in MNIST digits, "
    f"default {DEFAULT_MNIST_N}), cifar10:ROOT[:N] or cifar100:ROOT[:N] (N stratified test images of the dataset "
    "in ROOT), a folder of images (class subfolders give labels) or an .npz file with an 'images' array. Config "
    "flags left unset follow the first signature file's config, so a model can be compared with a saved signature."
)
REF_HELP = "mnist, mnist:N, mnist:test:N (held-out digits), cifar10:ROOT[:N], cifar100:ROOT[:N], a folder of images or an .npz file"
MODEL_HELP = f"{MODEL_SPEC_HELP}, or a signature .npz"


def build_parser() -> argparse.ArgumentParser:
    """The ``zest`` argument parser: one subparser per command, ``request`` set to the type of its request."""
    parser = argparse.ArgumentParser(
        prog="zest",
        description=(
            "Zest model distances (Jia et al., ICLR 2023): how similar two image classifiers are, "
            "from their predictions alone."
        ),
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    config = _config_parent()
    _add_comparison_commands(commands, config)
    _add_zoo_commands(commands, config)
    _add_bench_command(commands, config)
    _add_audit_command(commands, config)
    _add_search_command(commands, config)
    return parser


def parse_request(argv: Sequence[str]) -> Request:
    """The typed request of the command line ``argv`` (after ``zest``): argparse's namespace, once, as a dataclass.

    Raises
    ------
    SystemExit
        As argparse does, on ``--help`` and on arguments it refuses (with its usage message).
    """
    namespace = build_parser().parse_args(list(argv))
    return namespace.request.from_namespace(namespace, tuple(argv))


def _add_comparison_commands(commands: argparse._SubParsersAction, config: argparse.ArgumentParser) -> None:
    """``signature``, ``distance`` and ``matrix``."""
    sign = commands.add_parser("signature", parents=[config], help="compute and save a model's signature")
    sign.add_argument("model", metavar="MODEL", help=MODEL_SPEC_HELP)
    _trust_pickle_flag(sign)
    _input_adapter_flag(sign)
    _nondeterministic_flag(sign)
    _endpoint_flags(sign)
    sign.add_argument("--refset", metavar="REF", required=True, help=REF_HELP)
    _image_size_flag(sign)
    _budget_flag(sign)
    sign.add_argument("-o", "--output", required=True, metavar="OUT.npz", help="where to write the signature")
    sign.set_defaults(request=SignatureRequest)

    dist = commands.add_parser(
        "distance", parents=[config], help="the Zest distance between two models", description=INPUTS_HELP
    )
    dist.add_argument("a", metavar="A", help=MODEL_HELP)
    dist.add_argument("b", metavar="B", help=MODEL_HELP)
    _comparison_flags(dist)
    _input_adapter_flag(dist)
    _budget_flag(dist)
    dist.add_argument("--json", action="store_true", help="print one JSON object with the details")
    dist.set_defaults(request=DistanceRequest)

    matrix = commands.add_parser(
        "matrix", parents=[config], help="distances between every pair of models", description=INPUTS_HELP
    )
    matrix.add_argument("models", metavar="MODEL", nargs="+", help=MODEL_HELP)
    _comparison_flags(matrix)
    _budget_flag(matrix)
    matrix.add_argument("--format", choices=("csv", "json", "npy"), default="csv",
                        help="output format (default: csv); npy streams the matrix to -o FILE.npy block by block, "
                             "with the model names beside it in FILE.names.txt, for hubs of thousands")
    matrix.add_argument("-o", "--output", metavar="FILE", help="write here instead of stdout")
    _backend_flags(matrix)
    matrix.set_defaults(request=MatrixRequest)


def _add_zoo_commands(commands: argparse._SubParsersAction, config: argparse.ArgumentParser) -> None:
    """``demo``, ``zoo build`` and ``zoo list``."""
    demo = commands.add_parser(
        "demo", parents=[config], help="train small MNIST models and compare them (offline, about a minute at most)"
    )
    demo.add_argument("--epochs", type=int, default=2, help="training epochs of the base models (default: 2)")
    demo.add_argument("--n", type=int, default=32, help="reference digits (default: 32)")
    demo.set_defaults(request=DemoRequest)

    zoo_parser = commands.add_parser("zoo", help="the demo zoo of related and unrelated MNIST models")
    zoo_commands = zoo_parser.add_subparsers(dest="zoo_command", required=True, metavar="ZOO_COMMAND")
    build = zoo_commands.add_parser("build", help="train the demo zoo (replaces the zoo in --out once complete)")
    build.add_argument("--out", metavar="DIR", help="zoo folder (default: $ZEST_ZOO_DIR or assets/zoo)")
    build.add_argument("--tiny", action="store_true", help="a seconds-long zoo of one source per architecture, for tests")
    build.add_argument("--seed", type=int, default=0, help="seed every model derives from (default: 0)")
    build.add_argument("--extend", action="store_true",
                       help="keep the models already in --out and train only the missing models trained from "
                            "scratch (e.g. unrelated models added to the recipe)")
    build.set_defaults(request=ZooBuildRequest)
    listing = zoo_commands.add_parser("list", help="the zoo's models, relations and held-out accuracies")
    listing.add_argument("--root", metavar="DIR", help="zoo folder (default: $ZEST_ZOO_DIR or assets/zoo)")
    listing.add_argument("--json", action="store_true", help="print the manifest's model entries as JSON")
    listing.set_defaults(request=ZooListRequest)


def _add_bench_command(commands: argparse._SubParsersAction, config: argparse.ArgumentParser) -> None:
    """``bench STUDY``: the papers' studies on the demo zoo."""
    bench = commands.add_parser(
        "bench", parents=[config], help="the papers' studies on the demo zoo (reuse table, epochs, reference size, unlearning)"
    )
    bench.add_argument("study", choices=("reuse", "budget", "ablation", "epochs", "refsize", "unlearning"),
                       help="reuse: Zest Table 5 with ModelDiff, judged against the matched null; ablation: matched "
                            "AUC per relation for one setting changed at a time (try --n 32 --samples 250); "
                            "budget: matched AUC and TPR against queries per model for Zest (N × L × mask design), ModelDiff "
                            "(seeds) and SAC (images); epochs: Fig. 2; refsize: Fig. 3; unlearning: §5.3")
    bench.add_argument("--zoo", metavar="DIR", help="zoo folder (default: $ZEST_ZOO_DIR or assets/zoo)")
    bench.add_argument("--n", type=int, default=DEFAULT_MNIST_N,
                       help=f"reference digits, stratified from the held-out split (default: {DEFAULT_MNIST_N}; "
                            "unlearning always uses the 128-digit forget set)")
    bench.add_argument("--ref-seed", type=int, default=0, help="seed of the reference-digit draw (default: 0)")
    bench.add_argument("--out", default="bench/results", metavar="DIR", help="output folder (default: bench/results)")
    bench.add_argument("--methods", nargs="+",
                       choices=METHODS,
                       help="reuse: methods (default: zest-cosine zest-l2 modeldiff agreement); budget: among "
                            "zest-cosine, modeldiff, sac, akh (default: all four)")
    _sac_images_flag(bench)
    bench.add_argument("--align", choices=ALIGN_CHOICES, default="greedy",
                       help="reuse: class matching for Zest (default: greedy, as the authors' code; auto skips "
                            "equal class counts and so misses label-permuted copies)")
    bench.add_argument("--alpha", type=float, default=0.05,
                       help="reuse: significance level of the verdicts (default: 0.05); every pair is judged "
                            "against models trained from scratch for the child's task with its architecture")
    bench.add_argument("--k", type=int, default=1, help="epochs: compare checkpoint t with t+k (default: 1)")
    bench.add_argument("--repeats", type=int, default=10, help="refsize: draws per reference-set size (default: 10)")
    bench.set_defaults(request=BenchRequest)


def _sac_images_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--sac-images", type=int, default=DEFAULT_SAC_IMAGES, metavar="N",
                        help=f"sac: CutMix images per model (default: {DEFAULT_SAC_IMAGES}; the paper uses 50-100)")


def _add_audit_command(commands: argparse._SubParsersAction, config: argparse.ArgumentParser) -> None:
    """``audit REFERENCE SUSPECT``: a calibrated verdict against the matched null."""
    audit = commands.add_parser(
        "audit", parents=[config],
        help="is SUSPECT derived from REFERENCE? p-value and verdict against models trained independently "
             "for the suspect's task with its architecture",
    )
    audit.add_argument("reference", metavar="REFERENCE", help=f"the model of the owner: {MODEL_SPEC_HELP}")
    audit.add_argument("suspect", metavar="SUSPECT", help="the model under suspicion (same forms)")
    audit.add_argument(
        "--unrelated", nargs="+", metavar="SPEC",
        help="models trained independently for the suspect's task with the suspect's architecture: model "
             "specs, folders of model files, or @FILE (one spec per line); zoo: pairs default to the zoo's manifest",
    )
    audit.add_argument("--alpha", type=float, default=0.05, help="significance level (default: 0.05)")
    audit.add_argument("--sequential", action="store_true",
                       help="zest-cosine in rounds of reference images (8, 8, 16, 32, ... new ones), each tested at "
                            "alpha / rounds, stopping as soon as the verdict is decided: the suspect is asked only "
                            "about the rounds looked at (zest_core.studies.sequential)")
    _query_flags(audit)
    _input_adapter_flag(audit)
    audit.add_argument("--align", choices=ALIGN_CHOICES, default="greedy",
                       help="class matching for Zest (default: greedy: a suspect's class order is unknown)")
    audit.add_argument("--report", metavar="FILE",
                       help="also write the audit report: a self-contained .html file (the verdict, every method, the "
                            "null, the per-image evidence, fingerprints, config, command; opens offline) or its .json "
                            "twin; check either with `zest verify FILE`")
    audit.add_argument("--commitment", metavar="FILE",
                       help="a commitment of `zest commit`: refuse to query the suspect unless every image the audit "
                            "sends it is one committed to")
    audit.add_argument("--json", action="store_true", help="print one JSON object")
    audit.set_defaults(request=AuditRequest)

    commit = commands.add_parser(
        "commit", parents=[config],
        help="write the hash of every image an audit will send a suspect (reference images, masks and their "
             "seed, design, fill, ModelDiff pairs, SAC and AKH images), before any suspect is seen",
    )
    commit.add_argument("--reference", metavar="SPEC",
                        help="the owner's model (needed for modeldiff, akh and all, whose queries it shapes)")
    _query_flags(commit)
    commit.add_argument("-o", "--out", required=True, metavar="FILE", help="the commitment (.json)")
    commit.set_defaults(request=CommitRequest)

    verify = commands.add_parser(
        "verify", help="recompute an audit report's verdict from its command, model files and reference set, and "
                       "say whether fingerprints, queries, distances and p-values match (exit 0) or what differs (1)",
    )
    verify.add_argument("report", metavar="REPORT", help="an audit report of `zest audit --report` (.html or .json)")
    verify.add_argument("--reference", metavar="SPEC", help="check against this reference model instead")
    verify.add_argument("--suspect", metavar="SPEC", help="check against this suspect instead")
    verify.add_argument("--refset", metavar="REF", help="check against this reference set instead")
    verify.add_argument("--zoo", metavar="DIR", help="zoo folder for zoo: models (default: the recorded one)")
    _trust_pickle_flag(verify)
    verify.set_defaults(request=VerifyRequest)


def _query_flags(parser: argparse.ArgumentParser) -> None:
    """The flags that decide what an audit asks (shared by ``audit`` and ``commit``, so that both plan alike)."""
    parser.add_argument("--method", choices=("zest-cosine", "zest-l2", "modeldiff", "sac", "akh", "agreement", "all"),
                        default="zest-cosine",
                        help="the distance judged (default: zest-cosine); all: zest-cosine, modeldiff, sac and akh, "
                             "their p-values combined by Holm's rule (FPR <= alpha whatever their dependence), "
                             "--budget split equally among them")
    _sac_images_flag(parser)
    parser.add_argument("--akh-queries", type=int, default=100, metavar="N",
                        help="akh: images the reference model misclassifies (and CutMix variants) asked of each model "
                             "(default: 100)")
    parser.add_argument("--refset", metavar="REF", help=f"{REF_HELP} (default: mnist)")
    _budget_flag(parser, DEFAULT_AUDIT_BUDGET)
    _image_size_flag(parser)
    parser.add_argument("--zoo", metavar="DIR",
                        help="zoo folder for zoo: models (default: $ZEST_ZOO_DIR or assets/zoo)")
    _trust_pickle_flag(parser)
    _endpoint_flags(parser)


def _backend_flags(parser: argparse.ArgumentParser) -> None:
    """Where the signatures of ``matrix`` and ``search`` are computed, and the blocks of their distances."""
    group = parser.add_argument_group("backend (one task per model; a failed model is reported, exit status 1)")
    group.add_argument("--backend", choices=BACKENDS, default="local",
                       help="local: one model after another in this process; ray: one Ray task per model "
                            "(pip install 'zest-explorer[ray]') (default: local)")
    group.add_argument("--address", default="auto",
                       help="ray: auto joins a running cluster ($RAY_ADDRESS or `ray start` here), else starts a "
                            "local Ray on 127.0.0.1; local always starts one; or HOST:PORT, ray://HOST:PORT "
                            "(default: auto)")
    group.add_argument("--workers", type=int, metavar="N",
                       help="ray: CPUs of a local Ray started here (default: all of this machine's)")
    group.add_argument("--threads", type=int, metavar="N",
                       help="torch threads per model, the CPUs each Ray task declares (default: 1 on ray, torch's own "
                            "locally)")
    group.add_argument("--gpus-per-task", type=float, default=1.0, metavar="G",
                       help="ray: GPUs each task declares when models run on CUDA; a fraction shares a GPU (default: 1)")
    group.add_argument("--task-retries", type=int, default=DEFAULT_TASK_RETRIES, metavar="N",
                       help="further attempts of a model whose task may have failed transiently: the model raised, "
                            f"an endpoint failed, the worker died (default: {DEFAULT_TASK_RETRIES})")
    group.add_argument("--block-size", type=int, default=DEFAULT_BLOCK_SIZE, metavar="B",
                       help=f"models per block of the distance phase; memory grows with it (default: {DEFAULT_BLOCK_SIZE})")


def _add_search_command(commands: argparse._SubParsersAction, config: argparse.ArgumentParser) -> None:
    """``search SUSPECT --hub DIR|LIST``: the hub ranked by distance to a suspect, with calibrated verdicts."""
    search = commands.add_parser(
        "search", parents=[config],
        help="rank a hub's models by Zest distance to SUSPECT; for the closest, is SUSPECT derived from them?",
        description="Computes the signatures of SUSPECT and of every hub model (--backend), ranks the hub by cosine "
                    "distance to SUSPECT and, for the --top closest models H, judges d(H, SUSPECT) against the "
                    "matched null: models trained independently for the suspect's task with its architecture (a "
                    "zoo hub's manifest gives them; otherwise --unrelated).",
    )
    search.add_argument("suspect", metavar="SUSPECT",
                        help=f"{MODEL_SPEC_HELP}; in a zoo hub, NAME or zoo:NAME is the hub's model of that name")
    search.add_argument("--hub", required=True, metavar="DIR|LIST",
                        help="a zoo folder (zoo.json: models, checkpoints, and the matched null), a folder of "
                             "TorchScript/ONNX model files, or a text file of model specs, one per line")
    search.add_argument("--top", type=int, default=10, metavar="K", help="verdicts for the K closest (default: 10)")
    search.add_argument("--alpha", type=float, default=0.05, help="significance level (default: 0.05)")
    search.add_argument("--unrelated", nargs="+", metavar="SPEC",
                        help="the null for every verdict: models trained independently for the suspect's task with "
                             "its architecture (specs, folders of model files, or @FILE)")
    search.add_argument("--no-checkpoints", action="store_true", help="a zoo hub without its per-epoch checkpoints")
    search.add_argument("--refset", metavar="REF", help=f"{REF_HELP} (default: mnist)")
    _budget_flag(search)
    _image_size_flag(search)
    search.add_argument("--align", choices=ALIGN_CHOICES, default="greedy",
                        help="class matching (default: greedy: a suspect's class order is unknown)")
    _trust_pickle_flag(search)
    _nondeterministic_flag(search)
    _endpoint_flags(search)
    search.add_argument("--json", action="store_true", help="print one JSON object (the whole ranking included)")
    search.add_argument("-o", "--output", metavar="FILE.csv", help="write the whole ranking here (rank, model, distance)")
    _backend_flags(search)
    search.set_defaults(request=SearchRequest)
