"""The text encoder interface and the factory that builds one by name."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import torch
from torch import nn


class PromptTruncated(UserWarning):
    """A prompt was longer than the text encoder takes. The text-to-image back end says so
    in one line of its own (``GenerationResult.info["notice"]``) and silences this one."""


@dataclass(frozen=True)
class Tokens:
    """Token ids of ``n`` prompts, padded to the longest: ``ids`` (n, L) int64, ``mask``
    (n, L) bool (True where a token is real), ``truncated`` (n,) whether a prompt was cut
    to the encoder's ``max_tokens``, ``spans`` the characters (start, end) each token covers
    ((0, 0) for special and padding tokens)."""

    ids: torch.Tensor
    mask: torch.Tensor
    truncated: tuple[bool, ...]
    spans: tuple[tuple[tuple[int, int], ...], ...] = ()


class TextEncoder(nn.Module):
    """prompts -> (n, L, dim) token embeddings. Subclasses set ``name``, ``dim``,
    ``max_tokens`` and ``trainable`` and implement ``tokenize`` and ``forward``."""

    name: str = ""
    dim: int = 0
    max_tokens: int = 0
    trainable: bool = False

    def tokenize(self, prompts: list[str]) -> Tokens:
        raise NotImplementedError

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    @torch.no_grad()
    def encode(self, prompts: list[str], weights=None, batch_size: int = 256):
        """(embeddings (n, L, dim) float32, mask (n, L), truncated flags) of ``prompts``,
        in batches; warns once when a prompt was longer than the encoder takes. ``weights``:
        one weight per character of each prompt (prompt emphasis), applied to the tokens."""
        from .emphasis import apply_weights, token_weights

        was_training = self.training
        self.eval()
        tokens = self.tokenize(list(prompts))
        device = next(self.parameters()).device
        parts = [
            self(
                tokens.ids[s : s + batch_size].to(device),
                tokens.mask[s : s + batch_size].to(device),
            )
            for s in range(0, len(tokens.ids), batch_size)
        ]
        self.train(was_training)
        out = torch.cat(parts)
        for i, w in enumerate(weights or ()):
            t = token_weights(tokens.spans[i], w)
            out[i] = apply_weights(out[i], tokens.mask[i], t.to(out))
        if any(tokens.truncated):
            warnings.warn(
                f"A prompt was longer than the {self.name} text encoder's {self.max_tokens} "
                "tokens and was truncated.",
                PromptTruncated,
                stacklevel=3,  # past torch.no_grad's wrapper: the caller of encode
            )
        return out, tokens.mask, tokens.truncated
