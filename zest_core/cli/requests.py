"""What each ``zest`` command was asked: one typed, frozen request per command, made once from its arguments.

:func:`zest_core.cli.parser.parse_request` parses the command line and turns argparse's namespace into
the request of the command's type (:meth:`Request.from_namespace`); the commands and the helpers
they call read typed fields and never see argparse. The flag groups several commands share are
base classes (``ConfigFlags``, ``ModelFlags``, ``RefFlags``, ``ComputeFlags`` of the three, ``BackendFlags``), so a helper such as
:func:`zest_core.cli.inputs.config_from_request` takes any request that has them.

Fields whose flag always has a value (a default in the parser) have none here: the parser's is the one
default. Every field is named as argparse names the flag's destination (``--batch-size`` → ``batch_size``);
``tests/test_cli_requests.py`` checks that each subcommand's destinations are fields of its request and
that a field no flag of the command gives is one of :class:`ModelFlags` (a command that does not offer
``--trust-pickle`` gets False), so that a flag added without its field, or the reverse, fails there.
"""
from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass, field
from typing import Any, Mapping

from .._shared.limits import LIMITS
from ..errors import ZestError

# argparse's bookkeeping in the namespace: the chosen (sub)command and the request type it maps to.
_PARSER_KEYS = ("command", "zoo_command", "request")


def limit_dest(flag: str) -> str:
    """The namespace name of a resource-limit flag (``--max-mask-memory`` → ``max_mask_memory``)."""
    return flag.removeprefix("--").replace("-", "_")


@dataclass(frozen=True, kw_only=True)
class Request:
    """What every command gets.

    Attributes
    ----------
    argv : tuple of str
        The command line as typed, after ``zest`` (an audit report records it; ``zest verify`` reruns it).
    limits : mapping of str to str
        The resource-limit flags given (``{"--max-mask-memory": "8G"}``), as typed; only computing commands
        have them (:data:`zest_core._shared.limits.LIMITS`).
    """

    argv: tuple[str, ...] = ()
    limits: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_namespace(cls, namespace: argparse.Namespace, argv: tuple[str, ...] = ()) -> Request:
        """The request of this type that argparse's ``namespace`` describes.

        Raises
        ------
        ZestError
            If the namespace holds a destination that is not a field of this request (a flag added to
            the parser without its field): a fault of the program, named, never of the user's input.
        """
        # argparse's lists (nargs) as tuples, so that a request is immutable all through.
        values = {key: tuple(value) if isinstance(value, list) else value
                  for key, value in vars(namespace).items() if key not in _PARSER_KEYS}
        limits = {}
        for limit in LIMITS:  # the limit flags are not fields of their own: they go into ``limits``
            value = values.pop(limit_dest(limit.flag), None)
            if value is not None:
                limits[limit.flag] = value
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - names)
        if unknown:
            raise ZestError(f"{cls.__name__}: the parser's destinations {unknown} are not fields of the request")
        return cls(argv=tuple(argv), limits=limits, **values)

    def replace(self, **changes: Any) -> Request:
        """A copy with ``changes`` (``zest verify`` swaps the recorded models for others)."""
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True, kw_only=True)
class ConfigFlags(Request):
    """The signature-configuration and cache flags of every computing command (:class:`~zest_core.ZestConfig`).

    None means: not given, the config's default (or the first signature file's) applies.
    """

    samples: int | None = None
    segmentation: str | None = None
    fill: str | None = None
    mode: str | None = None
    targets: str | None = None
    seed: int | None = None
    mask_design: str | None = None
    batch_size: int | None = None
    device: str | None = None
    cache_dir: str | None = None
    no_cache: bool = False


@dataclass(frozen=True, kw_only=True)
class ModelFlags(Request):
    """How MODEL arguments are loaded and queried. A command without a flag keeps its default here."""

    trust_pickle: bool = False
    timeout: float | None = None
    retries: int | None = None
    allow_nondeterministic: bool = False
    input_adapter: bool = False

    def model_options(self) -> dict[str, Any]:
        """The keyword arguments of :func:`~zest_core.cli.inputs.load_classifier` these flags give."""
        return {"trust_pickle": self.trust_pickle, "timeout": self.timeout, "retries": self.retries}


