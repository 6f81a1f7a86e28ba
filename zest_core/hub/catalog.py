"""A hub: the models to audit, named, each loadable where its signature is computed.

A hub is given as a zoo folder (its manifest names the models, their checkpoints and what each was
made from, which gives the matched null of a verdict), a folder of model files, or a text file with
one model spec per line. Models are only *named* here: each is loaded by the task that computes its
signature (:mod:`zest_core.hub.backend`), so that a hub of thousands is never in memory at once.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from ..errors import ZestError
from ..sources.checkpoints import folder_models
from ..sources.endpoint import load_endpoint
from ..sources.models import Classifier, is_model_folder, load_model
from ..zoo.manifest import MANIFEST_NAME, Zoo, load_zoo, load_zoo_model

ZOO_PREFIX = "zoo:"


@dataclass(frozen=True)
class HubModel:
    """One model of a hub: its name in reports, and how to load it (in any process).

    Attributes
    ----------
    name : str
    spec : str
        A :func:`zest_core.load_model` spec; for a zoo hub, ``NAME`` or ``NAME@epochK`` of the zoo.
    zoo_root : str, optional
        The zoo folder ``spec`` names a model of.
    trust_pickle : bool
        As :func:`zest_core.load_model`'s.
    endpoint_options : dict
        ``timeout`` and ``retries`` of an ``http(s)://`` model.
    """

    name: str
    spec: str
    zoo_root: str | None = None
    trust_pickle: bool = False
    endpoint_options: dict = field(default_factory=dict)

    def load(self) -> Classifier:
        """The model, loaded (ModelLoadError or ZooError naming it if it cannot be)."""
        if self.zoo_root is not None:
            return load_zoo_model(self.spec, root=self.zoo_root)
        if self.spec.startswith(("http://", "https://")):
            return load_model(load_endpoint(self.spec, **self.endpoint_options))
        return load_model(self.spec, trust_pickle=self.trust_pickle)


@dataclass
class Hub:
    """The models of a hub and, for a zoo hub, its manifest.

    Attributes
    ----------
    models : list of HubModel
    source : str
        What the hub was read from, for reports.
    zoo : Zoo or None
        The manifest of a zoo hub: what every model is and where it comes from.
    """

    models: list[HubModel]
    source: str
    zoo: Zoo | None = None

    def __len__(self) -> int:
        return len(self.models)

    def find(self, name: str) -> HubModel | None:
        """The hub model of this name (a zoo hub also takes ``zoo:NAME``), or None."""
        if self.zoo is not None:
            name = name.removeprefix(ZOO_PREFIX)
        return next((model for model in self.models if model.name == name), None)

    def entry_name(self, name: str) -> str | None:
        """The manifest entry a hub model belongs to (a checkpoint ``NAME@epochK`` to NAME); None without one."""
        if self.zoo is None:
            return None
        base = name.removeprefix(ZOO_PREFIX).partition("@")[0]
        return base if base in self.zoo.entries else None


def load_hub(
    spec: str | os.PathLike | Sequence[str], *, checkpoints: bool = True, trust_pickle: bool = False,
    endpoint_options: dict | None = None,
) -> Hub:
    """The hub that ``spec`` names.

    Parameters
    ----------
    spec : path or sequence of str
        A zoo folder (with a ``zoo.json`` manifest): every model of the zoo, and with
        ``checkpoints`` every per-epoch checkpoint that is not the final model; a folder of model
        files (``.pt``, ``.pth``, ``.ts``, ``.onnx``, ``.bin``, ``.ckpt``, ``.pt2``, ``.safetensors``;
        TorchScript, ONNX, or safetensors whose metadata names their ``"architecture"``, since a
        bare state_dict needs its ``ARCH:``) and model folders (Hugging Face or timm, with a
        ``config.json``); a text file of model specs, one per line (blank lines
        and lines starting with ``#`` are skipped); or a sequence of specs.
    checkpoints : bool, default True
    trust_pickle, endpoint_options
        How the models of a folder or list are loaded (see :class:`HubModel`).

    Returns
    -------
    Hub

    Raises
    ------
    ZestError
        If ``spec`` is none of these, names no model, or names one model twice.
    """
    options = {"trust_pickle": trust_pickle, "endpoint_options": dict(endpoint_options or {})}
    if not isinstance(spec, (str, os.PathLike)):
        specs = [str(s) for s in spec]
        return _checked(Hub([HubModel(s, s, **options) for s in specs], f"{len(specs)} model specs"))
    path = Path(spec)
    if path.is_dir() and (path / MANIFEST_NAME).is_file():
        zoo = load_zoo(path)
        models = []
        for name, entry in zoo.entries.items():
            models.append(HubModel(name, name, zoo_root=str(path)))
            if checkpoints:
                models += [
                    HubModel(f"{name}@epoch{epoch}", f"{name}@epoch{epoch}", zoo_root=str(path))
                    for epoch, stored in sorted(entry.checkpoints.items()) if stored["sha256"] != entry.sha256
                ]
        return _checked(Hub(models, f"zoo {path}", zoo))
    if path.is_dir() and not is_model_folder(str(path)):
        files = folder_models(path)
        return _checked(Hub([HubModel(p.name, str(p), **options) for p in files], f"folder {path}"))
    if path.is_file():
        lines = [line.strip() for line in path.read_text().splitlines()]
        specs = [line for line in lines if line and not line.startswith("#")]
        return _checked(Hub([HubModel(s, s, **options) for s in specs], f"list {path}"))
    raise ZestError(
        f"hub: expected a zoo folder, a folder of model files or a file listing model specs, got {str(spec)!r} "
        "(no such file or folder)"
    )


def _checked(hub: Hub) -> Hub:
    if not hub.models:
        raise ZestError(f"hub: expected at least one model, got none in {hub.source}")
    seen: set[str] = set()
    twice = sorted({m.name for m in hub.models if m.name in seen or seen.add(m.name)})
    if twice:
        raise ZestError(f"hub: expected every model once, got {', '.join(twice)} more than once in {hub.source}")
    return hub
