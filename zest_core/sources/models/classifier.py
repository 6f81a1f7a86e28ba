"""The one contract every model is reduced to: :class:`Classifier`, images in pixel space in, class scores out.

Zest compares models through their predictions alone [1]_, so every model the project takes (a
file, an endpoint, a Python callable) becomes a :class:`Classifier`: float images [B, C, H, W] with
pixel values in [0, 1] go in, class scores [B, classes] come out. A classifier's ``fingerprint`` is
a content hash (the file's bytes, or the module's weights): the signature cache's key. A bare
callable has none, so its signatures are never cached.

References
----------
.. [1] Jia, Yaghini, Choquette-Choo, Dullerud, Thudi, Chandrasekaran & Papernot, "A Zest of LIME:
   Towards Architecture-Independent Model Distances", ICLR 2023.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np
import torch
from torch import nn

from ..._shared.checks import check_choice
from ...errors import ZestError, ZestTypeError
from ...pipeline.fingerprint import model_fingerprint
from ..architectures import Normalize
from .files import sha256

OUTPUTS = ("logits", "probabilities")

Normalization = tuple[Sequence[float], Sequence[float]]


class Classifier:
    """A black-box image classifier: images in pixel space go in, class scores come out.

    Wrapping an ``nn.Module`` gives a :class:`ModuleClassifier`, itself an ``nn.Module``, so the
    engine can move it to its device and put it in eval mode; any other callable (an ONNX runtime
    session, an HTTP endpoint, a function) gives a plain ``Classifier``.

    Parameters
    ----------
    model : callable
        Maps a float tensor [B, C, H, W] (normalised as ``normalization`` says) to scores [B, classes].
    class_names : sequence of str, optional
        Defaults to the model's own ``class_names``, else "0", "1", ... when ``num_classes`` is
        given, else None (unknown).
    input_shape : (C, H, W), optional
        The images the model takes; defaults to the model's own ``input_shape``, else None
        (unknown). The engine refuses reference images of another shape.
    normalization : (mean, std), optional
        Per-channel ``(x - mean) / std`` applied before the wrapped model (the model's
        normalisation belongs to the model, not to the engine).
    outputs : {"logits", "probabilities"}, optional
        What the scores are; defaults to the model's own ``outputs``, else "logits".
    fingerprint : str, optional
        Content hash of the wrapped model, e.g. its file's sha256. By default
        :func:`zest_core.model_fingerprint` of the model, read afresh each time (None for a bare
        callable). A given ``normalization`` is folded into the classifier's ``fingerprint``.
    source : str, optional
        Where the model came from, for people; defaults to the model's own ``source``.
    num_classes : int, optional
        The number of classes, when known.

    Attributes
    ----------
    class_names, input_shape, normalization, outputs, fingerprint, source
        As above, with the defaults resolved.
    module : nn.Module or None
        The wrapped module, when the model is one.

    Raises
    ------
    ZestTypeError
        If ``model`` is not callable, or ``class_names`` is a single string.
    ZestError
        For an invalid ``class_names``, ``input_shape``, ``normalization`` or ``outputs``.
    """

    def __new__(cls, model: Any = None, *args: Any, **kwargs: Any) -> "Classifier":
        if cls is Classifier and isinstance(model, nn.Module):
            cls = ModuleClassifier
        return super().__new__(cls)

    def __init__(
        self,
        model: Callable[[torch.Tensor], Any],
        *,
        class_names: Sequence[str] | None = None,
        input_shape: Sequence[int] | None = None,
        normalization: Normalization | None = None,
        outputs: str | None = None,
        fingerprint: str | None = None,
        source: str | None = None,
        num_classes: int | None = None,
    ) -> None:
        if not callable(model):
            raise ZestTypeError(f"model: expected a callable (images -> scores), got {type(model).__name__}")
        if outputs is not None:
            check_choice("outputs", outputs, OUTPUTS)
        self.model = model
        self.normalization = _check_normalization(normalization)
        self.normalize = None if self.normalization is None else Normalize(*self.normalization)
        self._declared = {
            "class_names": _check_class_names(class_names, num_classes),
            "input_shape": _check_input_shape(input_shape),
            "outputs": outputs,
            "source": source,
        }
        self._num_classes = num_classes
        self._content_fingerprint = fingerprint

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Scores [B, classes] of images [B, C, H, W] in [0, 1]."""
        if self.normalize is not None:
            x = self.normalize.to(x.device)(x)
        return self.model(x)

    def __repr__(self) -> str:
        classes = "?" if self.class_names is None else len(self.class_names)
        return f"{type(self).__name__}({self.source!r}, classes={classes}, input_shape={self.input_shape})"

    def _own(self, name: str) -> Any:
        """A declared attribute, else the wrapped model's (read each time: an endpoint learns its own)."""
        declared = self._declared[name]
        return declared if declared is not None else getattr(self.model, name, None)

    @property
    def module(self) -> nn.Module | None:
        """The wrapped ``nn.Module``, or None when the model is not one."""
        return self.model if isinstance(self.model, nn.Module) else None

    @property
    def class_names(self) -> list[str] | None:
        """One name per class: declared, the model's own, "0", "1", ... for a known count, else None."""
        names = self._own("class_names")
        if names is None and self._num_classes is not None:
            return [str(k) for k in range(self._num_classes)]
        return None if names is None else [str(n) for n in names]

    @property
    def input_shape(self) -> tuple[int, int, int] | None:
        """(C, H, W) of the images the model takes, or None when unknown."""
        shape = self._own("input_shape")
        return None if shape is None else tuple(int(n) for n in shape)

    @property
    def outputs(self) -> str:
        """What the scores are: "logits" (the default) or "probabilities"."""
        return self._own("outputs") or "logits"

    @property
    def source(self) -> str:
        """Where the model came from, for people (e.g. "TorchScript a.pt")."""
        return self._own("source") or f"Python {type(self.model).__name__}"

    @property
    def fingerprint(self) -> str | None:
        """The signature cache's key: the content hash, with any normalisation folded in; None if unknown."""
        content = self._content_fingerprint or model_fingerprint(self.model)
        if content is None or self.normalization is None:
            return content
        return sha256(f"{content}|normalization={self.normalization}".encode())


