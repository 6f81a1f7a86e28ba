"""What a model returns: checked score matrices, the targets a signature fits, class probabilities.

Every answer of a model under test passes :func:`check_outputs` (one finite [batch, classes]
matrix) in :func:`~zest_core.pipeline.queries.run_model`; :func:`check_repeatable_scores` compares two
answers to the same batch; :func:`to_targets` and :func:`scores_to_probabilities` turn scores into
what the methods use.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

from .._shared.checks import check_choice
from ..errors import ModelOutputError


TARGET_KINDS = ("logits", "centered_logits", "probabilities", "log_probabilities")
# Declared probabilities of 0 (a float32 softmax underflows) are floored here before their log is taken.
PROBABILITY_FLOOR = 1e-30


def to_targets(scores: torch.Tensor, targets: str, outputs: str = "logits") -> torch.Tensor:
    """The regression targets in float64, from a model's scores as the model declares them.

    ``targets`` is ``ZestConfig.targets``, what the local models fit:

    - ``"logits"``: the scores as the model returns them (the Zest paper's setting);
    - ``"centered_logits"``: the logits minus their mean over the classes. A logit vector carries a
      per-input offset shared by every class, which softmax ignores and training never constrains;
      centring removes it;
    - ``"probabilities"``: the softmax;
    - ``"log_probabilities"``: the log-softmax (also free of the offset, and of the scale of the
      probabilities near 0 and 1).

    A model that declares ``outputs="probabilities"`` (an endpoint that returns class
    probabilities) gets the same targets as its logit twin would: its logits are recovered, up to
    the offset, as ``log p`` (floored at ``PROBABILITY_FLOOR``), so its centred logits, probabilities
    and log-probabilities are those of the network behind it. Its ``"logits"`` targets stay what it
    returns, as the paper regresses.
    """
    check_choice("targets", targets, TARGET_KINDS)
    check_choice("outputs", outputs, OUTPUT_KINDS)
    scores = scores.to(torch.float64)
    if targets == "logits":
        return scores
    if outputs == "probabilities":
        scores = torch.log(scores.clamp(min=PROBABILITY_FLOOR))
    if targets == "centered_logits":
        return scores - scores.mean(dim=1, keepdim=True)
    if targets == "probabilities":
        return torch.softmax(scores, dim=1)
    return torch.log_softmax(scores, dim=1)


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
            f"outputs: the model returned a {type(outputs).__name__} of {len(outputs)} tensors; "
            "expected one tensor of class scores [batch, classes]"
        )
    if not isinstance(outputs, torch.Tensor):
        try:
            outputs = torch.as_tensor(np.asarray(outputs))
        except Exception as error:  # noqa: BLE001 - any unconvertible value gets the same message
            raise ModelOutputError(
                f"outputs: the model returned {type(outputs).__name__}, expected a tensor of class scores [batch, classes]"
            ) from error
    if outputs.ndim != 2 or outputs.shape[0] != batch:
        raise ModelOutputError(
            f"outputs: the model returned scores of shape {tuple(outputs.shape)} for a batch of {batch} images; "
            f"expected [{batch}, classes]"
        )
    if num_classes is not None and outputs.shape[1] != num_classes:
        raise ModelOutputError(
            f"outputs: the model returned {num_classes} classes in earlier batches and {outputs.shape[1]} in this one"
        )
    if not outputs.is_floating_point():
        outputs = outputs.to(torch.float64)
    if check_finite:
        raise_if_nonfinite(int((~torch.isfinite(outputs)).sum()), f"a batch of {batch} images")
    return outputs


def raise_if_nonfinite(count: int, where: str) -> None:
    if count:
        raise ModelOutputError(f"outputs: the model returned {count} NaN or infinite scores in {where}")


# How far two answers to the same batch may differ, relative to the batch's largest |score| (the scale
# of the scores a signature's weights are linear in). The same batch through the same kernels gives
# bit-equal scores on a CPU; on CUDA, kernels that reduce with atomics or an algorithm picked afresh
# by cuDNN's benchmark mode differ by some ulps summed over a reduction: ~1e-6 of the scale in float32,
# far below 1e-4. A float16 model (autocast) gets 10 of its ulps (~1e-2). Noise that changes a
# signature (dropout left on, random noise added to the scores) is orders of magnitude larger.
REPEAT_TOLERANCE = 1e-4


def check_repeatable_scores(first: torch.Tensor, second: torch.Tensor, name: str = "the model") -> None:
    """Raise ModelOutputError unless two answers to the same batch agree within float rounding.

    The tolerance is ``max(REPEAT_TOLERANCE, 10 eps)`` of the scores' dtype, times the largest
    absolute score of either answer.
    """
    a, b = first.detach().to(torch.float64), second.detach().to(torch.float64).to(first.device)
    difference = float((a - b).abs().max()) if a.numel() else 0.0
    if difference == 0.0:
        return
    scale = max(float(a.abs().max()), float(b.abs().max()))
    relative = max(REPEAT_TOLERANCE, 10 * torch.finfo(first.dtype).eps)
    if difference > relative * scale:
        raise ModelOutputError(
            f"{name} is not deterministic: queried twice on the same batch of {first.shape[0]} images, its scores "
            f"differ by up to {difference:.3g} (largest score {scale:.3g}, allowed {relative * scale:.2g}), so "
            "its distance to itself would not be 0. Remove the randomness (dropout left on, noise added to the "
            "scores), or accept it deliberately with allow_nondeterministic=True (zest: --allow-nondeterministic)"
        )
