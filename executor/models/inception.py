"""Inception-v3 (Szegedy et al. 2016) with torchvision's layout and module names.

The *training* net with its auxiliary classifier (``AuxLogits``, after ``Mixed_6e``), as
``torchvision.models.inception_v3`` builds it by default: 27,161,264 parameters, 23,834,568
without the auxiliary head, batch-norm scale and shift included (running statistics are
buffers). Every convolution is torchvision's ``BasicConv2d``: a bias-free convolution, batch
norm (eps 0.001) and ReLU, so names read ``Mixed_5b.branch5x5_1.conv`` / ``.bn``. In training
mode the forward returns ``(main, aux)`` logits and the loss is ``main + 0.4 * aux`` (TF-slim's
``train_image_classifier.py`` weights the auxiliary loss 0.4); in eval mode only the main
logits. Modules are registered in forward order (the auxiliary head between ``Mixed_6e`` and
``Mixed_7a``), so ``model.parameters()`` is forward order.

Images are 299x299 at full size. One deliberate difference: the auxiliary head pools with
``AdaptiveAvgPool2d(5)`` rather than torchvision's 5x5/3 average pool. Both give 5x5 on the
17x17 map of a 299 image (parameter counts are identical), and the adaptive pool also works on
the 3x3 map of the ``-ci`` size (channels / 8, 75x75 images, the smallest input the stem's
unpadded convolutions and strided reductions accept).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

AUX_WEIGHT = 0.4


@dataclass(frozen=True)
class InceptionV3Config:
    """``width`` divides every channel count (1 = torchvision); the ``-ci`` size uses 8."""

    width: int = 1
    num_classes: int = 1000
    image_size: int = 299

    @staticmethod
    def ci(num_classes: int = 10) -> InceptionV3Config:
        """Channels / 8 and 75x75 images."""
        return InceptionV3Config(8, num_classes, 75)


class BasicConv2d(nn.Module):
    """A bias-free convolution, batch norm (eps 0.001) and ReLU, as torchvision's."""

    def __init__(self, cin: int, cout: int, kernel: int | tuple[int, int],
                 stride: int = 1, padding: int | tuple[int, int] = 0):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, stride, padding, bias=False)
        self.bn = nn.BatchNorm2d(cout, eps=0.001)
        self.out_channels = cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)))


