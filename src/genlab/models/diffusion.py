"""Denoising diffusion model (Ho et al., 2020) in genlab's four parts: a schedule, a network
(U-Net for images, MLP for 2-D), a denoiser wrapper (eps, x0 or v prediction) and a sampler
(any of genlab.diffusion.samplers.SAMPLERS, any number of steps)."""

from __future__ import annotations

import math
from typing import Any, ClassVar

import torch
from torch import nn

from ..diffusion.losses import diffusion_loss
from ..diffusion.precond import PREDICTIONS, Denoiser
from ..diffusion.schedules import SCHEDULES, alpha_bar, karras_sigmas, sampling_sigmas
from ..errors import GenlabError
from ..nn.layers import LabelEmbedding, mlp
from ..nn.unet import UNet, sinusoidal_embedding
from ..options import Option
from .ddpm_sampling import DDPMSampling, progress_bar
from .neural import Batch, NeuralModel, label_condition


class MLPNet(nn.Module):
    """F(x, t, cond) for vectors: [x, embedding(t) (+ label embedding)] -> MLP, with
    ``out_dim`` outputs (default: like x)."""

    def __init__(
        self, dim: int, hidden: tuple[int, ...], num_classes: int = 0, out_dim: int = 0
    ) -> None:
        super().__init__()
        self.emb_dim = 64
        self.label_emb = LabelEmbedding(num_classes, self.emb_dim) if num_classes else None
        self.body = mlp(dim + self.emb_dim, out_dim or dim, hidden)

    def forward(self, x, t, cond=None):
        emb = sinusoidal_embedding(t, self.emb_dim)
        if self.label_emb is not None:
            emb = emb + self.label_emb.embed(cond, len(x), x.device)
        return self.body(torch.cat([x, emb], 1))