class ModuleClassifier(Classifier, nn.Module):
    """A :class:`Classifier` around an ``nn.Module``, and an ``nn.Module`` itself (``.module``).

    ``Classifier(module, ...)`` returns one; the parameters are :class:`Classifier`'s.
    """

    def __init__(self, model: nn.Module, **kwargs: Any) -> None:
        nn.Module.__init__(self)
        Classifier.__init__(self, model, **kwargs)

    __call__ = nn.Module.__call__
    forward = Classifier.forward
    __repr__ = Classifier.__repr__


def _check_normalization(normalization: Normalization | None) -> tuple[tuple[float, ...], tuple[float, ...]] | None:
    """``(mean, std)`` as tuples of floats, one positive std per mean; None stays None."""
    if normalization is None:
        return None
    try:
        mean, std = (tuple(float(v) for v in values) for values in normalization)
    except (TypeError, ValueError) as error:
        raise ZestError(
            f"normalization: expected (mean, std), two sequences of numbers, got {normalization!r}"
        ) from error
    if not mean or len(mean) != len(std) or min(std) <= 0:
        raise ZestError(
            f"normalization: expected a mean and a positive std per channel, got mean {mean} and std {std}"
        )
    return mean, std


def _check_input_shape(shape: Sequence[int] | None) -> tuple[int, int, int] | None:
    """``(C, H, W)`` as three positive ints; None stays None."""
    if shape is None:
        return None
    shape = tuple(shape)
    if len(shape) != 3 or not all(isinstance(n, (int, np.integer)) and n > 0 for n in shape):
        raise ZestError(f"input_shape: expected (C, H, W), three positive integers, got {shape!r}")
    return tuple(int(n) for n in shape)


def _check_class_names(names: Sequence[str] | None, num_classes: int | None) -> list[str] | None:
    """The names as strings, one per class when ``num_classes`` is given; None stays None."""
    if names is None:
        return None
    if isinstance(names, str):
        raise ZestTypeError(f"class_names: expected a sequence of strings, got the string {names!r}")
    names = [str(n) for n in names]
    if num_classes is not None and len(names) != num_classes:
        raise ZestError(f"class_names: expected {num_classes} names (one per class), got {len(names)}")
    return names


@dataclass(frozen=True)
class ModelOptions:
    """What the caller of :func:`~zest_core.sources.models.load_model` says about the model, beyond its spec.

    Each field overrides what the source itself says; None leaves it to the source.
    """

    class_names: Sequence[str] | None = None
    input_shape: Sequence[int] | None = None
    normalization: Normalization | None = None
    outputs: str | None = None
    num_classes: int | None = None


def wrap_model(model: Callable[[torch.Tensor], Any], options: ModelOptions, **attributes: Any) -> Classifier:
    """A Classifier around ``model`` with the caller's options and the given ``fingerprint``/``source``."""
    return Classifier(
        model, class_names=options.class_names, input_shape=options.input_shape,
        normalization=options.normalization, outputs=options.outputs, num_classes=options.num_classes, **attributes,
    )
