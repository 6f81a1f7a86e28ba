"""Model reuse: the ways one model is made from another, as studied by ModelDiff and Zest.

Each function takes a trained parent and returns a new model (the parent is never modified):
transfer learning to another label set, magnitude pruning, int8 weight quantisation, feature
distillation, model extraction ("stealing") through the parent's outputs alone, and approximate
unlearning by gradient ascent. The demo zoo (:mod:`zest_core.zoo.build`) builds its related models with them.

Images are float tensors [N, C, H, W] in [0, 1] (see :func:`zest_core.zoo.training.as_inputs`), labels
int64 tensors [N].

References
----------
Li, Meng, Gao, Liu & Liu, "ModelDiff: Testing-Based DNN Similarity Comparison for Model Reuse
Detection", ISSTA 2021 (the ModelReuse benchmark: transfer, prune, quantize, distill, steal).
Jia et al., "A Zest of LIME: Towards Architecture-Independent Model Distances", ICLR 2023 (§4, §5.3).
Han, Pool, Tran & Dally, "Learning both Weights and Connections for Efficient Neural Networks",
NeurIPS 2015 (magnitude pruning).
Romero et al., "FitNets: Hints for Thin Deep Nets", ICLR 2015 (feature distillation); Hinton,
Vinyals & Dean, "Distilling the Knowledge in a Neural Network", 2015 (soft targets).
Tramèr et al., "Stealing Machine Learning Models via Prediction APIs", USENIX Security 2016.
Thudi et al., "Unrolling SGD", EuroS&P 2022; Kurmanji et al., NeurIPS 2023 (unlearning by gradient ascent).
"""
from __future__ import annotations

import copy
import math
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils import prune as torch_prune

from ..errors import ZestError, ZestTypeError
from ..sources.architectures import weight_layers
from .training import fit, fit_labels

TrainArgs = dict[str, Any]


def transfer(
    parent: nn.Module,
    inputs: torch.Tensor,
    labels: torch.Tensor,
    *,
    num_classes: int,
    fraction: float,
    seed: int,
    **train: Any,
) -> nn.Module:
    """Transfer learning: a new last layer for ``num_classes`` classes, then tune the last layers.

    Parameters
    ----------
    parent : nn.Module
        A network whose last convolution/linear layer is its classifier head.
    inputs, labels : Tensor
        The target task's training data.
    num_classes : int
        Classes of the target task.
    fraction : float in (0, 1]
        The share of the weight layers tuned, counted from the output: ``ceil(fraction × layers)``
        of them (at least the new head); the earlier layers stay frozen.
    seed : int
        Seeds the new head's initial weights and the training.
    **train
        Passed to :func:`zest_core.zoo.training.fit` (epochs, lr, schedule, shift, batch_size).

    Returns
    -------
    nn.Module
        The transferred copy, in eval mode.
    """
    if not 0 < fraction <= 1:
        raise ZestError(f"fraction: expected a share of layers in (0, 1], got {fraction}")
    child = copy.deepcopy(parent)
    layers = weight_layers(child)
    head = layers[-1]
    if not isinstance(head, nn.Linear):
        raise ZestTypeError(f"parent: expected a linear last layer to replace, got {type(head).__name__}")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        new_head = nn.Linear(head.in_features, num_classes)
    _replace_module(child, head, new_head)
    tuned = weight_layers(child)[-max(1, math.ceil(fraction * len(layers))):]
    parameters = [p for layer in tuned for p in layer.parameters()]
    return fit_labels(child, inputs, labels, seed=seed, parameters=parameters, **train)


