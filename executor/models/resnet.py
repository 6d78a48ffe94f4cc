"""ResNet-18, -50, -101 and -152 (He et al. 2016) with torchvision's layout and module names.

Names such as ``layer1.0.conv1``, ``layer1.0.bn1`` and ``layer1.0.downsample.0`` are those of
``torchvision.models.resnet`` (v1.5: the stride sits in the 3x3 convolution of a bottleneck),
so parameter counts equal torchvision's: 11,689,512, 25,557,032, 44,549,160 and 60,192,808, batch-norm scale and shift
included (running statistics are buffers, not parameters). Convolutions have no bias. Every
block registers its modules in forward order; the downsample branch runs after ``conv3``/``bn3``
(as in torchvision's forward), so it is registered last.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class ResNetConfig:
    """``block`` is ``"basic"`` (ResNet-18/34) or ``"bottleneck"`` (ResNet-50 and up)."""

    block: str = "bottleneck"
    layers: tuple[int, int, int, int] = (3, 4, 6, 3)
    width: int = 64              # channels of the stem and of layer1's 3x3 convolutions
    num_classes: int = 1000
    image_size: int = 224


def _conv3x3(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, stride, padding=1, bias=False)


def _downsample(cin: int, cout: int, stride: int) -> nn.Sequential | None:
    if stride == 1 and cin == cout:
        return None
    return nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))


class BasicBlock(nn.Module):
    """Two 3x3 convolutions and a shortcut."""

    expansion = 1

    def __init__(self, cin: int, width: int, stride: int = 1):
        super().__init__()
        self.conv1 = _conv3x3(cin, width, stride)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = _conv3x3(width, width)
        self.bn2 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = _downsample(cin, width, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        identity = x if self.downsample is None else self.downsample(x)
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3 (strided), 1x1 expand by 4, and a shortcut."""

    expansion = 4

    def __init__(self, cin: int, width: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = _conv3x3(width, width, stride)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, width * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(width * 4)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = _downsample(cin, width * 4, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        identity = x if self.downsample is None else self.downsample(x)
        return self.relu(out + identity)


class ResNet(nn.Module):
    """Stem (7x7/2 conv, 3x3/2 max pool), four stages, global average pool, fc."""

    def __init__(self, config: ResNetConfig = ResNetConfig()):
        super().__init__()
        block = {"basic": BasicBlock, "bottleneck": Bottleneck}[config.block]
        w = config.width
        self.config = config
        self.conv1 = nn.Conv2d(3, w, 7, 2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(w)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, padding=1)
        cin = w
        for stage, blocks in enumerate(config.layers):
            width = w * 2 ** stage
            stride = 1 if stage == 0 else 2
            modules = []
            for i in range(blocks):
                modules.append(block(cin, width, stride if i == 0 else 1))
                cin = width * block.expansion
            self.add_module(f"layer{stage + 1}", nn.Sequential(*modules))
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(cin, config.num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(self.avgpool(x).flatten(1))


def resnet18(num_classes: int = 1000, width: int = 64, image_size: int = 224) -> ResNet:
    """ResNet-18: basic blocks (2, 2, 2, 2)."""
    return ResNet(ResNetConfig("basic", (2, 2, 2, 2), width, num_classes, image_size))


def resnet50(num_classes: int = 1000, width: int = 64, image_size: int = 224) -> ResNet:
    """ResNet-50: bottleneck blocks (3, 4, 6, 3)."""
    return ResNet(ResNetConfig("bottleneck", (3, 4, 6, 3), width, num_classes, image_size))


def resnet101(num_classes: int = 1000, width: int = 64, image_size: int = 224) -> ResNet:
    """ResNet-101: bottleneck blocks (3, 4, 23, 3)."""
    return ResNet(ResNetConfig("bottleneck", (3, 4, 23, 3), width, num_classes, image_size))


def resnet152(num_classes: int = 1000, width: int = 64, image_size: int = 224) -> ResNet:
    """ResNet-152: bottleneck blocks (3, 8, 36, 3)."""
    return ResNet(ResNetConfig("bottleneck", (3, 8, 36, 3), width, num_classes, image_size))
