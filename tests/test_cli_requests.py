"""The CLI's typed requests: argparse's namespace becomes one frozen dataclass per command, once (issue 21).

Each subcommand's destinations must be fields of its request type, and a field a command lacks must be
one of the shared flags a command may not offer (with its "not offered" default); no module of the
CLI but the parser and the requests may import argparse.
"""
from __future__ import annotations

import argparse
import ast
import dataclasses
from pathlib import Path

import pytest

from zest_core.cli import HANDLERS, build_parser, parse_request
from zest_core.cli.requests import (
    AuditRequest,
    ComputeFlags,
    ModelFlags,
    Request,
    SearchRequest,
    VerifyRequest,
    ZooBuildRequest,
    limit_dest,
)
from zest_core._shared.limits import LIMITS
from zest_core.errors import ZestError

CLI = Path(__file__).resolve().parents[1] / "zest_core" / "cli"
# What a command may lack and still get from its base class, with the default that means "not offered".
MAY_LACK = {f.name for f in dataclasses.fields(ModelFlags)} | {"argv", "limits"}


def subcommands(parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()):
    """(words, subparser) of every runnable subcommand: ("audit",), ("zoo", "build"), ..."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                if "request" in sub._defaults:
                    yield (*prefix, name), sub
                yield from subcommands(sub, (*prefix, name))


def destinations(parser: argparse.ArgumentParser) -> set[str]:
    skip = {limit_dest(limit.flag) for limit in LIMITS}
    return {a.dest for a in parser._actions
            if not isinstance(a, (argparse._HelpAction, argparse._SubParsersAction)) and a.dest not in skip}


COMMANDS = list(subcommands(build_parser()))


def test_every_subcommand_has_a_request_type_and_a_handler():
    assert {words[-1] for words, _ in COMMANDS} >= {"signature", "distance", "matrix", "audit", "commit", "verify",
                                                    "search", "demo", "bench", "build", "list"}
    types = [sub._defaults["request"] for _, sub in COMMANDS]
    assert len(set(types)) == len(types), "two commands share a request type"
    assert set(types) == set(HANDLERS), "a request type without a command, or a command without a handler"


@pytest.mark.parametrize("words,sub", COMMANDS, ids=[" ".join(w) for w, _ in COMMANDS])
def test_each_flag_is_a_field_and_each_field_a_flag_or_a_shared_default(words, sub):
    request_type = sub._defaults["request"]
    fields = {f.name: f for f in dataclasses.fields(request_type)}
    dests = destinations(sub)
    assert dests <= set(fields), f"flags without a field in {request_type.__name__}: {sorted(dests - set(fields))}"
    lacking = set(fields) - dests
    assert lacking <= MAY_LACK, f"{request_type.__name__} fields no flag of {' '.join(words)} gives: {sorted(lacking - MAY_LACK)}"
    for name in lacking:  # each has a default, so that the request builds without its flag
        assert fields[name].default is not dataclasses.MISSING or fields[name].default_factory is not dataclasses.MISSING


def test_a_command_line_becomes_its_typed_frozen_request():
    argv = ["audit", "ref.pt", "sus.pt", "--unrelated", "u1.pt", "u2.pt", "--budget", "512", "--max-mask-memory", "8G",
            "--image-size", "32", "32"]
    request = parse_request(argv)
    assert type(request) is AuditRequest and isinstance(request, ComputeFlags)
    assert (request.reference, request.suspect, request.unrelated) == ("ref.pt", "sus.pt", ("u1.pt", "u2.pt"))
    assert request.budget == 512 and request.image_size == (32, 32) and request.argv == tuple(argv)
    assert request.limits == {"--max-mask-memory": "8G"}
    # A flag the audit does not offer keeps the default that means "not offered".
    assert request.allow_nondeterministic is False and request.samples is None
    with pytest.raises(dataclasses.FrozenInstanceError):
        request.budget = 0  # a command returns what it decides (the budget's plan); it never writes it back
    swapped = request.replace(suspect="other.pt")
    assert swapped.suspect == "other.pt" and request.suspect == "sus.pt"


def test_every_command_parses_to_its_own_type():
    assert type(parse_request(["search", "s.pt", "--hub", "hub"])) is SearchRequest
    assert type(parse_request(["verify", "audit.html"])) is VerifyRequest
    built = parse_request(["zoo", "build", "--tiny", "--seed", "3"])
    assert type(built) is ZooBuildRequest and built.seed == 3 and built.tiny


def test_a_destination_without_a_field_is_refused_by_name():
    namespace = build_parser().parse_args(["verify", "audit.html"])
    namespace.bogus_flag = 1
    with pytest.raises(ZestError, match=r"VerifyRequest: .*\['bogus_flag'\]"):
        VerifyRequest.from_namespace(namespace)


def test_only_the_parser_and_the_requests_import_argparse():
    importers = []
    for path in sorted(CLI.glob("*.py")):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            if any(name.split(".")[0] == "argparse" for name in names):
                importers.append(path.name)
    assert sorted(set(importers)) == ["parser.py", "requests.py"]


def test_the_request_base_is_what_every_request_derives_from():
    assert all(issubclass(t, Request) for t in HANDLERS)
