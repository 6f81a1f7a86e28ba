"""The one verdict (issue 17): a clean null, "not detected" with its power, Holm over methods, targets, AKH.

Every check here would fail if the science were wrong: the null refusals name ``--unrelated``; the
rules are run on synthetic known nulls (log-normal distances, where the t prediction test is exact)
and must keep α and have power against a shifted alternative; the detection threshold is the exact
boundary of the test; the targets' offset invariance is a property of log-softmax; AKH is compared
with a loop transcription of QuRD's score.
"""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from zest_core import ReferenceSet, ZestConfig, compute_signature, zest_distance
from zest_core.errors import NullError
from zest_core.explain import decide_related, detection_threshold
from zest_core.explain.sequential import SequentialRule, decide_sequentially
from zest_core.methods.akh import akh_distance, akh_queries, labels_in_classes
from zest_core.pipeline.scores import to_targets
from zest_core.studies import audit, audit_signatures, combine_decisions
from zest_core.zoo import ModelFacts, check_null, load_zoo, resolve_null

from conftest import make_cnn

ALPHA = 0.05


# --------------------------------------------------------------------------------------------------
# The null: refused, never used
# --------------------------------------------------------------------------------------------------


def facts(name, fingerprint, classes=10, shape=(1, 28, 28), arch="small_cnn", task=None):
    return ModelFacts(name, fingerprint, classes, shape, arch, task)


REFERENCE, SUSPECT = facts("P", "p"), facts("S", "s")


def test_the_suspect_or_the_reference_in_its_own_null_is_refused():
    with pytest.raises(NullError, match="--unrelated: .*S, which is the suspect"):
        check_null(REFERENCE, SUSPECT, [facts("U1", "u1"), facts("S", "s")])
    # The same weights under another name (another path, another spec) are the same model.
    with pytest.raises(NullError, match="--unrelated: .*copy.pt, which has the same weights as .*suspect"):
        check_null(REFERENCE, SUSPECT, [facts("U1", "u1"), facts("copy.pt", "s")])
    with pytest.raises(NullError, match="--unrelated: .*reference"):
        check_null(REFERENCE, SUSPECT, [facts("U1", "u1"), facts("owner.pt", "p")])


def test_two_unrelated_models_with_identical_weights_are_refused():
    with pytest.raises(NullError, match="--unrelated: .*U1 and U1-again.pt with identical weights"):
        check_null(REFERENCE, SUSPECT, [facts("U1", "u1"), facts("U2", "u2"), facts("U1-again.pt", "u1")])


@pytest.mark.parametrize("field, value, label", [
    ("num_classes", 5, "class count"), ("input_shape", (3, 32, 32), "input shape"), ("task", "low", "task"),
])
def test_a_model_of_another_task_is_refused(field, value, label):
    suspect = facts("S", "s", task="digits")
    odd = {"name": "odd", "fingerprint": "o", "num_classes": 10, "input_shape": (1, 28, 28), "arch": "small_cnn",
           "task": "digits", field: value}
    with pytest.raises(NullError, match=f"--unrelated: expected models of the suspect's {label}"):
        check_null(REFERENCE, suspect, [facts("U1", "u1", task="digits"), ModelFacts(**odd)])


def test_another_architecture_is_a_warning_naming_both():
    warnings = check_null(REFERENCE, SUSPECT, [facts("U1", "u1"), facts("L", "l", arch="lenet5")])
    assert len(warnings) == 1 and "lenet5" in warnings[0] and "small_cnn" in warnings[0]
    assert check_null(REFERENCE, SUSPECT, [facts("U1", "u1"), facts("U2", "u2")]) == ()


