"""Auditing a hub (issue 13) without Ray: blockwise distances, the signature stack, the local backend, search.

The blockwise distances are checked against the pairwise engine (``zest_distance``: class_cost_matrix,
match_classes and vector_distance) and against a plain numpy cosine, in float64 to 1e-12, with
blocks that do not divide M, mixed class counts and the streamed file. Known answers: a
class-permuted copy and a class subset of a model are at distance 0 once aligned.
"""
from __future__ import annotations

import json
import pickle
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from zest_core.errors import NullError
import torch

from conftest import make_cnn
from zest_core import Signature, ZestConfig, ZestError, compute_signature, load_mnist
from zest_core.cli import main
from zest_core.hub import (
    Hub,
    SignatureStack,
    compute_signatures,
    hub_distance_matrix,
    load_hub,
    pair_distances,
    search_hub,
)
from zest_core.hub.backend import Outcome
from zest_core.pipeline.probe import adopt_probe
from zest_core.pipeline import probe as probe_module
from zest_core.pipeline.alignment import batched_matching, match_classes
from zest_core.pipeline.distance import signature_distance_matrix, zest_distance
from zest_core.studies.audit import audit_zoo_models
from zest_core.zoo import load_zoo
from zest_core.zoo.manifest import ZOO_DIR

pytestmark = pytest.mark.timeout(300)
COLUMNS = (0, 4, 9, 15, 22)  # four reference images of 4, 5, 6 and 7 super-pixels


def synthetic_signatures(seed: int = 0) -> tuple[list[str], list[Signature]]:
    """13 signatures: random 10-, 5- and 3-class ones, a class-permuted copy and a 5-class subset of model 0."""
    rng = np.random.default_rng(seed)
    counts = [10, 10, 5, 10, 3, 5, 10, 10, 5, 10, 3]
    matrices = [rng.normal(size=(c, COLUMNS[-1])) for c in counts]
    matrices.append(matrices[0][rng.permutation(10)])  # the same model, classes in another order
    matrices.append(matrices[0][[7, 2, 9, 0, 4]] * 3.0)  # five of its classes, scaled: cosine ignores scale
    config = ZestConfig(num_samples=50)
    segments = np.zeros((len(COLUMNS) - 1, 4, 4), dtype=np.int32)
    signatures = [
        Signature([m[:, COLUMNS[i]:COLUMNS[i + 1]] for i in range(len(COLUMNS) - 1)], None, segments, config,
                  f"fingerprint-{k}", "refset")
        for k, m in enumerate(matrices)
    ]
    return [f"model-{k}" for k in range(len(signatures))], signatures


