"""Model queries: run a black-box model on images in batches, check what it returns, turn it into targets.

:func:`run_model` is the one query loop: every black-box query in zest_core (the Zest probe's
perturbed images, ModelDiff's pairs, the baselines' reference images) goes through it, so that each
gets the same preparation of the model, the same checks of its scores and the same error messages.
"""
from __future__ import annotations

import contextlib
import hashlib
from typing import Any, Callable, Iterable, Iterator

import numpy as np
import torch

from .._shared.checks import check_choice
from ..errors import EndpointError, ModelInputError, ModelOutputError, ZestError, ZestTypeError
from .perturbation import batch_plan, compose_samples
from .probe import Probe

ModelFn = Callable[[torch.Tensor], Any]
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


def check_model(name: str, model: Any) -> ModelFn:
    """``model`` itself if it is callable (images -> scores)."""
    if not callable(model):
        raise ZestTypeError(f"{name}: expected a callable model (images -> scores), got {type(model).__name__}")
    return model


def check_batch_size(batch_size: Any) -> int | None:
    """``batch_size`` as an int if it is None or an integer ≥ 1 (NumPy integers included)."""
    if batch_size is None:
        return None
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ZestError(f"batch_size: expected None or an integer ≥ 1, got {batch_size!r}")
    return int(batch_size)


def check_input_shape(model: Any, shape: tuple[int, ...], what: str, name: str = "the model") -> None:
    """Raise ModelInputError when the model declares an ``input_shape`` other than ``shape`` (C, H, W)."""
    expected = getattr(model, "input_shape", None)
    if expected is not None and tuple(expected) != tuple(shape):
        raise ModelInputError(
            f"{name} expects inputs of shape {tuple(expected)} (C, H, W) but {what} are {tuple(shape)}"
        )


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
    """The regression targets in float64: the scores themselves, their softmax or log-softmax.

    This is ``ZestConfig.targets``, what the local models fit, applied to the scores whatever the
    model declares them to be: signatures and their cache keys rest on it. A model's class
    probabilities, which do respect its declared ``outputs``, are :func:`scores_to_probabilities`'s.
    """
    check_choice("targets", targets, ("logits", "probabilities", "log_probabilities"))
    scores = scores.to(torch.float64)
    if targets == "probabilities":
        return torch.softmax(scores, dim=1)
    return torch.log_softmax(scores, dim=1) if targets == "log_probabilities" else scores


OUTPUT_KINDS = ("logits", "probabilities")
# How far a declared probability may stray from [0, 1], and a row's sum from 1: the rounding of a
# float16 (autocast) or float32 softmax over many classes, not a wrong declaration.
PROBABILITY_TOLERANCE = 1e-2


def model_outputs(model: Any) -> str:
    """What a model's scores are: its declared ``outputs`` when that is "probabilities", else "logits".

    A :class:`~zest_core.Classifier` declares ``outputs``; a bare callable, or an endpoint that does
    not say, is taken to return logits.
    """
    return "probabilities" if getattr(model, "outputs", None) == "probabilities" else "logits"


def scores_to_probabilities(scores: torch.Tensor, outputs: str) -> torch.Tensor:
    """Class probabilities, float64, from a model's scores as the model declares them.

    Parameters
    ----------
    scores : Tensor, shape (B, C)
    outputs : {"logits", "probabilities"}
        What the scores are (a :class:`~zest_core.Classifier`'s ``outputs``; see :func:`model_outputs`).
        Logits go through a softmax over the classes; probabilities are returned as they are, once
        checked.

    Returns
    -------
    Tensor of float64, shape (B, C)
        Differentiable when ``scores`` is (the check runs outside autograd).

    Raises
    ------
    ModelOutputError
        If scores declared as probabilities are not (values outside [0, 1] or rows that do not sum
        to 1, within ``PROBABILITY_TOLERANCE``): such a model is mis-declared, and using its scores
        as they are would silently mean something else.
    """
    check_choice("outputs", outputs, OUTPUT_KINDS)
    scores = scores.to(torch.float64)
    if outputs == "logits":
        return torch.softmax(scores, dim=1)
    if scores.numel() == 0:
        return scores
    with torch.no_grad():
        values = scores.detach()
        low, high = float(values.min()), float(values.max())
        worst_sum = float((values.sum(dim=1) - 1.0).abs().max())
    if not (low >= -PROBABILITY_TOLERANCE and high <= 1.0 + PROBABILITY_TOLERANCE) or worst_sum > PROBABILITY_TOLERANCE:
        raise ModelOutputError(
            "scores: expected probabilities (the model declares outputs='probabilities': values in [0, 1], "
            f"rows summing to 1), got values in [{low:.4g}, {high:.4g}] with a row sum off by {worst_sum:.4g}"
        )
    return scores


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


