"""``torch.save`` files: tensors only by default; whole pickled models only when the caller trusts the file.

Unpickling runs arbitrary code from the file, so :func:`torch_load` reads with
``weights_only=True`` first and refuses, with the risk explained, a file that names classes or
functions to import, unless ``trust_pickle`` is True. ``ARCH:PATH`` state_dicts
(:mod:`.state_dict`) are read through the same function.
"""
from __future__ import annotations

import io
import pickle
import re
from typing import Any

import torch
from torch import nn

from ....errors import ModelLoadError
from ...architectures import ARCHITECTURES
from ..classifier import Classifier, ModelOptions, wrap_model
from ..files import first_line, quiet_torch, sha256

# What torch.load(weights_only=True) says of a pickle that names classes or functions to import.
_PICKLED_OBJECT = re.compile(r"GLOBAL (\S+) was not an allowed global|whose module (\S+) is blocked")


def torch_load(path: str, data: bytes, trust_pickle: bool, unreadable: str) -> Any:
    """``torch.load`` of ``data``: tensors only, or any pickled object when ``trust_pickle`` is True.

    Raises
    ------
    ModelLoadError
        ``f"{path}: {unreadable} (...)"`` for a file torch cannot read; a refusal that explains the
        risk for a file holding pickled objects when ``trust_pickle`` is False.
    """
    try:
        with quiet_torch():
            return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - zip, pickle and EOF errors alike mean "not readable"
        found = _PICKLED_OBJECT.search(str(error)) if isinstance(error, pickle.UnpicklingError) else None
        if found is None:
            raise ModelLoadError(f"{path}: {unreadable} ({first_line(error)})") from error
    if not trust_pickle:
        raise ModelLoadError(
            f"{path}: holds pickled Python objects ({found.group(1) or found.group(2)}), not only tensors, "
            "e.g. a whole model saved with torch.save(model). Unpickling runs arbitrary code from the file, "
            "so it is refused: pass "
            "trust_pickle=True (zest --trust-pickle) only for a file you trust, or save model.state_dict() "
            "(loaded as ARCH:PATH) or a TorchScript model instead"
        )
    try:
        with quiet_torch():
            return torch.load(io.BytesIO(data), map_location="cpu", weights_only=False)
    except Exception as error:  # noqa: BLE001 - unpickling can raise anything, e.g. a missing class
        raise ModelLoadError(f"{path}: the pickled model cannot be loaded ({first_line(error)})") from error


def load_pickled(path: str, data: bytes, options: ModelOptions, trust_pickle: bool) -> Classifier:
    """A whole model saved with ``torch.save(model)`` (only with ``trust_pickle``), in eval mode.

    Raises
    ------
    ModelLoadError
        For a file torch cannot read, a pickle without ``trust_pickle``, a bare state_dict (which
        needs its architecture: ``ARCH:PATH``), or a pickled object that is not callable.
    """
    loaded = torch_load(
        path, data, trust_pickle, "not a TorchScript model, an ONNX model (*.onnx) or a torch.save file"
    )
    if isinstance(loaded, dict):
        raise ModelLoadError(
            f"{path}: holds a state_dict (weights without their architecture); pass it as ARCH:{path} with ARCH "
            f"one of {', '.join(sorted(ARCHITECTURES))} or a torchvision classification model such as resnet18"
        )
    if not callable(loaded):
        raise ModelLoadError(f"{path}: expected a model (images -> scores), got a pickled {type(loaded).__name__}")
    if isinstance(loaded, nn.Module):
        loaded.eval()
    return wrap_model(loaded, options, fingerprint=sha256(data), source=f"pickled model {path}")
