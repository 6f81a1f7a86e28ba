"""What the ``zest`` command reads: MODEL and REF arguments, config flags, and the signatures they give.

Every fault in an input is a :class:`CLIError` (or an engine error) whose message names the argument;
:func:`zest_core.cli.main` prints it as ``zest: error: ...`` and exits with :data:`EXIT_USAGE`.
"""
from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

from .._shared.checks import check_int, check_number
from .._shared.limits import LIMITS, parse_size
from .._shared.progress import ProgressBar
from ..cache.store import SignatureCache
from ..errors import ZestError
from ..pipeline.budget import BudgetPlan, apply_budget
from ..pipeline.config import ZestConfig
from ..pipeline.distance import check_compatible
from ..pipeline.counting import QueryCount
from ..pipeline.reference import ReferenceSet
from ..pipeline.signature import Signature, compute_signature
from ..sources.cifar import CIFAR_DATASETS, load_cifar
from ..sources.endpoint import load_endpoint
from ..sources.image_folder import load_image_folder
from ..sources.mnist import load_mnist
from ..sources.models import Classifier, fit_input, load_model
from ..sources.npz import load_npz_reference
from .requests import ComputeFlags, ConfigFlags, Request

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
    "mask_design": "mask_design",
}
# The reverse, as the user typed it: a config error about "num_samples" is reported against "--samples".
CONFIG_FIELD_FLAGS = {field: "--" + flag.replace("_", "-") for flag, field in CONFIG_FLAGS.items()}
# EndpointModel parameter → flag, for http(s):// models.
ENDPOINT_FLAGS = {"timeout": "--timeout", "retries": "--retries"}


class CLIError(ZestError):
    """An input the command cannot use; its message names the input and the problem."""


@dataclass
class Input:
    """One MODEL argument of ``distance``/``matrix``: a model to probe, or a precomputed signature."""

    spec: str
    model: Classifier | None = None
    signature: Signature | None = None


def is_signature_spec(spec: str) -> bool:
    """Whether a MODEL argument names a signature file (by its ``.npz`` suffix)."""
    return spec.lower().endswith(SIGNATURE_SUFFIX)


@contextlib.contextmanager
def named_as_flags(flags: Mapping[str, str]) -> Iterator[None]:
    """Report an error about a parameter that a flag gave (``num_samples: ...``) against the flag (``--samples: ...``).

    The engine names its parameters; the user typed flags. A :class:`ZestError` whose message
    starts with ``"<name>: "`` for a ``name`` in ``flags`` is raised again as a :class:`CLIError`
    that starts with the flag instead; any other error passes through unchanged.
    """
    try:
        yield
    except CLIError:
        raise
    except ZestError as error:
        name, separator, rest = str(error).partition(": ")
        if separator and name in flags:
            raise CLIError(f"{flags[name]}: {rest}") from error
        raise


# Numeric flags checked as typed, before any work (argparse checks only that they are numbers).
FLAG_BOUNDS = {
    "alpha": ("--alpha", {"minimum": 0.0, "maximum": 1.0, "strict": True}),
    "timeout": ("--timeout", {"minimum": 0.0, "strict": True}),
    "gpus_per_task": ("--gpus-per-task", {"minimum": 0.0}),
}
INT_FLAG_MINIMA = {"budget": ("--budget", 0), "samples": ("--samples", 2), "threads": ("--threads", 1),
                   "workers": ("--workers", 1), "top": ("--top", 1), "retries": ("--retries", 0),
                   "task_retries": ("--task-retries", 0), "batch_size": ("--batch-size", 1)}
# Engine parameter → the flag that sets it, for messages of checks made deeper down.
FIELD_FLAGS = {**CONFIG_FIELD_FLAGS, **{name: flag for name, (flag, _) in {**FLAG_BOUNDS, **INT_FLAG_MINIMA}.items()},
               "num_samples": "--samples", "address": "--address"}


