"""The Ray backend (issue 13): the same numbers as the local one, retries, failures and resuming, on a local Ray.

One Ray for the module: 2 CPUs, no dashboard, no usage statistics, on 127.0.0.1, shut down at the end.
The models the tests make are shipped to the workers by value (they live in this test module).
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from zest_core import ZestConfig, load_mnist
from zest_core.cli import main
from zest_core.hub import compute_signatures, hub_distance_matrix, load_hub
from zest_core.sources.architectures import SmallCNN
from zest_core.zoo.manifest import ZOO_DIR, load_zoo

pytestmark = pytest.mark.timeout(420)
CONFIG = ZestConfig(num_samples=40)
TINY = ["--refset", "mnist:8", "--samples", "40"]


@pytest.fixture(scope="module")
def ray_cluster():
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    import ray

    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    ray.init(num_cpus=2, include_dashboard=False, _node_ip_address="127.0.0.1", log_to_driver=False,
             logging_level="WARNING")
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def refset():
    return load_mnist(8)


def cnn(seed: int) -> torch.nn.Module:
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return SmallCNN().eval()


class DiesOnce(torch.nn.Module):
    """Kills the worker process running it the first time (a marker file remembers), then answers."""

    def __init__(self, inner: torch.nn.Module, marker: str) -> None:
        super().__init__()
        self.inner, self.marker = inner, marker

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not os.path.exists(self.marker):
            Path(self.marker).touch()
            os._exit(1)
        return self.inner(x)


class AlwaysDies(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        os._exit(1)


class Raising(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        raise RuntimeError("boom")


def test_the_ray_matrix_of_the_zoo_equals_the_local_one(ray_cluster, refset):
    hub = load_hub(ZOO_DIR, checkpoints=False)
    models = {m.name: m for m in hub.models}
    # One torch thread on both sides, as each Ray task runs: float32 kernels may reduce in another order
    # with more threads on another CPU, and 1e-12 compares the backends, not the thread counts.
    local = compute_signatures(models, refset, CONFIG, cache=False, threads=1)
    remote = compute_signatures(models, refset, CONFIG, cache=False, backend="ray")
    assert remote.slots == 2 and not remote.failures and not local.failures
    assert len(remote.computed) == len(models) == len(load_zoo(ZOO_DIR).entries)
    names = list(models)
    for align in ("auto", "greedy"):
        a = hub_distance_matrix(local.stack, align=align, order=local.order(names), block_size=32)
        b = hub_distance_matrix(remote.stack, align=align, order=remote.order(names), block_size=32)
        np.testing.assert_allclose(b, a, rtol=0, atol=1e-12)
    for name in ("cnn-s0", "lenet-s1.transfer50-high"):
        np.testing.assert_allclose(remote.signature(name).matrix(), local.signature(name).matrix(), rtol=0, atol=1e-12)


def test_zest_matrix_on_ray_equals_local_and_resumes_from_the_cache(ray_cluster, capsys, tmp_path):
    specs = ["zoo:cnn-s0", "zoo:cnn-s0.prune50", "zoo:lenet-s1", "zoo:cnn-s0.transfer50-low"]
    assert main(["matrix", *specs, *TINY, "--no-cache", "--threads", "1"]) == 0  # as each Ray task runs
    local = capsys.readouterr().out
    cache = ["--cache-dir", str(tmp_path / "cache")]
    assert main(["matrix", *specs, *TINY, *cache, "--backend", "ray"]) == 0
    assert capsys.readouterr().out == local
    assert len(list((tmp_path / "cache").glob("*.zsig.npz"))) == len(specs)
    stamps = {p: p.stat().st_mtime_ns for p in (tmp_path / "cache").glob("*.zsig.npz")}
    assert main(["matrix", *specs, *TINY, *cache, "--backend", "ray"]) == 0
    assert capsys.readouterr().out == local
    assert {p: p.stat().st_mtime_ns for p in (tmp_path / "cache").glob("*.zsig.npz")} == stamps  # nothing rewritten


def test_a_partial_run_resumes_from_the_cache(ray_cluster, refset, tmp_path):
    models = {f"m{k}": cnn(k) for k in range(4)}
    first = compute_signatures({k: models[k] for k in ("m0", "m1")}, refset, CONFIG, cache=tmp_path, backend="ray")
    assert sorted(first.computed) == ["m0", "m1"]
    second = compute_signatures(models, refset, CONFIG, cache=tmp_path, backend="ray")
    assert sorted(second.cached) == ["m0", "m1"] and sorted(second.computed) == ["m2", "m3"]
    third = compute_signatures(models, refset, CONFIG, cache=tmp_path, backend="ray")
    assert third.computed == [] and sorted(third.cached) == sorted(models)


def test_killed_and_failing_tasks_are_retried_or_reported_and_the_run_goes_on(ray_cluster, refset, tmp_path):
    models = {
        "good": cnn(0), "dies-once": DiesOnce(cnn(1), str(tmp_path / "died")), "always-dies": AlwaysDies(),
        "raises": Raising(), "missing": "missing.pt",
    }
    run = compute_signatures(models, refset, CONFIG, cache=False, backend="ray", retries=1)
    assert sorted(run.stack.names) == ["dies-once", "good"]
    assert (tmp_path / "died").exists()  # it did kill a worker, and was retried on another
    failures = {f.name: f for f in run.failures}
    assert set(failures) == {"always-dies", "raises", "missing"}
    assert "Worker" in failures["always-dies"].error or "died" in failures["always-dies"].error
    assert failures["raises"].attempts == 2 and "ModelRuntimeError" in failures["raises"].error
    assert failures["missing"].attempts == 1 and "ModelLoadError" in failures["missing"].error
    local = compute_signatures({"dies-once": cnn(1)}, refset, CONFIG, cache=False, threads=1)
    np.testing.assert_allclose(run.signature("dies-once").matrix(), local.signature("dies-once").matrix(), atol=1e-12)
