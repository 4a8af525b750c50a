"""Samplers as plain functions over a denoiser D(x, sigma, cond) -> x0_hat.

Signature (shared by all): ``sample_X(denoiser, x, sigmas, *, cond=None, generator=None,
callback=None, **opts) -> x0`` where ``x`` is the starting noise already scaled to
``sigmas[0]`` and ``sigmas`` decreases to 0; ``generator`` is a torch generator or a
``seeding.ImageRNG`` (one generator per image, so stochastic samplers run batched).
Everything is in the variance-exploding view x = x0 + sigma * eps; a DDPM-style
(variance-preserving) chain is the same chain with x_vp = x / sqrt(1 + sigma^2).
The callback receives {"i", "x", "sigma", "denoised"}.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from ..seeding import noise_like

Denoiser = Callable[..., torch.Tensor]


def _denoise(denoiser, x, sigma, cond):
    return denoiser(x, sigma.to(x.dtype).expand(len(x)), cond)


def _report(callback, i, x, sigma, denoised):
    if callback is not None:
        callback({"i": i, "x": x, "sigma": sigma, "denoised": denoised})


@torch.no_grad()
def sample_euler(denoiser, x, sigmas, *, cond=None, generator=None, callback=None):
    """Euler steps on the probability-flow ODE dx/dsigma = (x - D(x, sigma)) / sigma
    (Karras et al. 2022, Algorithm 2 without churn). Equals DDIM with eta = 0."""
    for i in range(len(sigmas) - 1):
        denoised = _denoise(denoiser, x, sigmas[i], cond)
        _report(callback, i, x, sigmas[i], denoised)
        d = (x - denoised) / sigmas[i]
        x = x + d * (sigmas[i + 1] - sigmas[i])
    return x


@torch.no_grad()
def sample_heun(denoiser, x, sigmas, *, cond=None, generator=None, callback=None):
    """Heun's second-order method (Karras et al. 2022, Algorithm 1, deterministic): an Euler
    step, then the average of the slopes at both ends (plain Euler into sigma = 0)."""
    for i in range(len(sigmas) - 1):
        s, s_next = sigmas[i], sigmas[i + 1]
        denoised = _denoise(denoiser, x, s, cond)
        _report(callback, i, x, s, denoised)
        d = (x - denoised) / s
        x_next = x + d * (s_next - s)
        if s_next > 0:
            d_next = (x_next - _denoise(denoiser, x_next, s_next, cond)) / s_next
            x_next = x + (d + d_next) / 2 * (s_next - s)
        x = x_next
    return x


@torch.no_grad()
def sample_ddim(denoiser, x, sigmas, *, cond=None, generator=None, callback=None, eta=0.0):
    """DDIM (Song et al. 2021, eq. 12) with stochasticity ``eta`` (0: deterministic, 1: the
    DDPM posterior variance), written in the variance-exploding view."""
    for i in range(len(sigmas) - 1):
        s, s_next = sigmas[i], sigmas[i + 1]
        denoised = _denoise(denoiser, x, s, cond)
        _report(callback, i, x, s, denoised)
        if s_next == 0:
            x = denoised
            continue
        eps = (x - denoised) / s
        ab, ab_next = 1 / (1 + s**2), 1 / (1 + s_next**2)
        std = eta * torch.sqrt((1 - ab_next) / (1 - ab) * (1 - ab / ab_next))
        noise = noise_like(x, generator)
        x = denoised + (torch.sqrt(1 - ab_next - std**2) * eps + std * noise) / torch.sqrt(ab_next)
    return x


@torch.no_grad()
def sample_ddpm(
    denoiser, x, sigmas, *, cond=None, generator=None, callback=None, variance="posterior"
):
    """Ancestral DDPM sampling (Ho et al. 2020, Algorithm 2): x_{t-1} = mu_tilde(x_t, x0_hat)
    + s_t z. The reverse variance s_t^2 is the posterior's beta_tilde_t ("posterior", the
    default: the same chain as DDIM with eta = 1) or beta_t ("beta", as in the paper's
    Algorithm 2); the paper found both give similar samples. Computed in the
    variance-preserving view x_vp = sqrt(alpha_bar) x."""
    if variance == "posterior":
        return sample_ddim(
            denoiser, x, sigmas, cond=cond, generator=generator, callback=callback, eta=1.0
        )
    if variance != "beta":
        raise ValueError(f"variance must be 'posterior' or 'beta', got '{variance}'.")
    for i in range(len(sigmas) - 1):
        s, s_next = sigmas[i], sigmas[i + 1]
        denoised = _denoise(denoiser, x, s, cond)
        _report(callback, i, x, s, denoised)
        if s_next == 0:
            x = denoised
            continue
        ab, ab_next = 1 / (1 + s**2), 1 / (1 + s_next**2)
        beta = 1 - ab / ab_next
        mean = (ab_next.sqrt() * beta / (1 - ab)) * denoised + (
            (1 - beta).sqrt() * (1 - ab_next) / (1 - ab)
        ) * (x * ab.sqrt())
        noise = noise_like(x, generator)
        x = (mean + beta.sqrt() * noise) / ab_next.sqrt()
    return x


@torch.no_grad()
def sample_dpmpp_2m(denoiser, x, sigmas, *, cond=None, generator=None, callback=None):
    """DPM-Solver++(2M) (Lu et al. 2022, Algorithm 2): a multistep second-order solver in
    log-sigma time, t = -log sigma, extrapolating the denoised estimates linearly."""
    old = None
    h_last = None
    for i in range(len(sigmas) - 1):
        s, s_next = sigmas[i], sigmas[i + 1]
        denoised = _denoise(denoiser, x, s, cond)
        _report(callback, i, x, s, denoised)
        if s_next == 0:
            x = denoised
            continue
        h = math.log(s) - math.log(s_next)
        if old is None:  # the first step has no history: first order
            d = denoised
        else:
            r = h_last / h
            d = (1 + 1 / (2 * r)) * denoised - (1 / (2 * r)) * old
        x = (s_next / s) * x - math.expm1(-h) * d
        old, h_last = denoised, h
    return x


@torch.no_grad()
def sample_euler_ancestral(denoiser, x, sigmas, *, cond=None, generator=None, callback=None):
    """Euler ancestral ("Euler a" in stable-diffusion-webui): each step goes down to
    sigma_down by an Euler step of the ODE, then adds fresh noise of std sigma_up, where
    sigma_down^2 + sigma_up^2 = sigma_next^2 and sigma_up is the DDPM posterior's std
    (eta = 1). Stochastic: the same seed gives the same image."""
    for i in range(len(sigmas) - 1):
        s, s_next = sigmas[i], sigmas[i + 1]
        denoised = _denoise(denoiser, x, s, cond)
        _report(callback, i, x, s, denoised)
        if s_next == 0:
            x = denoised
            continue
        up = torch.sqrt(s_next**2 * (s**2 - s_next**2) / s**2)
        down = torch.sqrt(s_next**2 - up**2)
        x = x + (x - denoised) / s * (down - s)
        x = x + noise_like(x, generator) * up
    return x


SAMPLERS: dict[str, Callable] = {
    "ddpm": sample_ddpm,
    "ddim": sample_ddim,
    "euler": sample_euler,
    "heun": sample_heun,
    "dpmpp-2m": sample_dpmpp_2m,
    "euler-a": sample_euler_ancestral,
}
#: The samplers that draw fresh noise at each step (a seed is needed per image).
STOCHASTIC = frozenset({"ddpm", "euler-a"})
