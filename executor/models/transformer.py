"""A BERT-style encoder and a GPT-2-style decoder with Hugging Face's module names.

``Bert`` mirrors ``transformers.BertModel`` (bert-base-uncased: 109,482,240 parameters with the
embeddings and the pooler). To train it without adding parameters, both pre-training heads are
tied to embedding tables: the masked-LM decoder is the word-embedding matrix (a compute-only
``mlm_head`` layer) and the sentence-pair head scores the pooled vector against the two
token-type embeddings. Hugging Face's ``BertForPreTraining`` adds an MLM transform (dense +
LayerNorm, 592,128), a decoder bias (30,522) and an NSP classifier (1,538) on top: 110,106,428.

``GPT2`` mirrors ``transformers.GPT2LMHeadModel`` (gpt2: 124,439,808 parameters; the LM head is
tied to ``wte``, so it is a compute-only ``lm_head`` layer). Linear layers replace GPT-2's
transposed ``Conv1D``; the counts are the same. Attention's two matmuls are a compute-only
``attn.core`` layer (or ``attention.self.core``) in both models.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from executor.models.common import AttentionCore, TiedHead

IGNORE = -100  # cross-entropy's ignore index: positions that are not masked


@dataclass(frozen=True)
class TransformerConfig:
    """Sizes of a transformer; ``seq_len`` is the sequence length of one sample."""

    vocab: int
    hidden: int
    layers: int
    heads: int
    intermediate: int
    max_positions: int
    seq_len: int
    type_vocab: int = 2
    dropout: float = 0.1


BERT_BASE = TransformerConfig(30522, 768, 12, 12, 3072, 512, 128)
BERT_CI = TransformerConfig(1000, 64, 2, 4, 256, 64, 32)
BERT_LARGE = TransformerConfig(30522, 1024, 24, 16, 4096, 512, 128)
GPT2_SMALL = TransformerConfig(50257, 768, 12, 12, 3072, 1024, 1024)
GPT2_CI = TransformerConfig(1000, 64, 2, 4, 256, 64, 32)


def init_weights(module: nn.Module, std: float = 0.02) -> None:
    """Hugging Face's initialisation: N(0, 0.02) weights, zero biases, unit LayerNorm scale."""
    for sub in module.modules():
        if isinstance(sub, (nn.Linear, nn.Embedding)):
            nn.init.normal_(sub.weight, 0.0, std)
        if isinstance(sub, nn.Linear) and sub.bias is not None:
            nn.init.zeros_(sub.bias)


