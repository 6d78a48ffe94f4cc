"""A small multilayer perceptron for scikit-learn's 8x8 handwritten digits (64 inputs, 10 classes).

It is the convergence workhorse: the dataset ships inside scikit-learn, one epoch is a fraction
of a second on a CPU, and three layers give the layer-wise strategies something to overlap.
"""

from __future__ import annotations

from itertools import pairwise

import torch
from torch import nn


class MLP(nn.Module):
    """``fc1 -> ReLU -> fc2 -> ReLU -> ... -> fcN``; layers named ``fc1`` .. ``fcN``."""

    def __init__(self, inputs: int = 64, hidden: tuple[int, ...] = (128, 64),
                 num_classes: int = 10):
        super().__init__()
        widths = (inputs, *hidden, num_classes)
        for i, (cin, cout) in enumerate(pairwise(widths), start=1):
            self.add_module(f"fc{i}", nn.Linear(cin, cout))
        self.depth = len(widths) - 1
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i in range(1, self.depth + 1):
            x = getattr(self, f"fc{i}")(x)
            if i < self.depth:
                x = self.relu(x)
        return x
