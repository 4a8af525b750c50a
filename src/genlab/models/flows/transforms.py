"""Invertible transforms that map data x to latent z and report log |det dz/dx|.

Every transform has ``forward(x) -> (z, log_det)`` (per sample) and ``inverse(z) -> x``,
after ``torch.distributions.transforms``' ``log_abs_det_jacobian`` convention.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ...nn.layers import mlp


class Transform(nn.Module):
    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def inverse(self, z: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


def _sum(t: torch.Tensor) -> torch.Tensor:
    return t.flatten(1).sum(1)


class AffineCoupling(Transform):
    """z = x on the mask; z = x * exp(s) + t off it, with (s, t) = net(masked x).

    ``s`` goes through ``scale * tanh`` so early steps cannot blow up; the last layer of
    ``net`` starts at zero, so every coupling starts as the identity.
    """

    def __init__(self, mask: torch.Tensor, net: nn.Module, channels: int) -> None:
        super().__init__()
        self.register_buffer("mask", mask)
        self.net = net
        self.scale = nn.Parameter(torch.ones(channels, *([1] * (mask.dim() - 1))))

    def _shift_scale(self, x_masked: torch.Tensor):
        s, t = self.net(x_masked).chunk(2, dim=1)
        keep = 1 - self.mask
        return self.scale * torch.tanh(s) * keep, t * keep

    def forward(self, x):
        s, t = self._shift_scale(x * self.mask)
        return x * torch.exp(s) + t, _sum(s)

    def inverse(self, z):
        s, t = self._shift_scale(z * self.mask)  # the masked part is unchanged, so s, t agree
        return (z - t) * torch.exp(-s)


class Squeeze(Transform):
    """(C, H, W) -> (4C, H/2, W/2): each 2x2 patch becomes four channels (volume-preserving)."""

    def forward(self, x):
        n, c, h, w = x.shape
        x = x.view(n, c, h // 2, 2, w // 2, 2).permute(0, 1, 3, 5, 2, 4)
        return x.reshape(n, 4 * c, h // 2, w // 2), x.new_zeros(n)

    def inverse(self, z):
        n, c, h, w = z.shape
        z = z.view(n, c // 4, 2, 2, h, w).permute(0, 1, 4, 2, 5, 3)
        return z.reshape(n, c // 4, 2 * h, 2 * w)


class Logit(Transform):
    """u in (0, 1) -> logit(alpha + (1 - 2 alpha) u): unbounded inputs for the couplings."""

    def __init__(self, alpha: float = 0.05) -> None:
        super().__init__()
        self.alpha = alpha

    def forward(self, u):
        p = self.alpha + (1 - 2 * self.alpha) * u
        z = torch.log(p) - torch.log1p(-p)
        log_det = math.log(1 - 2 * self.alpha) - torch.log(p) - torch.log1p(-p)
        return z, _sum(log_det)

    def inverse(self, z):
        return (torch.sigmoid(z) - self.alpha) / (1 - 2 * self.alpha)


class Affine(Transform):
    """z = (x - loc) / scale with fixed ``loc`` and ``scale`` (e.g. [-1, 1] -> [0, 1])."""

    def __init__(self, loc: float, scale: float) -> None:
        super().__init__()
        self.loc, self.s = loc, scale

    def forward(self, x):
        return (x - self.loc) / self.s, x.new_full((len(x),), -x[0].numel() * math.log(self.s))

    def inverse(self, z):
        return z * self.s + self.loc


def checkerboard(shape: tuple[int, ...], parity: int) -> torch.Tensor:
    c, h, w = shape
    grid = (torch.arange(h)[:, None] + torch.arange(w)[None, :] + parity) % 2
    return grid.float().expand(c, h, w).clone()


def channel_mask(shape: tuple[int, ...], parity: int) -> torch.Tensor:
    c, h, w = shape
    first = (torch.arange(c) < c // 2).float()
    m = first if parity == 0 else 1 - first
    return m[:, None, None].expand(c, h, w).clone()


def vector_mask(d: int, parity: int) -> torch.Tensor:
    return ((torch.arange(d) + parity) % 2).float()


class ConvNet(nn.Module):
    """The (s, t) network of an image coupling; output layer zero-initialised."""

    def __init__(self, channels: int, width: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, width, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(width, width, 1),
            nn.ReLU(),
            nn.Conv2d(width, 2 * channels, 3, padding=1),
        )
        nn.init.zeros_(self.body[-1].weight)
        nn.init.zeros_(self.body[-1].bias)

    def forward(self, x):
        return self.body(x)


def vector_net(d: int, hidden: tuple[int, ...]) -> nn.Module:
    net = mlp(d, 2 * d, hidden)
    nn.init.zeros_(net[-1].weight)
    nn.init.zeros_(net[-1].bias)
    return net
