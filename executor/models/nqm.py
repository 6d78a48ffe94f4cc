"""The noisy quadratic model as a torch module, so the real strategies can train it under MPI.

The loss is ``L(theta) = 1/2 sum_i h_i theta_i**2`` (Zhang et al. 2019, ``h_i = 1/i``; see
:mod:`convergence.nqm` for the analysis). One *sample* is a standard-normal vector ``z``; its
gradient is ``h theta + sqrt(c) z``, so the mean over a global batch of ``B`` samples has noise
of variance ``c / B``, exactly the model :mod:`convergence.nqm` solves. The executor's sharding
averages the ranks' shards into that global mean, so a run at any rank count is the analytic
model's SGD (with the strategy's staleness).

The forward returns the *true* loss ``L(theta)`` as its value but carries the noise in its
gradient (``z . theta - (z . theta).detach()`` is zero with gradient ``z``): the train loss the
executor records each step is then the exact loss at the current weights, which is what the
recurrence predicts, not a noisy estimate of it.

The parameters are split into ``blocks`` modules (one layer each) so the layer-wise and
bucketed strategies have several messages to send.
"""

from __future__ import annotations

import torch
from torch import nn

DIMS = 400
BLOCKS = 4


class Block(nn.Module):
    """One slice of ``theta``, started at ``theta0`` (not random: every seed starts alike)."""

    def __init__(self, size: int, theta0: float):
        super().__init__()
        self.theta = nn.Parameter(torch.full((size,), float(theta0)))

    def forward(self) -> torch.Tensor:
        return self.theta


class NoisyQuadraticModel(nn.Module):
    """``h_i = c_i = 1 / i``, ``i = 1..dims``; input ``(batch, dims)`` standard normals."""

    def __init__(self, dims: int = DIMS, blocks: int = BLOCKS, theta0: float = 1.0):
        super().__init__()
        sizes = [dims // blocks + (1 if b < dims % blocks else 0) for b in range(blocks)]
        for b, size in enumerate(sizes, start=1):
            self.add_module(f"block{b}", Block(size, theta0))
        self.blocks = blocks
        h = 1.0 / torch.arange(1, dims + 1, dtype=torch.float64)
        self.register_buffer("h", h.float())
        self.register_buffer("noise_scale", h.sqrt().float())   # sqrt(c), c = h

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        theta = torch.cat([getattr(self, f"block{b}")() for b in range(1, self.blocks + 1)])
        h, scale = self.h.to(theta.dtype), self.noise_scale.to(theta.dtype)
        loss = 0.5 * (h * theta * theta).sum()
        noise = ((scale * z.to(theta.dtype)).mean(dim=0) * theta).sum()
        return loss + noise - noise.detach()


def nqm_loss(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """The model's output is already the loss (targets are unused)."""
    return output
