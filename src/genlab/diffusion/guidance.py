"""Guidance as denoiser wrappers, never as new model classes. Conditions are
genlab.conditioning.Condition objects; the unconditional half is passed in explicitly."""

from __future__ import annotations

import torch
from torch import nn

from ..conditioning import Condition


class ClassifierFreeGuidance(nn.Module):
    """D_w(x, sigma, c) = D(x, sigma, u) + w (D(x, sigma, c) - D(x, sigma, u))
    (Ho and Salimans, 2022), where ``uncond`` is u: ``Condition.unconditional(n)`` for
    labels, the encoded negative prompt for text. w = 1 is plain conditional sampling, w = 0
    the unconditional model. Both halves run as one batch."""

    def __init__(self, denoiser: nn.Module, scale: float, uncond: Condition) -> None:
        super().__init__()
        self.denoiser, self.scale, self.uncond = denoiser, scale, uncond

    def forward(self, x, sigma, cond: Condition | None = None):
        if cond is None or self.scale == 0.0:
            return self.denoiser(x, sigma, self.uncond)
        if self.scale == 1.0:
            return self.denoiser(x, sigma, cond)
        both = Condition.cat([cond, self.uncond])
        c, u = self.denoiser(torch.cat([x, x]), torch.cat([sigma, sigma]), both).chunk(2)
        return u + self.scale * (c - u)


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
        if cond is None or cond.labels is None or self.scale == 0.0:
            return denoised
        with torch.enable_grad():
            x_in = x.detach().requires_grad_(True)
            log_p = torch.log_softmax(self.classifier(x_in, sigma), dim=1)
            picked = log_p.gather(1, cond.labels.view(-1, 1))
            (grad,) = torch.autograd.grad(picked.sum(), x_in)
        s2 = (sigma**2).view(-1, *[1] * (x.dim() - 1))
        return denoised + self.scale * s2 * grad
