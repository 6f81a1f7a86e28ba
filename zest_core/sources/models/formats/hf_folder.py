"""Model folders from a hub: Hugging Face ``save_pretrained`` image classifiers, and timm model folders.

A folder with a ``config.json`` is one of:

- a ``transformers`` image classifier [1]_ (``AutoModelForImageClassification.save_pretrained``):
  the network is built from the config with ``transformers``, **offline** (the config is read
  here and given to ``AutoConfig.for_model``, so no file lookup or download ever runs, and
  ``trust_remote_code`` never does: a config that needs custom code is refused);
- a timm model folder (its config has an ``"architecture"`` key and a ``pretrained_cfg``), built by
  :func:`.timm_spec.build_timm`.

The weights are ``model.safetensors``, or shards listed by ``model.safetensors.index.json``, read by
:mod:`.safetensors` without pickle. A folder holding only a pickled ``pytorch_model.bin`` is a pickle
like any other and needs ``trust_pickle``. The input size and normalisation come from
``preprocessor_config.json`` when it is there; the class names from the config's ``id2label``.

The fingerprint hashes every file that shapes the function: the config (for a timm folder, the
architecture it names), the preprocessor config and the weights.

References
----------
.. [1] Wolf et al., "Transformers: State-of-the-Art Natural Language Processing", EMNLP 2020 (System
   Demonstrations).
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ...._shared.limits import MODEL_BYTES
from ....errors import ModelLoadError
from ..classifier import Classifier, ModelOptions, wrap_model
from ..files import first_line, read_file
from .safetensors import read_safetensors
from .state_dict import describe_mismatch
from .timm_spec import build_timm, import_optional
from .torch_save import torch_load

CONFIG = "config.json"
PREPROCESSOR = "preprocessor_config.json"
WEIGHTS = "model.safetensors"
WEIGHTS_INDEX = "model.safetensors.index.json"
PICKLED_WEIGHTS = "pytorch_model.bin"
# A config or index is a few kilobytes; anything much larger is not one.
MAX_JSON_BYTES = 16_000_000


def is_model_folder(path: str) -> bool:
    """Whether ``path`` is a folder holding a ``config.json``."""
    return (Path(path) / CONFIG).is_file()


def load_model_folder(path: str, options: ModelOptions, trust_pickle: bool) -> Classifier:
    """The image classifier in a Hugging Face or timm model folder.

    Raises
    ------
    ModelLoadError
        Naming the folder or file: no ``config.json``; a config that is not JSON, not an image
        classifier, or needs custom code; no weights, or only pickled weights without
        ``trust_pickle``; weights that do not fit the config; ``transformers`` or ``timm`` missing.
    """
    folder = Path(path)
    if not is_model_folder(path):
        raise ModelLoadError(
            f"{path}: is a directory without {CONFIG} (expected a model file, or a Hugging Face or timm model folder)"
        )
    config = _read_json(folder / CONFIG)
    is_timm = "architecture" in config and "model_type" not in config
    _offline()
    # The library that builds it first, so that a missing one is said before any weights are read.
    import_optional(*(("timm", "timm") if is_timm else ("transformers", "hf")), path)
    files = [folder / CONFIG, *([folder / PREPROCESSOR] if (folder / PREPROCESSOR).is_file() else [])]
    state, weight_files = _read_weights(folder, trust_pickle)
    fingerprint = _fingerprint([*files, *weight_files])
    if is_timm:
        pretrained = config.get("pretrained_cfg") if isinstance(config.get("pretrained_cfg"), dict) else {}
        names = config.get("label_names") or pretrained.get("label_names")
        if names and not options.class_names:
            options = replace(options, class_names=[str(n) for n in names])
        return build_timm(str(config["architecture"]), state, options, path, fingerprint=fingerprint,
                          config={**pretrained, **({"num_classes": config["num_classes"]} if "num_classes" in config else {})})
    module = _transformers_classifier(path, config)
    try:
        module.load_state_dict(state)
    except RuntimeError as error:
        raise ModelLoadError(
            f"{path}: the weights do not fit its {CONFIG} ({config.get('model_type')}): {describe_mismatch(module, state)}"
        ) from error
    options = _options(folder, config, options)
    return wrap_model(
        _Logits(module).eval(), options, fingerprint=fingerprint,
        source=f"Hugging Face {config.get('model_type')} folder {path}",
    )


class _Logits(nn.Module):
    """A transformers image classifier as images → logits (it takes ``pixel_values`` and returns an output object)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.model(pixel_values=images).logits


