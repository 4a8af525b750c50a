"""A small transformer text encoder, trained together with the U-Net.

Words are hashed into ``vocab`` buckets (crc32 of the lower-cased word), so any prompt has
token ids with no vocabulary file to ship, and the same word always gets the same id."""

from __future__ import annotations

import re
import zlib

import torch
from torch import nn

from .encoder import TextEncoder, Tokens

_WORD = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*|[^\sa-z0-9]")
PAD, START = 0, 1


class TinyTextEncoder(TextEncoder):
    name = "tiny"
    trainable = True

    def __init__(
        self, dim: int = 128, layers: int = 2, heads: int = 4, max_tokens: int = 32,
        vocab: int = 4096,
    ) -> None:  # fmt: skip
        super().__init__()
        self.dim, self.max_tokens, self.vocab = dim, max_tokens, vocab
        self.embed = nn.Embedding(vocab, dim)
        self.position = nn.Parameter(torch.randn(max_tokens, dim) * 0.02)
        layer = nn.TransformerEncoderLayer(
            dim, heads, 4 * dim, dropout=0.0, activation="gelu", batch_first=True, norm_first=True
        )
        self.layers = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(dim)

    def words(self, prompt: str) -> list[tuple[int, tuple[int, int]]]:
        """(token id, character span) of the start token and of each word."""
        found = [(2 + zlib.crc32(m.group().encode()) % (self.vocab - 2), m.span())
                 for m in _WORD.finditer(prompt.lower())]  # fmt: skip
        return [(START, (0, 0)), *found]

    def tokenize(self, prompts: list[str]) -> Tokens:
        rows = [self.words(p) for p in prompts]
        truncated = tuple(len(r) > self.max_tokens for r in rows)
        rows = [r[: self.max_tokens] for r in rows]
        length = max(len(r) for r in rows)
        ids = torch.full((len(rows), length), PAD, dtype=torch.long)
        for i, r in enumerate(rows):
            ids[i, : len(r)] = torch.tensor([t for t, _ in r])
        spans = tuple(tuple(s for _, s in r) + ((0, 0),) * (length - len(r)) for r in rows)
        return Tokens(ids, ids != PAD, truncated, spans)

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        h = self.embed(ids) + self.position[: ids.shape[1]]
        return self.norm(self.layers(h, src_key_padding_mask=~mask))
