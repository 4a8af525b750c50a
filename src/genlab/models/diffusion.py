"""Denoising diffusion model (Ho et al., 2020) in genlab's four parts: a schedule, a network
(U-Net for images, MLP for 2-D), a denoiser wrapper (eps, x0 or v prediction) and a sampler
(any of genlab.diffusion.samplers.SAMPLERS, any number of steps)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn

from ..diffusion.guidance import ClassifierFreeGuidance, ClassifierGuidance
from ..diffusion.losses import diffusion_loss
from ..diffusion.precond import Denoiser
from ..diffusion.samplers import SAMPLERS
from ..diffusion.schedules import alpha_bar, discrete_sigmas, karras_sigmas
from ..errors import GenlabError
from ..nn.layers import mlp
from ..nn.unet import UNet, sinusoidal_embedding
from .neural import NeuralModel, seeded


class MLPNet(nn.Module):
    """F(x, t, label) for vectors: [x, embedding(t) (+ label embedding)] -> MLP, with
    ``out_dim`` outputs (default: like x)."""

    def __init__(
        self, dim: int, hidden: tuple[int, ...], num_classes: int = 0, out_dim: int = 0
    ) -> None:
        super().__init__()
        self.emb_dim = 64
        self.label_emb = nn.Embedding(num_classes + 1, self.emb_dim) if num_classes else None
        self.body = mlp(dim + self.emb_dim, out_dim or dim, hidden)

    def forward(self, x, t, label=None):
        emb = sinusoidal_embedding(t, self.emb_dim)
        if self.label_emb is not None:
            emb = emb + self.label_emb(_label_index(label, len(x), self.label_emb, x.device))
        return self.body(torch.cat([x, emb], 1))


def _label_index(label, n, table: nn.Embedding, device) -> torch.Tensor:
    """Labels with -1 or None meaning "no label" (the table's last row)."""
    null = table.num_embeddings - 1
    if label is None:
        return torch.full((n,), null, device=device)
    return torch.where(label < 0, torch.full_like(label, null), label)


class _UNetNet(UNet):
    def forward(self, x, t, label=None):
        if self.label_emb is not None:
            label = _label_index(label, len(x), self.label_emb, x.device)
        return super().forward(x, t, label)


class DDPM(NeuralModel):
    """Parameters: ``channels``/``blocks``/``attention`` (U-Net), ``hidden`` (2-D MLP),
    ``schedule`` ("linear", "cosine", "sigmoid"), ``timesteps``, ``prediction`` ("eps",
    "x0", "v"), ``min_snr`` (loss weighting; 0 off), ``num_classes`` (class-conditional
    when > 0), ``cond_drop`` (chance a label is dropped in training, for guidance)."""

    name = "ddpm"
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
    ) -> None:
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
        )
        if len(self.data_shape) == 3:
            net = _UNetNet(self.data_shape[0], tuple(channels), blocks, attention, num_classes)
        else:
            net = MLPNet(self.data_shape[0], tuple(hidden), num_classes)
        self.net = Denoiser(net, alpha_bar(schedule, timesteps), prediction)
        self.conditional = num_classes > 0

    def training_step(self, batch: torch.Tensor, labels: torch.Tensor | None = None):
        cond = None
        if self.conditional and labels is not None:
            drop = torch.rand(len(labels), device=labels.device) < self.cond_drop
            cond = torch.where(drop, torch.full_like(labels, -1), labels)
        loss = diffusion_loss(self.net, batch, cond, min_snr=self.min_snr)
        return {"loss": loss.mean()}

    @torch.no_grad()
    def score(self, x: Any, sigma: float, cond=None) -> torch.Tensor:
        """grad_x log p_sigma(x) = (D(x, sigma) - x) / sigma^2 = -eps_hat / sigma."""
        self.net.eval()
        x = self.as_batch(x)
        s = torch.full((len(x),), float(sigma))
        return (self.net(x, s, cond) - x) / float(sigma) ** 2

    def nll_nats(self, x: Any, levels: int = 256, seed: int = 0) -> tuple[torch.Tensor, str]:
        """-log p(x) in nats per sample, and how it was obtained. Vectors: the
        probability-flow ODE (Heun, 100 steps, exact divergence: a likelihood, not a bound).
        Images: the variational bound (an upper bound) of x quantized to ``levels`` values
        in [-1, 1]. Unconditional: a class-conditional model uses its "no label" half."""
        from ..diffusion.likelihood import pf_ode_log_prob, vlb_bits_per_dim

        self.net.eval()
        x = self.as_batch(x)
        g = torch.Generator().manual_seed(seed)
        if len(self.data_shape) == 1:
            sigmas = karras_sigmas(100, self.net.sigma_min, self.net.sigma_max).flip(0)[1:]
            with torch.no_grad():
                log_p = pf_ode_log_prob(self.net, x, sigmas.float(), exact=True, generator=g)
            return -log_p, "probability-flow ODE (Heun, 100 steps)"
        x = torch.round((x.clamp(-1, 1) + 1) / 2 * (levels - 1)) / (levels - 1) * 2 - 1
        bits = vlb_bits_per_dim(self.net, x, levels=levels, generator=g)
        kind = f"variational bound (upper bound), data quantized to {levels} levels"
        return bits * x[0].numel() * math.log(2), kind

    def run_plots(self, data, folder) -> None:
        """Pictures the Trainer adds to a run: the forward process or the score field."""
        from ..viz import plots

        if len(self.data_shape) == 3:
            plots.noising(data[:6], self.net.alpha_bar, folder / "noising.png")
        elif self.data_shape == (2,):
            for sigma in (0.1, 0.5):
                plots.score_field(self.score, data, folder / f"score-{sigma}.png", sigma=sigma)

    def sigmas(self, steps: int, spacing: str = "trailing") -> torch.Tensor:
        """``steps`` noise levels for sampling, then 0: a subset of the discrete training
        levels ("trailing", the default, starts at the noisiest; "leading", "linspace"), or
        Karras spacing between the training extremes ("karras"). On digits, trailing gave
        FD 8.4 with DPM-Solver++(2M) at 10 steps where Karras gave 13.7."""
        if spacing == "karras":
            return karras_sigmas(steps, self.net.sigma_min, self.net.sigma_max).float()
        return discrete_sigmas(self.net.alpha_bar.double(), steps, spacing).float()

    @torch.no_grad()
    def sample(self, n: int, *, cond: Any = None, seed: int | None = None, **kw: Any):
        """Options: ``sampler`` (default "dpmpp-2m"), ``steps`` (20), ``spacing``
        ("trailing"), ``label`` (int or per-sample labels), ``cfg`` (classifier-free
        guidance scale: 1 = the conditional model, 0 = the unconditional one),
        ``classifier`` (a NoisyClassifier, or its folder) with ``cg_scale`` (classifier
        guidance, default 1), ``callback`` (per step), ``eta`` (DDIM)."""
        name = kw.get("sampler", "dpmpp-2m")
        if name not in SAMPLERS:
            raise GenlabError(f"Unknown sampler '{name}'; known: {', '.join(SAMPLERS)}.")
        classifier = _classifier(kw.get("classifier"), self.data_shape)
        label = self._labels(kw.get("label", cond), n, classifier)
        self.net.eval()
        g = seeded(seed)
        sigmas = self.sigmas(kw.get("steps", 20), kw.get("spacing", "trailing"))
        x = torch.randn((n, *self.data_shape), generator=g) * sigmas[0]
        denoiser: nn.Module = self.net
        if self.conditional:
            denoiser = ClassifierFreeGuidance(self.net, kw.get("cfg", 1.0))
        if classifier is not None:
            classifier.net.eval()
            denoiser = ClassifierGuidance(denoiser, classifier.net, kw.get("cg_scale", 1.0))
        opts = {"eta": kw["eta"]} if "eta" in kw and name == "ddim" else {}
        return SAMPLERS[name](
            denoiser, x, sigmas, cond=label, generator=g, callback=kw.get("callback"), **opts
        )

    def _labels(self, label: Any, n: int, classifier) -> torch.Tensor | None:
        """``n`` labels checked against the classes this model (or its classifier) knows."""
        if label is None:
            if classifier is not None:
                raise GenlabError("Classifier guidance needs the class to draw: give --label.")
            return None
        known = [m.num_classes for m in (self, classifier) if m is not None and m.conditional]
        if not known:
            raise GenlabError(
                "This model was trained without labels; drop --label, or guide it with a "
                "noise-aware classifier (--classifier)."
            )
        classes = min(known)  # a label must mean something to the model and the classifier
        label = torch.as_tensor(label).long().expand(n).clone()
        if int(label.min()) < 0 or int(label.max()) >= classes:
            raise GenlabError(f"Labels must lie in 0..{classes - 1}.")
        return label


def _classifier(classifier: Any, data_shape: tuple[int, ...]):
    """A NoisyClassifier given as a model or a folder, checked to fit this model's data."""
    if classifier is None:
        return None
    if isinstance(classifier, str | Path):
        from ..serialization import load

        classifier = load(classifier)
    if getattr(classifier, "name", "") != "noisy-classifier":
        raise GenlabError("--classifier must be a noise-aware classifier (noisy-classifier).")
    if tuple(classifier.data_shape) != tuple(data_shape):
        raise GenlabError(
            f"The classifier was trained on shape {tuple(classifier.data_shape)}, "
            f"this diffusion model on {tuple(data_shape)}."
        )
    return classifier
