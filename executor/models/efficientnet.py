"""EfficientNet-B0 and -B4 (Tan and Le 2019) with torchvision's layout and module names.

A 3x3/2 stem, seven stages of MBConv blocks (a 1x1 expansion, a depthwise k x k convolution,
squeeze-and-excitation to a quarter of the block's *input* channels, a 1x1 projection; batch norm
after every convolution), a 1x1 head convolution to 4x the last stage's channels, global
pooling and a linear classifier. B4 scales widths by 1.4 (rounded to multiples of 8) and the
number of blocks per stage by 1.8 (rounded up), and takes 380x380 images. Names follow
``torchvision.models.efficientnet``: ``features.0.0`` (stem conv), ``features.3.1.block.2.fc1``
(a block's SE), ``classifier.1``; parameter counts equal torchvision's, 5,288,548 (B0) and
19,341,616 (B4). Stochastic depth and dropout carry no parameters and change no shape.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass

import torch
from torch import nn

from executor.models.common import SqueezeExcitation

#: B0's stages: (expansion, kernel, stride, input channels, output channels, blocks).
B0_STAGES = ((1, 3, 1, 32, 16, 1), (6, 3, 2, 16, 24, 2), (6, 5, 2, 24, 40, 2),
             (6, 3, 2, 40, 80, 3), (6, 5, 1, 80, 112, 3), (6, 5, 2, 112, 192, 4),
             (6, 3, 1, 192, 320, 1))
STEM_CHANNELS = 32


@dataclass(frozen=True)
class EfficientNetConfig:
    """Compound scaling of B0: ``width`` multiplies channels, ``depth`` blocks per stage."""

    width: float = 1.0
    depth: float = 1.0
    image_size: int = 224
    num_classes: int = 1000
    dropout: float = 0.2         # before the classifier (no parameters)

    @staticmethod
    def b0(num_classes: int = 1000) -> EfficientNetConfig:
        return EfficientNetConfig(1.0, 1.0, 224, num_classes, 0.2)

    @staticmethod
    def b4(num_classes: int = 1000) -> EfficientNetConfig:
        return EfficientNetConfig(1.4, 1.8, 380, num_classes, 0.4)

    def channels(self, c: int) -> int:
        """``c`` scaled by ``width``, rounded to a multiple of 8 and never more than 10 %
        below the exact figure (torchvision's ``_make_divisible``)."""
        scaled = c * self.width
        rounded = max(8, int(scaled + 4) // 8 * 8)
        return rounded + 8 if rounded < 0.9 * scaled else rounded

    def blocks(self, n: int) -> int:
        return int(math.ceil(n * self.depth))


def _conv_bn(cin: int, cout: int, kernel: int, stride: int = 1, groups: int = 1,
             act: bool = True) -> nn.Sequential:
    layers: list[nn.Module] = [
        nn.Conv2d(cin, cout, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False),
        nn.BatchNorm2d(cout)]
    if act:
        layers.append(nn.SiLU(inplace=True))
    return nn.Sequential(*layers)


class MBConv(nn.Module):
    """Inverted residual: expand (unless the ratio is 1), depthwise, SE, project; a residual
    connection where the shape allows it."""

    def __init__(self, cin: int, cout: int, expansion: int, kernel: int, stride: int):
        super().__init__()
        hidden = cin * expansion
        layers: list[nn.Module] = []
        if expansion != 1:
            layers.append(_conv_bn(cin, hidden, 1))
        layers += [_conv_bn(hidden, hidden, kernel, stride, groups=hidden),
                   SqueezeExcitation(hidden, max(1, cin // 4), nn.functional.silu),
                   _conv_bn(hidden, cout, 1, act=False)]
        self.block = nn.Sequential(*layers)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.block(x)
        return out + x if self.residual else out


class EfficientNet(nn.Module):
    """``features`` (stem, seven MBConv stages, head), pooling, ``classifier`` (dropout,
    linear)."""

    def __init__(self, config: EfficientNetConfig = EfficientNetConfig()):
        super().__init__()
        self.config = config
        stages: list[nn.Module] = [_conv_bn(3, config.channels(STEM_CHANNELS), 3, 2)]
        for expansion, kernel, stride, cin, cout, blocks in B0_STAGES:
            cin, cout = config.channels(cin), config.channels(cout)
            stage = [MBConv(cin if i == 0 else cout, cout, expansion, kernel,
                            stride if i == 0 else 1) for i in range(config.blocks(blocks))]
            stages.append(nn.Sequential(*stage))
        last = config.channels(B0_STAGES[-1][4])
        stages.append(_conv_bn(last, 4 * last, 1))
        self.features = nn.Sequential(*stages)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(OrderedDict([
            ("0", nn.Dropout(config.dropout)),
            ("1", nn.Linear(4 * last, config.num_classes))]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.avgpool(self.features(x)).flatten(1))
