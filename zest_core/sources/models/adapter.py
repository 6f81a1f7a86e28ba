"""Input adapters: feed a model the reference images in the channels and size it takes, never silently.

Zest compares models by their answers on the same reference images, so it is architecture-independent;
what each model is fed should be too. A grey MNIST model and an RGB model can be compared on RGB
photographs, or a 224-px model on 32-px images, once each model's input is adapted:

- **grey → RGB**: the one channel replicated three times (an RGB image whose three channels are equal
  is the grey image);
- **RGB → grey**: the ITU-R BT.601 luma, ``Y = 0.299 R + 0.587 G + 0.114 B`` [1]_ (what Pillow's
  ``convert("L")`` computes);
- **size**: bilinear resampling with antialiasing to the model's (H, W).

An adapter is part of the model: the adapted model's fingerprint hashes the wrapped model's and the
adaptation, so its signatures are cached under their own key, and its ``source`` says what was done.
Nothing converts images unless asked (``adapt_input``, ``--input-adapter``, the Setup checkbox).

References
----------
.. [1] ITU-R Recommendation BT.601-7, "Studio encoding parameters of digital television", 2011, §2.5.1.
"""
from __future__ import annotations

import hashlib
from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ...errors import ModelInputError
from ...pipeline.queries import check_input_shape
from ...pipeline.reference import ReferenceSet
from .classifier import Classifier, ModelOptions, wrap_model

LUMA = (0.299, 0.587, 0.114)  # ITU-R BT.601


def convert_images(images: torch.Tensor, shape: Sequence[int]) -> torch.Tensor:
    """Images [B, C, H, W] in [0, 1] as [B, C', H', W'] for ``shape`` = (C', H', W').

    Raises
    ------
    ModelInputError
        For channel counts other than 1 and 3 on either side (no rule converts them).
    """
    channels, height, width = (int(n) for n in shape)
    have = images.shape[1]
    if have != channels:
        if have == 1 and channels == 3:
            images = images.expand(-1, 3, -1, -1)
        elif have == 3 and channels == 1:
            weights = torch.tensor(LUMA, dtype=images.dtype, device=images.device).view(1, 3, 1, 1)
            images = (images * weights).sum(dim=1, keepdim=True)
        else:
            raise ModelInputError(f"input adapter: expected 1- or 3-channel images and models, got {have}-channel "
                                  f"images for a {channels}-channel model")
    if tuple(images.shape[2:]) != (height, width):
        images = F.interpolate(images, size=(height, width), mode="bilinear", align_corners=False, antialias=True)
    return images.contiguous()


class _Adapted(nn.Module):
    """What an adapted Classifier wraps: convert, then call the model (a module, so that it moves with the engine)."""

    def __init__(self, model: Any, shape: tuple[int, int, int]) -> None:
        super().__init__()
        self.model, self.shape = model, shape

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.model(convert_images(images, self.shape))


def adapt_input(model: Classifier, input_shape: Sequence[int]) -> Classifier:
    """``model`` taking images of ``input_shape`` (C, H, W), converted to the channels and size it declares.

    Parameters
    ----------
    model : Classifier
        A model that declares its ``input_shape`` (a zoo model, an ``ARCH:PATH`` model, an endpoint
        whose ``/info`` says it).
    input_shape : (C, H, W)
        The reference images' shape.

    Returns
    -------
    Classifier
        ``model`` itself when the shapes agree; otherwise an adapted model with ``input_shape`` as its
        own, the same class names and outputs, a fingerprint of its own and a ``source`` that says so.

    Raises
    ------
    ModelInputError
        When the model does not declare its input shape (nothing says what to convert to).
    """
    target = tuple(int(n) for n in input_shape)
    own = model.input_shape
    if own is None:
        raise ModelInputError(f"{model.source}: expected a model that declares its input shape to adapt its input, "
                              "got none (an ARCH:PATH, zoo or ONNX model declares it)")
    if tuple(own) == target:
        return model
    description = f"input adapted from {target} to {tuple(own)} (grey↔RGB: replicate / BT.601 luma; bilinear resize)"
    inner = model.fingerprint
    fingerprint = None if inner is None else hashlib.sha256(f"{inner}\n{description}".encode()).hexdigest()
    options = ModelOptions(class_names=model.class_names, input_shape=target, outputs=model.outputs)
    return wrap_model(_Adapted(model, tuple(own)), options, fingerprint=fingerprint,
                      source=f"{model.source}, {description}")


def fit_input(model: Classifier, refset: ReferenceSet, *, adapt: bool, name: str, remedy: str) -> Classifier:
    """``model``, fed the reference images as it takes them: itself, adapted (only with ``adapt``), or refused.

    The one place the CLI and the dashboard decide whether a model can take the reference images
    before any query. ``name`` is the model in the user's words, ``remedy`` the flag or box that
    converts images (``"pass --input-adapter ..."``); the message is
    :func:`zest_core.pipeline.queries.check_input_shape`'s.

    Raises
    ------
    ModelInputError
        Without ``adapt``, when the model declares other images than the reference set's.
    """
    images = (refset.channels, *refset.image_size)
    if adapt and model.input_shape is not None and tuple(model.input_shape) != images:
        return adapt_input(model, images)
    check_input_shape(model, images, f"the reference images ({refset.provenance})", name=name, remedy=remedy)
    return model
