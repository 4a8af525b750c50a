"""Names the user types -> the code that builds them. Explicit tables, imported lazily.

Each model's kind is recorded here, in one place: "classical" models are fitted by their own
``fit`` in closed form or by EM and have an exact likelihood (``genlab fit`` writes their
runs, with score, BIC and AIC); "latent" ones are latent-variable models fitted by their own
optimiser, without an exact likelihood to report (``genlab compare --latent`` fits them);
"neural" ones are trained by the Trainer (``genlab train``)."""

from __future__ import annotations

import importlib
from typing import Any, NamedTuple

from .errors import GenlabError

KINDS = ("classical", "latent", "neural")


class Entry(NamedTuple):
    module: str
    attr: str
    kind: str
    description: str


MODELS: dict[str, Entry] = {
    "normal": Entry(
        "genlab.models.gaussian",
        "Normal",
        "classical",
        "1-D normal, closed-form maximum likelihood",
    ),
    "mvn": Entry(
        "genlab.models.gaussian",
        "MultivariateNormal",
        "classical",
        "multivariate normal, closed-form maximum likelihood",
    ),
    "gmm": Entry(
        "genlab.models.mixture", "GaussianMixture", "classical", "Gaussian mixture trained by EM"
    ),
    "pixel-gmm": Entry(
        "genlab.models.mixture",
        "FlatMixture",
        "classical",
        "Gaussian mixture over an image's pixels (EM on flattened images)",
    ),
    "ppca": Entry(
        "genlab.models.latent",
        "PPCA",
        "classical",
        "probabilistic PCA, closed-form maximum likelihood",
    ),
    "linear-vae": Entry(
        "genlab.models.latent",
        "LinearVAE",
        "latent",
        "linear-Gaussian VAE: closed-form ELBO, L-BFGS",
    ),
    "gplvm": Entry(
        "genlab.models.gplvm",
        "GPLVM",
        "latent",
        "Bayesian GPLVM with inducing points (needs the 'latent' extra: GPyTorch)",
    ),
    "ae": Entry(
        "genlab.models.autoencoder", "AE", "neural", "autoencoder (conv for images, MLP for 2-D)"
    ),
    "vae": Entry("genlab.models.vae", "VAE", "neural", "variational autoencoder: ELBO, IWAE bound"),
    "hvae": Entry("genlab.models.hvae", "HVAE", "neural", "two-level hierarchical VAE"),
    "realnvp": Entry(
        "genlab.models.flows.realnvp", "RealNVP", "neural", "RealNVP flow: exact log-likelihood"
    ),
    "ebm": Entry(
        "genlab.models.ebm", "EBM", "neural", "energy-based model: Langevin sampling, CD training"
    ),
    "ddpm": Entry(
        "genlab.models.diffusion",
        "DDPM",
        "neural",
        "diffusion model: U-Net/MLP, eps/x0/v, samplers",
    ),
    "gan": Entry(
        "genlab.models.gan",
        "GAN",
        "neural",
        "GAN, non-saturating loss (DCGAN for images, MLP for 2-D)",
    ),
    "kl-autoencoder": Entry(
        "genlab.models.kl_autoencoder",
        "KLAutoencoder",
        "neural",
        "KL-regularized autoencoder, 4x downsampling: the first stage of latent diffusion",
    ),
    "latent-diffusion": Entry(
        "genlab.models.latent_diffusion",
        "LatentDiffusion",
        "neural",
        "text-to-image latent diffusion (autoencoder, text encoder, cross-attention U-Net)",
    ),
    "latent-consistency": Entry(
        "genlab.models.consistency_distillation",
        "LatentConsistencyDistillation",
        "neural",
        "latent consistency distillation of a text-to-image model: a few-step student, "
        "guidance folded in",
    ),
    "lora": Entry(
        "genlab.finetune.model",
        "LoRA",
        "neural",
        "low-rank adapters of a text-to-image model, trained on your captioned images",
    ),
    "noisy-classifier": Entry(
        "genlab.models.noisy_classifier",
        "NoisyClassifier",
        "neural",
        "noise-aware classifier p(y | x_t) for classifier guidance (not generative)",
    ),
}


def entry(name: str) -> Entry:
    """The registry entry of model ``name`` (GenlabError for an unknown name)."""
    try:
        return MODELS[name]
    except KeyError:
        known = ", ".join(sorted(MODELS))
        raise GenlabError(f"Unknown model '{name}'; known models: {known}.") from None


def names(kind: str) -> list[str]:
    """The registered models of one kind."""
    return [name for name, e in MODELS.items() if e.kind == kind]


def model_class(name: str) -> Any:
    """The class registered under ``name`` (raises GenlabError for an unknown name)."""
    e = entry(name)
    return getattr(importlib.import_module(e.module), e.attr)
