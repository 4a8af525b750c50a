"""Training losses: small callables (denoiser, x0, cond) -> per-sample loss."""

from __future__ import annotations

import torch


def noised(noise_conditioned, x0: torch.Tensor, noise_offset: float = 0.0):
    """A training level drawn uniformly per sample, and x = x0 + sigma eps.
    ``noise_offset`` adds a per-sample, per-channel constant of that scale to eps (the
    "noise offset" of diffusers' and kohya's trainers: it lets a model learn an image's mean
    brightness). Returns (x, sigma (N,), eps)."""
    log_sigmas = noise_conditioned.log_sigmas
    t = torch.randint(0, len(log_sigmas), (len(x0),), device=x0.device)
    sigma = log_sigmas[t].exp()
    eps = torch.randn_like(x0)
    if noise_offset:
        eps = eps + noise_offset * torch.randn(*x0.shape[:2], *[1] * (x0.dim() - 2),
                                               device=x0.device)  # fmt: skip
    return x0 + sigma.view(-1, *[1] * (x0.dim() - 1)) * eps, sigma, eps


def diffusion_loss(
    denoiser, x0: torch.Tensor, cond=None, *, min_snr: float = 0.0, noise_offset: float = 0.0
):
    """The simple loss of Ho et al. (2020): pick a level uniformly, noise x0 to x, regress
    the network onto the target that makes the denoiser exact, (x0 - c_skip x) / c_out
    (eps, x0 or v by the prediction), with MSE. ``min_snr`` > 0 weights each level by
    min(SNR, gamma) in x0 space (Hang et al., 2023), which is min(SNR, gamma) c_out^2 in
    the network's space."""
    x, sigma, eps = noised(denoiser, x0, noise_offset)
    out = denoiser.network_output(x, sigma, cond)
    c_skip, c_out = denoiser.coefficients(sigma, x0)
    # = (x0 - c_skip x) / c_out, written without cancelling x0 against x
    target = ((1 - c_skip) * x0 - c_skip * sigma.view_as(c_skip) * eps) / c_out
    mse = (out - target).pow(2).flatten(1).mean(1)
    if min_snr > 0:
        snr = sigma.pow(-2)
        mse = mse * snr.clamp(max=min_snr) * c_out.flatten().pow(2)
    return mse


def noisy_classifier_loss(classifier, x0: torch.Tensor, labels: torch.Tensor):
    """Cross-entropy of a classifier of noised samples, at levels drawn as in training the
    diffusion model (Dhariwal and Nichol, 2021). Returns (per-sample loss, logits)."""
    x, sigma, _ = noised(classifier, x0)
    logits = classifier.network_output(x, sigma)
    return torch.nn.functional.cross_entropy(logits, labels, reduction="none"), logits
