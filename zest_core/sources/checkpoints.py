"""A training run's checkpoint files, found in a folder and ordered by epoch, as model specs."""
from __future__ import annotations

import os
import re
from pathlib import Path

from ..errors import ZestError
from .models import is_model_folder

CHECKPOINT_EXTENSIONS = (".pt", ".pth", ".ts", ".onnx", ".bin", ".ckpt", ".pt2", ".safetensors")


def folder_models(folder: str | os.PathLike) -> list[Path]:
    """The models a folder holds, sorted by name: model files (by extension) and model folders (with a ``config.json``).

    A folder that is itself a model folder is one model, not a folder of models: see
    :func:`zest_core.sources.models.is_model_folder`.
    """
    return sorted(
        p for p in Path(folder).iterdir()
        if (p.is_file() and p.suffix.lower() in CHECKPOINT_EXTENSIONS) or is_model_folder(str(p))
    )


def checkpoint_specs(folder: str | os.PathLike, *, arch: str | None = None) -> list[tuple[int, str]]:
    """The checkpoint files of a training run in a folder, by epoch, as :func:`zest_core.load_model` specs.

    The epoch of a file is the last number in its name (``epoch_07.pt`` → 7, ``ckpt-3.onnx`` → 3).

    Parameters
    ----------
    folder : str or path-like
        A folder of model files ending in .pt, .pth, .ts, .onnx, .bin, .ckpt, .pt2 or .safetensors.
    arch : str, optional
        For state_dict files: their architecture; the specs become ``ARCH:PATH``.

    Returns
    -------
    list of (int, str)
        (epoch, spec), sorted by epoch.

    Raises
    ------
    ZestError
        If the folder does not exist, holds no numbered model files, or two files share an epoch.
    """
    path = Path(folder)
    if not path.is_dir():
        raise ZestError(f"{path}: expected a folder of checkpoint files, got no such folder")
    found: dict[int, Path] = {}
    for file in sorted(path.iterdir()):
        numbers = re.findall(r"\d+", file.stem)
        if not file.is_file() or file.suffix.lower() not in CHECKPOINT_EXTENSIONS or not numbers:
            continue
        epoch = int(numbers[-1])
        if epoch in found:
            raise ZestError(
                f"{path}: expected one checkpoint file per epoch, got {found[epoch].name} and {file.name}, "
                f"both epoch {epoch}"
            )
        found[epoch] = file
    if not found:
        raise ZestError(
            f"{path}: expected checkpoint files (names with an epoch number, ending in "
            f"{', '.join(CHECKPOINT_EXTENSIONS)}), got no checkpoint files"
        )
    prefix = f"{arch}:" if arch else ""
    return [(epoch, f"{prefix}{found[epoch]}") for epoch in sorted(found)]
