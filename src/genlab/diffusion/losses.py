"""Training losses: small callables (denoiser, x0, cond) -> per-sample loss."""

from __future__ import annotations

import torch


def noised(alpha_bar: torch.Tensor, x0: torch.Tensor):
    """A training level t drawn uniformly per sample and x = x0 + sigma_t eps.
    Returns (x, sigma, t, eps, alpha_bar_t), the last shaped to broadcast over x0."""
    t = torch.randint(0, len(alpha_bar), (len(x0),), device=x0.device)
    ab = alpha_bar[t].view(-1, *[1] * (x0.dim() - 1))
    eps = torch.randn_like(x0)
    sigma = ((1 - ab) / ab).sqrt()
    return x0 + sigma * eps, sigma.flatten(), t, eps, ab


def diffusion_loss(denoiser, x0: torch.Tensor, cond=None, *, min_snr: float = 0.0):
    """The simple loss of Ho et al. (2020): pick t uniformly, noise x0 to x_t, regress the
    network's target (eps, x0 or v) with MSE. ``min_snr`` > 0 weights each t by
    min(SNR, gamma) relative to the target's natural weight (Hang et al., 2023)."""
    x, sigma, t, eps, ab = noised(denoiser.alpha_bar, x0)
    out = denoiser.network_output(x, sigma, t.float(), cond)
    if denoiser.prediction == "eps":
        target = eps
    elif denoiser.prediction == "x0":
        target = x0
    else:
        target = ab.sqrt() * eps - (1 - ab).sqrt() * x0
    mse = (out - target).pow(2).flatten(1).mean(1)
    if min_snr > 0:
        snr = (ab / (1 - ab)).flatten()
        clipped = snr.clamp(max=min_snr)
        weight = {"eps": clipped / snr, "x0": clipped, "v": clipped / (snr + 1)}[
            denoiser.prediction
        ]
        mse = mse * weight
    return mse


def noisy_classifier_loss(classifier, x0: torch.Tensor, labels: torch.Tensor):
    """Cross-entropy of a classifier of noised samples, at levels drawn as in training the
    diffusion model (Dhariwal and Nichol, 2021). Returns (per-sample loss, logits)."""
    x, sigma, t, _, _ = noised(classifier.alpha_bar, x0)
    logits = classifier.network_output(x, sigma, t.float())
    return torch.nn.functional.cross_entropy(logits, labels, reduction="none"), logits
