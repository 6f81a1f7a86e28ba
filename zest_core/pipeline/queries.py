"""Model queries: run a black-box model on images in batches, check what it returns, turn it into targets.

:func:`run_model` is the one query loop: every black-box query in zest_core (the Zest probe's
perturbed images, ModelDiff's pairs, the baselines' reference images) goes through it, so that each
gets the same preparation of the model, the same checks of its scores and the same error messages.
Whatever the model raises becomes zest_core's error, naming the model and the batch. The checks of
the scores themselves are :mod:`.scores`'; counting queries is :mod:`.counting`'s, the device and
batch size :mod:`.device`'s, a model's content hash :mod:`.fingerprint`'s.
"""
from __future__ import annotations

import re
from typing import Any, Callable, Iterable, Iterator

import numpy as np
import torch

from ..errors import EndpointError, ModelInputError, ModelRuntimeError, ZestError, ZestTypeError
from .counting import REPEAT_CHECK_IMAGES, QueryCount, fingerprint_queries
from .device import effective_batch_size, prepared_model, resolve_device
from .perturbation import batch_plan, compose_samples
from .probe import Probe
from .scores import raise_if_nonfinite, check_outputs, check_repeatable_scores, model_outputs, to_targets

ModelFn = Callable[[torch.Tensor], Any]


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


def check_input_shape(
    model: Any, shape: tuple[int, ...], what: str, name: str = "the model", remedy: str | None = None
) -> None:
    """Raise ModelInputError when the model declares an ``input_shape`` other than ``shape`` (C, H, W).

    The one check of a model's declared input against the images it is about to be given, with one
    message: ``name`` is the model in the caller's words (a spec, "model A"), ``what`` the images,
    and ``remedy`` what the caller's user can do about it (the flag or box that converts images).
    """
    expected = getattr(model, "input_shape", None)
    if expected is None or tuple(expected) == tuple(shape):
        return
    message = f"{name} expects inputs of shape {tuple(expected)} (C, H, W) but {what} are {tuple(shape)}"
    if len(expected) == 3 and len(shape) == 3:
        (c, h, w), (c2, h2, w2) = expected, shape
        message = (f"{name} expects inputs of shape {tuple(expected)} (C, H, W): it takes {c}-channel {h}×{w} images, "
                   f"but {what} are {c2}-channel {h2}×{w2}, of shape {tuple(shape)}")
    raise ModelInputError(message + (f"; {remedy}" if remedy else ""))


