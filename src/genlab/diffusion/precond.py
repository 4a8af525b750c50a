"""Denoisers: wrappers that turn a network's eps-, x0- or v-prediction into
D(x, sigma, cond) = x0_hat, in the variance-exploding view x = x0 + sigma * eps.

As in EDM (Karras et al., 2022, Table 1), one table of coefficients says everything:
    D(x, sigma) = c_skip(sigma) x + c_out(sigma) F(c_in(sigma) x, c_noise(sigma), cond)
The network F is a DDPM-style (variance-preserving) network: c_in = 1 / sqrt(1 + sigma^2)
turns x into sqrt(alpha_bar) x0 + sqrt(1 - alpha_bar) eps, and c_noise(sigma) is the
(fractional, 0-based) timestep whose training noise level is sigma, the one time index
used in training and sampling alike. Training regresses F onto the target that makes
D exact, (x0 - c_skip x) / c_out.
"""

from __future__ import annotations

import torch
from torch import nn

from .schedules import sigma_from_alpha_bar

PREDICTIONS = ("eps", "x0", "v")


def coefficients(prediction: str, sigma: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(c_skip, c_out) of an eps-, x0- or v-predicting network, shaped like ``sigma``.

    eps: x0 = x - sigma eps;  x0: x0 = F;  v = sqrt(ab) eps - sqrt(1 - ab) x0 with
    sqrt(ab) = 1 / sqrt(1 + sigma^2) gives x0 = x / (1 + sigma^2) - sigma / sqrt(1 + sigma^2) v.
    """
    one = torch.ones_like(sigma)
    if prediction == "eps":
        return one, -sigma
    if prediction == "x0":
        return torch.zeros_like(sigma), one
    if prediction == "v":
        return 1 / (1 + sigma**2), -sigma * (1 + sigma**2).rsqrt()
    raise ValueError(f"prediction must be one of {PREDICTIONS}, got {prediction!r}")


def _per_sample(sigma: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return sigma.view(-1, *[1] * (x.dim() - 1))


class NoiseConditioned(nn.Module):
    """A network F(x_in, t, cond) fed the way it was trained: x scaled by c_in, sigma turned
    into c_noise. The base of the denoiser and of the noise-aware classifier."""

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

    def c_noise(self, sigma: torch.Tensor) -> torch.Tensor:
        """The fractional timestep (0-based) whose noise level is sigma: linear
        interpolation in log sigma between the training levels."""
        log_sigma = sigma.log().clamp(self.log_sigmas[0], self.log_sigmas[-1])
        hi = torch.searchsorted(self.log_sigmas, log_sigma).clamp(1, len(self.log_sigmas) - 1)
        lo = hi - 1
        w = (log_sigma - self.log_sigmas[lo]) / (self.log_sigmas[hi] - self.log_sigmas[lo])
        return lo + w

    def network_output(self, x: torch.Tensor, sigma: torch.Tensor, cond=None) -> torch.Tensor:
        """F(c_in x, c_noise(sigma), cond) for per-sample ``sigma`` (N,)."""
        sigma = sigma.to(x.dtype)
        c_in = _per_sample((1 + sigma**2).rsqrt(), x)
        return self.net(x * c_in, self.c_noise(sigma), cond)

    def forward(self, x: torch.Tensor, sigma: torch.Tensor, cond=None) -> torch.Tensor:
        return self.network_output(x, sigma, cond)


class Denoiser(NoiseConditioned):
    def __init__(self, net: nn.Module, alpha_bar: torch.Tensor, prediction: str = "eps") -> None:
        if prediction not in PREDICTIONS:
            raise ValueError(f"prediction must be one of {PREDICTIONS}, got {prediction!r}")
        super().__init__(net, alpha_bar)
        self.prediction = prediction

    def coefficients(self, sigma: torch.Tensor, x: torch.Tensor):
        """(c_skip, c_out) broadcastable over ``x``."""
        c_skip, c_out = coefficients(self.prediction, sigma.to(x.dtype))
        return _per_sample(c_skip, x), _per_sample(c_out, x)

    def forward(self, x: torch.Tensor, sigma: torch.Tensor, cond=None) -> torch.Tensor:
        c_skip, c_out = self.coefficients(sigma, x)
        return c_skip * x + c_out * self.network_output(x, sigma, cond)
