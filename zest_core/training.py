"""Small, deterministic training and evaluation helpers for image classifiers (used by the demo).

Images are given in pixel space as uint8 arrays, (N, H, W) or (N, H, W, 3), and handed to the model
as float tensors [N, C, H, W] in [0, 1], the same input convention as the Zest engine: a model's
normalisation belongs to the model.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from .architectures import build_architecture
from .reference import ReferenceSet


def init_model(name: str, *, seed: int, **kwargs: Any) -> nn.Module:
    """A freshly initialised network of a named architecture, its weights fixed by ``seed``.

    The global torch random state is left as it was.

    Parameters
    ----------
    name : str
        A key of :data:`zest_core.architectures.ARCHITECTURES`.
    seed : int
    **kwargs
        ``num_classes`` and ``in_channels``, passed to :func:`~zest_core.architectures.build_architecture`.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build_architecture(name, **kwargs)


def train_classifier(
    model: nn.Module,
    images: np.ndarray,
    labels: np.ndarray,
    *,
    epochs: int = 1,
    lr: float = 1e-3,
    seed: int = 0,
    batch_size: int = 64,
) -> nn.Module:
    """Train ``model`` in place with Adam on the cross-entropy loss; deterministic given ``seed``.

    Parameters
    ----------
    model : nn.Module
        Maps float images [B, C, H, W] in [0, 1] to class scores [B, classes].
    images : ndarray, uint8, shape (N, H, W) or (N, H, W, 3)
    labels : ndarray of int, shape (N,)
    epochs : int
        Passes over the data (0 leaves the model unchanged).
    lr : float
        Adam's learning rate.
    seed : int
        Seeds the data order of every epoch (the model's initial weights are the caller's).
    batch_size : int

    Returns
    -------
    nn.Module
        The same model, trained, in eval mode.
    """
    _check_positive("epochs", epochs, allow_zero=True)
    _check_positive("batch_size", batch_size)
    if not float(lr) > 0:
        raise ValueError(f"lr: expected a positive learning rate, got {lr}")
    inputs, targets = _as_tensors(images, labels)
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    for _ in range(epochs):
        order = torch.randperm(len(inputs), generator=generator)
        for start in range(0, len(inputs), batch_size):
            batch = order[start:start + batch_size]
            optimizer.zero_grad(set_to_none=True)
            F.cross_entropy(model(inputs[batch]), targets[batch]).backward()
            optimizer.step()
    return model.eval()


@torch.no_grad()
def predict(model: nn.Module, images: np.ndarray, *, batch_size: int = 1000) -> np.ndarray:
    """The model's predicted class (argmax of its scores) for every image, evaluated in eval mode."""
    inputs = _as_inputs(images)
    was_training = model.training
    model.eval()
    try:
        scores = [model(inputs[start:start + batch_size]) for start in range(0, len(inputs), batch_size)]
    finally:
        model.train(was_training)
    return torch.cat(scores).argmax(dim=1).numpy()


def accuracy(model: nn.Module, images: np.ndarray, labels: np.ndarray) -> float:
    """The fraction of ``images`` the model classifies as ``labels``, in [0, 1]."""
    predictions = predict(model, images)
    return float(np.mean(predictions == _as_labels(labels, len(predictions)).numpy()))


def _as_inputs(images: np.ndarray) -> torch.Tensor:
    """uint8 pixel images → float tensor [N, C, H, W] in [0, 1] (validated as a reference set is)."""
    return ReferenceSet.from_arrays(np.asarray(images)).as_tensor()


def _as_tensors(images: np.ndarray, labels: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    inputs = _as_inputs(images)
    return inputs, _as_labels(labels, len(inputs))


def _as_labels(labels: np.ndarray, count: int) -> torch.Tensor:
    label_array = np.asarray(labels)
    if label_array.shape != (count,) or not np.issubdtype(label_array.dtype, np.integer):
        raise ValueError(
            f"labels: expected {count} integer labels, got shape {label_array.shape} of dtype {label_array.dtype}"
        )
    return torch.from_numpy(label_array.astype(np.int64))


def _check_positive(name: str, value: Any, *, allow_zero: bool = False) -> None:
    minimum = 0 if allow_zero else 1
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name}: expected an int >= {minimum}, got {value!r}")