def prune(
    parent: nn.Module, inputs: torch.Tensor, labels: torch.Tensor, *, amount: float, seed: int, **train: Any
) -> nn.Module:
    """Global magnitude pruning of the convolution and linear weights, then fine-tuning with the mask held.

    Parameters
    ----------
    amount : float in [0, 1)
        The share of all conv/linear weights set to zero: the smallest in magnitude across the
        whole network (global, not per layer), as in Han et al. 2015.
    inputs, labels, seed, **train
        The fine-tuning data and :func:`zest_core.zoo.training.fit`'s arguments (``epochs=0`` prunes only).

    Returns
    -------
    nn.Module
        The pruned copy; its pruned weights are exact zeros (the mask is made permanent).
    """
    if not 0 <= amount < 1:
        raise ZestError(f"amount: expected a share of weights in [0, 1), got {amount}")
    child = copy.deepcopy(parent)
    targets = [(layer, "weight") for layer in weight_layers(child)]
    torch_prune.global_unstructured(targets, pruning_method=torch_prune.L1Unstructured, amount=amount)
    fit_labels(child, inputs, labels, seed=seed, **train)
    for layer, name in targets:
        torch_prune.remove(layer, name)
    return child.eval()


def quantize_int8(parent: nn.Module) -> nn.Module:
    """Post-training int8 quantisation of the conv/linear weights, symmetric and per output channel.

    Each output channel's weights are mapped to integers in [-127, 127] with the scale
    max|w| / 127 and stored dequantised (integer × scale), so the copy runs anywhere a float model
    runs and computes exactly what the int8-weight model computes. Biases stay in float.

    Returns
    -------
    nn.Module
        The quantised copy, in eval mode.
    """
    child = copy.deepcopy(parent)
    with torch.no_grad():
        for layer in weight_layers(child):
            weight = layer.weight
            flat = weight.reshape(weight.shape[0], -1)
            scale = flat.abs().amax(dim=1).clamp_min(torch.finfo(weight.dtype).tiny) / 127
            integers = torch.round(flat / scale[:, None]).clamp_(-127, 127)
            weight.copy_((integers * scale[:, None]).reshape(weight.shape))
    return child.eval()


def int8_levels(model: nn.Module) -> int:
    """The largest number of distinct values in any output channel of any conv/linear weight (≤ 255 once int8)."""
    most = 0
    for layer in weight_layers(model):
        rows = layer.weight.detach().reshape(layer.weight.shape[0], -1)
        most = max(most, max(len(torch.unique(row)) for row in rows))
    return most


def sparsity(model: nn.Module) -> float:
    """The share of exact zeros among the conv/linear weights."""
    weights = [layer.weight.detach().reshape(-1) for layer in weight_layers(model)]
    flat = torch.cat(weights)
    return float((flat == 0).sum()) / flat.numel()