def plain_cosine(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.ravel(), b.ravel()
    return 1.0 - float(a @ b) / (np.sqrt(a @ a) * np.sqrt(b @ b))


@pytest.mark.parametrize("align", ["auto", "greedy", "hungarian"])
@pytest.mark.parametrize("block_size", [1, 4, 100])
def test_blockwise_distances_equal_the_pairwise_engine(align, block_size):
    names, signatures = synthetic_signatures()
    expected = signature_distance_matrix(signatures, align=align)
    got = hub_distance_matrix(SignatureStack.from_signatures(names, signatures), align=align, block_size=block_size)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(got, got.T)
    np.testing.assert_array_equal(np.diag(got), 0.0)


def test_equal_class_counts_take_one_product_and_equal_a_plain_cosine():
    names, signatures = synthetic_signatures()
    ten = [k for k, s in enumerate(signatures) if s.num_classes == 10 and k != 11]
    stack = SignatureStack.from_signatures([names[k] for k in ten], [signatures[k] for k in ten])
    got = hub_distance_matrix(stack, align="auto", block_size=3)
    for i, a in enumerate(ten):
        for j, b in enumerate(ten):
            want = 0.0 if i == j else plain_cosine(signatures[a].matrix(), signatures[b].matrix())
            assert got[i, j] == pytest.approx(want, abs=1e-12)


def test_aligned_copies_are_at_distance_zero():
    names, signatures = synthetic_signatures()
    stack = SignatureStack.from_signatures(names, signatures)
    got = hub_distance_matrix(stack, align="greedy", block_size=5)
    assert got[0, 11] == pytest.approx(0.0, abs=1e-12)  # class-permuted copy
    assert got[0, 12] == pytest.approx(0.0, abs=1e-12)  # 5 of its 10 classes, scaled
    assert hub_distance_matrix(stack, align="auto")[0, 11] > 0.5  # unaligned, the permuted copy is far


def test_the_streamed_file_and_a_file_backed_stack_give_the_same_matrix(tmp_path):
    names, signatures = synthetic_signatures()
    in_memory = hub_distance_matrix(SignatureStack.from_signatures(names, signatures), block_size=4)
    with SignatureStack.from_signatures(names, signatures, path=tmp_path / "stack.f64"):
        pass
    reopened = SignatureStack.open(tmp_path / "stack.f64")
    assert reopened.names == names and reopened.num_classes.tolist() == [s.num_classes for s in signatures]
    streamed = hub_distance_matrix(reopened, block_size=4, out=tmp_path / "d.npy")
    assert isinstance(streamed, np.memmap)
    np.testing.assert_array_equal(np.load(tmp_path / "d.npy"), in_memory)
    np.testing.assert_array_equal(streamed, in_memory)


def test_an_order_and_pair_distances_pick_models_out_of_the_stack():
    names, signatures = synthetic_signatures()
    stack = SignatureStack.from_signatures(names, signatures)
    full = signature_distance_matrix(signatures, align="greedy")
    order = [12, 3, 0, 7]
    np.testing.assert_allclose(hub_distance_matrix(stack, align="greedy", order=order, block_size=3),
                               full[np.ix_(order, order)], atol=1e-12)
    rows, cols = [3, 0], [5, 1, 12, 4]
    want = [[zest_distance(signatures[r], signatures[c], align="greedy") for c in cols] for r in rows]
    np.testing.assert_allclose(pair_distances(stack, rows, cols, align="greedy", block_size=2), want, atol=1e-12)


def greedy_transcribed(cost: np.ndarray) -> np.ndarray:
    """The Zest authors' greedy matching, one matrix at a time: take the global minimum, strike its row and column."""
    remaining = cost.astype(float).copy()
    pairs = []
    for _ in range(min(cost.shape)):
        row, col = np.unravel_index(np.argmin(remaining), remaining.shape)
        pairs.append((row, col))
        remaining[row, :] = np.inf
        remaining[:, col] = np.inf
    pairs = np.array(pairs, dtype=np.int64)
    return pairs[np.argsort(pairs[:, 0])]


def test_the_vectorised_greedy_matching_is_the_authors_greedy_matching():
    rng = np.random.default_rng(3)
    for shape in [(10, 5), (5, 10), (4, 4), (3, 7)]:
        # Small integers make many ties: they must be broken as np.argmin breaks them (first in row-major order).
        costs = rng.integers(0, 4, size=(50, *shape)).astype(float)
        rows, cols = batched_matching(costs, "greedy")
        for cost, r, c in zip(costs, rows, cols):
            pairs = np.stack([r, c], axis=1)
            np.testing.assert_array_equal(pairs[np.argsort(r)], greedy_transcribed(cost))
            np.testing.assert_array_equal(match_classes(cost, "greedy"), greedy_transcribed(cost))


def test_an_all_zero_signature_is_named():
    names, signatures = synthetic_signatures()
    stack = SignatureStack.from_signatures(names[:3], signatures[:3])
    stack.append("constant", np.zeros((10, COLUMNS[-1])))
    with pytest.raises(ZestError, match="constant: expected a nonzero signature"):
        hub_distance_matrix(stack)


def test_the_stack_checks_what_it_is_given(tmp_path):
    stack = SignatureStack(COLUMNS, refset_fingerprint="r", config=ZestConfig(), path=tmp_path / "s.f64")
    stack.append("a", np.ones((10, COLUMNS[-1])))
    with pytest.raises(ZestError, match=r"b: expected a signature matrix of shape \(C, 22\), got \(10, 21\)"):
        stack.append("b", np.ones((10, 21)))
    with pytest.raises(ZestError, match="a: expected a model name new to the stack"):
        stack.append("a", np.ones((3, COLUMNS[-1])))
    with pytest.raises(ZestError, match="c: expected a finite signature matrix"):
        stack.append("c", np.full((3, COLUMNS[-1]), np.nan))
    stack.close()
    stack.append("d", np.full((5, COLUMNS[-1]), 2.0))  # a closed stack is appended to and closed again
    stack.close()
    again = SignatureStack.open(tmp_path / "s.f64")
    assert again.names == ["a", "d"] and again.num_classes.tolist() == [10, 5]
    np.testing.assert_array_equal(again.matrix(1), np.full((5, COLUMNS[-1]), 2.0))
    (tmp_path / "s.f64").write_bytes(b"short")
    with pytest.raises(ZestError, match="expected .* bytes of signature rows"):
        SignatureStack.open(tmp_path / "s.f64")


# --- the local backend ------------------------------------------------------------------------------


class Counting(torch.nn.Module):
    """A network that counts its forward calls (the count is not in its state_dict, so not in its fingerprint)."""

    def __init__(self, inner: torch.nn.Module) -> None:
        super().__init__()
        self.inner, self.calls = inner, 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return self.inner(x)


class Raising(Counting):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        raise RuntimeError("boom")


class FailsOnce(Counting):
    """Raises on its first call only: a transient fault."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        if self.calls == 1:
            raise RuntimeError("transient")
        return self.inner(x)


def test_failures_are_retried_or_reported_by_name_and_never_stop_the_run(digits_refset, small_config):
    good, raising, flaky = Counting(make_cnn(0)), Raising(make_cnn(1)), FailsOnce(make_cnn(2))
    models = {"good": good, "raises": raising, "missing": "missing.pt", "flaky": flaky}
    run = compute_signatures(models, digits_refset, small_config, cache=False, retries=2)
    assert sorted(run.stack.names) == ["flaky", "good"]
    failures = {f.name: f for f in run.failures}
    assert set(failures) == {"raises", "missing"}
    assert failures["raises"].attempts == 3 and "ModelRuntimeError" in failures["raises"].error
    assert raising.calls == 3  # each attempt failed on its first batch
    assert failures["missing"].attempts == 1 and "ModelLoadError" in failures["missing"].error  # not transient
    direct = compute_signature(make_cnn(2), digits_refset, small_config, cache=False)
    np.testing.assert_array_equal(run.signature("flaky").matrix(), direct.matrix())


def test_an_interrupted_run_resumes_from_the_cache(digits_refset, small_config, tmp_path):
    models = {f"m{k}": Counting(make_cnn(10 + k)) for k in range(3)}

    def stop_after_two(done: int, total: int, stage: str) -> None:
        if done == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        compute_signatures(models, digits_refset, small_config, cache=tmp_path, progress=stop_after_two)
    calls = {name: model.calls for name, model in models.items()}
    assert calls["m0"] > 0 and calls["m1"] > 0 and calls["m2"] == 0
    second = compute_signatures(models, digits_refset, small_config, cache=tmp_path)
    assert second.cached == ["m0", "m1"] and second.computed == ["m2"]
    assert [models[n].calls for n in ("m0", "m1")] == [calls["m0"], calls["m1"]]  # not queried again
    calls = {name: model.calls for name, model in models.items()}
    third = compute_signatures(models, digits_refset, small_config, cache=tmp_path)
    assert third.computed == [] and sorted(third.cached) == ["m0", "m1", "m2"]
    assert {name: model.calls for name, model in models.items()} == calls  # nothing computed twice


def test_a_probe_from_elsewhere_is_used_as_it_is(digits_refset, small_config, monkeypatch):
    """What a Ray worker does with the probe from the object store: no segmentation of its own."""
    probe_module._PROBES.clear()
    probe = probe_module.prepare_probe(digits_refset, small_config, torch.device("cpu"))
    shipped = pickle.loads(pickle.dumps(probe))
    expected = compute_signature(make_cnn(5), digits_refset, small_config, cache=False).matrix()
    probe_module._PROBES.clear()
    adopt_probe(shipped, small_config, torch.device("cpu"))

    def no_segmentation(*args, **kwargs):
        raise AssertionError("the probe should have been reused")

    monkeypatch.setattr(probe_module, "segment_reference_set", no_segmentation)
    got = compute_signature(make_cnn(5), digits_refset, small_config, cache=False).matrix()
    np.testing.assert_array_equal(got, expected)
    probe_module._PROBES.clear()


def test_bad_arguments_are_refused_before_any_model_runs(digits_refset, small_config):
    model = Counting(make_cnn(0))
    with pytest.raises(ZestError, match="backend: expected one of 'local', 'ray'"):
        compute_signatures({"a": model}, digits_refset, small_config, backend="spark")
    with pytest.raises(ZestError, match="retries: expected an integer ≥ 0"):
        compute_signatures({"a": model}, digits_refset, small_config, retries=-1)
    with pytest.raises(ZestError, match="num_samples"):
        compute_signatures({"a": model}, digits_refset, small_config.replace(num_samples=3))
    assert model.calls == 0


def test_zest_core_and_the_local_backend_need_no_ray():
    script = textwrap.dedent("""
        import importlib.abc, sys
        class NoRay(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path, target=None):
                if name == "ray" or name.startswith("ray."):
                    raise ImportError("ray is blocked in this test")
        sys.meta_path.insert(0, NoRay())
        import zest_core, zest_core.hub, zest_core.cli
        from zest_core.cli.parser import build_parser
        build_parser()
        from zest_core.hub import compute_signatures
        run = compute_signatures({"a": lambda x: x.flatten(1)[:, :3]}, zest_core.load_mnist(2),
                                 zest_core.ZestConfig(num_samples=40), cache=False)
        assert len(run.stack) == 1 and "ray" not in sys.modules
        try:
            compute_signatures({"a": lambda x: x}, zest_core.load_mnist(2), backend="ray", cache=False)
        except zest_core.ZestError as error:
            print("refused:", error)
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "refused: backend: expected Ray to be installed" in done.stdout and "zest-explorer[ray]" in done.stdout


# --- hubs and search ----------------------------------------------------------------------------------


def test_a_zoo_hub_lists_its_models_and_distinct_checkpoints():
    manifest = json.loads((ZOO_DIR / "zoo.json").read_text())
    names = [m["name"] for m in manifest["models"]]
    checkpoints = [f"{m['name']}@epoch{k}" for m in manifest["models"]
                   for k, c in m["checkpoints"].items() if c["sha256"] != m["sha256"]]
    hub = load_hub(ZOO_DIR)
    assert sorted(m.name for m in hub.models) == sorted(names + checkpoints)
    assert len(hub) == len(names) + len(checkpoints) and checkpoints
    assert len(load_hub(ZOO_DIR, checkpoints=False)) == len(names)
    assert hub.find("zoo:cnn-s0").name == "cnn-s0" and hub.entry_name("cnn-s0@epoch2") == "cnn-s0"
    assert hub.find("cnn-s0@epoch2").load().fingerprint == manifest["models"][0]["checkpoints"]["2"]["sha256"]


def test_folder_and_list_hubs_and_their_errors(tmp_path):
    (tmp_path / "models").mkdir()
    for name in ("b.onnx", "a.pt", "notes.txt"):
        (tmp_path / "models" / name).write_text("x")
    assert [m.name for m in load_hub(tmp_path / "models").models] == ["a.pt", "b.onnx"]
    listing = tmp_path / "hub.txt"
    listing.write_text("# my hub\nzoo:cnn-s0\n\nsmall_cnn:w.pt\n")
    assert [m.spec for m in load_hub(listing).models] == ["zoo:cnn-s0", "small_cnn:w.pt"]
    listing.write_text("zoo:cnn-s0\nzoo:cnn-s0\n")
    with pytest.raises(ZestError, match="hub: expected every model once, got zoo:cnn-s0"):
        load_hub(listing)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ZestError, match="hub: expected at least one model"):
        load_hub(tmp_path / "empty")
    with pytest.raises(ZestError, match="hub: expected a zoo folder"):
        load_hub(tmp_path / "nowhere")


