"""Small networks shared by the models: an MLP, and a conv encoder/decoder pair for images
whose side is divisible by 4 (8, 16, 28, 32 ...)."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable

import torch
from torch import nn


def mlp(
    n_in: int, n_out: int, hidden: tuple[int, ...] = (128, 128), act: Callable = nn.SiLU
) -> nn.Sequential:
    """Linear layers with ``act()`` between them; ``hidden=()`` gives one linear map."""
    sizes = [n_in, *hidden, n_out]
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(itertools.pairwise(sizes)):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(act())
    return nn.Sequential(*layers)


class ConvEncoder(nn.Module):
    """(N, C, H, W) -> (N, n_out): two stride-2 convolutions, then a linear head."""

    def __init__(self, shape: tuple[int, int, int], n_out: int, width: int = 32) -> None:
        super().__init__()
        c, h, w = shape
        self.conv = nn.Sequential(
            nn.Conv2d(c, width, 3, padding=1),
            nn.SiLU(),
            nn.Conv2d(width, 2 * width, 4, stride=2, padding=1),  # H/2
            nn.SiLU(),
            nn.Conv2d(2 * width, 2 * width, 4, stride=2, padding=1),  # H/4
            nn.SiLU(),
            nn.Flatten(),
        )
        self.head = nn.Linear(2 * width * (h // 4) * (w // 4), n_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.conv(x))


class ConvDecoder(nn.Module):
    """(N, n_in) -> (N, C, H, W): a linear map to a H/4 grid, two stride-2 transposed
    convolutions back to full size."""

    def __init__(self, n_in: int, shape: tuple[int, int, int], width: int = 32) -> None:
        super().__init__()
        c, h, w = shape
        self.grid = (2 * width, h // 4, w // 4)
        self.head = nn.Sequential(nn.Linear(n_in, math.prod(self.grid)), nn.SiLU())
        self.deconv = nn.Sequential(
            nn.ConvTranspose2d(2 * width, 2 * width, 4, stride=2, padding=1),  # H/2
            nn.SiLU(),
            nn.ConvTranspose2d(2 * width, width, 4, stride=2, padding=1),  # H
            nn.SiLU(),
            nn.Conv2d(width, c, 3, padding=1),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.deconv(self.head(z).view(-1, *self.grid))


def encoder(shape: tuple[int, ...], n_out: int, hidden: tuple[int, ...], width: int) -> nn.Module:
    """A conv encoder for images (C, H, W), an MLP for vectors (d,)."""
    if len(shape) == 3:
        return ConvEncoder(shape, n_out, width)  # type: ignore[arg-type]
    return mlp(shape[0], n_out, hidden)


def decoder(n_in: int, shape: tuple[int, ...], hidden: tuple[int, ...], width: int) -> nn.Module:
    if len(shape) == 3:
        return ConvDecoder(n_in, shape, width)  # type: ignore[arg-type]
    return mlp(n_in, shape[0], hidden)


class LabelEmbedding(nn.Embedding):
    """Class labels -> vectors, with one extra learned row for "no label". The only place
    that decodes an unconditional sample: a Condition's ``null`` samples, and every sample
    when no labels are given, get that row (classifier-free guidance trains and uses it)."""

    def __init__(self, num_classes: int, dim: int) -> None:
        super().__init__(num_classes + 1, dim)

    def embed(self, cond, n: int, device) -> torch.Tensor:
        """(n, dim) embedding of ``cond`` (a Condition or None)."""
        null_row = torch.full((n,), self.num_embeddings - 1, device=device)
        if cond is None or cond.labels is None:
            return self(null_row)
        return self(torch.where(cond.null_mask(n, device), null_row, cond.labels))