def _split_heads(x: torch.Tensor, heads: int) -> torch.Tensor:
    batch, seq, hidden = x.shape
    return x.view(batch, seq, heads, hidden // heads).transpose(1, 2)


def _merge_heads(x: torch.Tensor) -> torch.Tensor:
    batch, heads, seq, dim = x.shape
    return x.transpose(1, 2).reshape(batch, seq, heads * dim)


# ---------------------------------------------------------------------------------------- BERT

class BertEmbeddings(nn.Module):
    """Word + position + token-type embeddings, LayerNorm, dropout."""

    def __init__(self, c: TransformerConfig):
        super().__init__()
        self.word_embeddings = nn.Embedding(c.vocab, c.hidden)
        self.position_embeddings = nn.Embedding(c.max_positions, c.hidden)
        self.token_type_embeddings = nn.Embedding(c.type_vocab, c.hidden)
        self.LayerNorm = nn.LayerNorm(c.hidden, eps=1e-12)
        self.dropout = nn.Dropout(c.dropout)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        positions = torch.arange(ids.shape[1], device=ids.device)
        x = self.word_embeddings(ids) + self.position_embeddings(positions)
        x = x + self.token_type_embeddings(torch.zeros_like(ids))
        return self.dropout(self.LayerNorm(x))


class BertSelfAttention(nn.Module):
    """Query, key and value projections and the attention core."""

    def __init__(self, c: TransformerConfig):
        super().__init__()
        self.heads = c.heads
        self.query = nn.Linear(c.hidden, c.hidden)
        self.key = nn.Linear(c.hidden, c.hidden)
        self.value = nn.Linear(c.hidden, c.hidden)
        self.core = AttentionCore(causal=False, dropout=c.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = (_split_heads(f(x), self.heads) for f in (self.query, self.key, self.value))
        return _merge_heads(self.core(q, k, v))


class BertDenseNorm(nn.Module):
    """``LayerNorm(residual + dropout(dense(x)))``: BertSelfOutput and BertOutput."""

    def __init__(self, cin: int, c: TransformerConfig):
        super().__init__()
        self.dense = nn.Linear(cin, c.hidden)
        self.LayerNorm = nn.LayerNorm(c.hidden, eps=1e-12)
        self.dropout = nn.Dropout(c.dropout)

    def forward(self, x: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        return self.LayerNorm(residual + self.dropout(self.dense(x)))


class BertAttention(nn.Module):
    """Self-attention and its output projection."""

    def __init__(self, c: TransformerConfig):
        super().__init__()
        self.self = BertSelfAttention(c)
        self.output = BertDenseNorm(c.hidden, c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.output(self.self(x), x)


class BertIntermediate(nn.Module):
    """The feed-forward expansion with GELU."""

    def __init__(self, c: TransformerConfig):
        super().__init__()
        self.dense = nn.Linear(c.hidden, c.intermediate)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.gelu(self.dense(x))


class BertLayer(nn.Module):
    """One encoder layer (post-LayerNorm)."""

    def __init__(self, c: TransformerConfig):
        super().__init__()
        self.attention = BertAttention(c)
        self.intermediate = BertIntermediate(c)
        self.output = BertDenseNorm(c.intermediate, c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.attention(x)
        return self.output(self.intermediate(x), x)


class BertEncoder(nn.Module):
    """A stack of encoder layers named ``layer.0`` ... as in Hugging Face."""

    def __init__(self, c: TransformerConfig):
        super().__init__()
        self.layer = nn.ModuleList(BertLayer(c) for _ in range(c.layers))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layer:
            x = layer(x)
        return x


class BertPooler(nn.Module):
    """``tanh(dense(hidden state of the first token))``."""

    def __init__(self, c: TransformerConfig):
        super().__init__()
        self.dense = nn.Linear(c.hidden, c.hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.dense(x[:, 0]))


class Bert(nn.Module):
    """BertModel plus tied pre-training heads; returns ``(mlm_logits, pair_logits)``."""

    def __init__(self, config: TransformerConfig = BERT_BASE):
        super().__init__()
        self.config = config
        self.embeddings = BertEmbeddings(config)
        self.encoder = BertEncoder(config)
        self.pooler = BertPooler(config)
        self.mlm_head = TiedHead()
        init_weights(self)

    def forward(self, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        hidden = self.encoder(self.embeddings(ids))
        pooled = self.pooler(hidden)
        mlm = self.mlm_head(hidden, self.embeddings.word_embeddings.weight)
        pair = pooled @ self.embeddings.token_type_embeddings.weight.t()
        return mlm, pair


def bert_loss(output: tuple[torch.Tensor, torch.Tensor], target: torch.Tensor) -> torch.Tensor:
    """Masked-LM plus sentence-pair cross-entropy.

    ``target`` is ``(batch, seq + 1)``: the masked-LM labels (``-100`` where a token is not
    masked) followed by one sentence-pair label (0 or 1) per sample.
    """
    mlm, pair = output
    labels, pair_label = target[:, :-1], target[:, -1]
    masked = F.cross_entropy(mlm.reshape(-1, mlm.shape[-1]), labels.reshape(-1),
                             ignore_index=IGNORE)
    return masked + F.cross_entropy(pair, pair_label)


def bert_batch(config: TransformerConfig, batch: int, generator: torch.Generator,
               mask_fraction: float = 0.15) -> tuple[torch.Tensor, torch.Tensor]:
    """Synthetic masked-LM data: random tokens, a fraction replaced by token 1 (``[MASK]``)."""
    ids = torch.randint(2, config.vocab, (batch, config.seq_len), generator=generator)
    masked = torch.rand(batch, config.seq_len, generator=generator) < mask_fraction
    masked[:, 1] = True  # at least one masked token per sample
    labels = torch.where(masked, ids, torch.full_like(ids, IGNORE))
    pair = torch.randint(0, 2, (batch, 1), generator=generator)
    return ids.masked_fill(masked, 1), torch.cat([labels, pair], dim=1)


# ---------------------------------------------------------------------------------------- GPT-2

class GPT2Attention(nn.Module):
    """Fused q/k/v projection ``c_attn``, causal core, output projection ``c_proj``."""

    def __init__(self, c: TransformerConfig):
        super().__init__()
        self.heads = c.heads
        self.c_attn = nn.Linear(c.hidden, 3 * c.hidden)
        self.core = AttentionCore(causal=True, dropout=c.dropout)
        self.c_proj = nn.Linear(c.hidden, c.hidden)
        self.resid_dropout = nn.Dropout(c.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = (_split_heads(t, self.heads) for t in self.c_attn(x).chunk(3, dim=-1))
        return self.resid_dropout(self.c_proj(_merge_heads(self.core(q, k, v))))


class GPT2MLP(nn.Module):
    """Feed-forward ``c_fc`` (4x) with GELU, then ``c_proj``."""

    def __init__(self, c: TransformerConfig):
        super().__init__()
        self.c_fc = nn.Linear(c.hidden, c.intermediate)
        self.c_proj = nn.Linear(c.intermediate, c.hidden)
        self.dropout = nn.Dropout(c.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.c_proj(F.gelu(self.c_fc(x), approximate="tanh")))


class GPT2Block(nn.Module):
    """Pre-LayerNorm decoder block."""

    def __init__(self, c: TransformerConfig):
        super().__init__()
        self.ln_1 = nn.LayerNorm(c.hidden)
        self.attn = GPT2Attention(c)
        self.ln_2 = nn.LayerNorm(c.hidden)
        self.mlp = GPT2MLP(c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class GPT2(nn.Module):
    """GPT-2 language model; ``forward(ids) -> logits (batch, seq, vocab)``."""

    def __init__(self, config: TransformerConfig = GPT2_SMALL):
        super().__init__()
        self.config = config
        self.wte = nn.Embedding(config.vocab, config.hidden)
        self.wpe = nn.Embedding(config.max_positions, config.hidden)
        self.drop = nn.Dropout(config.dropout)
        self.h = nn.ModuleList(GPT2Block(config) for _ in range(config.layers))
        self.ln_f = nn.LayerNorm(config.hidden)
        self.lm_head = TiedHead()
        init_weights(self)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        positions = torch.arange(ids.shape[1], device=ids.device)
        x = self.drop(self.wte(ids) + self.wpe(positions))
        for block in self.h:
            x = block(x)
        return self.lm_head(self.ln_f(x), self.wte.weight)


def next_token_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of each position's logits against the next token (``target``)."""
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), target.reshape(-1))


def gpt2_batch(config: TransformerConfig, batch: int,
               generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Synthetic next-token data: ``seq_len + 1`` random tokens, inputs and shifted targets."""
    tokens = torch.randint(0, config.vocab, (batch, config.seq_len + 1), generator=generator)
    return tokens[:, :-1], tokens[:, 1:]
