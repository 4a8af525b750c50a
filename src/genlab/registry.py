"""Names the user types -> the code that builds them. Explicit tables, imported lazily."""

from __future__ import annotations

import importlib
from typing import Any

from .errors import GenlabError

# name -> ("module", "attribute", one-line description)
MODELS: dict[str, tuple[str, str, str]] = {
    "normal": ("genlab.models.gaussian", "Normal", "1-D normal, closed-form maximum likelihood"),
    "mvn": (
        "genlab.models.gaussian",
        "MultivariateNormal",
        "multivariate normal, closed-form maximum likelihood",
    ),
    "gmm": ("genlab.models.mixture", "GaussianMixture", "Gaussian mixture trained by EM"),
    "ae": ("genlab.models.autoencoder", "AE", "autoencoder (conv for images, MLP for 2-D)"),
    "vae": ("genlab.models.vae", "VAE", "variational autoencoder: ELBO, IWAE bound"),
    "hvae": ("genlab.models.hvae", "HVAE", "two-level hierarchical VAE"),
    "realnvp": ("genlab.models.flows.realnvp", "RealNVP", "RealNVP flow: exact log-likelihood"),
    "ebm": ("genlab.models.ebm", "EBM", "energy-based model: Langevin sampling, CD training"),
    "ddpm": ("genlab.models.diffusion", "DDPM", "diffusion model: U-Net/MLP, eps/x0/v, samplers"),
    "gan": ("genlab.models.gan", "GAN", "GAN, non-saturating loss (DCGAN for images, MLP for 2-D)"),
    "noisy-classifier": (
        "genlab.models.noisy_classifier",
        "NoisyClassifier",
        "noise-aware classifier p(y | x_t) for classifier guidance (not generative)",
    ),
}


def _resolve(table: dict[str, tuple[str, str, str]], kind: str, name: str) -> Any:
    try:
        module, attr, _ = table[name]
    except KeyError:
        known = ", ".join(sorted(table))
        raise GenlabError(f"Unknown {kind} '{name}'; known {kind}s: {known}.") from None
    return getattr(importlib.import_module(module), attr)


def model_class(name: str) -> Any:
    """The class registered under ``name`` (raises GenlabError for an unknown name)."""
    return _resolve(MODELS, "model", name)
