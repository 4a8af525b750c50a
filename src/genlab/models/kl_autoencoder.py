"""KL-regularized autoencoder, the first stage of latent diffusion (Rombach et al., 2022),
small: images (N, C, H, W) -> latents (N, 4, H/4, W/4) -> images.

q(z | x) = N(mu(x), diag sigma(x)^2); the loss is the reconstruction MSE plus a small
weight times KL(q(z | x) || N(0, I)), which keeps the latent space smooth without forcing
it onto N(0, I) (Stable Diffusion's VAE weights its KL by 1e-6). After training, the latent
scale factor is estimated the way Stable Diffusion's 0.18215 was: one over the standard
deviation of the training latents, so a diffusion model sees latents of unit variance.

It is a part, not a generative model: ``sample`` refuses; a latent diffusion model freezes it.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import torch
from torch import nn

from ..errors import DataError
from .neural import Batch, NeuralModel, randn_like


def _norm(channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(min(8, channels), channels)


class _Res(nn.Module):
    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            _norm(c_in), nn.SiLU(), nn.Conv2d(c_in, c_out, 3, padding=1),
            _norm(c_out), nn.SiLU(), nn.Conv2d(c_out, c_out, 3, padding=1),
        )  # fmt: skip
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x) + self.skip(x)


def _encoder(c: int, widths: tuple[int, ...], latent: int) -> nn.Sequential:
    """(N, c, H, W) -> (N, 2 latent, H/4, W/4): mean and log-variance."""
    a, b, m = widths
    return nn.Sequential(
        nn.Conv2d(c, a, 3, padding=1), _Res(a, a),
        nn.Conv2d(a, b, 3, stride=2, padding=1), _Res(b, b),  # H/2
        nn.Conv2d(b, m, 3, stride=2, padding=1), _Res(m, m),  # H/4
        _norm(m), nn.SiLU(), nn.Conv2d(m, 2 * latent, 3, padding=1),
    )  # fmt: skip


def _decoder(c: int, widths: tuple[int, ...], latent: int) -> nn.Sequential:
    """(N, latent, H/4, W/4) -> (N, c, H, W)."""
    a, b, m = widths
    return nn.Sequential(
        nn.Conv2d(latent, m, 3, padding=1), _Res(m, m),
        nn.Upsample(scale_factor=2.0, mode="nearest"), nn.Conv2d(m, b, 3, padding=1), _Res(b, b),
        nn.Upsample(scale_factor=2.0, mode="nearest"), nn.Conv2d(b, a, 3, padding=1), _Res(a, a),
        _norm(a), nn.SiLU(), nn.Conv2d(a, c, 3, padding=1),
    )  # fmt: skip


class _Net(nn.Module):
    def __init__(self, channels: int, widths: tuple[int, ...], latent: int) -> None:
        super().__init__()
        self.enc = _encoder(channels, widths, latent)
        self.dec = _decoder(channels, widths, latent)
        self.register_buffer("scale_factor", torch.ones(()))


class KLAutoencoder(NeuralModel):
    """Parameters: ``widths`` (channels at full, half and quarter resolution),
    ``latent_channels`` (4, as Stable Diffusion), ``kl_weight``."""

    name = "kl-autoencoder"
    generative = False
    train_defaults: ClassVar[dict[str, Any]] = {
        "lr": 1e-3,
        "batch_size": 64,
        "steps": 3000,
        "ema_decay": 0.999,
        "warmup_steps": 100,
    }

    def __init__(
        self,
        data_shape,
        widths: tuple[int, ...] | list[int] = (32, 64, 64),
        latent_channels: int = 4,
        kl_weight: float = 1e-4,
    ) -> None:
        if len(data_shape) != 3 or data_shape[1] % 4 or data_shape[2] % 4:
            raise DataError(
                f"The KL autoencoder takes images whose sides are divisible by 4, got shape "
                f"{tuple(data_shape)}."
            )
        if len(widths) != 3:
            raise DataError(f"widths must name 3 channel counts, got {list(widths)}.")
        super().__init__(
            data_shape, widths=list(widths), latent_channels=latent_channels, kl_weight=kl_weight
        )
        self.net = _Net(self.data_shape[0], tuple(widths), latent_channels)

    @property
    def latent_shape(self) -> tuple[int, int, int]:
        _, h, w = self.data_shape
        return (self.latent_channels, h // 4, w // 4)

    # --- the pieces ---------------------------------------------------------------------------
    def posterior(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and log-variance of q(z | x), each (N, latent_channels, H/4, W/4)."""
        mean, log_var = self.net.enc(x).chunk(2, dim=1)
        return mean, log_var.clamp(-30.0, 20.0)

    def terms(self, x: torch.Tensor, generator=None) -> dict[str, torch.Tensor]:
        """Per-image reconstruction MSE (per pixel), KL (nats per image) and PSNR (dB)."""
        mean, log_var = self.posterior(x)
        z = mean + torch.exp(0.5 * log_var) * randn_like(mean, generator)
        x_hat = self.net.dec(z)
        mse = (x_hat - x).pow(2).flatten(1).mean(1)
        kl = 0.5 * (mean**2 + log_var.exp() - 1 - log_var).flatten(1).sum(1)
        psnr = 10 * torch.log10(4.0 / mse.clamp_min(1e-12))  # pixels span [-1, 1]: peak 2
        return {"mse": mse, "kl": kl, "psnr": psnr}

    def training_step(self, batch: Batch, update: str = "main") -> dict[str, torch.Tensor]:
        t = self.terms(batch.x)
        pixels = math.prod(self.data_shape)
        loss = t["mse"].mean() + self.kl_weight * t["kl"].mean() / pixels
        return {"loss": loss, **{k: v.mean().detach() for k, v in t.items()}}

    @torch.no_grad()
    def after_training(self, x: torch.Tensor) -> None:
        """The latent scale factor: 1 / std of the training latents (their posterior means),
        as Stable Diffusion estimated 0.18215 for its VAE."""
        means = [self.posterior(x[s : s + 256])[0] for s in range(0, len(x), 256)]
        self.net.scale_factor.fill_(1.0 / torch.cat(means).std().item())

    # --- what latent diffusion uses ---------------------------------------------------------------
    @torch.no_grad()
    def encode(self, x: Any, sample: bool = False, generator=None) -> torch.Tensor:
        """Scaled latents of images: the posterior mean (or a draw) times the scale factor."""
        self.net.eval()
        x = x if isinstance(x, torch.Tensor) else self.as_batch(x)
        mean, log_var = self.posterior(x)
        z = mean + torch.exp(0.5 * log_var) * randn_like(mean, generator) if sample else mean
        return z * self.net.scale_factor

    @torch.no_grad()
    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """Images in [-1, 1] from scaled latents."""
        self.net.eval()
        return self.net.dec(latents / self.net.scale_factor).clamp(-1, 1)

    @torch.no_grad()
    def held_out_metrics(self, data: Any) -> dict[str, Any]:
        self.net.eval()
        x = self.as_batch(data.x)
        g = torch.Generator().manual_seed(0)
        t = [self.terms(x[s : s + 256], g) for s in range(0, len(x), 256)]
        mse = torch.cat([d["mse"] for d in t])
        return {
            "n": len(x),
            "psnr_db": float(10 * torch.log10(4.0 / mse.mean())),
            "mse": float(mse.mean()),
            "kl_nats_per_image": float(torch.cat([d["kl"] for d in t]).mean()),
            "scale_factor": float(self.net.scale_factor),
            "reference": "held-out split, one draw of z per image",
        }

    def sample(self, n: int, *, cond: Any = None, seed: int | None = None, **kw: Any):
        raise NotImplementedError(
            "An autoencoder's latents follow no known distribution; it is the first stage "
            "of latent diffusion, which samples the latents."
        )
