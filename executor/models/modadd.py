"""A small transformer for modular addition ``(a + b) mod P``: the sequence task of the
convergence study (generated, no download: ``--data modadd:P``).

Modular addition is known to be sensitive to optimisation (Power et al. 2022, "Grokking"), so
it shows what staleness does to a transformer beyond what the image task shows. One sample is
the two tokens ``a, b`` (integers in ``0..P-1``); the model reads them with a learned ``=``
token appended, and classifies the sum at the ``=`` position. The vocabulary holds ``MAX_P``
numbers, so one model serves every ``P <= MAX_P``. Pre-LayerNorm blocks without dropout (so
the synchronous strategies stay step-for-step equal); attention's matmuls are a compute-only
layer as in the zoo's BERT and GPT-2.
"""

from __future__ import annotations

import torch
from torch import nn

from executor.models.common import AttentionCore
from executor.models.transformer import init_weights

MAX_P = 113
SEQ = 3          # a, b, "="


class Block(nn.Module):
    """Pre-LN self-attention and MLP, each with a residual connection."""

    def __init__(self, hidden: int, heads: int):
        super().__init__()
        self.heads = heads
        self.ln1 = nn.LayerNorm(hidden)
        self.qkv = nn.Linear(hidden, 3 * hidden)
        self.core = AttentionCore()
        self.proj = nn.Linear(hidden, hidden)
        self.ln2 = nn.LayerNorm(hidden)
        self.fc1 = nn.Linear(hidden, 4 * hidden)
        self.fc2 = nn.Linear(4 * hidden, hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, seq, hidden = x.shape
        q, k, v = self.qkv(self.ln1(x)).view(batch, seq, 3, self.heads, -1).permute(2, 0, 3, 1, 4)
        attn = self.core(q, k, v).transpose(1, 2).reshape(batch, seq, hidden)
        x = x + self.proj(attn)
        return x + self.fc2(torch.relu(self.fc1(self.ln2(x))))


class ModAddTransformer(nn.Module):
    """Token and position embeddings, ``layers`` blocks, a final LayerNorm and a classifier."""

    def __init__(self, hidden: int = 64, heads: int = 4, layers: int = 2, max_p: int = MAX_P):
        super().__init__()
        self.tokens = nn.Embedding(max_p + 1, hidden)      # the last id is "="
        self.positions = nn.Embedding(SEQ, hidden)
        self.layers = layers
        for i in range(layers):
            self.add_module(f"block{i}", Block(hidden, heads))
        self.ln_f = nn.LayerNorm(hidden)
        self.head = nn.Linear(hidden, max_p)
        self.max_p = max_p
        init_weights(self, std=0.1)

    def forward(self, ab: torch.Tensor) -> torch.Tensor:
        ab = ab.long()
        eq = torch.full((ab.shape[0], 1), self.max_p, dtype=torch.long, device=ab.device)
        ids = torch.cat([ab, eq], dim=1)
        x = self.tokens(ids) + self.positions(torch.arange(SEQ, device=ab.device))
        for i in range(self.layers):
            x = getattr(self, f"block{i}")(x)
        return self.head(self.ln_f(x[:, -1]))
