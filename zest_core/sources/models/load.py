"""``load_model``: a model spec (a file, ``ARCH:PATH``, a URL, ``zoo:NAME``) or a callable, as a :class:`Classifier`.

The spec is dispatched here, in this order:

- not a string or path: a Python callable or ``nn.Module``, wrapped as it is;
- ``http(s)://...``: :mod:`zest_core.sources.endpoint`;
- ``<scheme>:<rest>`` for a scheme a higher layer registered (:func:`register_spec_scheme`;
  ``zoo:NAME[@epochK]`` is registered by :mod:`zest_core.zoo`, so this layer never imports it);
- ``timm:NAME:PATH``: :mod:`.formats.timm_spec`;
- ``ARCH:PATH``: :mod:`.formats.state_dict`;
- a folder with a ``config.json``: a Hugging Face or timm model folder, :mod:`.formats.hf_folder`;
- any other path: a model file, whose format :func:`load_file` recognises (:mod:`.formats`).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable, Sequence

import torch

from ...errors import ModelLoadError, ZestError, ZestTypeError
from ..architectures import ARCHITECTURES
from .classifier import Classifier, ModelOptions, Normalization, wrap_model
from .files import read_file
from .formats.hf_folder import load_model_folder
from .formats.onnx import load_onnx
from .formats.safetensors import declared_architecture, is_safetensors
from .formats.state_dict import load_architecture
from .formats.timm_spec import load_timm
from .formats.torch_export import is_exported_program, load_exported_program
from .formats.torch_save import load_pickled
from .formats.torchscript import is_torchscript, load_torchscript

# Spec schemes that higher layers teach load_model (``zoo:`` is registered by zest_core.zoo), so
# that this layer never imports upwards.
SPEC_SCHEMES: dict[str, Callable[[str], Any]] = {}


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

        - ``ARCH:PATH``: a state_dict (a ``.safetensors`` file, ``torch.save(model.state_dict(), PATH)``,
          or a checkpoint keeping it under "state_dict", "net" or "model") of ARCH, a key of
          :data:`zest_core.sources.architectures.ARCHITECTURES` (classes and input channels read from the
          weights) or a torchvision classification builder such as ``resnet18`` (classes read
          from the weights; ImageNet normalisation unless ``normalization`` is given);
        - ``timm:NAME:PATH``: timm architecture NAME with the state_dict in PATH (needs ``timm``);
        - the path of a Hugging Face image-classification folder or a timm model folder (a
          ``config.json`` and ``model.safetensors``; Hugging Face ones need ``transformers``);
        - the path of a TorchScript file, an ONNX file (``*.onnx``), a ``torch.export`` program
          (``*.pt2``; needs ``trust_pickle=True``, as it unpickles), or a whole pickled model
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
    ZestTypeError
        If ``spec`` is neither a string, a path nor a callable.

    Examples
    --------
    >>> model = load_model("small_cnn:weights.pt")  # doctest: +SKIP
    >>> scores = model(torch.rand(8, 1, 28, 28))     # doctest: +SKIP
    """
    options = ModelOptions(class_names, input_shape, normalization, outputs, num_classes)
    if not isinstance(spec, (str, os.PathLike)):
        if not callable(spec):
            raise ZestTypeError(f"spec: expected a path, a spec string or a callable model, got {type(spec).__name__}")
        return _adopt(spec, options)
    text = os.fspath(spec)
    if text.startswith(("http://", "https://")):
        from ..endpoint import load_endpoint  # imported on first use: most runs never need HTTP

        return _adopt(load_endpoint(text, input_shape=options.input_shape), options)
    scheme, separator, rest = text.partition(":")
    if separator and rest.startswith("//") and scheme.isidentifier() and scheme not in SPEC_SCHEMES:
        # A URL of another scheme (file://, ftp://) is no model spec, whatever its "architecture" would be.
        raise ModelLoadError(f"{_display(text)}: expected a model file, an ARCH:PATH spec or an http:// or https:// "
                             f"endpoint, got a {scheme}:// URL (only http(s) endpoints are fetched)")
    if separator and scheme in SPEC_SCHEMES:
        return _adopt(SPEC_SCHEMES[scheme](rest), options)
    arch, separator, path = text.partition(":")
    if separator and arch == "timm" and not Path(text).exists():
        return load_timm(text, options, trust_pickle)
    if separator and arch.isidentifier() and not Path(text).exists():
        return load_architecture(text, arch, path, options, trust_pickle)
    if Path(text).is_dir():
        return load_model_folder(text, options, trust_pickle)
    return load_file(text, options, trust_pickle)


def load_file(path: str, options: ModelOptions, trust_pickle: bool) -> Classifier:
    """A model file, in the first format that recognises it.

    ONNX by its suffix; a ``torch.export`` program, TorchScript or safetensors by their contents
    (``.pt2`` and pickles need ``trust_pickle``); else a ``torch.save`` file (a whole pickled model
    needs ``trust_pickle``).

    A new file format is a module in :mod:`zest_core.sources.models.formats` with a
    ``load_<format>(path, data, options)`` function, and one branch here, before the ``torch.save``
    fallback, that recognises its files.
    """
    data = read_file(path, "a model file")
    if path.lower().endswith(".onnx"):
        return load_onnx(path, data, options)
    if is_exported_program(data):
        return load_exported_program(path, data, options, trust_pickle)
    if is_torchscript(data):
        return load_torchscript(path, data, options)
    if is_safetensors(path, data):
        declared = declared_architecture(path, data)
        if declared is None:
            raise ModelLoadError(
                f"{path}: is a safetensors file: weights without their architecture; pass it as ARCH:{path} "
                f"(ARCH one of {', '.join(sorted(ARCHITECTURES))} or a torchvision model such as resnet18) "
                f"or timm:NAME:{path}, or save it with metadata={{'architecture': ARCH}}"
            )
        if declared.startswith("timm:"):
            return load_timm(f"{declared}:{path}", options, trust_pickle)
        return load_architecture(f"{declared}:{path}", declared, path, options, trust_pickle)
    return load_pickled(path, data, options, trust_pickle)


def _adopt(model: Callable[[torch.Tensor], Any], options: ModelOptions) -> Classifier:
    """``model`` itself when it is a Classifier and nothing is to be added, else a Classifier around it."""
    if isinstance(model, Classifier) and options == ModelOptions():
        return model
    return wrap_model(model, options)


def register_spec_scheme(scheme: str, loader: Callable[[str], Any]) -> None:
    """Make ``load_model("<scheme>:<rest>")`` call ``loader(rest)``.

    The scheme must be a lower-case identifier that is not also an architecture name, so that
    ``small_cnn:weights.pt`` keeps meaning an architecture and a state_dict.

    Raises
    ------
    ZestError
        If ``scheme`` is not a lower-case identifier or is an architecture's name.
    ZestTypeError
        If ``loader`` is not callable.
    """
    if not (isinstance(scheme, str) and scheme.isidentifier() and scheme.islower()):
        raise ZestError(f"scheme: expected a lower-case identifier, got {scheme!r}")
    if scheme in ARCHITECTURES or scheme == "timm":
        raise ZestError(f"scheme: expected a name that is not an architecture, got {scheme!r}")
    if not callable(loader):
        raise ZestTypeError(f"loader: expected a callable, got {type(loader).__name__}")
    SPEC_SCHEMES[scheme] = loader


def _display(url: str) -> str:
    """A URL without user information or query (they may hold credentials)."""
    scheme, _, rest = url.partition("://")
    return f"{scheme}://{rest.partition('?')[0].rpartition('@')[2]}"