class DDPM(NeuralModel):
    """Parameters: ``channels``/``blocks``/``attention`` (U-Net), ``hidden`` (2-D MLP),
    ``schedule`` ("linear", "cosine", "sigmoid"), ``timesteps``, ``prediction`` ("eps",
    "x0", "v"), ``min_snr`` (loss weighting; 0 off), ``num_classes`` (class-conditional
    when > 0), ``cond_drop`` (chance a label is dropped in training, for guidance),
    ``cond_drop_per`` ("sample": each label dropped on its own; "batch": the whole batch's
    labels at once, as some textbooks' code does)."""

    name = "ddpm"
    sample_options = DDPMSampling.options
    config_schema = (
        Option("schedule", str, "linear", "noise schedule", choices=tuple(SCHEDULES)),
        Option("timesteps", int, 1000, "diffusion steps of training", low=2, high=100_000),
        Option("prediction", str, "eps", "what the network predicts", choices=PREDICTIONS),
        Option("min_snr", float, 0.0, "min-SNR loss weighting (0: off)", low=0.0, high=1e6),
        Option("num_classes", int, 0, "labels (0: unconditional)", low=0, high=100_000),
        Option("cond_drop", float, 0.1, "chance a label is dropped", low=0.0, high=1.0),
        Option("cond_drop_per", str, "sample", "", choices=("sample", "batch")),
    )
    train_defaults: ClassVar[dict[str, Any]] = {
        "lr": 2e-3,
        "batch_size": 128,
        "steps": 4000,
        "ema_decay": 0.999,
        "warmup_steps": 100,
    }

    def __init__(
        self,
        data_shape,
        channels: tuple[int, ...] | list[int] = (16, 64, 80),
        blocks: int = 1,
        attention: bool = True,
        hidden: tuple[int, ...] | list[int] = (256, 256, 256),
        schedule: str = "linear",
        timesteps: int = 1000,
        prediction: str = "eps",
        min_snr: float = 0.0,
        num_classes: int = 0,
        cond_drop: float = 0.1,
        cond_drop_per: str = "sample",
    ) -> None:
        if cond_drop_per not in ("sample", "batch"):
            raise GenlabError(f"cond_drop_per must be 'sample' or 'batch', got '{cond_drop_per}'.")
        super().__init__(
            data_shape,
            channels=list(channels),
            blocks=blocks,
            attention=attention,
            hidden=list(hidden),
            schedule=schedule,
            timesteps=timesteps,
            prediction=prediction,
            min_snr=min_snr,
            num_classes=num_classes,
            cond_drop=cond_drop,
            cond_drop_per=cond_drop_per,
        )
        if len(self.data_shape) == 3:
            net = UNet(self.data_shape[0], tuple(channels), blocks, attention, num_classes)
        else:
            net = MLPNet(self.data_shape[0], tuple(hidden), num_classes)
        self.net = Denoiser(net, alpha_bar(schedule, timesteps), prediction)
        self.conditional = num_classes > 0
        # Vectors: an exact likelihood (probability-flow ODE); images: a variational bound.
        self.has_log_prob = len(self.data_shape) == 1
        self.has_elbo = len(self.data_shape) == 3

    def conditions(self, data: Any):
        return label_condition(self, data) if self.conditional else None

    def fsdp_units(self) -> list[nn.Module]:
        inner = self.net.net  # the U-Net (or MLP) that the loss calls; Denoiser has no weights
        return [*inner.blocks(), inner] if isinstance(inner, UNet) else [inner]

    def training_step(self, batch: Batch, update: str = "main") -> dict[str, torch.Tensor]:
        cond = batch.cond
        if cond is not None:  # labels dropped at random train the unconditional model too
            cond = cond.drop(self.cond_drop, per=self.cond_drop_per)
        loss = diffusion_loss(self.net, batch.x, cond, min_snr=self.min_snr)
        return {"loss": loss.mean()}

    @torch.no_grad()
    def score(self, x: Any, sigma: float, cond=None) -> torch.Tensor:
        """grad_x log p_sigma(x) = (D(x, sigma) - x) / sigma^2 = -eps_hat / sigma."""
        self.net.eval()
        x = self.as_batch(x)
        s = torch.full((len(x),), float(sigma))
        return (self.net(x, s, cond) - x) / float(sigma) ** 2

    def log_prob(self, x: Any, seed: int = 0) -> torch.Tensor:
        """log p(x) of vectors by the probability-flow ODE (Heun, 100 steps, exact
        divergence): a likelihood, not a bound. Unconditional: a class-conditional model
        uses its "no label" half."""
        from ..diffusion.likelihood import pf_ode_log_prob

        if not self.has_log_prob:
            raise NotImplementedError("A diffusion model of images has no exact log density.")
        self.net.eval()
        sigmas = karras_sigmas(100, self.net.sigma_min, self.net.sigma_max).flip(0)[1:]
        g = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            return pf_ode_log_prob(
                self.net, self.as_batch(x), sigmas.float(), exact=True, generator=g
            )

    def elbo(self, x: Any, levels: int = 256, seed: int = 0) -> torch.Tensor:
        """The variational lower bound on log p(x) in nats per image, of x quantized to
        ``levels`` values in [-1, 1] (1,000 network calls per image)."""
        from ..diffusion.likelihood import vlb_bits_per_dim

        if not self.has_elbo:
            raise NotImplementedError("A diffusion model of vectors has no ELBO; use log_prob.")
        self.net.eval()
        x = self.as_batch(x)
        x = torch.round((x.clamp(-1, 1) + 1) / 2 * (levels - 1)) / (levels - 1) * 2 - 1
        g = torch.Generator().manual_seed(seed)
        with progress_bar(len(self.net.alpha_bar), None, "bound") as callback:
            bits = vlb_bits_per_dim(self.net, x, levels=levels, generator=g, callback=callback)
        return -bits * x[0].numel() * math.log(2)

    def negative_log_likelihood(self, x: Any, levels: int = 256):
        if self.has_log_prob:
            return -self.log_prob(x).numpy(), "probability-flow ODE (Heun, 100 steps)"
        kind = f"variational bound (upper bound), data quantized to {levels} levels"
        return -self.elbo(x, levels).numpy(), kind

    @property
    def nll_sample_cap(self) -> int | None:
        return 100 if self.has_elbo else None  # the bound costs 1,000 network calls an image

    def run_plots(self, x) -> dict[str, Any]:
        """The forward process (images) or the score field (2-D)."""
        from ..viz import plots

        if len(self.data_shape) == 3:
            return {"noising": plots.noising(x[:6], self.net.alpha_bar)}
        if self.data_shape == (2,):
            return {f"score-{s}": plots.score_field(self.score, x, sigma=s) for s in (0.1, 0.5)}
        return {}

    def sigmas(self, steps: int, spacing: str = "trailing") -> torch.Tensor:
        return sampling_sigmas(self.net, steps, spacing)

    @torch.no_grad()
    def sample(self, n: int, *, cond: Any = None, seed: int | None = None, **kw: Any):
        """Through the diffusion pipeline; options in ``sample_options`` (sampler, steps,
        spacing, eta, label, cfg, classifier, cg_scale, callback). ``cond``: labels, one
        or one per sample, or a Condition."""
        return DDPMSampling(self)(n, cond=cond, seed=seed, **kw)