def test_the_zoo_null_is_clean_and_the_cli_refuses_a_contaminated_one(capsys):
    from zest_core.cli import main

    zoo = load_zoo(None)
    null = resolve_null("cnn-s0", "cnn-s0.prune50", zoo=zoo, models={})
    assert "cnn-s0.prune50" not in null.models and "cnn-s0" not in null.models and not null.warnings
    assert all(zoo.entries[n].task == "digits" and zoo.entries[n].arch == "small_cnn" for n in null.models)
    base = ["audit", "zoo:cnn-s0", "zoo:cnn-s0.prune50", "--refset", "mnist:8", "--samples", "64", "--no-cache"]
    cases = {
        "zoo:cnn-s0.prune50": "which is the suspect",  # the suspect in its own null
        "small_cnn:assets/zoo/models/cnn-u2.pt": "identical weights",  # zoo:cnn-u2 again, by another spec
        "zoo:cnn-low-u2": "class count",  # a 5-class model for a 10-class suspect
    }
    for extra, message in cases.items():
        assert main([*base, "--unrelated", "zoo:cnn-u2", extra, "zoo:cnn-u3"]) == 2
        err = capsys.readouterr().err
        assert "--unrelated" in err and message in err


def test_the_engine_audit_checks_the_null_of_any_caller(digits_refset):
    reference, suspect = make_cnn(0), make_cnn(1)
    unrelated = {"u2": make_cnn(2), "again": make_cnn(1)}  # make_cnn(1) is the suspect's weights
    with pytest.raises(NullError, match="--unrelated"):
        audit(reference, suspect, unrelated, digits_refset, config=ZestConfig(num_samples=40, device="cpu"), cache=False)
    config = ZestConfig(num_samples=40, device="cpu", targets="logits")
    sig = {k: compute_signature(make_cnn(k), digits_refset, config, cache=False) for k in range(4)}
    with pytest.raises(NullError, match="--unrelated"):
        audit_signatures(sig[0], sig[1], {"u2": sig[2], "copy": sig[1]})
    result = audit_signatures(sig[0], sig[1], {"u2": sig[2], "u3": sig[3]})
    assert result.decision.verdict == "inconclusive"  # two null models are too few, never a verdict


# --------------------------------------------------------------------------------------------------
# What a test can say: "not detected" and its power
# --------------------------------------------------------------------------------------------------


def test_not_detected_comes_with_the_detection_threshold():
    null = [0.30, 0.34, 0.36, 0.40, 0.33, 0.38]
    threshold = detection_threshold(null, ALPHA)
    assert 0 < threshold < min(null)
    below, above = decide_related(threshold * (1 - 1e-9), null), decide_related(threshold * (1 + 1e-9), null)
    assert below.verdict == "related" and below.p_value < ALPHA
    assert above.verdict == "not detected" and above.p_value >= ALPHA
    assert above.detection_threshold == pytest.approx(threshold)
    assert "not evidence of independence" in above.reason and f"{threshold:.4g}" in above.reason
    assert decide_related(0.5, null).verdict == "not detected"  # never "unrelated"


def _lognormal_trials(rng, trials, m, shift):
    """Synthetic audits whose log distances are normal: the null's m, and a suspect shifted by ``shift`` sds."""
    null = np.exp(rng.normal(0.0, 0.2, size=(trials, m)))
    suspect = np.exp(rng.normal(-shift * 0.2, 0.2, size=trials))
    return suspect, null


def test_the_fixed_test_keeps_alpha_on_a_known_null_and_has_power():
    rng = np.random.default_rng(0)
    trials = 4000
    suspect, null = _lognormal_trials(rng, trials, 10, 0.0)
    fpr = np.mean([decide_related(d, n).verdict == "related" for d, n in zip(suspect, null)])
    # 4,000 trials: the binomial sd at α is 0.0034; 3 sds of margin.
    assert abs(fpr - ALPHA) < 0.011
    suspect, null = _lognormal_trials(rng, 1000, 10, 3.0)
    assert np.mean([decide_related(d, n).verdict == "related" for d, n in zip(suspect, null)]) > 0.6


