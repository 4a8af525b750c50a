"""Autoencoder: x -> z -> x_hat trained on reconstruction error.

It is not a generative model by itself: nothing says where in latent space the codes lie.
``sample(latent="normal")`` decodes z ~ N(0, I) and shows the failure; ``latent="fitted"``
decodes from a Gaussian fitted to the training codes after training (stored with the
weights), which works better but still leaves gaps between the codes.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..nn.layers import decoder, encoder
from ..options import Option
from .neural import Batch, NeuralModel, seeded


class _Net(nn.Module):
    def __init__(self, shape, latent_dim, hidden, width) -> None:
        super().__init__()
        self.enc = encoder(shape, latent_dim, hidden, width)
        self.dec = decoder(latent_dim, shape, hidden, width)
        # The Gaussian of the training codes: mean and Cholesky factor of the covariance.
        self.register_buffer("code_mean", torch.zeros(latent_dim))
        self.register_buffer("code_chol", torch.eye(latent_dim))


class AE(NeuralModel):
    name = "ae"
    sample_options = (
        Option(
            "latent",
            str,
            "fitted",
            "where codes are drawn: a Gaussian fitted to the training codes, or N(0, I)",
            choices=("fitted", "normal"),
        ),
    )

    def __init__(
        self,
        data_shape,
        latent_dim: int = 8,
        hidden: tuple[int, ...] | list[int] = (128, 128),
        width: int = 32,
    ) -> None:
        super().__init__(data_shape, latent_dim=latent_dim, hidden=list(hidden), width=width)
        self.net = _Net(self.data_shape, latent_dim, tuple(hidden), width)

    def training_step(self, batch: Batch, update: str = "main") -> dict[str, torch.Tensor]:
        x_hat = self.net.dec(self.net.enc(batch.x))
        return {"loss": ((x_hat - batch.x) ** 2).flatten(1).sum(1).mean()}

    @torch.no_grad()
    def encode(self, x: Any) -> torch.Tensor:
        return self.net.enc(self.as_batch(x))

    @torch.no_grad()
    def fit_latent(self, x: Any) -> None:
        """Fit the Gaussian of the codes of ``x`` (the Trainer calls this after training)."""
        z = torch.cat([self.encode(x[s : s + 512]) for s in range(0, len(x), 512)])
        cov = torch.cov(z.T) + 1e-5 * torch.eye(self.latent_dim)
        self.net.code_mean.copy_(z.mean(0))
        self.net.code_chol.copy_(torch.linalg.cholesky(cov))

    def after_training(self, x: torch.Tensor) -> None:
        self.fit_latent(x)

    @torch.no_grad()
    def sample(self, n: int, *, cond: Any = None, seed: int | None = None, **kw: Any):
        latent = self.sampling(kw)["latent"]
        self.net.eval()
        eps = torch.randn((n, self.latent_dim), generator=seeded(seed))
        z = eps if latent == "normal" else self.net.code_mean + eps @ self.net.code_chol.T
        return self.net.dec(z)

    @torch.no_grad()
    def reconstruct(self, x: Any) -> torch.Tensor:
        return self.net.dec(self.encode(x))
