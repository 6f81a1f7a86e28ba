"""Query accounting: every signature, ModelDiff comparison and audit records the queries it made.

The reference is always the model's (or the server's) own count of what it was asked, never the
engine's arithmetic: a model that counts its calls and images, and a 127.0.0.1 server that counts
the requests it received. Where a formula is checked too, it is the plain one: N × L images in
ceil(N × L / B) batches, plus the first 16 images once more for the repeat check.
"""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from zest_core import EndpointModel, QueryCount, Signature, SignatureCache, ZestConfig, compute_signature
from zest_core.cli import main
from zest_core.methods.modeldiff import ModelDiff, generate_pairs
from zest_core.pipeline.queries import query_scores
from zest_core.sources.endpoint import Responder, model_responder, sent_queries, serve_responder
from zest_core.sources.models import Classifier
from zest_core.studies import audit, queries_report, signature_queries
from zest_core.studies.accounting import QueryLedger, describe_entry

from conftest import make_cnn

SHAPE = (1, 28, 28)
STEPS = 3  # ModelDiff search steps: small, and enough to tell the passes apart


class Counting(torch.nn.Module):
    """A model that counts its own calls and the images in them (not part of its state_dict)."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model
        self.calls = 0
        self.images = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        self.images += x.shape[0]
        return self.model(x)

    def count(self) -> dict[str, int]:
        return {"calls": self.calls, "images": self.images}


class CountingServer:
    """A responder that counts the POST requests it received and the images in them, and GETs apart."""

    def __init__(self, responder: Responder, *, fail: int = 0) -> None:
        self.responder, self.fail = responder, fail
        self.posts = 0
        self.images = 0
        self.gets = 0

    def __call__(self, method: str, path: str, body: bytes) -> tuple[int, bytes]:
        if method == "GET":
            self.gets += 1
        else:
            self.posts += 1
            self.images += json.loads(body)["shape"][0]
            if self.posts <= self.fail:
                return 503, b'{"error": "overloaded, try again"}'
        return self.responder(method, path, body)


@pytest.fixture
def no_proxy(monkeypatch):
    for name in ("http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)


@pytest.fixture
def config() -> ZestConfig:
    return ZestConfig(num_samples=60, batch_size=50, device="cpu")


def zest_count(num_images: int, num_samples: int, batch_size: int, *, repeat: bool = True) -> dict[str, int]:
    """N × L images in ceil(N × L / B) batches; the repeat check asks the first 16 images once more."""
    total = num_images * num_samples
    first = min(16, batch_size, total)
    return {"calls": math.ceil(total / batch_size) + repeat, "images": total + repeat * first}


# --- QueryCount -------------------------------------------------------------------------------------


def test_query_count_adds_and_round_trips():
    count = QueryCount()
    count.add(7)
    count.add(5, calls=2)
    assert count.to_dict() == {"calls": 3, "images": 12}
    assert (count + QueryCount(1, 1)).to_dict() == {"calls": 4, "images": 13}
    alias = count
    count += QueryCount(2, 8)
    assert alias is count and alias.to_dict() == {"calls": 5, "images": 20}  # in place: a counter handed down
    assert QueryCount.from_dict(count.to_dict()) == count
    assert QueryCount.from_dict(None) is None and QueryCount.from_dict({"calls": -1, "images": 0}) is None


def test_query_scores_counts_every_batch():
    model = Counting(make_cnn(0))
    counter = QueryCount()
    query_scores(model, torch.rand(7, *SHAPE), batch_size=3, device="cpu", counter=counter)
    assert counter.to_dict() == model.count() == {"calls": 3, "images": 7}


# --- signatures -------------------------------------------------------------------------------------


def test_a_signature_records_the_queries_the_model_counted(digits_refset, config):
    model = Counting(make_cnn(0))
    counter = QueryCount()
    signature = compute_signature(model, digits_refset, config, cache=False, counter=counter)
    expected = zest_count(len(digits_refset), config.num_samples, config.batch_size)
    assert model.count() == expected == {"calls": 9, "images": 6 * 60 + 16}
    assert signature.metadata["queries"] == expected and counter.to_dict() == expected
    assert signature.recorded_queries() == QueryCount(**expected)


def test_allowing_nondeterminism_skips_the_repeat_query(digits_refset, config):
    model = Counting(make_cnn(0))
    signature = compute_signature(model, digits_refset, config, cache=False, allow_nondeterministic=True)
    expected = zest_count(len(digits_refset), config.num_samples, config.batch_size, repeat=False)
    assert model.count() == expected == {"calls": 8, "images": 360}
    assert signature.metadata["queries"] == expected


def test_the_count_does_not_depend_on_how_the_images_are_batched(digits_refset, config):
    for batch_size in (7, 360, 1000):
        model = Counting(make_cnn(0))
        signature = compute_signature(model, digits_refset, config.replace(batch_size=batch_size), cache=False)
        assert signature.metadata["queries"] == model.count() == zest_count(6, 60, batch_size)


def test_a_cached_signature_reports_its_recorded_count_and_makes_no_query(digits_refset, config, tmp_path):
    cache = SignatureCache(tmp_path / "cache")
    model = Counting(make_cnn(0))
    first = compute_signature(model, digits_refset, config, cache=cache)
    made = model.count()
    counter = QueryCount()
    again = compute_signature(model, digits_refset, config, cache=cache, counter=counter)
    assert model.count() == made and counter == QueryCount()  # read back: nothing asked
    assert again.metadata["queries"] == first.metadata["queries"] == made
    np.testing.assert_array_equal(again.matrix(), first.matrix())
    entry = signature_queries(again, counter)
    assert entry["cached"] and entry["now"] == {"calls": 0, "images": 0}
    assert (entry["calls"], entry["images"]) == (made["calls"], made["images"])
    assert "cached; none made now" in describe_entry(entry)
    # And a signature file keeps it.
    path = first.save(tmp_path / "sig.npz")
    assert Signature.load(path).recorded_queries() == QueryCount(**made)


def test_a_signature_file_without_counts_reports_them_as_not_recorded(digits_refset, config):
    signature = compute_signature(make_cnn(0), digits_refset, config, cache=False)
    signature.metadata.pop("queries")
    entry = signature_queries(signature, QueryCount())
    assert entry["calls"] is None and entry["cached"]
    report = queries_report({"a": entry}, "detail")
    assert report["total"] is None and report["now"] == {"calls": 0, "images": 0}
    assert "not recorded" in describe_entry(entry)


def test_a_failed_signature_still_counts_the_queries_it_made(digits_refset, config):
    class FailsLater(Counting):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            if self.calls == 3:
                self.calls += 1
                self.images += x.shape[0]
                raise RuntimeError("quota exceeded")
            return super().forward(x)

    model = FailsLater(make_cnn(0))
    counter = QueryCount()
    with pytest.raises(ValueError, match="quota exceeded"):
        compute_signature(model, digits_refset, config, cache=False, counter=counter)
    assert counter.to_dict() == model.count() == {"calls": 4, "images": 50 + 16 + 50 + 50}  # batch 1, its repeat check, 2, 3


# --- ModelDiff --------------------------------------------------------------------------------------


def test_modeldiff_counts_the_search_apart_from_the_suspects_pair_queries(digits_refset, tmp_path):
    source, suspect = Counting(make_cnn(0)), Counting(make_cnn(1))
    n, batch = len(digits_refset), 4
    detector = ModelDiff(source, digits_refset, steps=STEPS, batch_size=batch, device="cpu", cache=tmp_path)
    suspect_count = QueryCount()
    detector.compare(suspect, counter=suspect_count)
    # The suspect only sees the 2n pair images; the source also ran the search.
    assert suspect.count() == suspect_count.to_dict() == {"calls": math.ceil(2 * n / batch), "images": 2 * n}
    assert detector.source_queries.to_dict() == {"calls": math.ceil(2 * n / batch), "images": 2 * n}
    # Search: the seeds, the random start, per step a pass with gradient and one to score, the best set again.
    passes = 3 + 2 * STEPS
    search = {"calls": passes * math.ceil(n / batch), "images": passes * n}
    assert detector.search_queries.to_dict() == search == detector.pairs.metadata["queries"]
    total = detector.search_queries + detector.source_queries
    assert source.count() == total.to_dict()
    # Pairs read back from the cache: no search now, the recorded count kept.
    again = ModelDiff(source, digits_refset, steps=STEPS, batch_size=batch, device="cpu", cache=tmp_path)
    before = source.count()
    assert again.pairs.metadata["queries"] == search and again.search_queries == QueryCount()
    assert source.count() == before


def test_generate_pairs_adds_its_search_to_a_counter(digits_refset):
    source = Counting(make_cnn(0))
    counter = QueryCount()
    pairs = generate_pairs(source, digits_refset, steps=STEPS, batch_size=50, device="cpu", cache=False, counter=counter)
    assert counter.to_dict() == source.count() == pairs.metadata["queries"] == {"calls": 9, "images": 9 * 6}


# --- the HTTP endpoint ------------------------------------------------------------------------------


def test_the_endpoint_counts_the_requests_the_server_received(no_proxy, digits_refset, config):
    local = make_cnn(0)
    server_count = CountingServer(model_responder(local, input_shape=SHAPE, model_id="cnn-0"), fail=1)
    server, url = serve_responder(server_count)
    try:
        endpoint = EndpointModel(url, max_batch=16, retries=2, backoff=0.01, timeout=10.0)
        model = Classifier(endpoint)
        engine = QueryCount()
        signature = compute_signature(model, digits_refset, config, cache=False, counter=engine)
    finally:
        server.shutdown()
    # The engine's batches of 50 went out as requests of at most 16 images, the first one twice (a 503).
    batches = [50] * 7 + [10] + [16]  # 360 perturbed images, then the repeat check's first 16
    requests = sum(math.ceil(b / 16) for b in batches) + 1
    assert engine.to_dict() == signature.metadata["queries"] == {"calls": 9, "images": 376}
    assert endpoint.sent.to_dict() == {"calls": server_count.posts, "images": server_count.images}
    assert server_count.posts == requests and server_count.images == 376 + 16
    assert endpoint.info_requests == server_count.gets == 1
    assert endpoint.requests_sent == server_count.posts + server_count.gets
    assert endpoint.images_sent == server_count.images
    assert sent_queries(model) is endpoint.sent and sent_queries(local) is None


# --- the audit --------------------------------------------------------------------------------------


@pytest.fixture
def counting_models() -> dict[str, Counting]:
    return {name: Counting(make_cnn(seed)) for seed, name in enumerate(["ref", "sus", "u1", "u2", "u3"])}


def run_audit(models, refset, config, method, cache):
    unrelated = {name: models[name] for name in ("u1", "u2", "u3")}
    return audit(models["ref"], models["sus"], unrelated, refset, method=method, config=config, cache=cache,
                 modeldiff_options={"steps": STEPS})


def test_the_audit_reports_each_models_own_count_and_cached_signatures(counting_models, digits_refset, config,
                                                                       tmp_path):
    names = {"reference": "ref", "suspect": "sus", "u1": "u1", "u2": "u2", "u3": "u3"}
    result = run_audit(counting_models, digits_refset, config, "zest-cosine", tmp_path)
    queries = result.to_dict()["queries"]
    assert set(queries["per_model"]) == set(names)
    for name, model in names.items():
        entry = queries["per_model"][name]
        own = counting_models[model].count()
        assert {"calls": entry["calls"], "images": entry["images"]} == own == entry["now"] == zest_count(6, 60, 50)
        assert not entry["cached"]
    assert queries["total"] == queries["now"] == {"calls": 5 * 9, "images": 5 * 376}
    assert "L = 60" in queries["detail"]
    # Again from the cache: the same recorded counts, none made now, marked cached.
    for model in counting_models.values():
        model.calls = model.images = 0
    again = run_audit(counting_models, digits_refset, config, "zest-cosine", tmp_path).queries
    assert all(model.count() == {"calls": 0, "images": 0} for model in counting_models.values())
    assert again["total"] == queries["total"] and again["now"] == {"calls": 0, "images": 0}
    assert all(entry["cached"] for entry in again["per_model"].values())


@pytest.mark.parametrize("method", ["modeldiff", "agreement"])
def test_the_audit_counts_other_methods_per_model(counting_models, digits_refset, config, method):
    result = run_audit(counting_models, digits_refset, config, method, False)
    per_model = result.queries["per_model"]
    for name, model in (("reference", "ref"), ("suspect", "sus"), ("u1", "u1")):
        assert {k: per_model[name][k] for k in ("calls", "images")} == counting_models[model].count()
    n = len(digits_refset)
    suspect_images = 2 * n if method == "modeldiff" else n
    assert per_model["suspect"]["images"] == suspect_images
    if method == "modeldiff":
        parts = per_model["reference"]["parts"]
        assert parts["pairs"]["images"] == 2 * n and parts["pair search"]["images"] == (3 + 2 * STEPS) * n


def test_the_ledger_keeps_parts_apart_and_marks_cached_ones():
    ledger = QueryLedger()
    ledger.counter("zest-l2", "a", "signature").add(10)
    assert ledger.entry("zest-cosine", "a")["images"] == 10  # both Zest metrics share the signatures
    ledger.record("modeldiff", "a", "pair search", QueryCount(9, 90))  # read from the cache: none made now
    ledger.counter("modeldiff", "a", "pairs").add(20)
    entry = ledger.entry("modeldiff", "a")
    assert (entry["calls"], entry["images"]) == (10, 110) and entry["now"] == {"calls": 1, "images": 20}
    assert entry["cached"] and entry["parts"]["pair search"]["cached"] and not entry["parts"]["pairs"]["cached"]
    assert ledger.models("modeldiff") == ["a"] and ledger.models("sac") == []


# --- the command line -------------------------------------------------------------------------------


def test_cli_distance_and_audit_json_carry_the_counts(capsys, tmp_path):
    tiny = ["--refset", "mnist:8", "--samples", "50", "--cache-dir", str(tmp_path / "cache")]
    code = main(["distance", "zoo:cnn-s0", "zoo:cnn-s0.prune50", *tiny, "--json"])
    report = json.loads(capsys.readouterr().out)
    assert code == 0
    expected = zest_count(8, 50, 256)  # the CPU's automatic batch size: all 400 images in 2 batches
    for model in report["models"]:
        entry = model["queries"]
        assert {"calls": entry["calls"], "images": entry["images"]} == entry["now"] == expected
    assert report["queries"]["total"] == {"calls": 2 * expected["calls"], "images": 2 * expected["images"]}
    # The same again: both signatures cached, none made now.
    assert main(["distance", "zoo:cnn-s0", "zoo:cnn-s0.prune50", *tiny, "--json"]) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["queries"]["now"] == {"calls": 0, "images": 0} and again["queries"]["total"] == report["queries"]["total"]
    assert all(model["queries"]["cached"] for model in again["models"])
    # The audit reuses A's and B's cached signatures and computes the null's.
    code = main(["audit", "zoo:cnn-s0", "zoo:cnn-s0.prune50", *tiny, "--json"])
    result = json.loads(capsys.readouterr().out)
    assert code == 0
    per_model = result["queries"]["per_model"]
    assert per_model["reference"]["cached"] and per_model["suspect"]["cached"]
    assert per_model["suspect"]["images"] == expected["images"]
    null = result["null"]["models"]
    assert len(null) >= 3 and all(per_model[name]["now"] == expected for name in null)
    assert result["queries"]["now"] == {"calls": len(null) * expected["calls"], "images": len(null) * expected["images"]}
    # Without --json: a line per model.
    assert main(["audit", "zoo:cnn-s0", "zoo:cnn-s0.prune50", *tiny]) == 0
    text = capsys.readouterr().out
    assert f"suspect: {expected['images']} images in {expected['calls']} calls (cached; none made now)" in text


def test_cli_signature_prints_the_counts(capsys, tmp_path):
    tiny = ["--refset", "mnist:8", "--samples", "50", "--no-cache"]
    assert main(["signature", "zoo:cnn-s0", *tiny, "-o", str(tmp_path / "s.npz"), "--batch-size", "100"]) == 0
    out = capsys.readouterr().out
    assert "queries: 416 images in 5 calls" in out  # 400 in 4 batches, and the first 16 again
    assert Signature.load(tmp_path / "s.npz").metadata["queries"] == {"calls": 5, "images": 416}


def test_cli_distance_reports_what_an_endpoint_was_sent(capsys, no_proxy):
    from zest_core import load_zoo_model

    counting = CountingServer(model_responder(load_zoo_model("cnn-s0"), input_shape=SHAPE, model_id="cnn-s0"))
    server, url = serve_responder(counting)
    try:
        code = main(["distance", url, "zoo:cnn-s0", "--refset", "mnist:8", "--samples", "50", "--no-cache", "--json"])
    finally:
        server.shutdown()
    report = json.loads(capsys.readouterr().out)
    assert code == 0 and report["distance"] == pytest.approx(0.0, abs=1e-5)  # the same model, served
    remote, local = (model["queries"] for model in report["models"])
    assert remote["http"] == {"calls": counting.posts, "images": counting.images}
    # The engine's 3 batches (256, 144, and the first 16 again) went out as requests of at most 64 images.
    assert remote["images"] == counting.images == 416 and counting.posts == 4 + 3 + 1
    assert "http" not in local and local["images"] == 416


def test_the_reuse_report_records_each_methods_queries_per_model(digits_refset, config):
    from zest_core import reuse_benchmark

    names = ("p", "c", "u1", "u2")
    models = {name: Counting(make_cnn(seed)) for seed, name in enumerate(names)}
    result = reuse_benchmark(models, [("p", "c", "copy")], ["u1", "u2"], digits_refset, config=config,
                             methods=("zest-cosine", "agreement"), cache=False)
    queries = json.loads(json.dumps(result.to_dict()["metadata"]["queries"]))
    assert set(queries) == {"zest-cosine", "agreement"}
    n, zest = len(digits_refset), zest_count(len(digits_refset), config.num_samples, config.batch_size)
    assert {name: queries["zest-cosine"][name]["images"] for name in names} == {name: zest["images"] for name in names}
    assert {name: queries["agreement"][name]["images"] for name in names} == {name: n for name in names}
    # Each model's own count is the sum over the methods.
    for name, model in models.items():
        assert model.images == sum(queries[method][name]["images"] for method in queries)
        assert model.calls == sum(queries[method][name]["calls"] for method in queries)
