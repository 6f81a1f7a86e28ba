"""Models: image classifiers from files, endpoints or Python objects, behind one black-box interface.

Zest compares models through their predictions alone [1]_, so every model the project takes is
reduced to one contract, the :class:`Classifier`: float images [B, C, H, W] with pixel values in
[0, 1] go in, class scores [B, classes] come out. :func:`load_model` builds one from

- ``ARCH:PATH``: a ``torch.save``'d state_dict of an architecture of
  :data:`zest_core.sources.architectures.ARCHITECTURES` or of a torchvision classification model
  (``resnet18:weights.pt``, ImageNet normalisation by default);
- a TorchScript file, or an ONNX file (``*.onnx``, run by onnxruntime on the CPU);
- a whole pickled model (``torch.save(model)``), only with ``trust_pickle=True``;
- ``http(s)://...`` (:mod:`zest_core.sources.endpoint`) and ``zoo:NAME[@epochK]`` (:mod:`zest_core.zoo.build`);
- a Python callable or ``nn.Module``.

A classifier's ``fingerprint`` is a content hash (the file's bytes, or the module's weights): the
signature cache's key. A bare callable has none, so its signatures are never cached.

References
----------
.. [1] Jia, Yaghini, Choquette-Choo, Dullerud, Thudi, Chandrasekaran & Papernot, "A Zest of LIME:
   Towards Architecture-Independent Model Distances", ICLR 2023.
"""
from __future__ import annotations

import contextlib
import hashlib
import io
import os
import pickle
import re
import warnings
import zipfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import torch
from torch import nn

from .architectures import ARCHITECTURES, Normalize, build_architecture
from ..pipeline.queries import model_fingerprint

OUTPUTS = ("logits", "probabilities")
IMAGENET_NORMALIZATION = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
# The image size (H, W) each project architecture is built for.
NATIVE_SIZES = {"resnet20": (32, 32), "small_cnn": (28, 28), "lenet5": (28, 28)}
# Keys under which training checkpoints commonly keep the state_dict.
CHECKPOINT_KEYS = ("state_dict", "net", "model")
ONNX_FLOAT_TYPES = {"tensor(float)": np.float32, "tensor(double)": np.float64, "tensor(float16)": np.float16}
# What torch.load(weights_only=True) says of a pickle that names classes or functions to import.
_PICKLED_OBJECT = re.compile(r"GLOBAL (\S+) was not an allowed global|whose module (\S+) is blocked")

Normalization = tuple[Sequence[float], Sequence[float]]


class ModelLoadError(ValueError):
    """A model spec or file that cannot be loaded; the message starts with the spec or the path."""


# --------------------------------------------------------------------------------------------------
# The classifier
# --------------------------------------------------------------------------------------------------


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
    TypeError
        If ``model`` is not callable.
    ValueError
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
            raise TypeError(f"model must be callable (images -> scores), got {type(model).__name__}")
        if outputs is not None and outputs not in OUTPUTS:
            raise ValueError(f"outputs must be one of {', '.join(OUTPUTS)}; got {outputs!r}")
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
        names = self._own("class_names")
        if names is None and self._num_classes is not None:
            return [str(k) for k in range(self._num_classes)]
        return None if names is None else [str(n) for n in names]

    @property
    def input_shape(self) -> tuple[int, int, int] | None:
        shape = self._own("input_shape")
        return None if shape is None else tuple(int(n) for n in shape)

    @property
    def outputs(self) -> str:
        return self._own("outputs") or "logits"

    @property
    def source(self) -> str:
        return self._own("source") or f"Python {type(self.model).__name__}"

    @property
    def fingerprint(self) -> str | None:
        content = self._content_fingerprint or model_fingerprint(self.model)
        if content is None or self.normalization is None:
            return content
        return _sha256(f"{content}|normalization={self.normalization}".encode())


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
    if normalization is None:
        return None
    try:
        mean, std = (tuple(float(v) for v in values) for values in normalization)
    except (TypeError, ValueError) as error:
        raise ValueError(
            f"normalization: expected (mean, std), two sequences of numbers, got {normalization!r}"
        ) from error
    if not mean or len(mean) != len(std) or min(std) <= 0:
        raise ValueError(
            f"normalization: expected a mean and a positive std per channel, got mean {mean} and std {std}"
        )
    return mean, std


