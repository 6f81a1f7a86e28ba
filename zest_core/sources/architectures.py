"""Architectures the project names: CIFAR ResNet-20, a small MNIST CNN and LeNet-5, taking [0, 1] pixel input.

Every network here normalises its own input (a model's normalisation belongs to the model, not to
the engine), so it can be handed to :func:`zest_core.compute_signature` as it is. Each splits into
``features(x)`` (the penultimate activations, used by feature distillation) and a last linear layer,
so that ``forward(x) == last_layer(features(x))``.
"""
from __future__ import annotations

from typing import Callable, Sequence

import torch
from torch import nn
from torch.nn import functional as F

from .._shared.checks import check_choice
from ..errors import ZestError


class Normalize(nn.Module):
    """Per-channel (x − mean) / std, kept in the model so it travels with its weights."""

    def __init__(self, mean: Sequence[float], std: Sequence[float]) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != self.mean.shape[1]:
            # Without this check a 1-channel batch would broadcast silently against 3 channel means.
            raise ZestError(
                f"expected images [B, {self.mean.shape[1]}, H, W], got a tensor of shape {list(x.shape)}"
            )
        return (x - self.mean.to(x.dtype)) / self.std.to(x.dtype)


class _BasicBlock(nn.Module):
    def __init__(self, in_planes: int, planes: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut = nn.Sequential()
        if stride != 1 or in_planes != planes:
            self.shortcut = nn.Sequential(nn.Conv2d(in_planes, planes, 1, stride, bias=False), nn.BatchNorm2d(planes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


class ResNet20(nn.Module):
    """ResNet-20 for 32×32 images (He et al., CVPR 2016, §4.2), the Zest paper's CIFAR model."""

    def __init__(self, num_classes: int = 10, in_channels: int = 3,
                 mean: Sequence[float] = (0.4914, 0.4822, 0.4465), std: Sequence[float] = (0.2470, 0.2435, 0.2616)) -> None:
        super().__init__()
        self.normalize = Normalize(mean[:in_channels], std[:in_channels])
        self.conv1 = nn.Conv2d(in_channels, 16, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        layers, in_planes = [], 16
        for planes, stride in ((16, 1), (32, 2), (64, 2)):
            for block in range(3):
                layers.append(_BasicBlock(in_planes, planes, stride if block == 0 else 1))
                in_planes = planes
        self.layers = nn.Sequential(*layers)
        self.fc = nn.Linear(64, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(self.normalize(x))))
        out = self.layers(out)
        return torch.flatten(F.adaptive_avg_pool2d(out, 1), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x))


class SmallCNN(nn.Module):
    """A two-convolution CNN for 28×28 greyscale digits."""

    def __init__(self, num_classes: int = 10, in_channels: int = 1, width: int = 16) -> None:
        super().__init__()
        self.normalize = Normalize((0.1307,) * in_channels, (0.3081,) * in_channels)
        self.conv1 = nn.Conv2d(in_channels, width, 3, padding=1)
        self.conv2 = nn.Conv2d(width, 2 * width, 3, padding=1)
        self.fc1 = nn.Linear(2 * width * 7 * 7, 64)
        self.fc2 = nn.Linear(64, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        out = F.max_pool2d(F.relu(self.conv1(self.normalize(x))), 2)
        out = F.max_pool2d(F.relu(self.conv2(out)), 2)
        return F.relu(self.fc1(torch.flatten(out, 1)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.features(x))


class LeNet5(nn.Module):
    """LeNet-5 for 28×28 greyscale digits (LeCun et al., Proc. IEEE 1998), with ReLU and max pooling.

    A second, differently shaped MNIST architecture: 5×5 convolutions and three linear layers, where
    :class:`SmallCNN` has 3×3 convolutions and two.
    """

    def __init__(self, num_classes: int = 10, in_channels: int = 1) -> None:
        super().__init__()
        self.normalize = Normalize((0.1307,) * in_channels, (0.3081,) * in_channels)
        self.conv1 = nn.Conv2d(in_channels, 6, 5, padding=2)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.fc1 = nn.Linear(16 * 5 * 5, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        out = F.max_pool2d(F.relu(self.conv1(self.normalize(x))), 2)
        out = F.max_pool2d(F.relu(self.conv2(out)), 2)
        return F.relu(self.fc2(F.relu(self.fc1(torch.flatten(out, 1)))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc3(self.features(x))


ARCHITECTURES: dict[str, Callable[..., nn.Module]] = {"resnet20": ResNet20, "small_cnn": SmallCNN, "lenet5": LeNet5}


def weight_layers(model: nn.Module) -> list[nn.Module]:
    """The convolution and linear layers of ``model``, in registration (input-to-output) order."""
    return [module for module in model.modules() if isinstance(module, (nn.Conv2d, nn.Linear))]


def build_architecture(name: str, num_classes: int = 10, in_channels: int | None = None) -> nn.Module:
    """A freshly initialised network of a named architecture."""
    check_choice("architecture", name, sorted(ARCHITECTURES))
    kwargs = {"num_classes": num_classes}
    if in_channels is not None:
        kwargs["in_channels"] = in_channels
    return ARCHITECTURES[name](**kwargs)