def run_model(
    model: ModelFn,
    batches: Iterable[torch.Tensor],
    device: torch.device,
    *,
    amp: bool = False,
    forward: Callable[[torch.Tensor], Any] | None = None,
    name: str = "the model",
    what: str = "images",
) -> Iterator[torch.Tensor]:
    """Run a black-box model on batches of images; yield its checked scores, one matrix per batch.

    The one query loop of zest_core. The model is prepared once (:func:`prepared_model`: eval mode,
    on ``device``, restored afterwards) and run under ``torch.inference_mode``.

    Parameters
    ----------
    model : callable
        Images [B, C, H, W] in [0, 1] → scores [B, classes].
    batches : iterable of Tensor [B, C, H, W]
        Consumed lazily, one batch per score matrix yielded, already on the device they run on.
    device : torch.device
        Where the model runs (and where bad scores are counted).
    amp : bool
        Run under CUDA autocast (float16); ignored off CUDA.
    forward : callable, optional
        What to call on each batch instead of the model (a white-box model's ``features``); the
        model is still the one prepared.
    name : str
        The model in messages ("the model", "model_a's features()").
    what : str
        What the images are, for the final message ("perturbed images").

    Yields
    ------
    Tensor [B, classes]
        Floating scores, on the device the model returned them on; the class count never changes.

    Raises
    ------
    ModelInputError
        If the model fails on its first batch (most likely images of another size or channel count).
    ModelOutputError
        If it returns anything but a finite [B, classes] matrix. The first batch is checked at once;
        later ones count NaN/inf on the device, checked once after the last batch, so that a GPU is
        not synchronised after every batch.
    """
    num_classes: int | None = None
    nonfinite = torch.zeros((), dtype=torch.int64, device=device)
    total = 0
    use_amp = amp and device.type == "cuda"
    with prepared_model(model, device) as ready, torch.inference_mode():
        call = ready if forward is None else forward
        for batch in batches:
            try:
                with torch.autocast("cuda", dtype=torch.float16, enabled=use_amp):
                    raw = call(batch)
            except EndpointError:
                raise  # a protocol failure names the endpoint and explains itself: no shape hint
            except Exception as error:
                if num_classes is None:  # the first batch: most likely a shape mismatch
                    raise ModelInputError(_first_batch_failure(name, batch, error)) from error
                raise
            outputs = check_outputs(raw, batch.shape[0], num_classes, check_finite=num_classes is None)
            if num_classes is not None:
                nonfinite += (~torch.isfinite(outputs)).sum().to(device)
            num_classes = outputs.shape[1]
            total += batch.shape[0]
            yield outputs
    _raise_if_nonfinite(int(nonfinite), f"the {total} {what}")


def _first_batch_failure(name: str, batch: torch.Tensor, error: Exception) -> str:
    channels, height, width = (tuple(batch.shape[1:]) + (None, None, None))[:3]
    return (
        f"{name} failed on its first batch, of shape {tuple(batch.shape)} (B, C, H, W, pixel values in "
        f"[0, 1]): {type(error).__name__}: {error}. Does the model take {channels}-channel "
        f"{height}×{width} images?"
    )


def query_batches(
    model: ModelFn, probe: Probe, *, batch_size: int | None, amp: bool = False, targets: str = "logits",
    progress: Callable[[int, int, str], None] | None = None,
) -> Iterator[tuple[list[tuple[int, int, int]], torch.Tensor]]:
    """Yield (runs, targets) for every batch of the probe's perturbed images, in the order of ``batch_plan``.

    ``runs`` lists the (image, first mask, stop mask) ranges the batch holds; ``targets`` is the
    float64 [batch, classes] matrix of the model's transformed outputs, on the probe's device.
    """
    check_input_shape(model, probe.input_shape, "the reference images")
    num_samples = probe.config.num_samples
    total = probe.num_images * num_samples
    size = effective_batch_size(batch_size, probe.device, probe.input_shape)
    plan = list(batch_plan(probe.num_images, num_samples, size))

    def composed() -> Iterator[torch.Tensor]:
        done = 0
        for runs in plan:
            count = sum(b - a for _, a, b in runs)
            sample = torch.arange(done, done + count, device=probe.device)
            done += count
            yield compose_samples(
                probe.images, probe.fills, probe.segments_device, probe.masks_padded,
                sample // num_samples, sample % num_samples,
            )

    done = 0
    outputs = run_model(model, composed(), probe.device, amp=amp, what="perturbed images")
    # run_model first: zip then asks it once more after the last batch, which runs its final check.
    for scores, runs in zip(outputs, plan, strict=True):
        done += scores.shape[0]
        yield runs, to_targets(scores.to(probe.device), targets)
        if progress is not None:
            progress(done, total, "query")


def query_scores(
    model: ModelFn,
    images: np.ndarray | torch.Tensor,
    *,
    batch_size: int | None = None,
    device: str | torch.device = "auto",
    dtype: torch.dtype | None = torch.float32,
    forward: Callable[[torch.Tensor], Any] | None = None,
    name: str = "the model",
) -> np.ndarray:
    """Run a black-box model on images in batches and return its checked scores.

    Parameters
    ----------
    model : callable
        Maps float images [B, C, H, W] in [0, 1] to scores [B, classes] (an ``nn.Module`` is run in
        eval mode on ``device`` and restored after).
    images : array or Tensor, shape (n, C, H, W), values in [0, 1]
    batch_size : int, optional
        Images per call; None picks it as :class:`~zest_core.ZestConfig` does. The last batch may be
        partial.
    device : {"auto", "cpu", "cuda"} or torch.device
    dtype : torch.dtype or None, default float32
        What the images are cast to; None keeps theirs.
    forward, name
        As in :func:`run_model`.

    Returns
    -------
    ndarray of float64, shape (n, classes)

    Raises
    ------
    ModelInputError
        If the model declares another input shape or fails on its first batch.
    ModelOutputError
        If it returns anything but finite scores with one row per image and a fixed class count.
    """
    batch_size = check_batch_size(batch_size)
    tensor = torch.as_tensor(images)
    if tensor.ndim != 4 or tensor.shape[0] == 0:
        raise ZestError(f"images: expected a non-empty batch [n, C, H, W], got shape {tuple(tensor.shape)}")
    target = resolve_device(device)
    shape = tuple(int(n) for n in tensor.shape[1:])
    check_input_shape(model, shape, "the images", name=name)
    size = effective_batch_size(batch_size, target, shape)
    batches = (tensor[s:s + size].to(device=target, dtype=dtype) for s in range(0, tensor.shape[0], size))
    rows = [scores.detach().to("cpu", torch.float64) for scores in run_model(model, batches, target, forward=forward, name=name)]
    return torch.cat(rows).numpy()