class InceptionA(nn.Module):
    """35x35 block: 1x1; 1x1 -> 5x5; 1x1 -> 3x3 -> 3x3; 3x3 average pool -> 1x1."""

    def __init__(self, cin: int, pool_features: int, w: int):
        super().__init__()
        self.branch1x1 = BasicConv2d(cin, 64 // w, 1)
        self.branch5x5_1 = BasicConv2d(cin, 48 // w, 1)
        self.branch5x5_2 = BasicConv2d(48 // w, 64 // w, 5, padding=2)
        self.branch3x3dbl_1 = BasicConv2d(cin, 64 // w, 1)
        self.branch3x3dbl_2 = BasicConv2d(64 // w, 96 // w, 3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96 // w, 96 // w, 3, padding=1)
        self.branch_pool = BasicConv2d(cin, pool_features // w, 1)
        self.out_channels = (64 + 64 + 96 + pool_features) // w

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b1 = self.branch1x1(x)
        b5 = self.branch5x5_2(self.branch5x5_1(x))
        b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        pool = self.branch_pool(F.avg_pool2d(x, 3, stride=1, padding=1))
        return torch.cat([b1, b5, b3, pool], dim=1)


class InceptionB(nn.Module):
    """35 -> 17 reduction: 3x3/2; 1x1 -> 3x3 -> 3x3/2; 3x3/2 max pool."""

    def __init__(self, cin: int, w: int):
        super().__init__()
        self.branch3x3 = BasicConv2d(cin, 384 // w, 3, stride=2)
        self.branch3x3dbl_1 = BasicConv2d(cin, 64 // w, 1)
        self.branch3x3dbl_2 = BasicConv2d(64 // w, 96 // w, 3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96 // w, 96 // w, 3, stride=2)
        self.out_channels = (384 + 96) // w + cin

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b3 = self.branch3x3(x)
        b3d = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        return torch.cat([b3, b3d, F.max_pool2d(x, 3, stride=2)], dim=1)


class InceptionC(nn.Module):
    """17x17 block with factorised 7x7 convolutions (1x7 and 7x1) of ``c7`` channels."""

    def __init__(self, cin: int, c7: int, w: int):
        super().__init__()
        c7 //= w
        self.branch1x1 = BasicConv2d(cin, 192 // w, 1)
        self.branch7x7_1 = BasicConv2d(cin, c7, 1)
        self.branch7x7_2 = BasicConv2d(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7_3 = BasicConv2d(c7, 192 // w, (7, 1), padding=(3, 0))
        self.branch7x7dbl_1 = BasicConv2d(cin, c7, 1)
        self.branch7x7dbl_2 = BasicConv2d(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_3 = BasicConv2d(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7dbl_4 = BasicConv2d(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_5 = BasicConv2d(c7, 192 // w, (1, 7), padding=(0, 3))
        self.branch_pool = BasicConv2d(cin, 192 // w, 1)
        self.out_channels = 4 * (192 // w)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b1 = self.branch1x1(x)
        b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        b7d = x
        for i in range(1, 6):
            b7d = getattr(self, f"branch7x7dbl_{i}")(b7d)
        pool = self.branch_pool(F.avg_pool2d(x, 3, stride=1, padding=1))
        return torch.cat([b1, b7, b7d, pool], dim=1)


class InceptionD(nn.Module):
    """17 -> 8 reduction: 1x1 -> 3x3/2; 1x1 -> 1x7 -> 7x1 -> 3x3/2; 3x3/2 max pool."""

    def __init__(self, cin: int, w: int):
        super().__init__()
        self.branch3x3_1 = BasicConv2d(cin, 192 // w, 1)
        self.branch3x3_2 = BasicConv2d(192 // w, 320 // w, 3, stride=2)
        self.branch7x7x3_1 = BasicConv2d(cin, 192 // w, 1)
        self.branch7x7x3_2 = BasicConv2d(192 // w, 192 // w, (1, 7), padding=(0, 3))
        self.branch7x7x3_3 = BasicConv2d(192 // w, 192 // w, (7, 1), padding=(3, 0))
        self.branch7x7x3_4 = BasicConv2d(192 // w, 192 // w, 3, stride=2)
        self.out_channels = (320 + 192) // w + cin

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b3 = self.branch3x3_2(self.branch3x3_1(x))
        b7 = x
        for i in range(1, 5):
            b7 = getattr(self, f"branch7x7x3_{i}")(b7)
        return torch.cat([b3, b7, F.max_pool2d(x, 3, stride=2)], dim=1)


class InceptionE(nn.Module):
    """8x8 block whose 3x3 branches split into parallel 1x3 and 3x1 convolutions."""

    def __init__(self, cin: int, w: int):
        super().__init__()
        self.branch1x1 = BasicConv2d(cin, 320 // w, 1)
        self.branch3x3_1 = BasicConv2d(cin, 384 // w, 1)
        self.branch3x3_2a = BasicConv2d(384 // w, 384 // w, (1, 3), padding=(0, 1))
        self.branch3x3_2b = BasicConv2d(384 // w, 384 // w, (3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = BasicConv2d(cin, 448 // w, 1)
        self.branch3x3dbl_2 = BasicConv2d(448 // w, 384 // w, 3, padding=1)
        self.branch3x3dbl_3a = BasicConv2d(384 // w, 384 // w, (1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = BasicConv2d(384 // w, 384 // w, (3, 1), padding=(1, 0))
        self.branch_pool = BasicConv2d(cin, 192 // w, 1)
        self.out_channels = (320 + 4 * 384 + 192) // w

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b1 = self.branch1x1(x)
        b3 = self.branch3x3_1(x)
        b3 = torch.cat([self.branch3x3_2a(b3), self.branch3x3_2b(b3)], dim=1)
        b3d = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        b3d = torch.cat([self.branch3x3dbl_3a(b3d), self.branch3x3dbl_3b(b3d)], dim=1)
        pool = self.branch_pool(F.avg_pool2d(x, 3, stride=1, padding=1))
        return torch.cat([b1, b3, b3d, pool], dim=1)


class InceptionAux(nn.Module):
    """The auxiliary classifier: pool to 5x5, 1x1 conv 128, 5x5 conv 768, fc."""

    def __init__(self, cin: int, num_classes: int, w: int):
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(5)
        self.conv0 = BasicConv2d(cin, 128 // w, 1)
        self.conv1 = BasicConv2d(128 // w, 768 // w, 5)
        self.fc = nn.Linear(768 // w, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv1(self.conv0(self.pool(x)))
        return self.fc(F.adaptive_avg_pool2d(x, 1).flatten(1))


class InceptionV3(nn.Module):
    """Stem, three 35x35 blocks, a reduction, four 17x17 blocks, the auxiliary head, a
    reduction, two 8x8 blocks, global average pool, dropout 0.5, fc."""

    def __init__(self, config: InceptionV3Config = InceptionV3Config()):
        super().__init__()
        w = config.width
        self.config = config
        self.Conv2d_1a_3x3 = BasicConv2d(3, 32 // w, 3, stride=2)
        self.Conv2d_2a_3x3 = BasicConv2d(32 // w, 32 // w, 3)
        self.Conv2d_2b_3x3 = BasicConv2d(32 // w, 64 // w, 3, padding=1)
        self.Conv2d_3b_1x1 = BasicConv2d(64 // w, 80 // w, 1)
        self.Conv2d_4a_3x3 = BasicConv2d(80 // w, 192 // w, 3)
        self.Mixed_5b = InceptionA(192 // w, 32, w)
        self.Mixed_5c = InceptionA(self.Mixed_5b.out_channels, 64, w)
        self.Mixed_5d = InceptionA(self.Mixed_5c.out_channels, 64, w)
        self.Mixed_6a = InceptionB(self.Mixed_5d.out_channels, w)
        cin = self.Mixed_6a.out_channels
        for name, c7 in (("Mixed_6b", 128), ("Mixed_6c", 160), ("Mixed_6d", 160),
                         ("Mixed_6e", 192)):
            block = InceptionC(cin, c7, w)
            self.add_module(name, block)
            cin = block.out_channels
        self.AuxLogits = InceptionAux(cin, config.num_classes, w)
        self.Mixed_7a = InceptionD(cin, w)
        self.Mixed_7b = InceptionE(self.Mixed_7a.out_channels, w)
        self.Mixed_7c = InceptionE(self.Mixed_7b.out_channels, w)
        self.dropout = nn.Dropout(0.5)
        self.fc = nn.Linear(self.Mixed_7c.out_channels, config.num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
        x = self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(F.max_pool2d(x, 3, stride=2)))
        x = F.max_pool2d(x, 3, stride=2)
        for name in ("Mixed_5b", "Mixed_5c", "Mixed_5d", "Mixed_6a",
                     "Mixed_6b", "Mixed_6c", "Mixed_6d", "Mixed_6e"):
            x = getattr(self, name)(x)
        aux = self.AuxLogits(x) if self.training else None
        x = self.Mixed_7c(self.Mixed_7b(self.Mixed_7a(x)))
        main = self.fc(self.dropout(F.adaptive_avg_pool2d(x, 1).flatten(1)))
        return (main, aux) if aux is not None else main


def inception_loss(output: torch.Tensor | tuple[torch.Tensor, torch.Tensor],
                   target: torch.Tensor) -> torch.Tensor:
    """``CE(main) + 0.4 * CE(aux)`` in training, ``CE(main)`` in eval."""
    if isinstance(output, torch.Tensor):
        return F.cross_entropy(output, target)
    main, aux = output
    return F.cross_entropy(main, target) + AUX_WEIGHT * F.cross_entropy(aux, target)