def _check_input_shape(shape: Sequence[int] | None) -> tuple[int, int, int] | None:
    if shape is None:
        return None
    shape = tuple(shape)
    if len(shape) != 3 or not all(isinstance(n, (int, np.integer)) and n > 0 for n in shape):
        raise ValueError(f"input_shape: expected (C, H, W), three positive integers, got {shape!r}")
    return tuple(int(n) for n in shape)


def _check_class_names(names: Sequence[str] | None, num_classes: int | None) -> list[str] | None:
    if names is None:
        return None
    if isinstance(names, str):
        raise ValueError(f"class_names: expected a sequence of strings, got the string {names!r}")
    names = [str(n) for n in names]
    if num_classes is not None and len(names) != num_classes:
        raise ValueError(f"class_names: expected {num_classes} names (one per class), got {len(names)}")
    return names


# --------------------------------------------------------------------------------------------------
# load_model and its sources
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Options:
    """What the caller of :func:`load_model` says about the model, beyond its spec."""

    class_names: Sequence[str] | None = None
    input_shape: Sequence[int] | None = None
    normalization: Normalization | None = None
    outputs: str | None = None
    num_classes: int | None = None


def load_model(
    spec: str | os.PathLike | Callable[[torch.Tensor], Any],
    *,
    trust_pickle: bool = False,
    class_names: Sequence[str] | None = None,
    input_shape: Sequence[int] | None = None,
    normalization: Normalization | None = None,
    outputs: str | None = None,
    num_classes: int | None = None,
) -> Classifier:
    """Load an image classifier from a spec (a file, ``ARCH:PATH``, a URL, ``zoo:NAME``) or wrap a callable.

    Parameters
    ----------
    spec : str, path or callable
        One of

        - ``ARCH:PATH``: a state_dict (``torch.save(model.state_dict(), PATH)``, or a checkpoint
          keeping it under "state_dict", "net" or "model") of ARCH, a key of
          :data:`zest_core.sources.architectures.ARCHITECTURES` (classes and input channels read from the
          weights) or a torchvision classification builder such as ``resnet18`` (classes read
          from the weights; ImageNet normalisation unless ``normalization`` is given);
        - the path of a TorchScript file, an ONNX file (``*.onnx``), or a whole pickled model
          (needs ``trust_pickle=True``);
        - ``http://...`` or ``https://...``: a model behind an HTTP endpoint;
        - ``zoo:NAME`` or ``zoo:NAME@epochK``: a model of the demo zoo;
        - a callable or ``nn.Module`` mapping images [B, C, H, W] in [0, 1] to scores [B, classes].
    trust_pickle : bool
        Load files that hold pickled Python objects (a whole ``torch.save(model)``). Unpickling
        runs arbitrary code from the file: pass True only for files you trust.
    class_names, input_shape, normalization, outputs, num_classes
        What :class:`Classifier` takes; each overrides what the source itself says. ``outputs``
        defaults to the model's own declaration (an endpoint's), else "logits".

    Returns
    -------
    Classifier
        Its ``fingerprint`` is the sha256 of the file's bytes for a file (with any normalisation
        added here folded in); for a callable, :func:`zest_core.model_fingerprint` of it.

    Raises
    ------
    ModelLoadError
        A ``ValueError`` whose message starts with the spec or the file and names the problem: a
        missing or unreadable file, a file of another format, an unknown architecture, weights
        that do not fit the architecture, or a pickled model without ``trust_pickle=True``.
    TypeError
        If ``spec`` is neither a string, a path nor a callable.

    Examples
    --------
    >>> model = load_model("small_cnn:weights.pt")  # doctest: +SKIP
    >>> scores = model(torch.rand(8, 1, 28, 28))     # doctest: +SKIP
    """
    options = _Options(class_names, input_shape, normalization, outputs, num_classes)
    if not isinstance(spec, (str, os.PathLike)):
        if not callable(spec):
            raise TypeError(f"spec: expected a path, a spec string or a callable model, got {type(spec).__name__}")
        return _adopt(spec, options)
    text = os.fspath(spec)
    if text.startswith(("http://", "https://")):
        from .endpoint import load_endpoint  # imported on first use: most runs never need HTTP

        return _adopt(load_endpoint(text, input_shape=options.input_shape), options)
    scheme, separator, rest = text.partition(":")
    if separator and scheme in SPEC_SCHEMES:
        return _adopt(SPEC_SCHEMES[scheme](rest), options)
    arch, separator, path = text.partition(":")
    if separator and arch.isidentifier() and not Path(text).exists():
        return _load_architecture(text, arch, path, options, trust_pickle)
    return _load_file(text, options, trust_pickle)