SEARCH_CONFIG = ZestConfig(num_samples=40)
# The source, three of its children, another source and the eleven models the matched null of a
# small_cnn digits suspect holds besides it.
SEARCH_HUB = ["cnn-s0", "cnn-s0.prune50", "cnn-s0.quantize", "cnn-s0.transfer50-low", "cnn-s1",
              *[f"cnn-u{k}" for k in range(2, 13)], "lenet-s0"]


@pytest.fixture(scope="module")
def zoo_subhub():
    full = load_hub(ZOO_DIR)
    return Hub([full.find(name) for name in SEARCH_HUB], "part of the zoo", full.zoo)


def test_search_ranks_the_hub_and_its_verdicts_are_the_audits(zoo_subhub):
    refset = load_mnist(8)
    result = search_hub("zoo:cnn-s0.prune50", zoo_subhub, refset, SEARCH_CONFIG, top=3)
    assert result.suspect == "cnn-s0.prune50" and len(result.ranking) == len(SEARCH_HUB) - 1
    assert [d for _, d in result.ranking] == sorted(d for _, d in result.ranking)
    top = result.candidates[0]
    assert top.name in {"cnn-s0", "cnn-s0.quantize"}  # the source or its int8 copy: d < 0.02 for both
    zoo = load_zoo()
    audited, null = audit_zoo_models(zoo, top.name, "cnn-s0.prune50", refset, config=SEARCH_CONFIG, align="greedy")
    assert top.decision.verdict == audited.decision.verdict == "related"
    assert top.distance == pytest.approx(audited.decision.distance, abs=1e-12)
    assert top.decision.p_value == pytest.approx(audited.decision.p_value, rel=1e-9)
    assert set(top.null_models) == set(null.models)
    assert dict(result.ranking)["cnn-s0.transfer50-low"] > dict(result.ranking)["cnn-s0"]


