"""Model queries: run a black-box model on the perturbed images, in batches, and check what it returns."""
from __future__ import annotations

import contextlib
import hashlib
from typing import Any, Callable, Iterator

import numpy as np
import torch

from ..errors import ModelInputError, ModelOutputError
from .perturbation import batch_plan, compose_samples
from .probe import Probe

ModelFn = Callable[[torch.Tensor], Any]


def resolve_device(name: str | torch.device = "auto") -> torch.device:
    """"auto" picks CUDA when it is available, else the CPU."""
    if isinstance(name, torch.device):
        return name
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("device='cuda' was asked for, but no CUDA device is available")
    if name not in ("cpu", "cuda"):
        raise ValueError(f"device must be 'auto', 'cpu' or 'cuda'; got {name!r}")
    return torch.device(name)


def effective_batch_size(batch_size: int | None, device: torch.device, input_shape: tuple[int, ...]) -> int:
    """The configured batch size, or the automatic one (see ``ZestConfig.batch_size``)."""
    if batch_size is not None:
        return batch_size
    if device.type != "cuda":
        return 256
    return max(32, min(4096, 2**24 // int(np.prod(input_shape))))


def model_fingerprint(model: Any) -> str | None:
    """A content hash of a model, or None when it cannot be computed.

    An ``nn.Module`` (TorchScript included) is hashed by its class and every tensor of its
    state_dict; any object may instead carry its own ``fingerprint`` string (adapters over files or
    endpoints do). A bare callable has no content to hash, so it is never cached.
    """
    own = getattr(model, "fingerprint", None)
    if isinstance(own, str) and own:
        return own
    if not isinstance(model, torch.nn.Module):
        return None
    digest = hashlib.sha256()
    digest.update(type(model).__qualname__.encode())
    if isinstance(model, torch.jit.ScriptModule):
        with contextlib.suppress(Exception):
            digest.update(model.code.encode())
    for name, tensor in model.state_dict().items():
        tensor = tensor.detach().cpu().contiguous()
        digest.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)}".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()[:32]


@contextlib.contextmanager
def prepared_model(model: ModelFn, device: torch.device) -> Iterator[ModelFn]:
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


def to_targets(scores: torch.Tensor, targets: str) -> torch.Tensor:
    """The regression targets in float64: the scores themselves, their softmax or log-softmax."""
    scores = scores.to(torch.float64)
    if targets == "logits":
        return scores
    if targets == "probabilities":
        return torch.softmax(scores, dim=1)
    if targets == "log_probabilities":
        return torch.log_softmax(scores, dim=1)
    raise ValueError(f"targets must be logits, probabilities or log_probabilities; got {targets!r}")


def check_outputs(outputs: Any, batch: int, num_classes: int | None, *, check_finite: bool = True) -> torch.Tensor:
    """Raise ModelOutputError unless ``outputs`` is a finite [batch, classes] matrix.

    ``check_finite=False`` leaves the NaN/inf test to the caller, which on a GPU can count bad scores
    on the device and look once at the end instead of synchronising after every batch.
    """
    if isinstance(outputs, (tuple, list)) and outputs and isinstance(outputs[0], torch.Tensor):
        raise ModelOutputError(
            f"the model returned a {type(outputs).__name__} of {len(outputs)} tensors; "
            "expected one tensor of class scores [batch, classes]"
        )
    if not isinstance(outputs, torch.Tensor):
        try:
            outputs = torch.as_tensor(np.asarray(outputs))
        except Exception as error:  # noqa: BLE001 - any unconvertible value gets the same message
            raise ModelOutputError(
                f"the model returned {type(outputs).__name__}, expected a tensor of class scores [batch, classes]"
            ) from error
    if outputs.ndim != 2 or outputs.shape[0] != batch:
        raise ModelOutputError(
            f"the model returned scores of shape {tuple(outputs.shape)} for a batch of {batch} images; "
            f"expected [{batch}, classes]"
        )
    if num_classes is not None and outputs.shape[1] != num_classes:
        raise ModelOutputError(
            f"the model returned {num_classes} classes in earlier batches and {outputs.shape[1]} in this one"
        )
    if not outputs.is_floating_point():
        outputs = outputs.to(torch.float64)
    if check_finite:
        _raise_if_nonfinite(int((~torch.isfinite(outputs)).sum()), f"a batch of {batch} images")
    return outputs


def _raise_if_nonfinite(count: int, where: str) -> None:
    if count:
        raise ModelOutputError(f"the model returned {count} NaN or infinite scores in {where}")


def query_batches(
    model: ModelFn, probe: Probe, *, batch_size: int | None, amp: bool = False, targets: str = "logits",
    progress: Callable[[int, int, str], None] | None = None,
) -> Iterator[tuple[list[tuple[int, int, int]], torch.Tensor]]:
    """Yield (runs, targets) for every batch of perturbed images, in the order of ``batch_plan``.

    ``runs`` lists the (image, first mask, stop mask) ranges the batch holds; ``targets`` is the
    float64 [batch, classes] matrix of the model's transformed outputs.
    """
    expected = getattr(model, "input_shape", None)
    if expected is not None and tuple(expected) != probe.input_shape:
        raise ModelInputError(
            f"the model expects inputs of shape {tuple(expected)} (C, H, W) but the reference images "
            f"are {probe.input_shape}"
        )
    num_samples = probe.config.num_samples
    total = probe.num_images * num_samples
    num_classes: int | None = None
    nonfinite = torch.zeros((), dtype=torch.int64, device=probe.device)
    done = 0
    use_amp = amp and probe.device.type == "cuda"
    with prepared_model(model, probe.device) as ready, torch.inference_mode():
        size = effective_batch_size(batch_size, probe.device, probe.input_shape)
        for runs in batch_plan(probe.num_images, num_samples, size):
            sample = torch.arange(done, done + sum(b - a for _, a, b in runs), device=probe.device)
            batch = compose_samples(
                probe.images, probe.fills, probe.segments_device, probe.masks_padded,
                sample // num_samples, sample % num_samples,
            )
            try:
                with torch.autocast("cuda", dtype=torch.float16, enabled=use_amp):
                    raw = ready(batch)
            except Exception as error:
                if num_classes is None:  # the first batch: most likely a shape mismatch
                    raise ModelInputError(
                        f"the model failed on its first batch, of shape {tuple(batch.shape)} (B, C, H, W, "
                        f"pixel values in [0, 1]): {type(error).__name__}: {error}. Does the model take "
                        f"{probe.input_shape[0]}-channel {probe.input_shape[1]}×{probe.input_shape[2]} images?"
                    ) from error
                raise
            # The first batch is checked at once; later ones count bad scores on the device (no sync).
            outputs = check_outputs(raw, batch.shape[0], num_classes, check_finite=num_classes is None)
            if num_classes is not None:
                nonfinite += (~torch.isfinite(outputs)).sum().to(probe.device)
            num_classes = outputs.shape[1]
            done += batch.shape[0]
            yield runs, to_targets(outputs.to(probe.device), targets)
            if progress is not None:
                progress(done, total, "query")
    _raise_if_nonfinite(int(nonfinite), f"the {total} perturbed images")