def _wrap(model: Callable[[torch.Tensor], Any], options: _Options, **attributes: Any) -> Classifier:
    """A Classifier around ``model`` with the caller's options and the given fingerprint/source."""
    return Classifier(
        model, class_names=options.class_names, input_shape=options.input_shape,
        normalization=options.normalization, outputs=options.outputs, num_classes=options.num_classes, **attributes,
    )


def _adopt(model: Callable[[torch.Tensor], Any], options: _Options) -> Classifier:
    """``model`` itself when it is a Classifier and nothing is to be added, else a Classifier around it."""
    if isinstance(model, Classifier) and options == _Options():
        return model
    return _wrap(model, options)


# Spec schemes that higher layers teach load_model (``zoo:`` is registered by zest_core.zoo), so
# that this module never imports upwards.
SPEC_SCHEMES: dict[str, Callable[[str], Any]] = {}


def register_spec_scheme(scheme: str, loader: Callable[[str], Any]) -> None:
    """Make ``load_model("<scheme>:<rest>")`` call ``loader(rest)``.

    The scheme must be a lower-case identifier that is not also an architecture name, so that
    ``small_cnn:weights.pt`` keeps meaning an architecture and a state_dict.
    """
    if not (isinstance(scheme, str) and scheme.isidentifier() and scheme.islower()):
        raise ValueError(f"scheme: expected a lower-case identifier, got {scheme!r}")
    if scheme in ARCHITECTURES:
        raise ValueError(f"scheme: expected a name that is not an architecture, got {scheme!r}")
    if not callable(loader):
        raise TypeError(f"loader: expected a callable, got {type(loader).__name__}")
    SPEC_SCHEMES[scheme] = loader


def _load_file(path: str, options: _Options, trust_pickle: bool) -> Classifier:
    """A TorchScript, ONNX or (trusted) pickled model file."""
    data = _read_file(path, "a model file")
    if path.lower().endswith(".onnx"):
        return _load_onnx(path, data, options)
    if _is_torchscript(data):
        return _load_torchscript(path, data, options)
    loaded = _torch_load(
        path, data, trust_pickle, "not a TorchScript model, an ONNX model (*.onnx) or a torch.save file"
    )
    if isinstance(loaded, dict):
        raise ModelLoadError(
            f"{path}: holds a state_dict (weights without their architecture); pass it as ARCH:{path} with ARCH "
            f"one of {', '.join(sorted(ARCHITECTURES))} or a torchvision classification model such as resnet18"
        )
    if not callable(loaded):
        raise ModelLoadError(f"{path}: expected a model (images -> scores), got a pickled {type(loaded).__name__}")
    if isinstance(loaded, nn.Module):
        loaded.eval()
    return _wrap(loaded, options, fingerprint=_sha256(data), source=f"pickled model {path}")


def _load_torchscript(path: str, data: bytes, options: _Options) -> Classifier:
    try:
        with _quiet_torch():
            module = torch.jit.load(io.BytesIO(data), map_location="cpu")
    except Exception as error:  # noqa: BLE001 - torch raises many types for a file it cannot read
        raise ModelLoadError(f"{path}: not a readable TorchScript model ({_first_line(error)})") from error
    return _wrap(module.eval(), options, fingerprint=_sha256(data), source=f"TorchScript {path}")


