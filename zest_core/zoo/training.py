"""Small, deterministic training and evaluation helpers for image classifiers (used by the demo and the zoo).

Images are given in pixel space as uint8 arrays, (N, H, W) or (N, H, W, 3), and handed to the model
as float tensors [N, C, H, W] in [0, 1], the same input convention as the Zest engine: a model's
normalisation belongs to the model.
"""
from __future__ import annotations

import operator
from typing import Any, Callable, Iterable

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from .._shared.checks import check_choice, check_int
from ..errors import ZestError
from ..pipeline.reference import ReferenceSet
from ..sources.architectures import build_architecture


def init_model(name: str, *, seed: int, **kwargs: Any) -> nn.Module:
    """A freshly initialised network of a named architecture, its weights fixed by ``seed``.

    The global torch random state is left as it was.

    Parameters
    ----------
    name : str
        A key of :data:`zest_core.sources.architectures.ARCHITECTURES`.
    seed : int
    **kwargs
        ``num_classes`` and ``in_channels``, passed to :func:`~zest_core.sources.architectures.build_architecture`.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build_architecture(name, **kwargs)


LossFn = Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]
EpochFn = Callable[[int, nn.Module], None]
SCHEDULES = ("constant", "onecycle")


def train_classifier(model: nn.Module, images: np.ndarray, labels: np.ndarray, **train: Any) -> nn.Module:
    """Train ``model`` in place with Adam on the cross-entropy loss; deterministic given ``seed``.

    Parameters
    ----------
    model : nn.Module
        Maps float images [B, C, H, W] in [0, 1] to class scores [B, classes].
    images : ndarray, uint8, shape (N, H, W) or (N, H, W, 3)
    labels : ndarray of int, shape (N,)
    **train
        :func:`fit`'s keyword arguments: epochs, lr, seed, batch_size, schedule, shift, parameters,
        on_epoch (with fit's defaults).

    Returns
    -------
    nn.Module
        The same model, trained, in eval mode.
    """
    inputs = as_inputs(images)
    return fit_labels(model, inputs, _as_labels(labels, len(inputs)), **train)


def fit_labels(model: nn.Module, inputs: torch.Tensor, labels: torch.Tensor, **train: Any) -> nn.Module:
    """:func:`fit` on the cross-entropy loss against ``labels`` (int64 [N]), for data already in tensors.

    ``**train`` are :func:`fit`'s keyword arguments (epochs, lr, seed, schedule, shift, ...).
    """

    def cross_entropy(net: nn.Module, batch: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(net(batch), labels[rows])

    return fit(model, inputs, cross_entropy, **train)


def fit(
    model: nn.Module,
    inputs: torch.Tensor,
    loss: LossFn,
    *,
    epochs: int = 1,
    lr: float = 1e-3,
    seed: int = 0,
    batch_size: int = 64,
    schedule: str = "constant",
    shift: int = 0,
    parameters: Iterable[nn.Parameter] | None = None,
    on_epoch: EpochFn | None = None,
) -> nn.Module:
    """Minimise ``loss`` over ``inputs`` with Adam, in place; deterministic given ``seed``.

    Parameters
    ----------
    model : nn.Module
    inputs : Tensor, float [N, C, H, W] in [0, 1]
    loss : callable (model, batch, rows) -> scalar Tensor
        ``batch`` is the (possibly shifted) images of the dataset rows ``rows``; the loss looks up
        whatever targets it needs (labels, a teacher's outputs on ``batch``) by itself.
    epochs : int
        Passes over the data (0 leaves the model unchanged).
    lr : float
        Adam's learning rate: constant, or the peak of a one-cycle schedule (Smith & Topin, 2019).
    seed : int
        Seeds the data order and the shifts (the model's initial weights are the caller's).
    batch_size : int
    schedule : {"constant", "onecycle"}
    shift : int
        Augmentation: every image is translated by a random whole number of pixels in [-shift, shift]
        along each axis (zero padding); 0 trains on the images as they are.
    parameters : iterable of Parameter, optional
        What the optimiser updates (default: all of the model's); the rest stays frozen.
    on_epoch : callable (epoch, model), optional
        Called in eval mode after every epoch (1-based), to checkpoint or evaluate.

    Returns
    -------
    nn.Module
        The same model, trained, in eval mode.
    """
    _check_count("epochs", epochs, minimum=0)
    _check_count("batch_size", batch_size, minimum=1)
    _check_count("shift", shift, minimum=0)
    if not float(lr) > 0:
        raise ZestError(f"lr: expected a positive learning rate, got {lr}")
    check_choice("schedule", schedule, SCHEDULES)
    trainable = list(model.parameters() if parameters is None else parameters)
    if not trainable:
        raise ZestError("parameters: expected at least one parameter to train, got none")
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.Adam(trainable, lr=lr)
    steps_per_epoch = -(-len(inputs) // batch_size)
    scheduler = None
    if schedule == "onecycle" and epochs > 0:
        scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=epochs * steps_per_epoch)
    for epoch in range(1, epochs + 1):
        model.train()
        order = torch.randperm(len(inputs), generator=generator)
        for start in range(0, len(inputs), batch_size):
            rows = order[start:start + batch_size]
            batch = random_shift(inputs[rows], shift, generator) if shift else inputs[rows]
            optimizer.zero_grad(set_to_none=True)
            loss(model, batch, rows).backward()
            optimizer.step()
            if scheduler is not None:
                scheduler.step()
        model.eval()
        if on_epoch is not None:
            on_epoch(epoch, model)
    return model.eval()


def random_shift(images: torch.Tensor, shift: int, generator: torch.Generator) -> torch.Tensor:
    """Translate each image [C, H, W] of a batch by its own random offsets in [-shift, shift], zero-padded."""
    count, _, height, width = images.shape
    padded = F.pad(images, (shift, shift, shift, shift))
    offsets = torch.randint(0, 2 * shift + 1, (2, count), generator=generator)
    rows = torch.arange(height)[None, :] + offsets[0][:, None]  # [B, H]
    cols = torch.arange(width)[None, :] + offsets[1][:, None]  # [B, W]
    batch = torch.arange(count)[:, None, None]
    # Advanced indexing puts the indexed axes first: [B, H, W, C] → [B, C, H, W].
    return padded.permute(0, 2, 3, 1)[batch, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2)


@torch.no_grad()
def predict(model: nn.Module, images: np.ndarray, *, batch_size: int = 1000) -> np.ndarray:
    """The model's predicted class (argmax of its scores) for every image, evaluated in eval mode."""
    inputs = as_inputs(images)
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


def as_inputs(images: np.ndarray) -> torch.Tensor:
    """uint8 pixel images → float tensor [N, C, H, W] in [0, 1] (validated as a reference set is)."""
    return ReferenceSet.from_arrays(np.asarray(images)).as_tensor()


def _as_labels(labels: np.ndarray, count: int) -> torch.Tensor:
    label_array = np.asarray(labels)
    if label_array.shape != (count,) or not np.issubdtype(label_array.dtype, np.integer):
        raise ZestError(
            f"labels: expected {count} integer labels, got shape {label_array.shape} of dtype {label_array.dtype}"
        )
    return torch.from_numpy(label_array.astype(np.int64))


def _check_count(name: str, value: Any, *, minimum: int) -> None:
    # NumPy integers count as integers here (check_int alone refuses them), as they always did.
    check_int(name, operator.index(value) if isinstance(value, np.integer) else value, minimum=minimum)