def test_holm_over_methods_keeps_alpha_whatever_their_dependence_and_has_power():
    rng = np.random.default_rng(1)
    trials, m = 2000, 8

    def combined_rate(shift, correlated):
        hits = 0
        for _ in range(trials):
            base = rng.normal(size=m + 1)
            decisions = {}
            for k in range(3):
                # Perfectly dependent methods (the same draw) or independent ones: Holm keeps α for both.
                draw = base if correlated else rng.normal(size=m + 1)
                logs = 0.2 * draw
                logs[0] -= shift * 0.2
                decisions[f"m{k}"] = decide_related(float(np.exp(logs[0])), np.exp(logs[1:]).tolist())
            hits += combine_decisions(decisions, ALPHA)[0].verdict == "related"
        return hits / trials

    for correlated in (True, False):
        assert combined_rate(0.0, correlated) <= ALPHA + 0.015  # sd 0.005 at α; Holm is at most α
    assert combined_rate(3.5, False) > 0.6


def test_holm_adjusted_p_values_and_inconclusive_methods():
    decisions = {"a": _with_p(0.01), "b": _with_p(0.04), "c": _with_p(0.30), "d": _inconclusive()}
    combined, info = combine_decisions(decisions, ALPHA)
    assert info["tested"] == 3 and info["adjusted"]["d"] is None
    assert info["adjusted"]["a"] == pytest.approx(0.03)
    assert info["adjusted"]["b"] == pytest.approx(0.08)  # max(0.03, 2 × 0.04)
    assert info["adjusted"]["c"] == pytest.approx(0.30)
    assert combined.verdict == "related" and combined.p_value == pytest.approx(0.03)
    nothing, _ = combine_decisions({"d": _inconclusive()}, ALPHA)
    assert nothing.verdict == "inconclusive"


def _with_p(p):
    """A decision with the p-value ``p`` (the combination reads only the p-values)."""
    from dataclasses import replace

    return replace(decide_related(1.0, [1.0, 1.1, 0.9, 1.05]), p_value=p, verdict="related" if p < ALPHA else "not detected")


def _inconclusive():
    return decide_related(1.0, [1.0, 1.1])


def test_the_sequential_rule_keeps_alpha_and_says_not_detected():
    rng = np.random.default_rng(2)
    rule = SequentialRule(rounds=4)
    verdicts = []
    for _ in range(1500):
        rounds = [(float(np.exp(rng.normal(0, 0.2))), np.exp(rng.normal(0, 0.2, 10)).tolist()) for _ in range(4)]
        verdicts.append(decide_sequentially(iter(rounds), rule).verdict)
    assert np.mean([v == "related" for v in verdicts]) <= ALPHA + 0.017
    assert set(verdicts) <= {"related", "not detected"}
    # Power: a suspect 3.5 null sds closer is called related in most audits, despite α / 4 per round.
    shifted = []
    for _ in range(500):
        rounds = [(float(np.exp(rng.normal(-0.7, 0.2))), np.exp(rng.normal(0, 0.2, 10)).tolist()) for _ in range(4)]
        shifted.append(decide_sequentially(iter(rounds), rule).verdict)
    assert np.mean([v == "related" for v in shifted]) > 0.6


# --------------------------------------------------------------------------------------------------
# Targets
# --------------------------------------------------------------------------------------------------