def run_model(
    model: ModelFn,
    batches: Iterable[torch.Tensor],
    device: torch.device,
    *,
    amp: bool = False,
    forward: Callable[[torch.Tensor], Any] | None = None,
    name: str | None = None,
    what: str = "images",
    check_repeatable: bool = False,
    counter: QueryCount | None = None,
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
    name : str, optional
        The model in messages ("model_a's features()"); by default :func:`model_label`'s.
    what : str
        What the images are, for the messages ("perturbed images").
    check_repeatable : bool
        Query the first :data:`REPEAT_CHECK_IMAGES` images of the first batch a second time and raise
        ModelOutputError if the answers differ (:func:`check_repeatable_scores`). The second answer
        is only compared, never yielded.
    counter : QueryCount, optional
        Every call of the model is added to it as it is made (the repeat check's second one too: a
        remote API sees and bills it), failed calls included.

    Yields
    ------
    Tensor [B, classes]
        Floating scores, on the device the model returned them on; the class count never changes.

    Raises
    ------
    ModelInputError
        If the model fails on its first batch with what looks like a shape or dtype mismatch.
    ModelRuntimeError
        If the model raises any other exception, naming the model and the batch (the model's
        exception is the cause). An endpoint's EndpointError passes unchanged: it explains itself.
    ModelOutputError
        If it returns anything but a finite [B, classes] matrix, or (``check_repeatable``) answers
        the same batch differently. The first batch is checked at once; later ones count NaN/inf on
        the device, checked once after the last batch, so that a GPU is not synchronised after every batch.
    """
    label = name or model_label(model)
    num_classes: int | None = None
    nonfinite = torch.zeros((), dtype=torch.int64, device=device)
    total = 0
    use_amp = amp and device.type == "cuda"
    with prepared_model(model, device) as ready, torch.inference_mode():
        call = ready if forward is None else forward
        for number, batch in enumerate(batches, start=1):
            raw = _call_model(call, batch, use_amp, label, number, what, counter)
            outputs = check_outputs(raw, batch.shape[0], num_classes, check_finite=num_classes is None)
            repeat = REPEAT_CHECK_IMAGES - fingerprint_queries(model)  # a budget's probes come out of the check's share
            if num_classes is None and check_repeatable and repeat > 0:
                # A few images suffice to catch randomness, and keep the check's cost within a query budget.
                head = batch[:repeat]
                again = _call_model(call, head, use_amp, label, number, what, counter)
                check_repeatable_scores(outputs[:head.shape[0]], check_outputs(again, head.shape[0], outputs.shape[1]),
                                        label)
            if num_classes is not None:
                nonfinite += (~torch.isfinite(outputs)).sum().to(device)
            num_classes = outputs.shape[1]
            total += batch.shape[0]
            yield outputs
    raise_if_nonfinite(int(nonfinite), f"the {total} {what}")


def model_label(model: Any) -> str:
    """The model in messages: "the model (<its source>)", else its name or type ("the model (SmallCNN)")."""
    source = getattr(model, "source", None)
    if isinstance(source, str) and source:
        return f"the model ({source})"
    own = getattr(model, "__name__", None) if not isinstance(model, torch.nn.Module) else None
    return f"the model ({own if isinstance(own, str) and own else type(model).__name__})"


def _call_model(
    call: Callable[[torch.Tensor], Any], batch: torch.Tensor, use_amp: bool, name: str, number: int, what: str,
    counter: QueryCount | None = None,
) -> Any:
    """``call(batch)``, counted in ``counter``, with any exception of the model's own turned into zest_core's error."""
    if counter is not None:
        counter.add(batch.shape[0])
    try:
        with torch.autocast("cuda", dtype=torch.float16, enabled=use_amp):
            return call(batch)
    except EndpointError:
        raise  # a protocol failure names the endpoint and explains itself: no shape hint, no wrapping
    except Exception as error:  # noqa: BLE001 - whatever the model raises, the user gets one clear message
        cause = error_summary(error)
        if number == 1 and _SHAPE_WORDS.search(cause):  # most likely images of another size or channel count
            raise ModelInputError(_first_batch_failure(name, batch, cause)) from error
        raise ModelRuntimeError(
            f"{name} failed on batch {number} of the {what}, of shape {tuple(batch.shape)}: {cause}"
        ) from error


# What a shape or dtype mismatch says in PyTorch's, NumPy's and ONNX Runtime's messages ("mat1 and mat2
# shapes cannot be multiplied", "expected input[50, 1, 28, 28] to have 3 channels", "Got invalid
# dimensions", "expected scalar type Float"). Matched against the error's summary line only.
_SHAPE_WORDS = re.compile(r"shape|size|channel|mat[12]\b|dtype|scalar type|dimension|expected input", re.IGNORECASE)


def error_summary(error: BaseException) -> str:
    """One line for an exception: ``"Type: message"``, the message's last line when it has several.

    TorchScript's interpreter raises ``torch.jit.Error`` with its traceback first and the error
    itself ("builtins.RuntimeError: boom") last; that last line already names a type.
    """
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    if not lines:
        return type(error).__name__
    last = lines[-1]
    return last if len(lines) > 1 and re.match(r"^[\w.]+(Error|Exception): ", last) else f"{type(error).__name__}: {last}"


def _first_batch_failure(name: str, batch: torch.Tensor, cause: str) -> str:
    channels, height, width = (tuple(batch.shape[1:]) + (None, None, None))[:3]
    return (
        f"{name} failed on its first batch, of shape {tuple(batch.shape)} (B, C, H, W, pixel values in "
        f"[0, 1]): {cause}. Does the model take {channels}-channel {height}×{width} images?"
    )


def query_batches(
    model: ModelFn, probe: Probe, *, batch_size: int | None, amp: bool = False, targets: str = "logits",
    progress: Callable[[int, int, str], None] | None = None, check_repeatable: bool = False,
    counter: QueryCount | None = None,
) -> Iterator[tuple[list[tuple[int, int, int]], torch.Tensor]]:
    """Yield (runs, targets) for every batch of the probe's perturbed images, in the order of ``batch_plan``.

    ``runs`` lists the (image, first mask, stop mask) ranges the batch holds; ``targets`` is the
    float64 [batch, classes] matrix of the model's transformed outputs, on the probe's device.
    ``check_repeatable`` and ``counter`` are :func:`run_model`'s (the first images of the first batch
    are asked twice, and only compared; every call is counted).
    """
    check_input_shape(model, probe.input_shape, "the reference images")
    num_samples = probe.config.num_samples
    total = probe.num_images * num_samples
    size = effective_batch_size(batch_size, probe.device, probe.input_shape)
    plan = list(batch_plan(probe.num_images, num_samples, size))
    outputs_kind = model_outputs(model)

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
    outputs = run_model(
        model, composed(), probe.device, amp=amp, what="perturbed images", check_repeatable=check_repeatable,
        counter=counter,
    )
    # run_model first: zip then asks it once more after the last batch, which runs its final check.
    for scores, runs in zip(outputs, plan, strict=True):
        done += scores.shape[0]
        yield runs, to_targets(scores.to(probe.device), targets, outputs_kind)
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
    name: str | None = None,
    counter: QueryCount | None = None,
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
    forward, name, counter
        As in :func:`run_model` (``counter`` counts every call).

    Returns
    -------
    ndarray of float64, shape (n, classes)

    Raises
    ------
    ModelInputError
        If the model declares another input shape or fails on its first batch.
    ModelRuntimeError
        If the model raises an exception of its own (see :func:`run_model`).
    ModelOutputError
        If it returns anything but finite scores with one row per image and a fixed class count.
    """
    batch_size = check_batch_size(batch_size)
    tensor = torch.as_tensor(images)
    if tensor.ndim != 4 or tensor.shape[0] == 0:
        raise ZestError(f"images: expected a non-empty batch [n, C, H, W], got shape {tuple(tensor.shape)}")
    target = resolve_device(device)
    shape = tuple(int(n) for n in tensor.shape[1:])
    check_input_shape(model, shape, "the images", name=name or "the model")
    size = effective_batch_size(batch_size, target, shape)
    batches = (tensor[s:s + size].to(device=target, dtype=dtype) for s in range(0, tensor.shape[0], size))
    outputs = run_model(model, batches, target, forward=forward, name=name, counter=counter)
    rows = [scores.detach().to("cpu", torch.float64) for scores in outputs]
    return torch.cat(rows).numpy()
