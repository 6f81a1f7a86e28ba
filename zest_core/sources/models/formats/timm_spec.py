"""``timm:NAME:PATH``: a timm architecture [1]_, built with random weights, then given the weights in PATH.

``timm.create_model(NAME, pretrained=False, num_classes=K, in_chans=C)`` never downloads; K and C are
read from the weights (the classifier and first convolution that timm's pretrained config names,
else the last linear and first convolution in the network's order). The input size and normalisation
come from timm's pretrained config for NAME when it has one. PATH is a ``.safetensors`` file or a
``torch.save`` state_dict (see :mod:`.state_dict`). ``timm`` is an optional extra
(``zest-explorer[timm]``), imported only here.

A timm model folder (``config.json`` with an ``"architecture"`` key, as ``timm`` writes for the
Hugging Face hub) is read by :mod:`.hf_folder`, through :func:`build_timm`.

References
----------
.. [1] R. Wightman, "PyTorch Image Models", https://github.com/huggingface/pytorch-image-models.
"""
from __future__ import annotations

import hashlib
from dataclasses import replace
from typing import Any, Sequence

import torch

from ....errors import ModelLoadError
from ..classifier import Classifier, ModelOptions, wrap_model
from ..files import first_line, read_file
from .state_dict import describe_mismatch, read_weights


def load_timm(spec: str, options: ModelOptions, trust_pickle: bool) -> Classifier:
    """``timm:NAME:PATH``, the spec as the user wrote it.

    Raises
    ------
    ModelLoadError
        Naming the spec or file: a spec without NAME or PATH, timm not installed, an unknown NAME,
        an unreadable weights file, or weights that do not fit NAME.
    """
    name, separator, path = spec.removeprefix("timm:").partition(":")
    if not (separator and name and path):
        raise ModelLoadError(f"{spec}: expected timm:NAME:PATH, e.g. timm:resnet18:weights.safetensors")
    import_optional("timm", "timm", spec)  # before the weights are read
    data = read_file(path, "a weights file")
    state = read_weights(path, data, trust_pickle, f"timm:{name}")
    # The fingerprint hashes the architecture's name with the weights: together they shape the function.
    digest = hashlib.sha256(f"timm:{name}\0".encode())
    digest.update(data)
    return build_timm(name, state, options, path, fingerprint=digest.hexdigest())


def build_timm(
    name: str, state: dict[str, torch.Tensor], options: ModelOptions, where: str, *, fingerprint: str,
    config: dict[str, Any] | None = None,
) -> Classifier:
    """A timm network NAME with the weights ``state``, as a Classifier; ``where`` names the source in errors.

    ``config`` is a timm folder's ``pretrained_cfg`` (input size, mean, std), which takes the place of
    timm's own config for NAME.
    """
    timm = import_optional("timm", "timm", where)
    if not timm.is_model(name):
        import difflib

        close = difflib.get_close_matches(name, timm.list_models(), n=5)
        raise ModelLoadError(
            f"{where}: unknown timm architecture {name!r}"
            + (f" (close names: {', '.join(close)})" if close else " (see timm.list_models())")
        )
    pretrained = timm.models.get_pretrained_cfg(name, allow_unregistered=True)
    known = dict(pretrained.to_dict()) if pretrained is not None else {}
    known.update(config or {})
    num_classes, in_channels = _classes_and_channels(where, state, known)
    try:
        module = timm.create_model(
            name, pretrained=False, num_classes=options.num_classes or num_classes, in_chans=in_channels,
        )
    except Exception as error:  # noqa: BLE001 - a model's own constructor can raise anything
        raise ModelLoadError(f"{where}: timm cannot build {name!r} ({first_line(error)})") from error
    try:
        module.load_state_dict(state)
    except RuntimeError as error:
        raise ModelLoadError(
            f"{where}: the weights do not fit timm architecture {name!r}: {describe_mismatch(module, state)}"
        ) from error
    size = known.get("input_size") or (in_channels, 224, 224)
    normalization = (known["mean"], known["std"]) if known.get("mean") and known.get("std") else None
    options = replace(
        options,
        input_shape=options.input_shape or (in_channels, *map(int, size[-2:])),
        normalization=options.normalization or _channels(normalization, in_channels),
        num_classes=options.num_classes or num_classes,
    )
    return wrap_model(module.eval(), options, fingerprint=fingerprint, source=f"timm {name} {where}")


def _classes_and_channels(where: str, state: dict[str, torch.Tensor], config: dict[str, Any]) -> tuple[int, int]:
    """The class count (rows of the classifier) and input channels (of the first convolution) of the weights."""
    classifier = config.get("classifier")
    classifier = classifier[0] if isinstance(classifier, (list, tuple)) else classifier
    head = state.get(f"{classifier}.weight") if classifier else None
    if head is None:
        linears = [t for k, t in state.items() if k.endswith("weight") and t.ndim == 2]
        head = linears[-1] if linears else None
    first_conv = config.get("first_conv")
    first_conv = first_conv[0] if isinstance(first_conv, (list, tuple)) else first_conv
    conv = state.get(f"{first_conv}.weight") if first_conv else None
    if conv is None:
        conv = next((t for k, t in state.items() if k.endswith("weight") and t.ndim == 4), None)
    if head is None or conv is None:
        raise ModelLoadError(
            f"{where}: expected the weights of an image classifier (a classifier {classifier!r} and a first "
            f"convolution {first_conv!r}), got {len(state)} tensors without them"
        )
    return int(head.shape[0]), int(conv.shape[1])


def _channels(normalization: tuple[Sequence[float], Sequence[float]] | None, channels: int):
    """The normalisation, if it has one value per input channel (a 1-channel net keeps no RGB means)."""
    if normalization is None or any(len(values) != channels for values in normalization):
        return None
    return tuple(tuple(float(v) for v in values) for values in normalization)


def import_optional(module: str, extra: str, where: str) -> Any:
    """Import an optional dependency, or a ModelLoadError naming ``where`` and how to install it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise ModelLoadError(
            f"{where}: loading this model needs the {module} package: pip install 'zest-explorer[{extra}]' "
            f"(or pip install {module})"
        ) from None
