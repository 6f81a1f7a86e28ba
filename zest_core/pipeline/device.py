"""Where and in what batches models run: the device, the automatic batch size, and a model prepared for queries."""
from __future__ import annotations

import contextlib
from typing import Iterator, TypeVar

import numpy as np
import torch

from .._shared.checks import check_choice
from ..errors import ZestError

Model = TypeVar("Model")

DEVICES = ("auto", "cpu", "cuda")


def resolve_device(name: str | torch.device = "auto") -> torch.device:
    """"auto" picks CUDA when it is available, else the CPU."""
    if isinstance(name, torch.device):
        return name
    check_choice("device", name, DEVICES)
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ZestError("device: expected an available device, got 'cuda' (no CUDA device is available)")
    return torch.device(name)


def effective_batch_size(batch_size: int | None, device: torch.device, input_shape: tuple[int, ...]) -> int:
    """The configured batch size, or the automatic one (see ``ZestConfig.batch_size``)."""
    if batch_size is not None:
        return batch_size
    if device.type != "cuda":
        # 256 for small images (faster than 1000 for small CNNs on 2 cores); fewer for large ones, whose
        # activations dominate memory: resnet18 at 224 px runs 30 images/s at 32 a batch (1.1 GB) and at
        # 256 (2.5 GB) alike on this 2-core machine (bench/bench_224.py, issue 22).
        return max(8, min(256, 2**22 // int(np.prod(input_shape))))
    return max(32, min(4096, 2**24 // int(np.prod(input_shape))))


@contextlib.contextmanager
def prepared_model(model: Model, device: torch.device) -> Iterator[Model]:
    """Put an ``nn.Module`` in eval mode on ``device`` for the queries, then restore it as it was."""
    if not isinstance(model, torch.nn.Module):
        yield model
        return
    was_training = model.training
    first = next(iter(model.parameters()), None)
    if first is None:
        first = next(iter(model.buffers()), None)
    original_device = first.device if first is not None else None
    model.eval()
    if original_device is not None and original_device != device:
        model.to(device)
    try:
        yield model
    finally:
        if original_device is not None and original_device != device:
            model.to(original_device)
        model.train(was_training)
