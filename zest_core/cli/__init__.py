"""The ``zest`` command: signatures, distances and distance matrices of image classifiers from files.

Usage (``zest SUBCOMMAND --help`` for every flag)::

    zest signature MODEL --refset REF [--budget Q] -o OUT.npz
    zest distance A B --refset REF [--budget Q] [--metric cosine|l1|l2|linf] [--align auto|none|greedy|hungarian] [--json]
    zest matrix M1 M2 ... --refset REF [--budget Q] [--backend local|ray] [--address auto|local|HOST:PORT] [--format csv|json|npy] [-o FILE]
    zest search SUSPECT --hub DIR|LIST [--top K] [--budget Q] [--backend local|ray] [--unrelated SPEC ...] [--json]
    zest audit REFERENCE SUSPECT [--unrelated SPEC ...] [--method zest-cosine|zest-l2|modeldiff|sac|agreement]
               [--budget Q] [--sequential] [--alpha A] [--json]
    zest demo [--epochs E] [--n N]
    zest zoo build [--out DIR] [--tiny] [--seed S]
    zest zoo list [--root DIR] [--json]
    zest bench reuse|budget|ablation|epochs|refsize|unlearning [--zoo DIR] [--n N] [--samples L] [--out DIR]

MODEL is any spec of :func:`zest_core.sources.models.load_model`: a TorchScript, ONNX or ``torch.export``
(``.pt2``) file, ``ARCH:WEIGHTS.pt`` or ``ARCH:WEIGHTS.safetensors`` (a state_dict of an architecture of
:data:`zest_core.sources.architectures.ARCHITECTURES` or of a torchvision classification model),
``timm:NAME:WEIGHTS``, a Hugging Face or timm model folder, an ``http(s)://`` endpoint (``--timeout SECONDS`` bounds each request,
``--retries N`` the attempts after a transient failure) or ``zoo:NAME``; files holding pickled objects need
``--trust-pickle``. For ``distance`` and ``matrix`` it may also be a signature file (``*.npz``) written
by ``zest signature``. REF is ``mnist``, ``mnist:N`` (N stratified built-in MNIST
digits, default 128), ``cifar10:ROOT[:N]`` or ``cifar100:ROOT[:N]`` (N stratified test images of the
dataset in ROOT, default 128), a folder of images (class subfolders give labels; ``--image-size H W``
resizes them) or an ``.npz`` file with an ``images`` array.

Errors in the inputs are reported as ``zest: error: ...`` on stderr with exit status 2, naming the flag
the user typed (``--samples``), not the engine's parameter (``num_samples``).
An exception raised by a model under test is reported the same way; a warning (an unwritable
cache folder) is one ``zest: warning: ...`` line.

The modules: :mod:`.parser` (every flag and its help), :mod:`.inputs` (MODEL and REF arguments,
config flags, signatures), and one module per command group: :mod:`.compare` (signature,
distance, matrix), :mod:`.search`, :mod:`.audit`, :mod:`.zoo` (demo, zoo build/list) and :mod:`.bench`
(the studies). The command line becomes a typed request once (:mod:`.requests`, by :func:`.parser.parse_request`); the
commands and their helpers read its fields and never see argparse. A new command is a request type in
:mod:`.requests`, a ``cmd_<name>(request) -> int`` in its group's module, a subparser in :mod:`.parser`
that sets ``request=`` to the type, and an entry of :data:`HANDLERS`.
"""
from __future__ import annotations

import sys
import warnings
from typing import Any, Callable, Sequence

from .audit import cmd_audit
from .bench import cmd_bench
from .compare import cmd_distance, cmd_matrix, cmd_signature
from .handover import cmd_commit, cmd_verify
from .inputs import DEFAULT_MNIST_N, EXIT_OK, EXIT_USAGE, CLIError, check_flags, flag_named, limits_from_request, load_refset
from .parser import build_parser, parse_request
from .requests import (AuditRequest, BenchRequest, CommitRequest, DemoRequest, DistanceRequest, MatrixRequest, Request,
                       SearchRequest, SignatureRequest, VerifyRequest, ZooBuildRequest, ZooListRequest)
from .search import cmd_search
from .zoo import cmd_demo, cmd_zoo_build, cmd_zoo_list

# Each request type and the command that runs it.
HANDLERS: dict[type[Request], Callable[[Any], int]] = {
    SignatureRequest: cmd_signature, DistanceRequest: cmd_distance, MatrixRequest: cmd_matrix, DemoRequest: cmd_demo,
    ZooBuildRequest: cmd_zoo_build, ZooListRequest: cmd_zoo_list, BenchRequest: cmd_bench, AuditRequest: cmd_audit,
    CommitRequest: cmd_commit, VerifyRequest: cmd_verify, SearchRequest: cmd_search,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``zest`` command; returns its exit status (0 on success, 2 on bad input)."""
    try:
        request = parse_request(sys.argv[1:] if argv is None else argv)
    except SystemExit as exit_:  # argparse exits on --help and on bad arguments
        return int(exit_.code or 0)
    try:
        check_flags(request)  # every numeric flag as typed, before any work
        with warnings.catch_warnings(), limits_from_request(request):
            warnings.showwarning = _show_warning
            return HANDLERS[type(request)](request)
    except (CLIError, ValueError, OSError, RuntimeError) as error:
        print(f"zest: error: {flag_named(str(error))}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("zest: interrupted", file=sys.stderr)
        return 130


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:  # noqa: ANN001 - showwarning's
    """A warning as one line of the command's own, ``zest: warning: ...`` on stderr, not Python's two lines of source."""
    print(f"zest: warning: {message}", file=sys.stderr)


__all__ = ["DEFAULT_MNIST_N", "EXIT_OK", "EXIT_USAGE", "HANDLERS", "CLIError", "build_parser", "load_refset", "main",
           "parse_request"]
