"""Guidance as denoiser wrappers, never as new model classes."""

from __future__ import annotations

import torch
from torch import nn


class ClassifierFreeGuidance(nn.Module):
    """D_w(x, sigma, c) = D(x, sigma, None) + w (D(x, sigma, c) - D(x, sigma, None))
    (Ho and Salimans, 2022); w = 1 is plain conditional sampling. Both halves run as one
    batch."""

    def __init__(self, denoiser: nn.Module, scale: float) -> None:
        super().__init__()
        self.denoiser, self.scale = denoiser, scale

    def forward(self, x, sigma, cond=None):
        if cond is None or self.scale == 1.0:
            return self.denoiser(x, sigma, cond)
        both = self.denoiser(torch.cat([x, x]), torch.cat([sigma, sigma]), _with_null(cond))
        c, uncond = both.chunk(2)  # the labelled half first, as _with_null builds it
        return uncond + self.scale * (c - uncond)


def _with_null(cond: torch.Tensor) -> torch.Tensor:
    """Labels followed by the same number of "no label" tokens (-1, mapped by the net)."""
    return torch.cat([cond, torch.full_like(cond, -1)])
