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
        if cond is None or self.scale == 0.0:  # w = 0: the unconditional model alone
            return self.denoiser(x, sigma, None)
        if self.scale == 1.0:
            return self.denoiser(x, sigma, cond)
        both = self.denoiser(torch.cat([x, x]), torch.cat([sigma, sigma]), _with_null(cond))
        c, uncond = both.chunk(2)  # the labelled half first, as _with_null builds it
        return uncond + self.scale * (c - uncond)


class ClassifierGuidance(nn.Module):
    """D_s(x, sigma, y) = D(x, sigma, y) + s sigma^2 grad_x log p(y | x, sigma)
    (Dhariwal and Nichol, 2021), with ``classifier(x, sigma) -> logits`` trained on noised
    samples. Why sigma^2: by Tweedie's formula D = x + sigma^2 grad log p(x), and
    Bayes' rule adds grad log p(y | x) to grad log p(x) for the conditional; so s = 1 with
    the exact classifier turns the exact denoiser into the exact conditional one, and
    s > 1 sharpens p(y | x) to the power s. ``cond`` also goes to the inner denoiser,
    which may ignore it (unconditional) or be a ClassifierFreeGuidance wrapper."""

    def __init__(self, denoiser: nn.Module, classifier: nn.Module, scale: float) -> None:
        super().__init__()
        self.denoiser, self.classifier, self.scale = denoiser, classifier, scale

    def forward(self, x, sigma, cond=None):
        denoised = self.denoiser(x, sigma, cond)
        if cond is None or self.scale == 0.0:
            return denoised
        with torch.enable_grad():
            x_in = x.detach().requires_grad_(True)
            log_p = torch.log_softmax(self.classifier(x_in, sigma), dim=1)
            (grad,) = torch.autograd.grad(log_p.gather(1, cond.view(-1, 1)).sum(), x_in)
        s2 = (sigma**2).view(-1, *[1] * (x.dim() - 1))
        return denoised + self.scale * s2 * grad


def _with_null(cond: torch.Tensor) -> torch.Tensor:
    """Labels followed by the same number of "no label" tokens (-1, mapped by the net)."""
    return torch.cat([cond, torch.full_like(cond, -1)])