def _offline() -> None:
    """Tell huggingface_hub and transformers they are offline, before either is first imported (they read it once)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def _transformers_classifier(path: str, config: dict[str, Any]) -> nn.Module:
    """The network a transformers config describes, with random weights; refused unless it classifies images."""
    if "auto_map" in config:
        raise ModelLoadError(
            f"{path}: its {CONFIG} needs custom code (auto_map), which is never run (no trust_remote_code)"
        )
    model_type = config.get("model_type")
    from transformers import AutoConfig, AutoModelForImageClassification
    from transformers.models.auto.modeling_auto import MODEL_FOR_IMAGE_CLASSIFICATION_MAPPING_NAMES

    if model_type not in MODEL_FOR_IMAGE_CLASSIFICATION_MAPPING_NAMES:
        declared = ", ".join(config.get("architectures") or []) or "no architectures"
        raise ModelLoadError(
            f"{path}: its {CONFIG} describes a {model_type!r} model ({declared}), not an image classifier "
            f"transformers can build (one of {len(MODEL_FOR_IMAGE_CLASSIFICATION_MAPPING_NAMES)} model types, "
            "e.g. vit, resnet, convnext)"
        )
    settings = {k: v for k, v in config.items() if k not in ("model_type", "transformers_version")}
    try:
        built = AutoConfig.for_model(model_type, **settings)
        return AutoModelForImageClassification.from_config(built)
    except Exception as error:  # noqa: BLE001 - a config can be wrong in many ways
        raise ModelLoadError(f"{path}: transformers cannot build its {CONFIG} ({first_line(error)})") from error


def _read_weights(folder: Path, trust_pickle: bool) -> tuple[dict[str, torch.Tensor], list[Path]]:
    """The folder's weights and the files they came from: safetensors (one file or shards), else a trusted pickle."""
    if (folder / WEIGHTS).is_file():
        files = [folder / WEIGHTS]
    elif (folder / WEIGHTS_INDEX).is_file():
        files = _shards(folder)
    elif (folder / PICKLED_WEIGHTS).is_file():
        bin_file = folder / PICKLED_WEIGHTS
        if not trust_pickle:
            raise ModelLoadError(
                f"{bin_file}: the folder's only weights are a pickle ({PICKLED_WEIGHTS}); unpickling runs code "
                f"from the file, so it is refused: pass trust_pickle=True (zest --trust-pickle) only for a folder "
                f"you trust, or save it with save_pretrained (safe_serialization) as {WEIGHTS}"
            )
        data = read_file(str(bin_file), "a weights file")
        state = torch_load(str(bin_file), data, True, "not a readable pytorch_model.bin")
        if not isinstance(state, dict):
            raise ModelLoadError(f"{bin_file}: expected a state_dict, got a pickled {type(state).__name__}")
        return state, [bin_file]
    else:
        raise ModelLoadError(f"{folder}: expected weights in it ({WEIGHTS}, {WEIGHTS_INDEX} or {PICKLED_WEIGHTS}), got none")
    total = sum(f.stat().st_size for f in files)
    if total > MODEL_BYTES.value():
        raise ModelLoadError(str(MODEL_BYTES.refuse(f"weights of {total:,} bytes", str(folder))))
    state: dict[str, torch.Tensor] = {}
    for file in files:
        state.update(read_safetensors(str(file), read_file(str(file), "a safetensors weights file")))
    return state, files


