"""TorchScript files (``torch.jit.save``): recognised by their contents, whatever their name."""
from __future__ import annotations

import io
import zipfile

import torch

from ....errors import ModelLoadError
from ..classifier import Classifier, ModelOptions, wrap_model
from ..files import first_line, quiet_torch, sha256


def is_torchscript(data: bytes) -> bool:
    """Whether ``data`` is a TorchScript archive: a zip file with a constants.pkl, as torch checks."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            return any(name.split("/")[-1] == "constants.pkl" for name in archive.namelist())
    except (zipfile.BadZipFile, OSError, ValueError):
        return False


def load_torchscript(path: str, data: bytes, options: ModelOptions) -> Classifier:
    """The TorchScript model in ``data`` (the bytes of ``path``), in eval mode, on the CPU."""
    try:
        with quiet_torch():
            module = torch.jit.load(io.BytesIO(data), map_location="cpu")
    except Exception as error:  # noqa: BLE001 - torch raises many types for a file it cannot read
        raise ModelLoadError(f"{path}: not a readable TorchScript model ({first_line(error)})") from error
    return wrap_model(module.eval(), options, fingerprint=sha256(data), source=f"TorchScript {path}")