def _load_architecture(spec: str, arch: str, path: str, options: _Options, trust_pickle: bool) -> Classifier:
    """``ARCH:PATH``: a fresh network of ARCH, shaped after the weights in PATH, with those weights."""
    builder = _architecture_builder(spec, arch)
    data = _read_file(path, "a weights file")
    if _is_torchscript(data):
        raise ModelLoadError(
            f"{path}: not a readable state_dict file: it is a TorchScript model; pass it without '{arch}:'"
        )
    state = _state_dict(path, _torch_load(path, data, trust_pickle, "not a readable state_dict file"))
    if arch in ARCHITECTURES:
        num_classes, in_channels = infer_shape(path, state)
        module = builder(num_classes=options.num_classes or num_classes, in_channels=in_channels)
        native = (in_channels, *NATIVE_SIZES[arch]) if arch in NATIVE_SIZES else None
        options = replace(options, input_shape=options.input_shape or native)
    else:
        linears = _weights(state, ndim=2)
        num_classes = options.num_classes or (int(linears[-1].shape[0]) if linears else 1000)
        module = builder(weights=None, num_classes=num_classes)
        options = replace(options, normalization=options.normalization or IMAGENET_NORMALIZATION)
    try:
        module.load_state_dict(state)
    except RuntimeError as error:
        problem = _mismatch(module, state)
        raise ModelLoadError(f"{path}: the weights do not fit architecture {arch!r}: {problem}") from error
    options = replace(options, num_classes=options.num_classes or num_classes)
    return _wrap(module.eval(), options, fingerprint=_sha256(data), source=f"{arch} weights {path}")


def _architecture_builder(spec: str, arch: str) -> Callable[..., nn.Module]:
    """The builder of a project architecture or of a torchvision classification model."""
    if arch in ARCHITECTURES:
        return lambda **kwargs: build_architecture(arch, **kwargs)
    import torchvision  # only here: it is slow to import and most specs do not need it

    names = torchvision.models.list_models(module=torchvision.models)  # classification models only
    if arch not in names:
        raise ModelLoadError(
            f"{spec}: unknown architecture {arch!r}; expected one of {', '.join(sorted(ARCHITECTURES))} or a "
            f"torchvision classification model (resnet18, mobilenet_v2, ... {len(names)} in all: "
            "torchvision.models.list_models(torchvision.models)), or the path of a model file"
        )
    return torchvision.models.get_model_builder(arch)


# --------------------------------------------------------------------------------------------------
# Files: reading, formats, state_dicts
# --------------------------------------------------------------------------------------------------


def _read_file(path: str, what: str) -> bytes:
    target = Path(path)
    if not target.is_file():
        problem = "is a directory" if target.is_dir() else "no such file"
        raise ModelLoadError(f"{path}: {problem} (expected {what})")
    try:
        return target.read_bytes()
    except OSError as error:
        raise ModelLoadError(f"{path}: cannot be read ({_first_line(error)})") from error


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _is_torchscript(data: bytes) -> bool:
    """Whether ``data`` is a TorchScript archive: a zip file with a constants.pkl, as torch checks."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            return any(name.split("/")[-1] == "constants.pkl" for name in archive.namelist())
    except (zipfile.BadZipFile, OSError, ValueError):
        return False


def _torch_load(path: str, data: bytes, trust_pickle: bool, unreadable: str) -> Any:
    """``torch.load`` of ``data``: tensors only, or any pickled object when ``trust_pickle`` is True.

    Raises
    ------
    ModelLoadError
        ``f"{path}: {unreadable} (...)"`` for a file torch cannot read; a refusal that explains the
        risk for a file holding pickled objects when ``trust_pickle`` is False.
    """
    try:
        with _quiet_torch():
            return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - zip, pickle and EOF errors alike mean "not readable"
        found = _PICKLED_OBJECT.search(str(error)) if isinstance(error, pickle.UnpicklingError) else None
        if found is None:
            raise ModelLoadError(f"{path}: {unreadable} ({_first_line(error)})") from error
    if not trust_pickle:
        raise ModelLoadError(
            f"{path}: holds pickled Python objects ({found.group(1) or found.group(2)}), not only tensors, "
            "e.g. a whole model saved with torch.save(model). Unpickling runs arbitrary code from the file, "
            "so it is refused: pass "
            "trust_pickle=True (zest --trust-pickle) only for a file you trust, or save model.state_dict() "
            "(loaded as ARCH:PATH) or a TorchScript model instead"
        )
    try:
        with _quiet_torch():
            return torch.load(io.BytesIO(data), map_location="cpu", weights_only=False)
    except Exception as error:  # noqa: BLE001 - unpickling can raise anything, e.g. a missing class
        raise ModelLoadError(f"{path}: the pickled model cannot be loaded ({_first_line(error)})") from error


@contextlib.contextmanager
def _quiet_torch() -> Iterator[None]:
    """Silence torch's deprecation and dispatch warnings while loading; failures still raise."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", UserWarning)
        yield


