"""Tiny models for the executor's own tests: seconds under 4 oversubscribed MPI ranks.

They take a ``(batch, 64)`` float input (the 8x8 digits, flattened) and give 10 logits, have no
batch norm (whose per-rank statistics would make data-parallel training differ from
single-process training) and no dropout, so strategies can be checked against a reference to
float precision.
"""

from __future__ import annotations

import torch
from torch import nn

IN_FEATURES = 64
CLASSES = 10


class TinyMLP(nn.Module):
    """64 -> 32 -> 32 -> 10 with ReLU."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(IN_FEATURES, 32)
        self.fc2 = nn.Linear(32, 32)
        self.fc3 = nn.Linear(32, CLASSES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc3(torch.relu(self.fc2(torch.relu(self.fc1(x)))))


class TinyCNN(nn.Module):
    """Two 3x3 convolutions on the 8x8 image, then two linear layers."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, 3, padding=1)
        self.conv2 = nn.Conv2d(8, 16, 3, padding=1)
        self.fc1 = nn.Linear(16 * 4 * 4, 32)
        self.fc2 = nn.Linear(32, CLASSES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.conv1(x.view(-1, 1, 8, 8)))
        x = torch.max_pool2d(torch.relu(self.conv2(x)), 2)
        return self.fc2(torch.relu(self.fc1(x.flatten(1))))


TINY_MODELS = {"tiny-mlp": TinyMLP, "tiny-cnn": TinyCNN}
