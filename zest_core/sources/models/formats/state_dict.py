"""``ARCH:PATH`` specs: a state_dict file and the architecture it belongs to.

ARCH is a project architecture (:data:`zest_core.sources.architectures.ARCHITECTURES`, classes and
input channels read from the weights) or a torchvision classification model (classes read from the
weights; ImageNet normalisation unless the caller gives another). The file is read as tensors only
(:func:`.torch_save.torch_load`), and a checkpoint keeping its state_dict under a common key is
accepted. A ``.safetensors`` file is read by :mod:`.safetensors`, without pickle.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Any, Callable, Sequence

import torch
from torch import nn

from ....errors import ModelLoadError
from ...architectures import ARCHITECTURES, build_architecture
from ..classifier import Classifier, ModelOptions, wrap_model
from ..files import read_file, sha256
from .safetensors import is_safetensors, read_safetensors
from .torch_save import torch_load
from .torchscript import is_torchscript

IMAGENET_NORMALIZATION = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
# The image size (H, W) each project architecture is built for.
NATIVE_SIZES = {"resnet20": (32, 32), "small_cnn": (28, 28), "lenet5": (28, 28)}
# Keys under which training checkpoints commonly keep the state_dict.
CHECKPOINT_KEYS = ("state_dict", "net", "model")


def load_architecture(spec: str, arch: str, path: str, options: ModelOptions, trust_pickle: bool) -> Classifier:
    """``ARCH:PATH``: a fresh network of ARCH, shaped after the weights in PATH, with those weights."""
    builder = _architecture_builder(spec, arch)
    data = read_file(path, "a weights file")
    state = read_weights(path, data, trust_pickle, arch)
    if is_safetensors(path, data):
        # A safetensors file keeps its tensors sorted by name: put them in the architecture's registration
        # order, which infer_shape reads (the classes from the last linear layer, the channels from the first
        # conv). A torch.save state_dict is in that order already, so its network is built once, not twice.
        state = in_module_order(state, builder(num_classes=10, **({"in_channels": 1} if arch in ARCHITECTURES else {})))
    if arch in ARCHITECTURES:
        num_classes, in_channels = infer_shape(path, state)
        module = builder(num_classes=options.num_classes or num_classes, in_channels=in_channels)
        native = (in_channels, *NATIVE_SIZES[arch]) if arch in NATIVE_SIZES else None
        options = replace(options, input_shape=options.input_shape or native)
    else:
        linears = _weights(state, ndim=2)
        num_classes = options.num_classes or (int(linears[-1].shape[0]) if linears else 1000)
        module = builder(weights=None, num_classes=num_classes)
        options = replace(options, normalization=options.normalization or IMAGENET_NORMALIZATION)
    try:
        module.load_state_dict(state)
    except RuntimeError as error:
        problem = describe_mismatch(module, state)
        raise ModelLoadError(f"{path}: the weights do not fit architecture {arch!r}: {problem}") from error
    options = replace(options, num_classes=options.num_classes or num_classes)
    return wrap_model(module.eval(), options, fingerprint=sha256(data), source=f"{arch} weights {path}")


def in_module_order(state: dict[str, torch.Tensor], module: nn.Module) -> dict[str, torch.Tensor]:
    """``state`` with the entries ``module`` has in its registration order, then any others as they were."""
    order = [name for name in module.state_dict() if name in state]
    return {**{name: state[name] for name in order}, **state}


def read_weights(path: str, data: bytes, trust_pickle: bool, arch: str) -> dict[str, torch.Tensor]:
    """The state_dict in ``data`` (the bytes of ``path``): a safetensors file, or a ``torch.save`` file.

    ``arch`` is the architecture the spec named, for the hint when the file is a TorchScript model.

    Raises
    ------
    ModelLoadError
        Naming ``path``: a TorchScript model, a file neither format can read, or one that holds no
        state_dict.
    """
    if is_safetensors(path, data):
        return _state_dict(path, read_safetensors(path, data))
    if is_torchscript(data):
        raise ModelLoadError(
            f"{path}: not a readable state_dict file: it is a TorchScript model; pass it without '{arch}:'"
        )
    return _state_dict(path, torch_load(path, data, trust_pickle, "not a readable state_dict file"))


def state_dict_architectures() -> list[str]:
    """Every ARCH that ``ARCH:PATH`` accepts: the project's networks, then torchvision's classification models."""
    import torchvision  # only here: it is slow to import

    return [*ARCHITECTURES, *sorted(torchvision.models.list_models(module=torchvision.models))]


def _architecture_builder(spec: str, arch: str) -> Callable[..., nn.Module]:
    """The builder of a project architecture or of a torchvision classification model."""
    if arch in ARCHITECTURES:
        return lambda **kwargs: build_architecture(arch, **kwargs)
    import torchvision  # only here: it is slow to import and most specs do not need it

    names = torchvision.models.list_models(module=torchvision.models)  # classification models only
    if arch not in names:
        raise ModelLoadError(
            f"{spec}: unknown architecture {arch!r}; expected one of {', '.join(sorted(ARCHITECTURES))} or a "
            f"torchvision classification model (resnet18, mobilenet_v2, ... {len(names)} in all: "
            "torchvision.models.list_models(torchvision.models)), or the path of a model file"
        )
    return torchvision.models.get_model_builder(arch)


def _state_dict(path: str, loaded: Any) -> dict[str, torch.Tensor]:
    """The state_dict in a loaded file: itself, a checkpoint's, or a (trusted) whole model's."""
    if isinstance(loaded, nn.Module):
        return loaded.state_dict()
    if isinstance(loaded, dict):
        key = next((k for k in CHECKPOINT_KEYS if isinstance(loaded.get(k), dict)), None)
        loaded = loaded[key] if key is not None else loaded
    if not isinstance(loaded, dict) or not loaded:
        raise ModelLoadError(
            f"{path}: expected a state_dict (a dict of parameter names to tensors, as torch.save(model.state_dict())), "
            f"got {'an empty dict' if isinstance(loaded, dict) else type(loaded).__name__}"
        )
    name = next((k for k, v in loaded.items() if not isinstance(v, torch.Tensor)), None)
    if name is not None:
        raise ModelLoadError(
            f"{path}: expected a state_dict of tensors, but its entry {name!r} is a {type(loaded[name]).__name__} "
            f"(a training checkpoint? it may keep its state_dict under {', '.join(map(repr, CHECKPOINT_KEYS))}, "
            "or save model.state_dict() itself)"
        )
    if all(k.startswith("module.") for k in loaded):  # saved from nn.DataParallel
        loaded = {k.removeprefix("module."): v for k, v in loaded.items()}
    return loaded


def _weights(state: dict[str, torch.Tensor], ndim: int) -> list[torch.Tensor]:
    return [t for name, t in state.items() if name.endswith("weight") and t.ndim == ndim]


def infer_shape(path: str, state: dict[str, torch.Tensor]) -> tuple[int, int]:
    """(num_classes, in_channels) of a state_dict: rows of its last 2-D weight, inputs of its first conv.

    Parameters
    ----------
    path : str
        The weights file, for error messages.
    state : dict of str to Tensor
        Entries in registration order, as ``Module.state_dict()`` returns them.

    Raises
    ------
    ModelLoadError
        If the state_dict has no convolution (4-D) or no linear (2-D) weight.
    """
    convs, linears = _weights(state, ndim=4), _weights(state, ndim=2)
    if not convs or not linears:
        raise ModelLoadError(
            f"{path}: expected a state_dict with convolution (4-D) and linear (2-D) weights, "
            f"got {len(convs)} and {len(linears)}"
        )
    return int(linears[-1].shape[0]), int(convs[0].shape[1])


def describe_mismatch(module: nn.Module, state: dict[str, torch.Tensor]) -> str:
    """How a state_dict differs from a module's: its missing, unexpected and differently shaped entries."""
    expected = module.state_dict()
    shapes = [
        f"{k!r} {tuple(state[k].shape)} in the file vs {tuple(expected[k].shape)} in the architecture"
        for k in expected if k in state and expected[k].shape != state[k].shape
    ]
    problems = [
        ("missing", [repr(k) for k in expected if k not in state]),
        ("unexpected", [repr(k) for k in state if k not in expected]),
        ("of another shape", shapes),
    ]
    return "; ".join(f"{len(keys)} {what}: {_shorten(keys)}" for what, keys in problems if keys) or "incompatible"


def _shorten(items: Sequence[str], most: int = 3) -> str:
    shown = ", ".join(items[:most])
    return shown if len(items) <= most else f"{shown} and {len(items) - most} more"
