"""Generative adversarial network (Goodfellow et al., 2014) with the non-saturating loss.

Two players, two updates per training step (each with its own optimizer in the Trainer):
  discriminator: minimise softplus(-D(x)) + softplus(D(G(z)))      (real -> 1, fake -> 0)
  generator:     minimise softplus(-D(G(z)))                       (non-saturating)
Images use a DCGAN-style pair (transposed convolutions with batch norm in G, strided
convolutions with leaky ReLU in D); 2-D data use MLPs.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from ..nn.layers import mlp
from .neural import Batch, NeuralModel, seeded


class _Generator(nn.Module):
    """z (N, L) -> images (N, C, H, W) in [-1, 1]: H/4 grid, two stride-2 up-convolutions."""

    def __init__(self, latent: int, shape: tuple[int, int, int], width: int) -> None:
        super().__init__()
        c, h, w = shape
        self.grid = (2 * width, h // 4, w // 4)
        self.fc = nn.Sequential(
            nn.Linear(latent, 2 * width * (h // 4) * (w // 4)),
            nn.BatchNorm1d(2 * width * (h // 4) * (w // 4)),
            nn.ReLU(),
        )
        self.up = nn.Sequential(
            nn.ConvTranspose2d(2 * width, width, 4, 2, 1),
            nn.BatchNorm2d(width),
            nn.ReLU(),
            nn.ConvTranspose2d(width, c, 4, 2, 1),
            nn.Tanh(),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.up(self.fc(z).view(-1, *self.grid))


class _Discriminator(nn.Module):
    def __init__(self, shape: tuple[int, int, int], width: int) -> None:
        super().__init__()
        c, h, w = shape
        self.body = nn.Sequential(
            nn.Conv2d(c, width, 4, 2, 1),
            nn.LeakyReLU(0.2),
            nn.Conv2d(width, 2 * width, 4, 2, 1),
            nn.LeakyReLU(0.2),
            nn.Flatten(),
            nn.Linear(2 * width * (h // 4) * (w // 4), 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class _Net(nn.Module):
    def __init__(self, shape, latent_dim, hidden, width) -> None:
        super().__init__()
        if len(shape) == 3:
            self.g, self.d = _Generator(latent_dim, shape, width), _Discriminator(shape, width)
        else:
            self.g = mlp(latent_dim, shape[0], hidden, nn.ReLU)
            self.d = mlp(shape[0], 1, hidden, lambda: nn.LeakyReLU(0.2))


class GAN(NeuralModel):
    """Parameters: ``latent_dim``, ``hidden`` (MLP sizes for 2-D), ``width`` (conv channels),
    ``r1_gamma`` (weight of the R1 penalty on D's gradient at real data, Mescheder et al.
    2018; 0 turns it off)."""

    name = "gan"
    train_defaults: ClassVar[dict[str, Any]] = {
        "lr": 2e-4,
        "beta1": 0.5,
        "batch_size": 128,
        "steps": 3000,
        "ema_decay": 0.999,
        "grad_clip": 0.0,
    }

    def __init__(
        self,
        data_shape,
        latent_dim: int = 32,
        hidden: tuple[int, ...] | list[int] = (128, 128, 128),
        width: int = 32,
        r1_gamma: float = 0.1,
    ) -> None:
        super().__init__(
            data_shape, latent_dim=latent_dim, hidden=list(hidden), width=width, r1_gamma=r1_gamma
        )
        self.net = _Net(self.data_shape, latent_dim, tuple(hidden), width)

    def updates(self):
        """The Trainer's two updates per step, in order, with the parameters each moves."""
        return [("d", list(self.net.d.parameters())), ("g", list(self.net.g.parameters()))]

    def training_step(self, batch: Batch, update: str = "d") -> dict[str, torch.Tensor]:
        x = batch.x
        z = torch.randn(len(x), self.latent_dim, device=x.device)
        fake = self.net.g(z)
        if update == "d":
            real = x.detach().requires_grad_(self.r1_gamma > 0)
            real_logit, fake_logit = self.net.d(real), self.net.d(fake.detach())
            loss = F.softplus(-real_logit).mean() + F.softplus(fake_logit).mean()
            out = {"real_score": torch.sigmoid(real_logit).mean().detach()}
            if self.r1_gamma > 0:
                # R1: penalise D's gradient on real data, which keeps the game from cycling.
                (grad,) = torch.autograd.grad(real_logit.sum(), real, create_graph=True)
                r1 = grad.pow(2).flatten(1).sum(1).mean()
                loss = loss + 0.5 * self.r1_gamma * r1
                out["r1"] = r1.detach()
            return {"loss": loss, **out}
        return {"loss": F.softplus(-self.net.d(fake)).mean()}

    @torch.no_grad()
    def sample(self, n: int, *, cond: Any = None, seed: int | None = None, **kw: Any):
        self.sampling(kw)
        self.net.eval()
        z = torch.randn((n, self.latent_dim), generator=seeded(seed))
        return self.net.g(z)