def check_flags(request: Request) -> None:
    """Every numeric flag the command has, checked as the user typed it, and ``-o``'s folder, before any work.

    Raises
    ------
    CLIError
        Naming the flag as typed (``--alpha: expected a number > 0.0, got 0.0``).
    """
    # Generic over the request types: a command checks the flags its request has.
    for name, (flag, bounds) in FLAG_BOUNDS.items():
        if getattr(request, name, None) is not None:
            check_number(flag, getattr(request, name), **bounds)
    for name, (flag, minimum) in INT_FLAG_MINIMA.items():
        if getattr(request, name, None) is not None:
            check_int(flag, getattr(request, name), minimum=minimum)
    if getattr(request, "output", None):
        check_writable("-o", Path(request.output))
    address = getattr(request, "address", None)
    if getattr(request, "backend", None) == "ray" and address not in (None, "auto", "local"):
        from ..hub.ray_backend import CONNECT_TIMEOUT_S, check_reachable  # no Ray import: a socket

        with named_as_flags({"address": "--address"}):
            check_reachable(address, getattr(request, "timeout", None) or CONNECT_TIMEOUT_S)


@contextlib.contextmanager
def limits_from_request(request: Request) -> Iterator[None]:
    """The resource-limit flags (``--max-mask-memory 8G``) as their environment variables, for one command.

    :mod:`zest_core._shared.limits` reads them there, in this process and in those it starts (Ray's
    included); they are restored when the command ends.

    Raises
    ------
    CLIError
        For a size that does not parse, naming the flag.
    """
    saved = {limit.env: os.environ.get(limit.env) for limit in LIMITS}
    try:
        for limit in LIMITS:
            value = request.limits.get(limit.flag)
            if value is not None:
                try:
                    os.environ[limit.env] = str(parse_size(value))
                except ValueError:
                    raise CLIError(f"{limit.flag}: expected a size (4G, 512M or a number), got {value!r}") from None
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def check_writable(flag: str, path: Path) -> None:
    """Refuse an output ``path`` that cannot be written, naming ``flag``, before any work.

    The folder must exist and take a new file: one is created there and removed (permission bits
    say nothing for root, a read-only mount or /proc).
    """
    folder = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise CLIError(f"{flag}: expected a file, got the folder {path}")
    if not folder.is_dir():
        raise CLIError(f"{flag}: expected a file in an existing folder, got {path} (no folder {folder})")
    try:
        handle, probe = tempfile.mkstemp(dir=folder, prefix=".zest-write-check-")
    except OSError as error:
        raise CLIError(f"{flag}: expected a writable folder, got {path} ({folder}: {error.strerror})") from None
    os.close(handle)
    os.unlink(probe)


def flag_named(message: str) -> str:
    """An engine message about a parameter a flag set (``alpha: ...``) as one about the flag (``--alpha: ...``)."""
    name, separator, rest = message.partition(": ")
    return f"{FIELD_FLAGS[name]}: {rest}" if separator and name in FIELD_FLAGS else message


def is_endpoint_spec(spec: str) -> bool:
    """Whether a MODEL argument is a model behind an HTTP endpoint."""
    return spec.startswith(("http://", "https://"))


def load_classifier(
    spec: str, *, trust_pickle: bool = False, timeout: float | None = None, retries: int | None = None
) -> Classifier:
    """A MODEL argument that is a model: any spec of :func:`zest_core.sources.models.load_model`.

    ``timeout`` and ``retries`` (None: the endpoint's defaults) apply to ``http(s)://`` models only.

    Raises
    ------
    CLIError
        If ``spec`` names a signature file, or for a bad ``--timeout``/``--retries``; ModelLoadError
        (naming the file or spec and the problem) if the model cannot be loaded, EndpointError if
        an endpoint cannot be reached.
    """
    if is_signature_spec(spec):
        raise CLIError(f"{spec}: is a signature file; expected a model (a TorchScript, ONNX or ARCH:WEIGHTS.pt file)")
    if is_endpoint_spec(spec):
        given = {name: value for name, value in (("timeout", timeout), ("retries", retries)) if value is not None}
        with named_as_flags(ENDPOINT_FLAGS):
            return load_model(load_endpoint(spec, **given))
    return load_model(spec, trust_pickle=trust_pickle)


def load_signature(spec: str) -> Signature:
    """Read a signature file written by ``zest signature`` (or :meth:`Signature.save`)."""
    if not Path(spec).is_file():
        problem = "is a directory" if Path(spec).is_dir() else "no such file"
        raise CLIError(f"{spec}: {problem} (expected a signature file)")
    return Signature.load(spec)  # SignatureFileError names the file and the problem


