"""ResNet-18, -50, -101 and -152 (He et al. 2016), ResNeXt-101 32x4d (Xie et al. 2017) and
SE-ResNeXt-101 32x4d (Hu et al. 2018) with torchvision's layout and module names.

Names such as ``layer1.0.conv1``, ``layer1.0.bn1`` and ``layer1.0.downsample.0`` are those of
``torchvision.models.resnet`` (v1.5: the stride sits in the 3x3 convolution of a bottleneck),
so parameter counts equal torchvision's: 11,689,512, 25,557,032, 44,549,160 and 60,192,808, batch-norm scale and shift
included (running statistics are buffers, not parameters). Convolutions have no bias. Every
block registers its modules in forward order; the downsample branch runs after ``conv3``/``bn3``
(as in torchvision's forward), so it is registered last.

ResNeXt replaces each bottleneck's 3x3 convolution by a grouped one: ``groups`` paths of
``base_width`` channels per 64 of the stage (torchvision's ``width = planes * base_width / 64 *
groups``), 44,177,704 parameters at 32x4d. SE-ResNeXt adds a squeeze-and-excitation module
``se`` after ``bn3`` (global pool, 1x1 convolutions ``fc1`` to a sixteenth of the channels and
``fc2`` back, both with bias, sigmoid gate), as Cadene's ``pretrainedmodels`` ``senet.py`` and
timm build it: 48,955,416 parameters.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from executor.models.common import SqueezeExcitation


@dataclass(frozen=True)
class ResNetConfig:
    """``block`` is ``"basic"`` (ResNet-18/34) or ``"bottleneck"`` (ResNet-50 and up)."""

    block: str = "bottleneck"
    layers: tuple[int, int, int, int] = (3, 4, 6, 3)
    width: int = 64              # channels of the stem; layer1's planes
    num_classes: int = 1000
    image_size: int = 224
    groups: int = 1              # ResNeXt's cardinality
    base_width: int = 64         # channels per group per 64 planes (ResNeXt 32x4d: 4)
    se: bool = False             # a squeeze-and-excitation module in every bottleneck

    def bottleneck_width(self, planes: int) -> int:
        """Channels of a bottleneck's 3x3 convolution (torchvision's formula)."""
        return int(planes * self.base_width / 64) * self.groups


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
    """1x1 reduce, 3x3 (strided, grouped for ResNeXt), 1x1 expand to ``planes * 4``, an
    optional squeeze-and-excitation, and a shortcut."""

    expansion = 4

    def __init__(self, cin: int, planes: int, stride: int = 1, *, width: int | None = None,
                 groups: int = 1, se: bool = False):
        super().__init__()
        width = planes if width is None else width
        out = planes * self.expansion
        self.conv1 = nn.Conv2d(cin, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride, padding=1, groups=groups, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, out, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out)
        self.se = SqueezeExcitation(out, out // 16) if se else None
        self.relu = nn.ReLU(inplace=True)
        self.downsample = _downsample(cin, out, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        if self.se is not None:
            out = self.se(out)
        identity = x if self.downsample is None else self.downsample(x)
        return self.relu(out + identity)


class ResNet(nn.Module):
    """Stem (7x7/2 conv, 3x3/2 max pool), four stages, global average pool, fc."""

    def __init__(self, config: ResNetConfig = ResNetConfig()):
        super().__init__()
        block = {"basic": BasicBlock, "bottleneck": Bottleneck}[config.block]
        if block is BasicBlock and (config.groups != 1 or config.base_width != 64 or config.se):
            raise ValueError("grouped and squeeze-and-excitation blocks are bottlenecks")
        if block is Bottleneck and config.bottleneck_width(config.width) < 1:
            raise ValueError(f"width {config.width} leaves no channel per group")
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
            extra = ({} if block is BasicBlock else
                     {"width": config.bottleneck_width(width), "groups": config.groups,
                      "se": config.se})
            for i in range(blocks):
                modules.append(block(cin, width, stride if i == 0 else 1, **extra))
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


def resnext101_32x4d(num_classes: int = 1000, width: int = 64, image_size: int = 224,
                     se: bool = False) -> ResNet:
    """ResNeXt-101 32x4d (``se``: SE-ResNeXt-101 32x4d): bottleneck blocks (3, 4, 23, 3),
    32 groups of 4 channels per 64 planes."""
    return ResNet(ResNetConfig("bottleneck", (3, 4, 23, 3), width, num_classes, image_size,
                               groups=32, base_width=4, se=se))
