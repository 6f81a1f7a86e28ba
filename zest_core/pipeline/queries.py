"""Model queries: run a black-box model on images in batches, check what it returns, turn it into targets.

:func:`run_model` is the one query loop: every black-box query in zest_core (the Zest probe's
perturbed images, ModelDiff's pairs, the baselines' reference images) goes through it, so that each
gets the same preparation of the model, the same checks of its scores and the same error messages.
Whatever the model raises becomes zest_core's error, naming the model and the batch. The checks of
the scores themselves are :mod:`.scores`' (re-exported here).
"""
from __future__ import annotations

import contextlib
import hashlib
import re
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator, Mapping

import numpy as np
import torch

from .._shared.checks import check_choice
from ..errors import EndpointError, ModelInputError, ModelOutputError, ModelRuntimeError, ZestError, ZestTypeError
from .perturbation import batch_plan, compose_samples
from .probe import Probe
# The checks of what a model returns live in .scores; imported from here by the code before the split.
from .scores import (  # noqa: F401 - re-exported
    OUTPUT_KINDS,
    PROBABILITY_TOLERANCE,
    REPEAT_TOLERANCE,
    _raise_if_nonfinite,
    check_outputs,
    check_repeatable_scores,
    model_outputs,
    scores_to_probabilities,
    to_targets,
)

ModelFn = Callable[[torch.Tensor], Any]
# The images of the first batch that ``check_repeatable`` asks about a second time.
REPEAT_CHECK_IMAGES = 16
# The most images a model's fingerprint may have cost (an endpoint without a model_id is fingerprinted by
# its answers to the protocol's 3 probe images). They come out of the repeat check's share of a budget.
MAX_FINGERPRINT_IMAGES = 3


def fingerprint_queries(model: Any) -> int:
    """Images a model (or the model it wraps, through ``.model``) spent on its own fingerprint: 0 for most."""
    for _ in range(8):  # wrappers of wrappers, bounded
        spent = getattr(model, "fingerprint_images", None)
        if isinstance(spent, int):
            return spent
        model = getattr(model, "model", None)
        if model is None:
            return 0
    return 0
DEVICES = ("auto", "cpu", "cuda")


@dataclass
class QueryCount:
    """The queries made of a black-box model: how many calls, and how many images they held in all.

    A suspect behind a metered API is paid per query: these counts are the cost of a comparison.
    :func:`run_model` adds every call it makes to one (the repeat check's second call included);
    an :class:`~zest_core.EndpointModel` keeps its own, of the HTTP requests it actually sent.

    Attributes
    ----------
    calls : int
        Calls of the model (batches; HTTP requests for an endpoint's own count).
    images : int
        Images in those calls.
    """

    calls: int = 0
    images: int = 0

    def add(self, images: int, calls: int = 1) -> None:
        """Count ``calls`` more calls holding ``images`` images in all."""
        self.calls += int(calls)
        self.images += int(images)

    def __add__(self, other: "QueryCount") -> "QueryCount":
        if not isinstance(other, QueryCount):
            return NotImplemented
        return QueryCount(self.calls + other.calls, self.images + other.images)

    def __iadd__(self, other: "QueryCount") -> "QueryCount":
        """In place, so that a counter handed down keeps counting (``counter += made``)."""
        if not isinstance(other, QueryCount):
            return NotImplemented
        self.add(other.images, other.calls)
        return self

    def to_dict(self) -> dict[str, int]:
        return {"calls": self.calls, "images": self.images}

    @classmethod
    def from_dict(cls, counts: Mapping[str, Any] | None) -> "QueryCount | None":
        """The count a ``to_dict()`` holds (as a file stores it), or None when there is none or it is malformed."""
        if not isinstance(counts, Mapping):
            return None
        values = [counts.get("calls"), counts.get("images")]
        if not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v >= 0 for v in values):
            return None
        return cls(int(values[0]), int(values[1]))


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
        # 256 for small images (faster than 1000 for small CNNs on 2 cores); fewer for large ones, whose
        # activations dominate memory: resnet18 at 224 px runs 30 images/s at 32 a batch (1.1 GB) and at
        # 256 (2.5 GB) alike on this 2-core machine (bench/bench_224.py, issue 22).
        return max(8, min(256, 2**22 // int(np.prod(input_shape))))
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
    _raise_if_nonfinite(int(nonfinite), f"the {total} {what}")


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