class Offset(torch.nn.Module):
    """A model's logits plus a per-input offset shared by every class (softmax cannot see it)."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x):
        logits = self.model(x)
        return logits + 50.0 * x.flatten(1).mean(dim=1, keepdim=True).sin()


class Probabilities(torch.nn.Module):
    """The same network as an endpoint that returns class probabilities, and says so."""

    outputs = "probabilities"

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x):
        return torch.softmax(self.model(x).double(), dim=1)


def test_a_per_input_offset_leaves_the_log_probability_signature_and_moves_the_logit_one(digits_refset):
    base = make_cnn(0).double()  # float64 end to end: the invariance is exact, not float32-close
    for targets, same in (("log_probabilities", True), ("centered_logits", True), ("probabilities", True),
                          ("logits", False)):
        config = ZestConfig(num_samples=40, device="cpu", dtype="float64", targets=targets)
        a = compute_signature(base, digits_refset, config, cache=False)
        b = compute_signature(Offset(base), digits_refset, config, cache=False)
        distance = zest_distance(a, b)
        assert (distance < 1e-9) if same else (distance > 1e-3), (targets, distance)


def test_models_that_return_probabilities_get_the_targets_of_their_logits(digits_refset):
    base = make_cnn(3)
    scores = base(torch.from_numpy(digits_refset.images[:4, None] / 255.0).float()).double()
    probabilities = torch.softmax(scores, dim=1)
    for targets in ("centered_logits", "probabilities", "log_probabilities"):
        torch.testing.assert_close(to_targets(probabilities, targets, "probabilities"), to_targets(scores, targets))
    config = ZestConfig(num_samples=40, device="cpu", dtype="float64", targets="log_probabilities")
    base = base.double()
    a = compute_signature(base, digits_refset, config, cache=False)
    b = compute_signature(Probabilities(base), digits_refset, config, cache=False)
    assert zest_distance(a, b) < 1e-9


# --------------------------------------------------------------------------------------------------
# AKH
# --------------------------------------------------------------------------------------------------


def test_akh_against_a_loop_transcription_of_its_score():
    rng = np.random.default_rng(4)
    reference = rng.integers(0, 10, size=200)
    suspect = np.where(rng.random(200) < 0.7, reference, rng.integers(0, 10, size=200))
    # QuRD's hamming: (target_repr != source_repr).mean()
    expected = sum(1 for a, b in zip(reference, suspect) if a != b) / len(reference)
    assert akh_distance(reference, suspect) == pytest.approx(expected)
    mapping = rng.permutation(10)
    mapping[3] = -1  # the suspect has no class for the reference's 3
    looped = sum(1 for a, b in zip(reference, suspect) if mapping[a] < 0 or mapping[a] != b) / len(reference)
    assert akh_distance(reference, suspect, mapping) == pytest.approx(looped)


def test_akh_queries_are_the_reference_models_mistakes(digits_refset):
    images = np.zeros((6, 16, 16), dtype=np.uint8)
    images[:, 0, 0] = np.arange(6) * 40
    refset = ReferenceSet.from_arrays(images, labels=[0, 1, 2, 0, 1, 2], provenance="six")
    scores = np.eye(3)[[0, 2, 2, 1, 1, 0]]  # wrong on images 1, 3 and 5
    labels = labels_in_classes(refset, ["0", "1", "2"])
    queries = akh_queries(scores, refset, labels, 3)
    assert queries.misclassified == 3
    np.testing.assert_allclose(queries.images[:, 0, 0, 0].numpy() * 255, [40, 120, 200], atol=1e-4)
    grown = akh_queries(scores, refset, labels, 12)
    assert grown.images.shape[0] == 12 and grown.misclassified == 3
    # A 2-class model of classes "1" and "2": the 0s are none of its classes, never its mistakes.
    assert labels_in_classes(refset, ["1", "2"]).tolist() == [-1, 0, 1, -1, 0, 1]


def test_audit_all_combines_every_method_on_the_zoo(capsys, tmp_path):
    from zest_core.cli import main

    code = main(["audit", "zoo:cnn-s0", "zoo:cnn-s0.prune50", "--method", "all", "--budget", "1200", "--json",
                 "--refset", "mnist:64", "--cache-dir", str(tmp_path)])
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert set(report["methods"]) == {"zest-cosine", "modeldiff", "sac", "akh"}
    tested = {m: d["p_value"] for m, d in report["methods"].items() if d["p_value"] is not None}
    assert report["p_value"] == pytest.approx(min(1.0, len(tested) * min(tested.values())))
    assert report["combination"]["rule"] == "holm" and report["budget_split"]["per_method"] == 300
    # ModelDiff's share buys 150 seeds; the 64 reference images are all it has.
    assert report["budget_split"]["modeldiff"]["queries"] == 2 * 64 and report["budget_split"]["akh"]["queries"] == 300
    assert report["verdict"] == "related"  # a pruned copy
