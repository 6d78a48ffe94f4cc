"""A small convolutional network for scikit-learn's 8x8 digits: the image task of the
convergence study (no download: the dataset ships inside scikit-learn).

It takes the flattened 64-pixel vector (what ``--data digits`` gives every model) and views it
as a one-channel 8x8 image. No batch norm and no dropout, so data-parallel training is exactly
single-process SGD on the global batch and the synchronous strategies can be compared step for
step.
"""

from __future__ import annotations

import torch
from torch import nn


class DigitsCNN(nn.Module):
    """conv(1->16, 3x3) -> ReLU -> conv(16->32, 3x3) -> ReLU -> maxpool 2 -> fc(512->64) -> fc."""

    def __init__(self, num_classes: int = 10, width: int = 16):
        super().__init__()
        self.conv1 = nn.Conv2d(1, width, 3, padding=1)
        self.conv2 = nn.Conv2d(width, 2 * width, 3, padding=1)
        self.fc1 = nn.Linear(2 * width * 4 * 4, 64)
        self.fc2 = nn.Linear(64, num_classes)
        self.relu = nn.ReLU()
        self.pool = nn.MaxPool2d(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.conv1(x.reshape(-1, 1, 8, 8)))
        x = self.pool(self.relu(self.conv2(x)))
        return self.fc2(self.relu(self.fc1(x.flatten(1))))
