"""Two-level hierarchical VAE.

Generative model (top-down):  z2 ~ N(0, I),  z1 ~ p(z1 | z2),  x ~ p(x | z1)
Inference model (bottom-up):  z1 ~ q(z1 | x),  z2 ~ q(z2 | z1)
ELBO = E_q[ log p(x | z1) + log p(z1 | z2) - log q(z1 | x) ] - E_q[ KL(q(z2 | z1) || p(z2)) ],
with one reparameterized sample of each level and the top KL in closed form.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..nn.layers import decoder, encoder, mlp
from .neural import Batch, NeuralModel, randn_like, seeded
from .vae import NOISE, gaussian_log_prob


def _gaussian(params: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    mean, log_std = params.chunk(2, dim=1)
    return mean, log_std.clamp(-6, 4)


class _Net(nn.Module):
    def __init__(self, shape, z1, z2, hidden, width) -> None:
        super().__init__()
        self.q1 = encoder(shape, 2 * z1, hidden, width)  # q(z1 | x)
        self.q2 = mlp(z1, 2 * z2, hidden)  # q(z2 | z1)
        self.p1 = mlp(z2, 2 * z1, hidden)  # p(z1 | z2)
        self.px = decoder(z1, shape, hidden, width)  # mean of p(x | z1)
        self.log_std = nn.Parameter(torch.zeros(()))  # scale of p(x | z1)


class HVAE(NeuralModel):
    name = "hvae"
    has_elbo = True
    sample_options = (NOISE,)

    def __init__(
        self,
        data_shape,
        z1_dim: int = 16,
        z2_dim: int = 8,
        hidden: tuple[int, ...] | list[int] = (128, 128),
        width: int = 32,
    ) -> None:
        super().__init__(data_shape, z1_dim=z1_dim, z2_dim=z2_dim, hidden=list(hidden), width=width)
        self.net = _Net(self.data_shape, z1_dim, z2_dim, tuple(hidden), width)

    def elbo_terms(self, x: torch.Tensor, generator=None) -> dict[str, torch.Tensor]:
        net = self.net
        m1, s1 = _gaussian(net.q1(x))
        z1 = m1 + torch.exp(s1) * randn_like(m1, generator)
        m2, s2 = _gaussian(net.q2(z1))
        z2 = m2 + torch.exp(s2) * randn_like(m2, generator)
        pm1, ps1 = _gaussian(net.p1(z2))
        mean_x = net.px(z1)
        rec = gaussian_log_prob(x, mean_x, net.log_std.expand_as(mean_x))
        # log p(z1 | z2) - log q(z1 | x), one-sample estimate of -KL at level 1
        kl1 = gaussian_log_prob(z1, m1, s1) - gaussian_log_prob(z1, pm1, ps1)
        kl2 = 0.5 * (m2**2 + torch.exp(2 * s2) - 1 - 2 * s2).sum(1)
        return {"rec": rec, "kl1": kl1, "kl2": kl2}

    def training_step(self, batch: Batch, update: str = "main") -> dict[str, torch.Tensor]:
        t = self.elbo_terms(batch.x)
        loss = -(t["rec"] - t["kl1"] - t["kl2"]).mean()
        return {"loss": loss, **{k: v.mean().detach() for k, v in t.items()}}

    @torch.no_grad()
    def elbo(self, x: Any, *, seed: int | None = 0) -> torch.Tensor:
        t = self.elbo_terms(self.as_batch(x), seeded(seed))
        return t["rec"] - t["kl1"] - t["kl2"]

    @torch.no_grad()
    def sample(self, n: int, *, cond: Any = None, seed: int | None = None, **kw: Any):
        noise = self.sampling(kw)["noise"]
        self.net.eval()
        g = seeded(seed)
        z2 = torch.randn((n, self.z2_dim), generator=g)
        m1, s1 = _gaussian(self.net.p1(z2))
        z1 = m1 + torch.exp(s1) * torch.randn(m1.shape, generator=g)
        mean = self.net.px(z1)
        if len(self.data_shape) == 1 if noise is None else noise:
            return mean + torch.exp(self.net.log_std) * torch.randn(mean.shape, generator=g)
        return mean
