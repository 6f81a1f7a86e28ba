"""The sequential audit (issue 12, item 6): valid under optional stopping, lazy, and cheaper when it stops early.

The known null: distances of a suspect and of its unrelated models drawn from one log-normal law,
round after round, with the rounds correlated as a growing reference set makes them (each round's log
distance is the running mean of independent per-block draws). Testing every round at α then calls
far more than α of these unrelated suspects related; the alpha-spending rule must not.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from zest_core import ZestConfig, ZestError, compute_signature
from zest_core.explain.sequential import SequentialRule, decide_sequentially
from zest_core.pipeline.signature import join_signatures, restrict_signature
from zest_core.studies.sequential import doubling_blocks, sequential_audit

from conftest import make_cnn
from test_budget import CountingModel


def null_rounds(rng: np.random.Generator, rounds: int, m: int = 5):
    """(distance, null) per round for an unrelated suspect: all m + 1 log distances exchangeable in every round."""
    blocks = rng.normal(size=(rounds, m + 1))
    running = np.cumsum(blocks, axis=0) / np.arange(1, rounds + 1)[:, None]
    return [(float(np.exp(r[0])), list(np.exp(r[1:]))) for r in running]


def test_alpha_spending_keeps_the_false_positive_rate_under_optional_stopping():
    rng = np.random.default_rng(0)
    trials, rounds, alpha = 4000, 5, 0.05
    rule = SequentialRule(rounds=rounds, alpha=alpha, futility=1.0)
    naive = spent = 0
    for _ in range(trials):
        data = null_rounds(rng, rounds)
        spent += decide_sequentially(data, rule).verdict == "related"
        naive += any(decide_sequentially([d], SequentialRule(rounds=1, alpha=alpha)).verdict == "related" for d in data)
    # Monte Carlo: 4000 trials give a standard error of 0.0034 at a rate of 0.05.
    assert spent / trials <= alpha + 0.01
    assert naive / trials > alpha + 0.03  # what looking after every round at α would have done


def test_the_rounds_after_the_stop_are_never_computed():
    asked = []

    def rounds():
        for r in range(5):
            asked.append(r)
            yield (1e-4, [1.0, 1.1, 0.9, 1.05, 0.95]) if r == 1 else (1.0, [1.0, 1.1, 0.9, 1.05, 0.95])

    decision = decide_sequentially(rounds(), SequentialRule(rounds=5, futility=1.0))
    assert decision.verdict == "related" and decision.stopped_round == 2 and asked == [0, 1]
    # Futility: a typical distance after round 1 stops with "not detected" (never "unrelated").
    futile = decide_sequentially(iter([(1.0, [1.0, 1.1, 0.9, 1.05, 0.95])] * 5), SequentialRule(rounds=5))
    assert futile.verdict == "not detected" and futile.stopped_round == 1
    with pytest.raises(ZestError, match="rounds"):
        SequentialRule(rounds=0)


def test_doubling_blocks_by_hand():
    assert [(b.start, b.stop) for b in doubling_blocks(128)] == [(0, 8), (8, 16), (16, 32), (32, 64), (64, 128)]
    assert [(b.start, b.stop) for b in doubling_blocks(20)] == [(0, 8), (8, 16), (16, 20)]
    assert [(b.start, b.stop) for b in doubling_blocks(3)] == [(0, 3)]


def test_joined_parts_are_the_whole_signature(digits_refset):
    model = make_cnn(0)
    whole = compute_signature(model, digits_refset, ZestConfig(num_samples=40, device="cpu"), cache=False)
    joined = join_signatures([restrict_signature(whole, [0, 1, 2, 3]), restrict_signature(whole, [4, 5])])
    np.testing.assert_array_equal(joined.matrix(), whole.matrix())
    np.testing.assert_array_equal(joined.segments, whole.segments)
    other = compute_signature(make_cnn(1), digits_refset, ZestConfig(num_samples=40, device="cpu"), cache=False)
    with pytest.raises(ZestError, match="one model"):
        join_signatures([whole, other])


def test_a_pruned_copy_is_found_in_the_first_round_and_the_suspect_sees_only_its_images(mnist_digits):
    from zest_core import ReferenceSet

    images, labels = mnist_digits
    refset = ReferenceSet.from_arrays(images[:32], labels[:32], provenance="first 32 digits")
    reference = make_cnn(0)
    pruned = make_cnn(0)
    with torch.no_grad():
        for p in pruned.parameters():
            p.mul_((p.abs() > p.abs().flatten().quantile(0.2)).to(p.dtype))
    suspect = CountingModel(pruned)
    unrelated = {f"u{i}": make_cnn(10 + i) for i in range(5)}
    config = ZestConfig(num_samples=40, device="cpu", batch_size=64)
    decision, signatures = sequential_audit(reference, suspect, unrelated, refset, config=config, cache=False)
    assert decision.verdict == "related" and decision.stopped_round == 1 and decision.sizes == [8]
    assert suspect.images == 8 * 40 + 16  # round 1's images, and the determinism check's 16
    assert decision.to_dict()["round_alpha"] == pytest.approx(0.05 / 3)


def test_cli_sequential_audit_reports_rounds_and_the_suspects_queries(tmp_path, capsys):
    import json

    from zest_core.cli import main

    code = main(["audit", "zoo:cnn-s0", "zoo:cnn-s0.prune50", "--sequential", "--refset", "mnist:16", "--samples", "40",
                 "--json", "--cache-dir", str(tmp_path)])
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    rounds = report["rounds"]
    assert rounds["rounds"] == 2 and rounds["sizes"][0] == 8 and rounds["round_alpha"] == pytest.approx(0.025)
    assert report["verdict"] in ("related", "not detected") and report["verdict"] == rounds["verdict"]
    # The fixed audit's keys, plus its rounds.
    assert main(["audit", "zoo:cnn-s0", "zoo:cnn-s0.prune50", "--refset", "mnist:16", "--samples", "40",
                 "--json", "--cache-dir", str(tmp_path)]) == 0
    fixed = json.loads(capsys.readouterr().out)
    assert set(report) == set(fixed) | {"rounds"}
    assert report["p_value"] == rounds["p_values"][-1] and report["detection_threshold"] is not None
    images = rounds["sizes"][-1] * 40 + 16  # the rounds looked at, and the determinism check's 16
    assert report["queries"]["suspect"]["images"] == images
    assert main(["audit", "zoo:cnn-s0", "zoo:cnn-s0.prune50", "--sequential", "--method", "modeldiff"]) == 2
    assert "--sequential: expected --method zest-cosine" in capsys.readouterr().err
