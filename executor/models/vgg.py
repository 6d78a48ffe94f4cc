"""VGG-16 (Simonyan and Zisserman 2015, configuration D) with Caffe's layer names.

Thirteen 3x3 convolutions ``conv1_1 .. conv5_3`` in ``features`` and three fully connected
layers ``fc6 .. fc8`` in ``classifier``: 138,357,544 parameters for 224x224 images (fc6 sees
512x7x7). No batch norm, as in the Caffe model-zoo release. The ``-ci`` size divides every
width by 8 and takes 32x32 images (fc6 sees 64x1x1).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import torch
from torch import nn

#: Output channels of each convolution, stage by stage (configuration D).
STAGES = ((64, 64), (128, 128), (256, 256, 256), (512, 512, 512), (512, 512, 512))


@dataclass(frozen=True)
class VGGConfig:
    """``width`` divides conv widths; ``fc_width`` is fc6/fc7's size."""

    width: int = 1
    fc_width: int = 4096
    num_classes: int = 1000
    image_size: int = 224

    @staticmethod
    def ci(num_classes: int = 10) -> VGGConfig:
        """Widths / 8, 256-wide fc6/fc7, 32x32 images."""
        return VGGConfig(8, 256, num_classes, 32)


def _features(width: int) -> tuple[nn.Sequential, int]:
    layers: OrderedDict[str, nn.Module] = OrderedDict()
    cin = 3
    for stage, convs in enumerate(STAGES, start=1):
        for i, cout in enumerate(convs, start=1):
            layers[f"conv{stage}_{i}"] = nn.Conv2d(cin, cout // width, 3, padding=1)
            layers[f"relu{stage}_{i}"] = nn.ReLU(inplace=True)
            cin = cout // width
        layers[f"pool{stage}"] = nn.MaxPool2d(2, 2)
    return nn.Sequential(layers), cin


class VGG16(nn.Module):
    """VGG-16; module names ``features.conv1_1`` ... ``classifier.fc8``."""

    def __init__(self, config: VGGConfig = VGGConfig()):
        super().__init__()
        self.config = config
        self.features, channels = _features(config.width)
        spatial = config.image_size // 32
        fc = config.fc_width
        self.classifier = nn.Sequential(OrderedDict([
            ("fc6", nn.Linear(channels * spatial * spatial, fc)),
            ("relu6", nn.ReLU(inplace=True)), ("drop6", nn.Dropout(0.5)),
            ("fc7", nn.Linear(fc, fc)),
            ("relu7", nn.ReLU(inplace=True)), ("drop7", nn.Dropout(0.5)),
            ("fc8", nn.Linear(fc, config.num_classes)),
        ]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x).flatten(1))
