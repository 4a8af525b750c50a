"""Variational autoencoder (Kingma and Welling, 2014) with the IWAE bound (Burda et al., 2016).

q(z|x) = N(mu(x), diag sigma(x)^2), p(z) = N(0, I), p(x|z) Gaussian (learned scale) or
Bernoulli (for images, on pixels mapped to [0, 1]). The ELBO is
E_q[log p(x|z)] - KL(q(z|x) || p(z)), estimated with one reparameterized sample
z = mu + sigma * eps and the KL in closed form.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import GenlabError
from ..nn.layers import decoder, encoder
from ..options import Option
from .neural import Batch, NeuralModel, randn_like, seeded

NOISE = Option(
    "noise",
    bool,
    None,
    "add the decoder's noise (default: for vectors yes, for images no: the mean is shown)",
)

LOG_2PI = math.log(2 * math.pi)


def gaussian_log_prob(x: torch.Tensor, mean: torch.Tensor, log_std: torch.Tensor) -> torch.Tensor:
    """log N(x | mean, exp(log_std)^2), summed over all but the first axis."""
    z = (x - mean) * torch.exp(-log_std)
    return (-0.5 * z**2 - log_std - 0.5 * LOG_2PI).flatten(1).sum(1)


class _Net(nn.Module):
    def __init__(self, shape, latent_dim, likelihood, hidden, width) -> None:
        super().__init__()
        self.enc = encoder(shape, 2 * latent_dim, hidden, width)
        self.dec = decoder(latent_dim, shape, hidden, width)
        if likelihood == "gaussian":
            self.log_std = nn.Parameter(torch.zeros(()))


class VAE(NeuralModel):
    """Parameters: ``latent_dim``, ``likelihood`` ("gaussian" or "bernoulli"), ``beta``
    (weight of the KL term; 1 is the true ELBO), ``hidden`` (MLP sizes for vectors),
    ``width`` (conv channels for images), ``reduction`` of the training loss: "sum" (the
    ELBO itself: log p(x|z) summed over pixels, KL summed over latent dimensions) or "mean"
    (each term averaged over its dimensions, as ``F.mse_loss`` does by default in many
    texts; this weighs the KL by data dims / latent dims more, a different model)."""

    name = "vae"
    config_schema = (
        Option("latent_dim", int, 8, "latent dimensions", low=1, high=4096),
        Option("likelihood", str, "gaussian", "decoder", choices=("gaussian", "bernoulli")),
        Option("beta", float, 1.0, "weight of the KL term", low=0.0, high=1e6),
        Option("reduction", str, "sum", "training loss over pixels", choices=("sum", "mean")),
    )
    has_elbo = True
    sample_options = (NOISE,)

    def __init__(
        self,
        data_shape,
        latent_dim: int = 8,
        likelihood: str = "gaussian",
        beta: float = 1.0,
        hidden: tuple[int, ...] | list[int] = (128, 128),
        width: int = 32,
        reduction: str = "sum",
    ) -> None:
        if likelihood not in ("gaussian", "bernoulli"):
            raise GenlabError(f"likelihood must be 'gaussian' or 'bernoulli', got '{likelihood}'.")
        if reduction not in ("sum", "mean"):
            raise GenlabError(f"reduction must be 'sum' or 'mean', got '{reduction}'.")
        hidden = tuple(hidden)
        super().__init__(
            data_shape,
            latent_dim=latent_dim,
            likelihood=likelihood,
            beta=beta,
            hidden=list(hidden),
            width=width,
            reduction=reduction,
        )
        self.net = _Net(self.data_shape, latent_dim, likelihood, hidden, width)

    # --- the pieces of the bound ----------------------------------------------------------
    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, log_var = self.net.enc(x).chunk(2, dim=1)
        return mu, log_var.clamp(-12, 8)

    def log_likelihood(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """log p(x | z) per sample (z and x share the leading axis)."""
        out = self.net.dec(z)
        if self.likelihood == "bernoulli":
            target = ((x + 1) / 2).clamp(0, 1)  # pixels in [-1, 1] -> probabilities
            return (
                -F.binary_cross_entropy_with_logits(out, target, reduction="none").flatten(1).sum(1)
            )
        return gaussian_log_prob(x, out, self.net.log_std.expand_as(out))

    def elbo_terms(self, x: torch.Tensor, generator=None):
        """(reconstruction log-likelihood, KL) per sample, from one sample of q(z|x)."""
        mu, log_var = self.encode(x)
        std = torch.exp(0.5 * log_var)
        eps = randn_like(mu, generator)
        z = mu + std * eps  # reparameterization: gradients flow through mu and std
        kl = 0.5 * (mu**2 + log_var.exp() - 1 - log_var).sum(1)
        return self.log_likelihood(x, z), kl

    def training_step(self, batch: Batch, update: str = "main") -> dict[str, torch.Tensor]:
        rec, kl = self.elbo_terms(batch.x)
        if self.reduction == "mean":  # per-dimension averages instead of the ELBO's sums
            rec, kl = rec / batch.x[0].numel(), kl / self.latent_dim
        loss = -(rec - self.beta * kl).mean()
        return {"loss": loss, "rec": -rec.mean().detach(), "kl": kl.mean().detach()}

    # --- the questions every model answers -------------------------------------------------
    @torch.no_grad()
    def elbo(self, x: Any, *, seed: int | None = 0) -> torch.Tensor:
        """Per-sample ELBO (nats), with one sample of z per x."""
        rec, kl = self.elbo_terms(self.as_batch(x), seeded(seed))
        return rec - kl

    @torch.no_grad()
    def iwae(self, x: Any, k: int = 64, *, seed: int | None = 0, chunk: int = 256):
        """Per-sample importance-weighted bound log (1/k) sum_i p(x, z_i) / q(z_i | x);
        k=1 is the ELBO, and it tightens toward log p(x) as k grows."""
        x = self.as_batch(x)
        g = seeded(seed)
        out = []
        for s in range(0, len(x), chunk):
            xb = x[s : s + chunk]
            mu, log_var = self.encode(xb)
            std = torch.exp(0.5 * log_var)
            eps = torch.randn((k, *mu.shape), generator=g)
            z = mu + std * eps  # (k, B, L)
            log_q = (-0.5 * eps**2 - torch.log(std) - 0.5 * LOG_2PI).sum(-1)
            log_prior = (-0.5 * z**2 - 0.5 * LOG_2PI).sum(-1)
            xk = xb.expand(k, *xb.shape).reshape(-1, *xb.shape[1:])
            log_lik = self.log_likelihood(xk, z.reshape(-1, z.shape[-1])).view(k, -1)
            out.append(torch.logsumexp(log_lik + log_prior - log_q, 0) - math.log(k))
        return torch.cat(out)

    def nll(self, x: Any, k: int = 64, seed: int | None = 0) -> torch.Tensor:
        """Estimate of -log p(x) per sample: minus the IWAE bound."""
        return -self.iwae(x, k, seed=seed)

    def negative_log_likelihood(self, x: Any, levels: int = 256):
        return self.nll(x, k=100).numpy(), "IWAE bound, k=100 (upper bound)"

    @torch.no_grad()
    def decode(self, z: torch.Tensor, noise: bool = False, generator=None) -> torch.Tensor:
        out = self.net.dec(z)
        if self.likelihood == "bernoulli":
            return torch.sigmoid(out) * 2 - 1
        if noise:
            eps = torch.randn(out.shape, generator=generator)
            return out + torch.exp(self.net.log_std) * eps
        return out

    @torch.no_grad()
    def sample(self, n: int, *, cond: Any = None, seed: int | None = None, **kw: Any):
        """Decode z ~ N(0, I). Vectors get the decoder's noise (the model's distribution);
        images show the decoder's mean unless ``noise=True``."""
        noise = self.sampling(kw)["noise"]
        self.net.eval()
        g = seeded(seed)
        z = torch.randn((n, self.latent_dim), generator=g)
        return self.decode(z, len(self.data_shape) == 1 if noise is None else noise, g)

    @torch.no_grad()
    def reconstruct(self, x: Any) -> torch.Tensor:
        mu, _ = self.encode(self.as_batch(x))
        return self.decode(mu)

    @torch.no_grad()
    def interpolate(self, a: Any, b: Any, steps: int = 8) -> torch.Tensor:
        """Decoded points on the line between the latent means of ``a`` and ``b``."""
        za, _ = self.encode(self.as_batch(a))
        zb, _ = self.encode(self.as_batch(b))
        t = torch.linspace(0, 1, steps)[:, None]
        return self.decode((1 - t) * za + t * zb)

    @torch.no_grad()
    def traverse(self, x: Any, span: float = 2.5, steps: int = 8) -> torch.Tensor:
        """For each latent dimension, decode the code of ``x`` with that dimension swept over
        [-span, span]: (latent_dim * steps, *data_shape)."""
        z0, _ = self.encode(self.as_batch(x))
        grid = torch.linspace(-span, span, steps)
        codes = z0.repeat(self.latent_dim * steps, 1)
        for d in range(self.latent_dim):
            codes[d * steps : (d + 1) * steps, d] = grid
        return self.decode(codes)
