"""The matched null (issue 11): the unrelated models a suspect is judged against, and the audit built on it."""
from __future__ import annotations

import json
import subprocess
import sys
from types import SimpleNamespace

import pytest

from zest_core.zoo import load_zoo
from zest_core.zoo.manifest import INDEPENDENT_RELATIONS
from zest_core.zoo.nulls import family, matched_null


def relatives_by_parent_links(zoo, name):
    """An independent reading of lineage: walk ``parent`` links up to the root, then every descendant of it."""
    root = name
    while zoo.entries[root].parent is not None:
        root = zoo.entries[root].parent
    children = {}
    for entry in zoo.entries.values():
        children.setdefault(entry.parent, []).append(entry.name)
    found, todo = set(), [root]
    while todo:
        current = todo.pop()
        found.add(current)
        todo += children.get(current, [])
    return found


@pytest.fixture(scope="module")
def zoo():
    return load_zoo()


def test_the_null_never_holds_the_suspect_the_reference_or_a_relative(zoo):
    scratch = zoo.independent()
    comparisons = [(p, c) for p, c, _ in zoo.pairs()] + [(p, s) for p in scratch for s in scratch if p != s]
    for reference, suspect in comparisons:
        null = matched_null(zoo, reference, suspect)
        banned = relatives_by_parent_links(zoo, reference) | relatives_by_parent_links(zoo, suspect)
        assert not set(null.models) & banned, (reference, suspect, null.models)
        target = zoo.entries[suspect]
        for name in null.models:
            entry = zoo.entries[name]
            assert entry.relation in INDEPENDENT_RELATIONS  # trained from scratch
            assert (entry.task, entry.arch) == (target.task, target.arch)


def test_every_zoo_relation_has_a_null_big_enough_for_a_verdict(zoo):
    for source, child, relation in zoo.pairs():
        assert len(matched_null(zoo, source, child).models) >= 3, (source, child, relation)


def test_lineage_is_the_same_read_from_sources_or_from_parents(zoo):
    for name in zoo.entries:
        assert family(zoo, name) == relatives_by_parent_links(zoo, name), name


def test_a_transfer_child_is_judged_against_models_of_its_own_task_and_architecture():
    entry = lambda name, arch, relation, task, parent=None, source=None: SimpleNamespace(  # noqa: E731
        name=name, arch=arch, relation=relation, task=task, parent=parent, source=source)
    entries = [
        entry("p", "a", "source", "digits"), entry("p.t", "a", "transfer-10", "low", "p", "p"),
        entry("q", "a", "source", "digits"), entry("q.t", "a", "transfer-10", "low", "q", "q"),
        entry("low-1", "a", "independent", "low"), entry("low-2", "a", "independent", "low"),
        entry("low-b", "b", "independent", "low"), entry("high-1", "a", "independent", "high"),
        entry("u", "a", "independent", "digits"),
    ]
    toy = SimpleNamespace(root="toy", entries={e.name: e for e in entries})
    null = matched_null(toy, "p", "p.t")
    assert null.models == ("low-1", "low-2")  # not q.t (derived), not low-b (other arch), not high-1 or u (other task)
    assert "2 model(s)" in null.reason


def test_zest_audit_json_has_the_documented_keys(tmp_path):
    command = [
        sys.executable, "-m", "zest_core.cli", "audit", "zoo:cnn-s0", "zoo:cnn-s0.prune50", "--json",
        "--refset", "mnist:8", "--samples", "60", "--cache-dir", str(tmp_path),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, env={"TQDM_DISABLE": "1", **__import__("os").environ})
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout)
    assert {"verdict", "p_value", "alpha", "distance", "null", "queries"} <= set(report)
    assert report["verdict"] in ("related", "unrelated", "inconclusive") and report["alpha"] == 0.05
    assert set(report["null"]["models"]) and "cnn-s0" not in report["null"]["models"]
    # Measured: N × L = 8 × 60 perturbed images per model, and the first 16 once more (the determinism check).
    suspect = report["queries"]["per_model"]["suspect"]
    assert suspect["images"] == 8 * 60 + 16 and suspect["calls"] == 2 + 1
    # A pruned copy is far closer than every unrelated model: related, with a p-value below α.
    assert report["verdict"] == "related" and report["p_value"] < 0.05
