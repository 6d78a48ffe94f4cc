"""Pieces shared by the zoo: the parametric-layer walk and compute-only modules.

It also holds the squeeze-and-excitation gate that SE-ResNeXt and EfficientNet share.

A *parametric layer* is a module that owns parameters directly (``recurse=False``). Walking
``named_modules()`` and keeping those gives the layers in the order of ``model.parameters()``
grouped by owning module; every zoo model registers its modules in forward order, so this is
also forward order, and the names are the dotted ``named_modules`` names used in the workload
files. A *compute-only* module owns no parameters but does big arithmetic (attention score
matmuls, a language-model head tied to the embedding); it exposes ``flop_count`` so that
:mod:`executor.introspect` can count it and the executor can time it as its own layer.
"""

from __future__ import annotations

import math

import torch
from torch import nn


def parametric_layers(model: nn.Module) -> list[tuple[str, nn.Module, list[nn.Parameter]]]:
    """``(name, module, params)`` for each module owning parameters, in ``parameters()`` order.

    A parameter shared by several modules (tied embeddings) belongs to the first owner only, as
    in ``model.parameters()``, which yields each tensor once.
    """
    seen: set[int] = set()
    layers = []
    for name, module in model.named_modules():
        own = [p for p in module.parameters(recurse=False) if id(p) not in seen]
        seen.update(id(p) for p in own)
        if own:
            layers.append((name, module, own))
    return layers


class SqueezeExcitation(nn.Module):
    """Channel gate (Hu et al. 2018): global average pool, ``fc1`` (a 1x1 convolution with
    bias) to ``squeeze`` channels, ``activation``, ``fc2`` back, sigmoid, times the input."""

    def __init__(self, channels: int, squeeze: int, activation=torch.relu):
        super().__init__()
        self.fc1 = nn.Conv2d(channels, squeeze, 1)
        self.fc2 = nn.Conv2d(squeeze, channels, 1)
        self.activation = activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate = self.fc2(self.activation(self.fc1(x.mean((2, 3), keepdim=True))))
        return x * torch.sigmoid(gate)


class AttentionCore(nn.Module):
    """``softmax(q k^T / sqrt(d)) v`` over heads: the parameter-free half of self-attention.

    Inputs ``q, k, v`` are ``(batch, heads, seq, head_dim)``; ``causal`` masks future positions
    (GPT). Kept as a module so that its two matmuls (``4 * seq^2 * hidden`` FLOPs per sequence)
    are a layer of their own in workloads and traces.
    """

    def __init__(self, causal: bool = False, dropout: float = 0.0):
        super().__init__()
        self.causal = causal
        self.dropout = nn.Dropout(dropout)

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
        if self.causal:
            seq = q.shape[-2]
            mask = torch.ones(seq, seq, dtype=torch.bool, device=q.device).triu(1)
            scores = scores.masked_fill(mask, float("-inf"))
        return self.dropout(scores.softmax(dim=-1)) @ v

    @staticmethod
    def flop_count(inputs: tuple, output: torch.Tensor) -> float:
        """FLOPs of both matmuls for the whole batch: ``2 * 2 * B * H * T * T * d``."""
        q, k = inputs[0], inputs[1]
        batch, heads, seq_q, dim = q.shape
        return 4.0 * batch * heads * seq_q * k.shape[-2] * dim


class TiedHead(nn.Module):
    """Logits from hidden states with a weight owned elsewhere (an embedding table).

    GPT-2's language-model head and BERT's masked-LM decoder reuse the word embedding matrix,
    so they add no parameters but ``2 * hidden * vocab`` FLOPs per token; this module makes
    that compute visible as a compute-only layer.
    """

    def forward(self, hidden: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        return hidden @ weight.t()

    @staticmethod
    def flop_count(inputs: tuple, output: torch.Tensor) -> float:
        """``2 * tokens * hidden * vocab`` for the whole batch."""
        hidden = inputs[0]
        return 2.0 * output.numel() * hidden.shape[-1]