@dataclass(frozen=True, kw_only=True)
class RefFlags(Request):
    """The reference set (``--refset``, ``--image-size``) and the query budget (``--budget``)."""

    refset: str | None = None
    image_size: tuple[int, int] | None = None
    budget: int | None = None


@dataclass(frozen=True, kw_only=True)
class BackendFlags(Request):
    """Where ``matrix`` and ``search`` compute their signatures, and the blocks of their distances."""

    backend: str
    address: str
    workers: int | None = None
    threads: int | None = None
    gpus_per_task: float
    task_retries: int
    block_size: int


@dataclass(frozen=True, kw_only=True)
class ComputeFlags(ConfigFlags, ModelFlags, RefFlags):
    """The flags of every command that computes signatures of MODEL arguments on a reference set."""


@dataclass(frozen=True, kw_only=True)
class SignatureRequest(ComputeFlags):
    """``zest signature MODEL --refset REF -o OUT.npz``."""

    model: str
    output: str


@dataclass(frozen=True, kw_only=True)
class DistanceRequest(ComputeFlags):
    """``zest distance A B``."""

    a: str
    b: str
    metric: str
    align: str
    json: bool = False


@dataclass(frozen=True, kw_only=True)
class MatrixRequest(ComputeFlags, BackendFlags):
    """``zest matrix M1 M2 ...``."""

    models: tuple[str, ...]
    metric: str
    align: str
    format: str
    output: str | None = None


@dataclass(frozen=True, kw_only=True)
class DemoRequest(ConfigFlags):
    """``zest demo``."""

    epochs: int
    n: int


@dataclass(frozen=True, kw_only=True)
class ZooBuildRequest(Request):
    """``zest zoo build``; ``seed`` is the zoo's, not the mask sampler's."""

    out: str | None = None
    tiny: bool = False
    seed: int
    extend: bool = False


@dataclass(frozen=True, kw_only=True)
class ZooListRequest(Request):
    """``zest zoo list``."""

    root: str | None = None
    json: bool = False


@dataclass(frozen=True, kw_only=True)
class BenchRequest(ConfigFlags):
    """``zest bench STUDY``."""

    study: str
    zoo: str | None = None
    n: int
    ref_seed: int
    out: str
    methods: tuple[str, ...] | None = None
    sac_images: int
    align: str
    alpha: float
    k: int
    repeats: int


@dataclass(frozen=True, kw_only=True)
class QueryFlags(ComputeFlags):
    """What decides the images an audit asks: shared by ``audit`` and ``commit`` so that both plan alike."""

    method: str
    sac_images: int
    akh_queries: int
    zoo: str | None = None


@dataclass(frozen=True, kw_only=True)
class AuditRequest(QueryFlags):
    """``zest audit REFERENCE SUSPECT``."""

    reference: str
    suspect: str
    unrelated: tuple[str, ...] | None = None
    alpha: float
    sequential: bool = False
    align: str
    report: str | None = None
    commitment: str | None = None
    json: bool = False


@dataclass(frozen=True, kw_only=True)
class CommitRequest(QueryFlags):
    """``zest commit [--reference SPEC] -o FILE``."""

    reference: str | None = None
    out: str


@dataclass(frozen=True, kw_only=True)
class VerifyRequest(Request):
    """``zest verify REPORT``: the recorded audit, with the models or reference set to check against instead."""

    report: str
    reference: str | None = None
    suspect: str | None = None
    refset: str | None = None
    zoo: str | None = None
    trust_pickle: bool = False


@dataclass(frozen=True, kw_only=True)
class SearchRequest(ComputeFlags, BackendFlags):
    """``zest search SUSPECT --hub DIR|LIST``."""

    suspect: str
    hub: str
    top: int
    alpha: float
    unrelated: tuple[str, ...] | None = None
    no_checkpoints: bool = False
    align: str
    json: bool = False
    output: str | None = None


__all__ = [
    "AuditRequest", "BackendFlags", "BenchRequest", "CommitRequest", "ComputeFlags", "ConfigFlags", "DemoRequest", "DistanceRequest",
    "MatrixRequest", "ModelFlags", "QueryFlags", "RefFlags", "Request", "SearchRequest", "SignatureRequest",
    "VerifyRequest", "ZooBuildRequest", "ZooListRequest", "limit_dest",
]
