"""Three models a user might bring, each a factory of no arguments (see executor.usermodel)."""

from torch import nn


def encoder() -> nn.Module:
    """Two PyTorch transformer encoder layers (self_attn.out_proj runs through a functional)."""
    return nn.TransformerEncoder(nn.TransformerEncoderLayer(32, 4, 64, batch_first=True), 2,
                                 enable_nested_tensor=False)


encoder.input_shape = (6, 32)       # 6 tokens of width 32 per sample


def lstm() -> nn.Module:
    """A two-layer LSTM used as the whole model (it owns its parameters itself)."""
    return nn.LSTM(8, 16, num_layers=2, batch_first=True)


lstm.input_shape = (5, 8)


class TiedLM(nn.Module):
    """A language model whose output head reuses the embedding matrix; one block is called
    twice and one layer is never used."""

    def __init__(self, vocab: int = 50, width: int = 16):
        super().__init__()
        self.embed = nn.Embedding(vocab, width)
        self.block = nn.Linear(width, width)
        self.head = nn.Linear(width, vocab, bias=False)
        self.head.weight = self.embed.weight
        self.unused = nn.Linear(3, 3)

    def forward(self, tokens):
        h = self.block(self.embed(tokens)).relu()
        return self.head(self.block(h))


def tied() -> nn.Module:
    return TiedLM()


tied.input_shape = (7,)
tied.input_dtype = "int64"