def load_input(spec: str, **options: Any) -> Input:
    """A MODEL argument of ``distance``/``matrix``: a signature file if it ends in .npz, else a model.

    ``options`` are :func:`load_classifier`'s (``trust_pickle``, ``timeout``, ``retries``).
    """
    if is_signature_spec(spec):
        return Input(spec=spec, signature=load_signature(spec))
    return Input(spec=spec, model=load_classifier(spec, **options))


def load_refset(spec: str, image_size: Sequence[int] | None = None) -> ReferenceSet:
    """A REF argument: ``mnist[:N]``, ``mnist:test:N``, ``cifar10:ROOT[:N]``, ``cifar100:ROOT[:N]``, a folder or an ``.npz`` file.

    ``mnist:test:N`` is N held-out digits of MNIST's test split, stratified (seed 0): the dashboard's
    built-in reference set, so that its reports name a command that reproduces them.

    ``image_size`` (H, W) resizes the images of a folder; it is refused for any other REF.
    """
    if Path(spec).is_dir():
        with named_as_flags({"size": "--image-size"}):
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
    if rest.startswith("test:"):
        return load_mnist(_ref_count(spec, rest.removeprefix("test:"), "'mnist:test:N'"), split="test")
    return load_mnist(_ref_count(spec, rest, "'mnist' or 'mnist:N'") if separator else DEFAULT_MNIST_N)


def _split_count(text: str) -> tuple[str, str]:
    """'ROOT:N' → (ROOT, N); a ROOT without a numeric ':N' (it may hold ':' itself) → (ROOT, '')."""
    root, _, count = text.rpartition(":")
    return (root, count) if root and count.isdigit() else (text, "")


def _ref_count(spec: str, count: str, forms: str) -> int:
    if not count.isdigit() or int(count) < 1:
        raise CLIError(f"--refset: expected {forms} with N a positive integer, got {spec!r}")
    return int(count)


def config_from_request(request: ConfigFlags, base: ZestConfig | None = None) -> ZestConfig:
    """``base`` (default ``ZestConfig()``) with the config flags the user gave applied over it.

    Raises
    ------
    CLIError
        Naming the flag (``--samples``, not ``num_samples``) whose value the config refuses.
    """
    changes = {field: getattr(request, flag) for flag, field in CONFIG_FLAGS.items() if getattr(request, flag) is not None}
    with named_as_flags(CONFIG_FIELD_FLAGS):
        return (base or ZestConfig()).replace(**changes)


def requested_budget(request: ComputeFlags, default: int = 0) -> int:
    """The queries per model ``--budget`` asks (0: no budget).

    Without ``--budget``, the command's ``default`` applies unless ``--samples`` was given (explicit
    settings win); both given is refused.
    """
    budget = request.budget
    if budget is None:
        budget = default if request.samples is None else 0
    if budget and request.samples is not None:
        raise CLIError(f"--budget, --samples: expected one of them (the budget chooses L), got both ({budget} and "
                       f"{request.samples})")
    return budget


def budgeted(
    request: ComputeFlags, refset: ReferenceSet, config: ZestConfig, *, default: int = 0, budget: int | None = None,
) -> tuple[ReferenceSet, ZestConfig, BudgetPlan | None]:
    """The reference images, config and plan that ``--budget Q`` buys (:func:`zest_core.pipeline.budget.apply_budget`).

    ``budget`` (default: :func:`requested_budget` with ``default``) overrides the flag, for a share of it.
    Without a budget (0) the images and config are returned unchanged, with no plan. The plan is
    printed on stderr.
    """
    budget = requested_budget(request, default) if budget is None else budget
    if not budget:
        return refset, config, None
    with named_as_flags({"budget": "--budget"}):
        images, chosen, plan = apply_budget(budget, refset, config, repeat_check=not request.allow_nondeterministic,
                                            cache=cache_from_request(request))
    print(plan.describe(), file=sys.stderr)
    return images, chosen, plan


def cache_from_request(request: ConfigFlags) -> SignatureCache | bool | None:
    """False for --no-cache, a cache in --cache-dir, or None (the engine's default folder)."""
    if request.no_cache:
        return False
    return SignatureCache(request.cache_dir) if request.cache_dir else None


