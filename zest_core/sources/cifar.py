"""CIFAR-10 and CIFAR-100 reference sets, read through ``torchvision.datasets``.

torchvision reads the "python version" of the datasets: a folder (``cifar-10-batches-py`` or
``cifar-100-python``) of pickled batches, each a dict with ``data`` (uint8, N×3072, the red, green and
blue 32×32 planes of each image) and ``labels`` (``fine_labels`` for CIFAR-100), plus a metadata file
of class names. Nothing is downloaded unless asked.

References
----------
Krizhevsky, "Learning Multiple Layers of Features from Tiny Images", tech. report, University of
Toronto, 2009 (the CIFAR-10 and CIFAR-100 datasets).
"""
from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..errors import ZestError
from ..pipeline.reference import ReferenceSet

if TYPE_CHECKING:
    from torchvision.datasets import CIFAR10

CIFAR_DATASETS = ("cifar10", "cifar100")  # lower-case names; torchvision is imported only when one is read


def load_cifar(
    name: str,
    root: str | os.PathLike,
    *,
    train: bool = False,
    n: int | None = None,
    seed: int = 0,
    download: bool = False,
    verify: bool = True,
) -> ReferenceSet:
    """CIFAR-10 or CIFAR-100 images as a reference set of uint8 32×32 RGB images with labels.

    Parameters
    ----------
    name : {"CIFAR10", "CIFAR100"}
        Which dataset (case-insensitive).
    root : str or path-like
        The folder holding ``cifar-10-batches-py/`` or ``cifar-100-python/`` (torchvision's ``root``).
    train : bool
        The training batches (50000 images) instead of the test batch (10000).
    n : int, optional
        Draw this many images, stratified by class and seeded (:meth:`ReferenceSet.sample`);
        None returns the whole split in file order.
    seed : int
        Seed of the draw.
    download : bool
        Fetch the dataset (about 170 MB, needs internet) into ``root`` when it is not there.
    verify : bool
        Check the files' MD5 checksums against the official ones before reading them. False reads
        any CIFAR-format files (a subset you wrote yourself, say); the batches are pickles, which can
        run code when read, so only do that for files you trust.

    Returns
    -------
    ReferenceSet
        Images of shape (N, 32, 32, 3) with their labels and ``class_names``.

    Raises
    ------
    ZestError
        If ``name`` is unknown, the files are missing (saying where it looked), do not match the
        official checksums, or are not CIFAR batches.
    """
    dataset_class = _dataset_class(name)
    folder = Path(root) / dataset_class.base_folder
    if not download:
        _require_files(dataset_class, folder, name)
    if verify:
        _verify_checksums(dataset_class, folder, name)
    try:
        # The files were checked above (present, and their checksums if asked), so torchvision is
        # given a subclass that only checks they exist; see _unverified.
        dataset = _unverified(dataset_class)(str(root), train=train, download=download)
    except (KeyError, ValueError, EOFError, pickle.UnpicklingError) as error:
        raise ZestError(
            f"{folder}: expected {name} batches (pickled dicts with 'data' and 'labels'), "
            f"got unreadable content ({type(error).__name__}: {error})"
        ) from error
    split = "train" if train else "test"
    refset = ReferenceSet.from_arrays(
        np.asarray(dataset.data, dtype=np.uint8),
        np.asarray(dataset.targets, dtype=np.int64),
        provenance=f"{dataset_class.__name__} {split} split ({folder})",
        class_names=[str(c) for c in dataset.classes],
    )
    return refset if n is None else refset.sample(n, seed)


def _dataset_class(name: str) -> type[CIFAR10]:
    key = name.lower().replace("-", "")
    if key not in CIFAR_DATASETS:
        raise ZestError(f"name: expected 'CIFAR10' or 'CIFAR100', got {name!r}")
    from torchvision import datasets

    return datasets.CIFAR10 if key == "cifar10" else datasets.CIFAR100


def _unverified(dataset_class: type[CIFAR10]) -> type[CIFAR10]:
    """``dataset_class`` with every MD5 checksum set to None, so torchvision only checks the files exist.

    torchvision's ``_check_integrity`` and ``_load_meta`` compare each file's MD5 with the official
    one, which refuses any CIFAR-format files but the original ones (such as the small ones the tests
    write) and hashes 170 MB on every load. ``torchvision.datasets.utils.check_integrity(path, None)``
    is documented to check only that the file exists, so the subclass keeps torchvision's own reading
    code and replaces only the checksum table; :func:`load_cifar` verifies the checksums itself first
    when ``verify=True``, naming the file that differs. Downloads still check the archive's MD5.
    """
    return type(
        f"Unverified{dataset_class.__name__}",
        (dataset_class,),
        {
            "train_list": [[file, None] for file, _ in dataset_class.train_list],
            "test_list": [[file, None] for file, _ in dataset_class.test_list],
            "meta": {**dataset_class.meta, "md5": None},
        },
    )


def _expected_files(dataset_class: type[CIFAR10]) -> list[tuple[str, str]]:
    """(file name, official MD5) of every file torchvision requires, whichever split is read."""
    entries = dataset_class.train_list + dataset_class.test_list
    return [(file, md5) for file, md5 in entries] + [(dataset_class.meta["filename"], dataset_class.meta["md5"])]


def _require_files(dataset_class: type[CIFAR10], folder: Path, name: str) -> None:
    missing = [file for file, _ in _expected_files(dataset_class) if not (folder / file).is_file()]
    if missing:
        where = f"{folder} has no {', '.join(missing)}" if folder.is_dir() else f"no folder {folder}"
        raise ZestError(
            f"{name}: dataset not found ({where}); expected the python version of {name} there "
            f"(root={str(folder.parent)!r}); pass download=True to fetch it (needs internet, about 170 MB)"
        )


def _verify_checksums(dataset_class: type[CIFAR10], folder: Path, name: str) -> None:
    from torchvision.datasets.utils import check_integrity

    for file, md5 in _expected_files(dataset_class):
        path = folder / file
        if path.is_file() and not check_integrity(str(path), md5):
            raise ZestError(
                f"{path}: expected the official {name} file (MD5 {md5}), got other content; "
                "pass verify=False to read CIFAR-format files of your own (only files you trust: they are pickles)"
            )