def test_without_a_manifest_the_verdict_is_inconclusive_unless_unrelated_models_are_named(zoo_subhub):
    refset = load_mnist(8)
    listed = load_hub([f"zoo:{name}" for name in SEARCH_HUB[:4]])
    result = search_hub("zoo:cnn-s0.prune50", listed, refset, SEARCH_CONFIG, top=2)
    assert all(c.decision.verdict == "inconclusive" for c in result.candidates)
    assert "no matched null: the hub has no manifest" in result.candidates[0].null_reason
    unrelated = {f"zoo:cnn-u{k}": f"zoo:cnn-u{k}" for k in range(2, 7)}
    named = search_hub("zoo:cnn-s0.prune50", listed, refset, SEARCH_CONFIG, top=1, unrelated=unrelated)
    assert named.candidates[0].null_models == tuple(unrelated) and named.candidates[0].decision.verdict == "related"
    assert [name for name, _ in named.ranking] == [name for name, _ in result.ranking]  # the null is not ranked
    # The suspect among its own null (another spec of the same weights) is refused, naming --unrelated.
    poisoned = {**unrelated, "again": "small_cnn:" + str(ZOO_DIR / "models" / "cnn-s0.prune50.pt")}
    with pytest.raises(NullError, match="--unrelated: .*same weights"):
        search_hub("zoo:cnn-s0.prune50", listed, refset, SEARCH_CONFIG, top=1, unrelated=poisoned)
    # A hub model that is itself among the unrelated models gets no verdict, never a smaller null.
    mixed = search_hub("zoo:cnn-s0.prune50", listed, refset, SEARCH_CONFIG, top=3,
                       unrelated={**unrelated, "zoo:cnn-s0": "zoo:cnn-s0"})
    source = next(c for c in mixed.candidates if c.name == "zoo:cnn-s0")
    assert source.decision.verdict == "inconclusive" and "refused" in source.null_reason


