"""Denoisers: wrappers that turn a network's eps-, x0- or v-prediction into
D(x, sigma, cond) = x0_hat, in the variance-exploding view x = x0 + sigma * eps.

The network F(x_in, t, cond) is a DDPM-style (variance-preserving) network: it sees
x_in = x / sqrt(1 + sigma^2) = sqrt(alpha_bar) x0 + sqrt(1 - alpha_bar) eps and the
(fractional) timestep t whose training noise level is sigma. It knows nothing else about
noise levels.
"""

from __future__ import annotations

import torch
from torch import nn

from .schedules import sigma_from_alpha_bar

PREDICTIONS = ("eps", "x0", "v")


class NoiseConditioned(nn.Module):
    """A network F(x_in, t, cond) fed the way it was trained: x scaled to the
    variance-preserving x_in, sigma turned into the fractional timestep t of ``alpha_bar``.
    The base of the denoiser and of the noise-aware classifier."""

    def __init__(self, net: nn.Module, alpha_bar: torch.Tensor) -> None:
        super().__init__()
        self.net = net
        self.register_buffer("alpha_bar", alpha_bar.float(), persistent=False)
        self.register_buffer(
            "log_sigmas", sigma_from_alpha_bar(alpha_bar).log().float(), persistent=False
        )

    @property
    def sigma_min(self) -> float:
        return self.log_sigmas[0].exp().item()

    @property
    def sigma_max(self) -> float:
        return self.log_sigmas[-1].exp().item()

    def sigma_to_t(self, sigma: torch.Tensor) -> torch.Tensor:
        """The fractional timestep (0-based) whose noise level is sigma: linear
        interpolation in log sigma between the training levels."""
        log_sigma = sigma.log().clamp(self.log_sigmas[0], self.log_sigmas[-1])
        hi = torch.searchsorted(self.log_sigmas, log_sigma).clamp(1, len(self.log_sigmas) - 1)
        lo = hi - 1
        w = (log_sigma - self.log_sigmas[lo]) / (self.log_sigmas[hi] - self.log_sigmas[lo])
        return lo + w

    def network_output(self, x: torch.Tensor, sigma: torch.Tensor, t: torch.Tensor, cond=None):
        c_in = (1 + sigma**2).rsqrt().view(-1, *[1] * (x.dim() - 1))
        return self.net(x * c_in, t, cond)

    def forward(self, x: torch.Tensor, sigma: torch.Tensor, cond=None) -> torch.Tensor:
        sigma = sigma.to(x.dtype)
        return self.network_output(x, sigma, self.sigma_to_t(sigma), cond)


class Denoiser(NoiseConditioned):
    def __init__(self, net: nn.Module, alpha_bar: torch.Tensor, prediction: str = "eps") -> None:
        if prediction not in PREDICTIONS:
            raise ValueError(f"prediction must be one of {PREDICTIONS}, got {prediction!r}")
        super().__init__(net, alpha_bar)
        self.prediction = prediction

    def to_x0(self, x: torch.Tensor, sigma: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        s = sigma.view(-1, *[1] * (x.dim() - 1))
        if self.prediction == "eps":
            return x - s * out
        if self.prediction == "x0":
            return out
        alpha = (1 + s**2).rsqrt()  # sqrt(alpha_bar); sqrt(1 - alpha_bar) = s * alpha
        return alpha * (alpha * x) - (s * alpha) * out  # x0 = sqrt(ab) x_vp - sqrt(1-ab) v

    def forward(self, x: torch.Tensor, sigma: torch.Tensor, cond=None) -> torch.Tensor:
        sigma = sigma.to(x.dtype)
        return self.to_x0(x, sigma, self.network_output(x, sigma, self.sigma_to_t(sigma), cond))
