"""The demo zoo as it is stored: the manifest (``zoo.json``), its entries, and loading a model from it.

A zoo is a folder with a JSON manifest and one ``models/NAME.pt`` state_dict per model (and per
checkpoint). The manifest records what every model is: its architecture, how it was made and from
which model (:data:`RELATIONS`), its classes, its held-out accuracy, and the sha256 of its weights,
which :func:`load_zoo_model` checks before it loads them. :mod:`zest_core.zoo.build` writes zoos;
this module only reads them.

``load_zoo_model("cnn-s0@epoch3")`` (or ``load_model("zoo:cnn-s0@epoch3")``) returns a model as a
:class:`~zest_core.sources.models.Classifier`.
"""
from __future__ import annotations

import dataclasses
import difflib
import hashlib
import io
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import ZestError, ZooError
from ..pipeline.reference import ReferenceSet
from ..sources.architectures import build_architecture
from ..sources.mnist import MNIST_PROVENANCE, load_mnist
from ..sources.models import Classifier

FORMAT_VERSION = 1
MANIFEST_NAME = "zoo.json"
# Signatures shipped with the zoo (the dashboard's default comparison), a seed for the signature cache.
SHIPPED_SIGNATURES = "signatures"
ZOO_ENV = "ZEST_ZOO_DIR"
ZOO_DIR = Path(__file__).resolve().parents[2] / "assets" / "zoo"
INPUT_SHAPE = (1, 28, 28)
DIGITS = [str(d) for d in range(10)]
TASKS = {"digits": DIGITS, "low": DIGITS[:5], "high": DIGITS[5:]}
INDEPENDENT_RELATIONS = ("source", "independent")
RELATIONS = INDEPENDENT_RELATIONS + (
    "transfer-10", "transfer-50", "transfer-100", "prune-20", "prune-50", "prune-80", "quantize", "distill",
    "steal", "transfer+prune", "transfer+quantize", "transfer+distill", "permuted", "unlearn-exact", "unlearn-approx",
)


@dataclass
class ZooEntry:
    """One model of the zoo, as the manifest records it.

    Attributes
    ----------
    name : str
    arch : str
    relation : str
        One of :data:`RELATIONS`: "source" and "independent" models are trained from scratch.
    parent : str or None
        The model this one was made from (a transfer model for "transfer+..." relations).
    source : str or None
        The source model at the root of its lineage: the relation holds between it and this model.
    task : str
        "digits" (10 classes), "low" (digits 0-4) or "high" (digits 5-9).
    classes : list of str
        The digit of every output, in output order; they are the ground truth of class alignment
        (a "permuted" model's classes are a shuffled order).
    accuracy : float
        On the held-out digits of its task.
    seed, epochs : int
    file, sha256 : str
        The weights (a state_dict), relative to the zoo's folder, and their hash.
    checkpoints : dict of int to dict
        Epoch → {"file", "sha256", "accuracy"} for the models trained with a checkpoint per epoch.
    description : str
    details : dict
        What else was measured (sparsity, tuned layers, forget-set accuracy, ...).
    """

    name: str
    arch: str
    relation: str
    parent: str | None
    source: str | None
    task: str
    classes: list[str]
    accuracy: float
    seed: int
    epochs: int
    file: str
    sha256: str
    checkpoints: dict[int, dict[str, Any]] = field(default_factory=dict)
    description: str = ""
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The entry as the manifest stores it (JSON has string keys only: epochs become strings)."""
        values = dataclasses.asdict(self)
        values["checkpoints"] = {str(k): v for k, v in self.checkpoints.items()}
        return values

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "ZooEntry":
        """An entry from its manifest form; unknown keys are ignored, so newer manifests still load.

        Raises
        ------
        ZestError
            If a required field is missing.
        """
        names = {f.name for f in dataclasses.fields(cls)}
        missing = sorted(names - set(values) - {"checkpoints", "description", "details"})
        if missing:
            raise ZestError(
                f"model entry {values.get('name', '?')!r}: expected the fields {', '.join(missing)}, "
                "got an entry without them"
            )
        entry = cls(**{k: v for k, v in values.items() if k in names})
        entry.checkpoints = {int(k): v for k, v in entry.checkpoints.items()}
        return entry


@dataclass
class Zoo:
    """A built zoo: its folder, its models by name, and the unlearning forget set."""

    root: Path
    entries: dict[str, ZooEntry]
    forget_indices: np.ndarray
    info: dict[str, Any] = field(default_factory=dict)

    def pairs(self, relation: str | None = None) -> list[tuple[str, str, str]]:
        """(source, child, relation) for every derived model, optionally of one relation, in manifest order."""
        return [
            (e.source, e.name, e.relation) for e in self.entries.values()
            if e.relation not in INDEPENDENT_RELATIONS and (relation is None or e.relation == relation)
        ]

    def independent(self, arch: str | None = None) -> list[str]:
        """The models trained from scratch (sources and independent ones), optionally of one architecture."""
        return [
            e.name for e in self.entries.values()
            if e.relation in INDEPENDENT_RELATIONS and (arch is None or e.arch == arch)
        ]

    def checkpointed(self) -> list[str]:
        """The models that have a checkpoint after every epoch."""
        return [e.name for e in self.entries.values() if e.checkpoints]

    def forget_set(self) -> ReferenceSet:
        """The digits the unlearned models were made to forget (a subset of the training split)."""
        train = load_mnist(split="train")
        return train.subset(self.forget_indices, provenance=f"{MNIST_PROVENANCE}, unlearning forget set")

    def load(self, spec: str) -> Classifier:
        """:func:`load_zoo_model` for this zoo."""
        return load_zoo_model(spec, root=self.root)


def default_zoo_dir() -> Path:
    """``$ZEST_ZOO_DIR``, else the zoo shipped in the repository's ``assets/zoo``."""
    return Path(os.environ.get(ZOO_ENV) or ZOO_DIR)