def _state_dict(path: str, loaded: Any) -> dict[str, torch.Tensor]:
    """The state_dict in a loaded file: itself, a checkpoint's, or a (trusted) whole model's."""
    if isinstance(loaded, nn.Module):
        return loaded.state_dict()
    if isinstance(loaded, dict):
        key = next((k for k in CHECKPOINT_KEYS if isinstance(loaded.get(k), dict)), None)
        loaded = loaded[key] if key is not None else loaded
    if not isinstance(loaded, dict) or not loaded:
        raise ModelLoadError(
            f"{path}: expected a state_dict (a dict of parameter names to tensors, as torch.save(model.state_dict())), "
            f"got {'an empty dict' if isinstance(loaded, dict) else type(loaded).__name__}"
        )
    name = next((k for k, v in loaded.items() if not isinstance(v, torch.Tensor)), None)
    if name is not None:
        raise ModelLoadError(
            f"{path}: expected a state_dict of tensors, but its entry {name!r} is a {type(loaded[name]).__name__} "
            f"(a training checkpoint? it may keep its state_dict under {', '.join(map(repr, CHECKPOINT_KEYS))}, "
            "or save model.state_dict() itself)"
        )
    if all(k.startswith("module.") for k in loaded):  # saved from nn.DataParallel
        loaded = {k.removeprefix("module."): v for k, v in loaded.items()}
    return loaded


def _weights(state: dict[str, torch.Tensor], ndim: int) -> list[torch.Tensor]:
    return [t for name, t in state.items() if name.endswith("weight") and t.ndim == ndim]


def infer_shape(path: str, state: dict[str, torch.Tensor]) -> tuple[int, int]:
    """(num_classes, in_channels) of a state_dict: rows of its last 2-D weight, inputs of its first conv.

    Parameters
    ----------
    path : str
        The weights file, for error messages.
    state : dict of str to Tensor
        Entries in registration order, as ``Module.state_dict()`` returns them.

    Raises
    ------
    ModelLoadError
        If the state_dict has no convolution (4-D) or no linear (2-D) weight.
    """
    convs, linears = _weights(state, ndim=4), _weights(state, ndim=2)
    if not convs or not linears:
        raise ModelLoadError(
            f"{path}: expected a state_dict with convolution (4-D) and linear (2-D) weights, "
            f"got {len(convs)} and {len(linears)}"
        )
    return int(linears[-1].shape[0]), int(convs[0].shape[1])


def _mismatch(module: nn.Module, state: dict[str, torch.Tensor]) -> str:
    """How a state_dict differs from a module's: its missing, unexpected and differently shaped entries."""
    expected = module.state_dict()
    shapes = [
        f"{k!r} {tuple(state[k].shape)} in the file vs {tuple(expected[k].shape)} in the architecture"
        for k in expected if k in state and expected[k].shape != state[k].shape
    ]
    problems = [
        ("missing", [repr(k) for k in expected if k not in state]),
        ("unexpected", [repr(k) for k in state if k not in expected]),
        ("of another shape", shapes),
    ]
    return "; ".join(f"{len(keys)} {what}: {_shorten(keys)}" for what, keys in problems if keys) or "incompatible"