# --- the command line ----------------------------------------------------------------------------------

TINY = ["--refset", "mnist:8", "--samples", "40"]


def test_zest_matrix_streams_npy_equal_to_its_csv_and_reports_failed_models(capsys, tmp_path):
    specs = ["zoo:cnn-s0", "zoo:cnn-s0.prune50", "zoo:cnn-s0.transfer50-low"]
    assert main(["matrix", *specs, *TINY, "-o", str(tmp_path / "m.csv"), "--block-size", "2"]) == 0
    rows = [line.split(",") for line in (tmp_path / "m.csv").read_text().splitlines()]
    from_csv = np.array([[float(v) for v in row[1:]] for row in rows[1:]])
    out = tmp_path / "out"
    out.mkdir()
    code = main(["matrix", *specs, "missing.pt", *TINY, "--format", "npy", "-o", str(out / "m.npy")])
    err = capsys.readouterr().err
    assert code == 1 and "missing.pt: ModelLoadError" in err
    np.testing.assert_allclose(np.load(out / "m.npy"), from_csv, atol=1e-9)  # csv keeps 10 digits
    assert (out / "m.names.txt").read_text().split() == specs
    assert sorted(p.name for p in out.iterdir()) == ["m.names.txt", "m.npy"]  # the signatures' scratch file is gone


def test_zest_search_prints_the_ranking_and_writes_it(capsys, tmp_path):
    listing = tmp_path / "hub.txt"
    listing.write_text("\n".join(f"zoo:{name}" for name in SEARCH_HUB[:4]) + "\n")
    code = main(["search", "zoo:cnn-s0.prune50", "--hub", str(listing), *TINY, "--top", "2", "--json",
                 "--unrelated", *[f"zoo:cnn-u{k}" for k in range(2, 7)], "-o", str(tmp_path / "rank.csv")])
    out = capsys.readouterr().out
    assert code == 0
    report = json.loads(out)
    assert report["suspect"] == "zoo:cnn-s0.prune50" and len(report["candidates"]) == 2
    assert report["candidates"][0]["verdict"] == "related" and len(report["ranking"]) == 3
    assert (tmp_path / "rank.csv").read_text().splitlines()[0] == "rank,model,distance"
    assert main(["search", "x", "--hub", str(tmp_path / "nowhere"), *TINY]) == 2
    assert "hub: expected a zoo folder" in capsys.readouterr().err


