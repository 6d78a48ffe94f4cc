"""GoogLeNet as trained in Caffe (``models/bvlc_googlenet/train_val.prototxt``).

The *training* net, with both auxiliary classifiers (``loss1`` after inception_4a, ``loss2``
after inception_4d): 13,378,280 parameters in 128 tensors (6,998,552 without the heads). In
training mode the forward returns ``(main, aux1, aux2)`` logits and the loss is
``main + 0.3 * (aux1 + aux2)``; in eval mode only the main logits. Modules are registered in
forward order (the heads between the inception blocks they branch from), so
``model.parameters()`` is forward order. Caffe's names map to module names by ``/`` -> ``.``
(``inception_3a/1x1`` is ``inception_3a.conv1x1``, ``loss1/fc`` is ``loss1.fc``).

One deliberate difference: the auxiliary heads pool with ``AdaptiveAvgPool2d(4)`` rather than
Caffe's 5x5/3 average pool. Both give 4x4 on the 14x14 map of a 224 crop (parameter counts are
identical, the pooling FLOPs differ negligibly), and the adaptive pool also works on the small
maps of the ``-ci`` size.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

#: (name, 1x1, 3x3 reduce, 3x3, 5x5 reduce, 5x5, pool proj), from the Caffe prototxt.
INCEPTIONS = (
    ("inception_3a", 64, 96, 128, 16, 32, 32),
    ("inception_3b", 128, 128, 192, 32, 96, 64),
    ("inception_4a", 192, 96, 208, 16, 48, 64),
    ("inception_4b", 160, 112, 224, 24, 64, 64),
    ("inception_4c", 128, 128, 256, 24, 64, 64),
    ("inception_4d", 112, 144, 288, 32, 64, 64),
    ("inception_4e", 256, 160, 320, 32, 128, 128),
    ("inception_5a", 256, 160, 320, 32, 128, 128),
    ("inception_5b", 384, 192, 384, 48, 128, 128),
)
AUX_AFTER = {"inception_4a": "loss1", "inception_4d": "loss2"}
POOL_AFTER = {"inception_3b", "inception_4e"}  # Caffe pool3 and pool4
AUX_WEIGHT = 0.3


@dataclass(frozen=True)
class GoogLeNetConfig:
    """``width`` divides every channel count (1 = Caffe); the ``-ci`` size uses 8."""

    width: int = 1
    num_classes: int = 1000
    image_size: int = 224
    aux_fc: int = 1024

    @staticmethod
    def ci(num_classes: int = 10) -> GoogLeNetConfig:
        """Channels / 8, 32x32 images, 128-wide auxiliary fc."""
        return GoogLeNetConfig(8, num_classes, 32, 128)


def _conv(cin: int, cout: int, kernel: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, kernel, stride, padding=kernel // 2)


class Inception(nn.Module):
    """Four branches concatenated: 1x1; 1x1 -> 3x3; 1x1 -> 5x5; 3x3 max pool -> 1x1."""

    def __init__(self, cin: int, c1: int, c3r: int, c3: int, c5r: int, c5: int, cp: int):
        super().__init__()
        self.conv1x1 = _conv(cin, c1, 1)
        self.conv3x3_reduce = _conv(cin, c3r, 1)
        self.conv3x3 = _conv(c3r, c3, 3)
        self.conv5x5_reduce = _conv(cin, c5r, 1)
        self.conv5x5 = _conv(c5r, c5, 5)
        self.pool = nn.MaxPool2d(3, 1, padding=1)
        self.pool_proj = _conv(cin, cp, 1)
        self.out_channels = c1 + c3 + c5 + cp

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b1 = F.relu(self.conv1x1(x))
        b2 = F.relu(self.conv3x3(F.relu(self.conv3x3_reduce(x))))
        b3 = F.relu(self.conv5x5(F.relu(self.conv5x5_reduce(x))))
        b4 = F.relu(self.pool_proj(self.pool(x)))
        return torch.cat([b1, b2, b3, b4], dim=1)


class AuxHead(nn.Module):
    """Caffe's loss1/loss2: avg pool to 4x4, 1x1 conv 128, fc 1024 (dropout 0.7), classifier."""

    def __init__(self, cin: int, conv: int, fc: int, num_classes: int):
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(4)
        self.conv = nn.Conv2d(cin, conv, 1)
        self.fc = nn.Linear(conv * 16, fc)
        self.drop = nn.Dropout(0.7)
        self.classifier = nn.Linear(fc, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.conv(self.pool(x)))
        x = self.drop(F.relu(self.fc(x.flatten(1))))
        return self.classifier(x)


class MainHead(nn.Module):
    """Caffe's loss3: global average pool, dropout 0.4, classifier."""

    def __init__(self, cin: int, num_classes: int):
        super().__init__()
        self.drop = nn.Dropout(0.4)
        self.classifier = nn.Linear(cin, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.drop(x.mean(dim=(2, 3))))


class GoogLeNet(nn.Module):
    """The Caffe GoogLeNet training net with both auxiliary heads."""

    def __init__(self, config: GoogLeNetConfig = GoogLeNetConfig()):
        super().__init__()
        w = config.width
        self.config = config
        self.conv1 = _conv(3, 64 // w, 7, stride=2)
        self.norm = nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=1.0)
        self.maxpool = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2_reduce = _conv(64 // w, 64 // w, 1)
        self.conv2 = _conv(64 // w, 192 // w, 3)
        cin = 192 // w
        self.blocks: list[str] = []
        for name, *widths in INCEPTIONS:
            block = Inception(cin, *(c // w for c in widths))
            self.add_module(name, block)
            self.blocks.append(name)
            cin = block.out_channels
            if name in AUX_AFTER:
                self.add_module(AUX_AFTER[name],
                                AuxHead(cin, 128 // w, config.aux_fc, config.num_classes))
        self.loss3 = MainHead(cin, config.num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, ...]:
        x = self.norm(self.maxpool(F.relu(self.conv1(x))))  # pool1 then norm1
        x = F.relu(self.conv2(F.relu(self.conv2_reduce(x))))
        x = self.maxpool(self.norm(x))  # norm2 then pool2
        aux = []
        for name in self.blocks:
            x = getattr(self, name)(x)
            if name in AUX_AFTER and self.training:
                aux.append(getattr(self, AUX_AFTER[name])(x))
            if name in POOL_AFTER:
                x = self.maxpool(x)
        main = self.loss3(x)
        return (main, *aux) if self.training else main


def googlenet_loss(output: torch.Tensor | tuple[torch.Tensor, ...],
                   target: torch.Tensor) -> torch.Tensor:
    """Caffe's weighting: ``CE(main) + 0.3 * (CE(aux1) + CE(aux2))`` (main alone in eval)."""
    if isinstance(output, torch.Tensor):
        return F.cross_entropy(output, target)
    main, *aux = output
    return F.cross_entropy(main, target) + AUX_WEIGHT * sum(
        F.cross_entropy(a, target) for a in aux)
