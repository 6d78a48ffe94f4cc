"""AlexNet as trained in Caffe (``models/bvlc_alexnet/train_val.prototxt``).

Grouped convolutions in conv2, conv4 and conv5 (``group: 2``, the two-GPU split of the
original paper), local response normalisation after conv1 and conv2, overlapping 3x3/2 max
pooling, 227x227 crops. 60,965,224 parameters in 16 tensors, 96 % of them in fc6-fc8.
The ``-ci`` size keeps every layer and name at a fraction of the width, for 32x32 images.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class AlexNetConfig:
    """Widths and geometry; ``full()`` is Caffe's, ``ci()`` a small stand-in."""

    channels: tuple[int, int, int, int, int] = (96, 256, 384, 384, 256)
    conv1_kernel: int = 11
    conv1_stride: int = 4
    conv1_padding: int = 0
    fc_width: int = 4096
    pool5_size: int = 6          # spatial size after pool5 (6 for 227x227 input)
    num_classes: int = 1000
    image_size: int = 227

    @staticmethod
    def ci(num_classes: int = 10) -> AlexNetConfig:
        """32x32 images: conv1 5x5/1 and narrow layers; 32 -> 16 -> 8 -> 4 after the pools."""
        return AlexNetConfig((24, 64, 96, 96, 64), 5, 1, 2, 256, 4, num_classes, 32)


def _lrn() -> nn.LocalResponseNorm:
    # Caffe: local_size 5, alpha 1e-4, beta 0.75, k 1 (torch divides alpha by size as Caffe).
    return nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=1.0)


class AlexNet(nn.Module):
    """Caffe BVLC AlexNet; layer names follow the prototxt (conv1..conv5, fc6..fc8)."""

    def __init__(self, config: AlexNetConfig = AlexNetConfig()):
        super().__init__()
        c1, c2, c3, c4, c5 = config.channels
        self.config = config
        self.conv1 = nn.Conv2d(3, c1, config.conv1_kernel, config.conv1_stride,
                               config.conv1_padding)
        self.norm1 = _lrn()
        self.conv2 = nn.Conv2d(c1, c2, 5, padding=2, groups=2)
        self.norm2 = _lrn()
        self.conv3 = nn.Conv2d(c2, c3, 3, padding=1)
        self.conv4 = nn.Conv2d(c3, c4, 3, padding=1, groups=2)
        self.conv5 = nn.Conv2d(c4, c5, 3, padding=1, groups=2)
        self.fc6 = nn.Linear(c5 * config.pool5_size ** 2, config.fc_width)
        self.fc7 = nn.Linear(config.fc_width, config.fc_width)
        self.fc8 = nn.Linear(config.fc_width, config.num_classes)
        self.pool = nn.MaxPool2d(3, 2, ceil_mode=True)  # Caffe rounds pooling output up
        self.relu = nn.ReLU(inplace=True)
        self.drop = nn.Dropout(0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(self.norm1(self.relu(self.conv1(x))))
        x = self.pool(self.norm2(self.relu(self.conv2(x))))
        x = self.relu(self.conv3(x))
        x = self.relu(self.conv4(x))
        x = self.pool(self.relu(self.conv5(x)))
        x = self.drop(self.relu(self.fc6(x.flatten(1))))
        x = self.drop(self.relu(self.fc7(x)))
        return self.fc8(x)