def distill(
    teacher: nn.Module,
    student: nn.Module,
    inputs: torch.Tensor,
    *,
    seed: int,
    temperature: float = 4.0,
    feature_weight: float = 1.0,
    **train: Any,
) -> nn.Module:
    """Feature distillation: train ``student`` to match the teacher's penultimate features and soft outputs.

    The loss is ``feature_weight × MSE(student.features(x), teacher.features(x))`` (FitNets' hint on
    the last hidden layer) plus ``T² × KL(softmax(teacher/T) ‖ softmax(student/T))`` (Hinton et al.),
    on the training images without their labels. Both networks must have a ``features`` method with
    outputs of the same width (the same architecture, as in the ModelReuse benchmark).

    Parameters
    ----------
    teacher : nn.Module
        Left unchanged (used in eval mode).
    student : nn.Module
        A freshly initialised network, trained in place and returned.
    inputs : Tensor
    seed, temperature, feature_weight, **train
        The seed of :func:`zest_core.zoo.training.fit`, the softmax temperature T, the weight of the
        feature term, and the other arguments of ``fit``.
    """
    for name, net in (("teacher", teacher), ("student", student)):
        if not callable(getattr(net, "features", None)):
            raise ZestTypeError(f"{name}: expected a network with a features(x) method, got {type(net).__name__}")
    teacher.eval()

    def loss(net: nn.Module, batch: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            target_features = teacher.features(batch)
            target_scores = teacher(batch)
        features = net.features(batch)
        if features.shape != target_features.shape:
            raise ZestError(
                f"student: expected features of the teacher's shape {list(target_features.shape)}, "
                f"got {list(features.shape)}"
            )
        scores = _last_layer(net)(features)  # forward(x) == last_layer(features(x)), see architectures
        return feature_weight * F.mse_loss(features, target_features) + _soft_loss(scores, target_scores, temperature)

    return fit(student, inputs, loss, seed=seed, **train)


def steal(victim: nn.Module, thief: nn.Module, inputs: torch.Tensor, *, seed: int, **train: Any) -> nn.Module:
    """Model extraction: train ``thief`` only on the victim's output probabilities over unlabeled images.

    The victim is queried as a black box (its softmax scores on each training batch, as an API
    returns them); the thief, typically of another architecture, minimises
    KL(victim ‖ thief) (Tramèr et al. 2016, with soft labels). No true label is used.

    Parameters
    ----------
    victim : callable
        Images → scores; left unchanged.
    thief : nn.Module
        A freshly initialised network with as many outputs as the victim, trained in place.
    inputs : Tensor
        The thief's unlabeled query images.
    seed, **train
        :func:`zest_core.zoo.training.fit`'s arguments.
    """
    if isinstance(victim, nn.Module):
        victim.eval()

    def loss(net: nn.Module, batch: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            answers = victim(batch)
        return _soft_loss(net(batch), answers, 1.0)

    return fit(thief, inputs, loss, seed=seed, **train)


def unlearn_by_gradient_ascent(
    parent: nn.Module,
    inputs: torch.Tensor,
    labels: torch.Tensor,
    forget: torch.Tensor,
    *,
    seed: int,
    ascent_weight: float = 1.0,
    **train: Any,
) -> nn.Module:
    """Approximate unlearning by gradient ascent on the forget set, with descent on the retained data ("NegGrad+").

    Every step minimises ``CE(retained batch) − ascent_weight × min(CE(forget set), ln C)``: the
    model is pushed away from the forgotten examples while the retained data keeps its accuracy.
    Capping the forget-set loss at ln C (the loss of a uniform guess over C classes) stops the
    ascent once those examples are no better predicted than by chance, instead of letting it diverge.

    Parameters
    ----------
    forget : Tensor of bool [N]
        Which training examples are to be forgotten (at least one).
    seed, ascent_weight, **train
        The seed of :func:`zest_core.zoo.training.fit`, the weight of the ascent term, and the other
        arguments of ``fit``; one epoch is one pass over the retained data.

    References
    ----------
    Thudi, Deza, Chandrasekaran & Papernot, "Unrolling SGD: Understanding Factors Influencing Machine
    Unlearning", EuroS&P 2022 (gradient-ascent unlearning, used in Zest's §5.3); Kurmanji et al.,
    "Towards Unbounded Machine Unlearning", NeurIPS 2023 (NegGrad+).
    """
    if forget.dtype != torch.bool or forget.shape != labels.shape or not forget.any():
        raise ZestError(
            f"forget: expected a bool mask of shape {list(labels.shape)} marking at least one example, "
            f"got {forget.dtype} {list(forget.shape)}"
        )
    child = copy.deepcopy(parent)
    forget_inputs, forget_labels = inputs[forget], labels[forget]
    kept_labels = labels[~forget]
    with torch.no_grad():
        bound = math.log(child(forget_inputs[:1]).shape[1])

    def loss(net: nn.Module, batch: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        forget_loss = F.cross_entropy(net(forget_inputs), forget_labels)
        return F.cross_entropy(net(batch), kept_labels[rows]) - ascent_weight * torch.clamp(forget_loss, max=bound)

    return fit(child, inputs[~forget], loss, seed=seed, **train)


def _soft_loss(scores: torch.Tensor, target_scores: torch.Tensor, temperature: float) -> torch.Tensor:
    """T² × KL(softmax(target/T) ‖ softmax(scores/T)), averaged over the batch."""
    target = F.log_softmax(target_scores / temperature, dim=1)
    return temperature**2 * F.kl_div(F.log_softmax(scores / temperature, dim=1), target, log_target=True, reduction="batchmean")


def _last_layer(model: nn.Module) -> nn.Module:
    return weight_layers(model)[-1]


def _replace_module(model: nn.Module, old: nn.Module, new: nn.Module) -> None:
    """Put ``new`` where ``old`` sits in ``model`` (matched by identity)."""
    for name, module in model.named_modules():
        for child_name, child in module.named_children():
            if child is old:
                setattr(module, child_name, new)
                return
    raise ZestError("old: expected a submodule of model, got a module outside it")
