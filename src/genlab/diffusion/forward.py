"""The forward (noising) process of DDPM, in closed form and step by step.

With betas b_t and alpha_bar_t = prod_{s<=t} (1 - b_s):
    q(x_t | x_{t-1}) = N(sqrt(1 - b_t) x_{t-1}, b_t I)
    q(x_t | x_0)     = N(sqrt(alpha_bar_t) x_0, (1 - alpha_bar_t) I)
    q(x_{t-1} | x_t, x_0) = N(mu_tilde, beta_tilde I), the posterior the reverse model learns.
Timesteps t are 1-based by default, as in the paper (t = 1..T; index t - 1 into
``alpha_bar``); ``base=0`` takes the 0-based t = 0..T-1 of diffusers and of much code.
Both name the same noise levels: 1-based t is 0-based t + 1.
"""

from __future__ import annotations

import torch


def betas_from_alpha_bar(alpha_bar: torch.Tensor) -> torch.Tensor:
    prev = torch.cat([alpha_bar.new_ones(1), alpha_bar[:-1]])
    return 1 - alpha_bar / prev


def q_step(x_prev: torch.Tensor, t: int, alpha_bar: torch.Tensor, generator=None, base: int = 1):
    """One step of q(x_t | x_{t-1})."""
    beta = betas_from_alpha_bar(alpha_bar)[t - base].to(x_prev.dtype)
    eps = torch.randn(x_prev.shape, generator=generator, dtype=x_prev.dtype)
    return torch.sqrt(1 - beta) * x_prev + torch.sqrt(beta) * eps


def q_sample(
    x0: torch.Tensor,
    t: torch.Tensor | int,
    alpha_bar: torch.Tensor,
    eps=None,
    generator=None,
    base: int = 1,
):
    """A draw of q(x_t | x_0) = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps."""
    t = torch.as_tensor(t)
    ab = alpha_bar[t - base].to(x0.dtype).view(-1, *[1] * (x0.dim() - 1))
    if eps is None:
        eps = torch.randn(x0.shape, generator=generator, dtype=x0.dtype)
    return ab.sqrt() * x0 + (1 - ab).sqrt() * eps


def q_posterior(
    x_t: torch.Tensor, x0: torch.Tensor, t: int, alpha_bar: torch.Tensor, base: int = 1
):
    """Mean and variance of q(x_{t-1} | x_t, x_0) (Ho et al. 2020, eq. 7), for t >= base + 1."""
    ab = alpha_bar[t - base].to(x0.dtype)
    ab_prev = alpha_bar[t - base - 1].to(x0.dtype)
    beta = 1 - ab / ab_prev
    mean = (ab_prev.sqrt() * beta / (1 - ab)) * x0 + (
        (1 - beta).sqrt() * (1 - ab_prev) / (1 - ab)
    ) * x_t
    var = (1 - ab_prev) / (1 - ab) * beta
    return mean, var