def _shards(folder: Path) -> list[Path]:
    """The shard files a ``model.safetensors.index.json`` names: plain file names inside the folder."""
    index = _read_json(folder / WEIGHTS_INDEX)
    weight_map = index.get("weight_map")
    if not isinstance(weight_map, dict) or not weight_map:
        raise ModelLoadError(f"{folder / WEIGHTS_INDEX}: expected a non-empty weight_map of tensor names to shard files")
    names = sorted({str(name) for name in weight_map.values()})
    outside = [n for n in names if Path(n).name != n or not n.endswith(".safetensors")]
    if outside:
        raise ModelLoadError(
            f"{folder / WEIGHTS_INDEX}: expected shard file names in the folder ending in .safetensors, got {outside[0]!r}"
        )
    missing = [n for n in names if not (folder / n).is_file()]
    if missing:
        raise ModelLoadError(f"{folder / WEIGHTS_INDEX}: names shard {missing[0]!r}, which is not in the folder")
    return [folder / n for n in names]


def _options(folder: Path, config: dict[str, Any], options: ModelOptions) -> ModelOptions:
    """Input shape and normalisation from ``preprocessor_config.json`` (else the config), class names from ``id2label``."""
    channels = int(config.get("num_channels", 3))
    size = config.get("image_size")
    height = width = None
    if isinstance(size, int):
        height = width = size
    elif isinstance(size, (list, tuple)) and len(size) == 2:
        height, width = map(int, size)
    normalization = None
    if (folder / PREPROCESSOR).is_file():
        pre = _read_json(folder / PREPROCESSOR)
        chosen = pre.get("crop_size") if pre.get("do_center_crop") and pre.get("crop_size") else pre.get("size")
        if isinstance(chosen, int):
            height = width = chosen
        elif isinstance(chosen, dict) and "height" in chosen and "width" in chosen:
            height, width = int(chosen["height"]), int(chosen["width"])
        elif isinstance(chosen, dict) and "shortest_edge" in chosen:
            height = width = int(chosen["shortest_edge"])
        mean, std = pre.get("image_mean"), pre.get("image_std")
        if pre.get("do_normalize", True) and isinstance(mean, list) and isinstance(std, list):
            if len(mean) == len(std) == channels:
                normalization = (tuple(map(float, mean)), tuple(map(float, std)))
    labels = config.get("id2label")
    names = None
    if isinstance(labels, dict) and labels:
        try:
            ordered = sorted((int(k), str(v)) for k, v in labels.items())
        except ValueError:
            ordered = []
        if [i for i, _ in ordered] == list(range(len(ordered))):
            names = [name for _, name in ordered]
    return replace(
        options,
        input_shape=options.input_shape or ((channels, height, width) if height and width else None),
        normalization=options.normalization or normalization,
        class_names=options.class_names or names,
        num_classes=options.num_classes or (len(names) if names else None),
    )


def _read_json(path: Path) -> dict[str, Any]:
    """A small JSON object file, or a ModelLoadError naming it."""
    try:
        size = path.stat().st_size
        if size > MAX_JSON_BYTES:
            raise ModelLoadError(f"{path}: expected a JSON file of at most {MAX_JSON_BYTES:,} bytes, got {size:,}")
        value = json.loads(path.read_bytes())
    except (OSError, ValueError) as error:
        raise ModelLoadError(f"{path}: not a readable JSON file ({first_line(error)})") from None
    if not isinstance(value, dict):
        raise ModelLoadError(f"{path}: expected a JSON object, got a {type(value).__name__}")
    return value


def _fingerprint(files: list[Path]) -> str:
    """sha256 over each file's name and bytes, in order: the config, the preprocessor config, the weights."""
    digest = hashlib.sha256()
    for file in files:
        with file.open("rb") as stream:
            digest.update(file.name.encode() + b"\0" + hashlib.file_digest(stream, "sha256").digest())
    return digest.hexdigest()