# --- the Ray backend's plumbing, with a stand-in for Ray (the real one: tests/test_ray_backend.py) ---------


class FakeRay:
    """Records what the backend asks of Ray; its tasks all fail at once, so no model is run."""

    class exceptions:  # noqa: N801 - as ray.exceptions
        RayError = RuntimeError

    def __init__(self, resources: dict, *, cluster: bool = False, initialized: bool = False) -> None:
        self.resources, self.cluster, self.initialized = resources, cluster, initialized
        self.calls: list = []
        self.options: dict = {}

    def is_initialized(self) -> bool:
        return self.initialized

    def init(self, **options) -> None:
        self.calls.append(("init", options))
        if options.get("address") == "auto" and not self.cluster:
            raise ConnectionError("no cluster")
        self.initialized = True

    def shutdown(self) -> None:
        self.calls.append(("shutdown",))
        self.initialized = False

    def cluster_resources(self) -> dict:
        return self.resources

    def put(self, value):
        return value

    def remote(self, function):
        fake = self

        class Remote:
            def options(self, **options):
                fake.options = options
                return self

            def remote(self, name, *args):
                return Ref([Outcome(name, error="ZestError: not run", retryable=False)])

        return Remote()

    def wait(self, refs, num_returns=1):
        return refs[:num_returns], refs[num_returns:]

    def get(self, ref):
        return ref[0]


class Ref(list):
    __hash__ = object.__hash__


@pytest.fixture
def fake_ray(monkeypatch):
    from zest_core.hub import ray_backend

    def install(**kwargs) -> FakeRay:
        fake = FakeRay(**kwargs)
        monkeypatch.setattr(ray_backend, "import_ray", lambda: fake)
        return fake

    return install


@pytest.mark.parametrize("device, resources, gpus, slots", [
    ("cuda", {"CPU": 16, "GPU": 2}, 0.25, 8),  # 2 GPUs / 0.25 per task
    ("auto", {"CPU": 16, "GPU": 2}, 0.25, 8),  # auto on a cluster with GPUs: the models run on CUDA
    ("auto", {"CPU": 6}, 0, 3),  # no GPU: 6 CPUs / 2 threads per task
])
def test_ray_tasks_declare_their_cpus_and_gpus(fake_ray, digits_refset, small_config, device, resources, gpus, slots):
    fake = fake_ray(resources=resources, initialized=True)
    run = compute_signatures({"a": "x.pt", "b": "y.pt"}, digits_refset, small_config.replace(device=device),
                             backend="ray", threads=2, gpus_per_task=0.25, retries=3)
    assert fake.options == {"num_cpus": 2, "num_gpus": gpus, "max_retries": 3, "retry_exceptions": False}
    assert run.slots == slots and sorted(f.name for f in run.failures) == ["a", "b"]
    assert fake.calls == []  # a session the caller started is used as it is, and left running


def test_ray_joins_a_cluster_or_starts_one_on_loopback(fake_ray, monkeypatch):
    from zest_core.hub import ray_backend
    from zest_core.hub.ray_backend import ray_session

    monkeypatch.setattr(ray_backend, "check_reachable", lambda address, timeout: None)  # no cluster "head" here

    fake = fake_ray(resources={})
    with ray_session("auto", workers=3):
        pass
    (_, joined), (_, started), shutdown = fake.calls
    assert joined["address"] == "auto"
    assert started["num_cpus"] == 3 and started["include_dashboard"] is False
    assert started["_node_ip_address"] == "127.0.0.1" and shutdown == ("shutdown",)
    fake = fake_ray(resources={}, cluster=True)
    with ray_session("auto", workers=3):
        pass
    assert [c[0] for c in fake.calls] == ["init", "shutdown"] and "num_cpus" not in fake.calls[0][1]
    fake = fake_ray(resources={})
    with ray_session("ray://head:10001"):
        pass
    assert fake.calls[0][1]["address"] == "ray://head:10001"