def load_zoo(root: str | os.PathLike | None = None) -> Zoo:
    """Read a zoo's manifest.

    Parameters
    ----------
    root : path, optional
        The zoo's folder (default :func:`default_zoo_dir`).

    Raises
    ------
    ZooError
        If the folder has no readable manifest of this format.
    """
    folder = Path(root) if root is not None else default_zoo_dir()
    manifest = folder / MANIFEST_NAME
    if not manifest.is_file():
        raise ZooError(f"{manifest}: no demo zoo here (the manifest is missing); build one with `zest zoo build`")
    try:
        data = json.loads(manifest.read_text())
        if data.get("format") != FORMAT_VERSION:
            raise ZestError(f"format: expected {FORMAT_VERSION}, got {data.get('format')!r}")
        entries = [ZooEntry.from_dict(values) for values in data["models"]]
        forget = np.asarray(data["forget_indices"], dtype=np.int64)
    except (ValueError, KeyError, TypeError, AttributeError) as error:  # ZestError and JSON errors are ValueErrors
        raise ZooError(f"{manifest}: not a readable zoo manifest: {error}") from error
    info = {k: v for k, v in data.items() if k not in ("models", "forget_indices")}
    return Zoo(folder, {e.name: e for e in entries}, forget, info)


def load_zoo_model(spec: str, root: str | os.PathLike | None = None) -> Classifier:
    """A zoo model by name, or one of its per-epoch checkpoints (``"cnn-s0@epoch3"``).

    Parameters
    ----------
    spec : str
        ``NAME`` or ``NAME@epochK``.
    root : path, optional
        The zoo's folder (default :func:`default_zoo_dir`).

    Returns
    -------
    Classifier
        Around the network, in eval mode, with the model's class names, input shape (1, 28, 28),
        the weights file's sha256 as its fingerprint and ``source="zoo:<spec>"``.

    Raises
    ------
    ZooError
        For an unknown model or epoch, or a weights file that is missing or altered.
    """
    zoo = load_zoo(root)
    entry, file, sha256 = _weights_of(zoo, spec)
    path = zoo.root / file
    try:
        data = path.read_bytes()
    except OSError as error:
        raise ZooError(f"{path}: cannot read the weights of zoo:{spec}: {error.strerror or error}") from error
    if hashlib.sha256(data).hexdigest() != sha256:
        raise ZooError(f"{path}: the weights of zoo:{spec} were altered or are corrupt (sha256 mismatch); rebuild the zoo")
    module = build_architecture(entry.arch, num_classes=len(entry.classes))
    module.load_state_dict(torch.load(io.BytesIO(data), weights_only=True))
    return Classifier(
        module.eval(), class_names=entry.classes, input_shape=INPUT_SHAPE, fingerprint=sha256, source=f"zoo:{spec}"
    )


def _weights_of(zoo: Zoo, spec: str) -> tuple[ZooEntry, str, str]:
    """The entry that ``NAME[@epochK]`` names, and the file and sha256 of those weights."""
    name, _, epoch_text = spec.partition("@")
    if name not in zoo.entries:
        close = difflib.get_close_matches(name, list(zoo.entries), n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else f"; `zest zoo list` shows all {len(zoo.entries)}"
        raise ZooError(f"zoo:{spec}: no model named {name!r} in {zoo.root}{hint}")
    entry = zoo.entries[name]
    if not epoch_text:
        return entry, entry.file, entry.sha256
    epoch = _parse_epoch(spec, epoch_text)
    if epoch not in entry.checkpoints:
        available = ", ".join(f"@epoch{k}" for k in sorted(entry.checkpoints)) or "none"
        raise ZooError(f"zoo:{spec}: {name} has no checkpoint of epoch {epoch} (available: {available})")
    return entry, entry.checkpoints[epoch]["file"], entry.checkpoints[epoch]["sha256"]


def _parse_epoch(spec: str, text: str) -> int:
    if not text.startswith("epoch") or not text[5:].isdigit():
        raise ZooError(f"zoo:{spec}: expected NAME@epochK (K a whole number), got {text!r} after '@'")
    return int(text[5:])
