"""``torch.export`` programs (``.pt2`` files written by ``torch.export.save``), recognised by their contents.

PyTorch 2.14 deprecates ``torch.jit.load`` in favour of ``torch.export``. An exported program is a
graph of ATen operators plus its weights, but ``torch.export.load`` reads the weights and constants
with ``torch.load(..., weights_only=False)`` and ``pickle.loads`` (torch/export/pt2_archive/_package.py
in torch 2.14.1; its own docstring warns "uses pickle under the hood ... Never load data from an
untrusted source"). Loading a ``.pt2`` file can therefore run arbitrary code from it, and it falls
under ``trust_pickle`` like any pickle.
"""
from __future__ import annotations

import io
import zipfile

import torch
from torch import nn

from ....errors import ModelLoadError
from ..classifier import Classifier, ModelOptions, wrap_model
from ..files import first_line, quiet_torch, sha256


def is_exported_program(data: bytes) -> bool:
    """Whether ``data`` is a ``torch.export.save`` archive: a zip whose ``archive_format`` says "pt2"."""
    if not data.startswith(b"PK"):
        return False
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            marker = next((n for n in archive.namelist() if n.split("/")[-1] == "archive_format"), None)
            return marker is not None and archive.read(marker)[:16].strip() == b"pt2"
    except (zipfile.BadZipFile, OSError, ValueError, KeyError):
        return False


def load_exported_program(path: str, data: bytes, options: ModelOptions, trust_pickle: bool) -> Classifier:
    """The module of the exported program in ``data`` (the bytes of ``path``); only with ``trust_pickle``.

    Raises
    ------
    ModelLoadError
        Without ``trust_pickle`` (the risk explained), or for an archive torch cannot load.
    """
    if not trust_pickle:
        raise ModelLoadError(
            f"{path}: is a torch.export program (.pt2). torch.export.load unpickles its weights and constants, "
            "which can run arbitrary code from the file, so it is refused: pass trust_pickle=True "
            "(zest --trust-pickle) only for a file you trust, or save the weights as ARCH:PATH.safetensors"
        )
    try:
        with quiet_torch():
            module = torch.export.load(io.BytesIO(data)).module()
    except Exception as error:  # noqa: BLE001 - deserialisation raises many types
        raise ModelLoadError(f"{path}: not a loadable torch.export program ({first_line(error)})") from error
    return wrap_model(_Program(module), options, fingerprint=sha256(data), source=f"torch.export program {path}")


class _Program(nn.Module):
    """An exported program's module: it is exported in one mode, so ``train()``/``eval()`` leave it as it is.

    ``ExportedProgram.module()`` raises on ``train()`` and ``eval()``, which the engine calls on
    every module it runs.
    """

    def __init__(self, program: nn.Module) -> None:
        super().__init__()
        self.program = program

    def train(self, mode: bool = True) -> "_Program":
        self.training = mode
        return self

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.program(images)