def signature_of(
    spec: str, model: Classifier, refset: ReferenceSet, config: ZestConfig, cache: SignatureCache | bool | None,
    label: str = "", *, allow_nondeterministic: bool = False, counter: QueryCount | None = None, adapt: bool = False,
) -> Signature:
    """Compute a model's signature with a progress bar; engine errors are reported against its spec.

    With ``adapt`` (``--input-adapter``) a model that takes other images than the reference set's is fed
    them converted (:func:`zest_core.adapt_input`); without it, it is refused naming the flag.

    An error about a config field (``num_samples`` too small for the super-pixels) names its flag.
    ``counter`` counts the queries made now (none for a cached signature).
    """
    model = adapted(spec, model, refset, adapt)
    with ProgressBar(label or f"{spec}: ") as progress:
        try:
            with named_as_flags(CONFIG_FIELD_FLAGS):
                return compute_signature(
                    model, refset, config, progress, cache=cache, allow_nondeterministic=allow_nondeterministic,
                    counter=counter,
                )
        except CLIError as error:
            if str(error).startswith("--"):
                raise  # about a flag (a limit, L), not about this model
            raise CLIError(f"{spec}: {error}") from error
        except (ValueError, RuntimeError) as error:
            raise CLIError(f"{spec}: {error}") from error


def signatures_of(
    inputs: Sequence[Input], request: ComputeFlags, *, counters: list[QueryCount] | None = None
) -> tuple[list[Signature], BudgetPlan | None]:
    """Every input's signature, loaded from its file or computed once on --refset, and the budget's plan.

    ``counters``, when given, gets one :class:`QueryCount` per input: the queries made now (none for a
    signature file or a cached signature).
    """
    loaded = [item.signature for item in inputs if item.signature is not None]
    # Unset config flags follow a given signature file's config, so a model can be compared with it.
    base = ZestConfig(**loaded[0].config.science_dict()) if loaded else None
    config = config_from_request(request, base)
    refset = _refset_for(inputs, request)
    plan = None
    if refset is not None:
        refset, config, plan = budgeted(request, refset, config)
    if refset is not None and loaded and loaded[0].refset_fingerprint != refset.fingerprint():
        first = next(item.spec for item in inputs if item.signature is not None)
        raise CLIError(f"{first} was computed on another reference set than --refset {request.refset}; use the same one")
    cache = cache_from_request(request)
    result = []
    for index, item in enumerate(inputs):
        made = QueryCount()
        if counters is not None:
            counters.append(made)
        if item.signature is not None:
            result.append(item.signature)
        else:
            label = f"model {index + 1}/{len(inputs)} ({item.spec}): "
            result.append(signature_of(
                item.spec, item.model, refset, config, cache, label,
                allow_nondeterministic=request.allow_nondeterministic, counter=made, adapt=request.input_adapter,
            ))
    for item, signature in zip(inputs[1:], result[1:]):
        try:
            check_compatible(result[0], signature)
        except ValueError as error:
            raise CLIError(f"{inputs[0].spec} vs {item.spec}: {error}") from error
    return result, plan


def adapted(spec: str, model: Classifier, refset: ReferenceSet, adapt: bool) -> Classifier:
    """``model`` fed the reference images as it takes them (``--input-adapter``), or refused naming the flag.

    Images are never converted silently: without ``adapt``, a model that declares another channel count
    or size than the reference images' is a ModelInputError that says how to convert them
    (:func:`zest_core.sources.models.fit_input`).
    """
    return fit_input(model, refset, adapt=adapt, name=spec, remedy=(
        "pass --input-adapter to convert them (grey ↔ RGB by replication or ITU-R 601 luma, bilinear resize), "
        "or use a reference set of the model's images (images are never converted silently)"))


def _refset_for(inputs: Sequence[Input], request: ComputeFlags) -> ReferenceSet | None:
    models = [item.spec for item in inputs if item.model is not None]
    if not models:
        return None
    if request.refset is None:
        raise CLIError(f"--refset is required to compute the signature of {models[0]}")
    return load_refset(request.refset, request.image_size)