def _shorten(items: Sequence[str], most: int = 3) -> str:
    shown = ", ".join(items[:most])
    return shown if len(items) <= most else f"{shown} and {len(items) - most} more"


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    first_sentence = lines[0].split(". ")[0] if lines else ""
    return f"{type(error).__name__}: {first_sentence}".rstrip(": ")


# --------------------------------------------------------------------------------------------------
# ONNX
# --------------------------------------------------------------------------------------------------


def _load_onnx(path: str, data: bytes, options: _Options) -> Classifier:
    try:
        import onnxruntime
    except ModuleNotFoundError as error:
        raise ModelLoadError(
            f"{path}: running ONNX models needs the onnxruntime package (pip install onnxruntime)"
        ) from error
    try:
        session = onnxruntime.InferenceSession(data, providers=["CPUExecutionProvider"])
    except Exception as error:  # noqa: BLE001 - onnxruntime's errors are its own pybind types
        raise ModelLoadError(f"{path}: not a readable ONNX model ({_first_line(error)})") from error
    runner = OnnxRunner(path, session)
    options = replace(options, num_classes=options.num_classes or runner.num_classes)
    return _wrap(runner, options, fingerprint=_sha256(data), source=f"ONNX {path}")


class OnnxRunner:
    """An onnxruntime session as a model: torch images in, torch scores out (computed on the CPU).

    Parameters
    ----------
    path : str
        The ONNX file, for error messages.
    session : onnxruntime.InferenceSession
        A graph with one float input [batch, C, H, W]; its first output is taken as the scores.
        A fixed batch dimension is served in chunks of that size, the last one zero-padded.

    Attributes
    ----------
    input_shape : (C, H, W) or None
        From the graph, when static.
    num_classes : int or None
        From the graph's output [batch, classes], when static.
    """

    def __init__(self, path: str, session: Any) -> None:
        inputs = session.get_inputs()
        if len(inputs) != 1:
            names = ", ".join(repr(i.name) for i in inputs)
            raise ModelLoadError(
                f"{path}: expected an ONNX model with one input (the images), got {len(inputs)}: {names}"
            )
        image, scores = inputs[0], session.get_outputs()[0]
        if len(image.shape) != 4 or image.type not in ONNX_FLOAT_TYPES:
            raise ModelLoadError(
                f"{path}: expected a float input [batch, C, H, W], got {image.type} of shape {image.shape}"
            )
        self.session, self.input_name, self.output_name = session, image.name, scores.name
        self.dtype = ONNX_FLOAT_TYPES[image.type]
        batch, *chw = image.shape
        self.batch = batch if _is_static(batch) else None
        self.input_shape = tuple(chw) if all(map(_is_static, chw)) else None
        self.num_classes = scores.shape[1] if len(scores.shape) == 2 and _is_static(scores.shape[1]) else None

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        images = x.detach().cpu().numpy().astype(self.dtype, copy=False)
        if self.batch is None:
            scores = self._run(images)
        else:
            starts = range(0, len(images), self.batch)
            scores = np.concatenate([self._run_fixed(images[i:i + self.batch]) for i in starts])
        return torch.from_numpy(np.ascontiguousarray(scores)).to(x.device)

    def _run(self, images: np.ndarray) -> np.ndarray:
        return self.session.run([self.output_name], {self.input_name: images})[0]

    def _run_fixed(self, chunk: np.ndarray) -> np.ndarray:
        """Scores of a chunk of at most ``batch`` images through a graph of fixed batch size."""
        missing = self.batch - len(chunk)
        padding = np.zeros((missing, *chunk.shape[1:]), dtype=chunk.dtype)
        return self._run(np.concatenate([chunk, padding]) if missing else chunk)[:len(chunk)]


def _is_static(dimension: Any) -> bool:
    return isinstance(dimension, int) and dimension > 0
