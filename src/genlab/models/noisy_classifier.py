"""A noise-aware classifier p(y | x_t, sigma) for classifier guidance (Dhariwal and Nichol,
2021). It is trained on samples noised exactly as a diffusion model's training data, so its
gradient grad_x log p(y | x, sigma) can steer a sampler at every noise level. It does not
generate anything itself: see genlab.diffusion.guidance.ClassifierGuidance."""

from __future__ import annotations

from typing import Any, ClassVar

import torch

from ..diffusion.losses import noisy_classifier_loss
from ..diffusion.precond import NoiseConditioned
from ..diffusion.schedules import alpha_bar
from ..errors import GenlabError
from ..nn.unet import EncoderClassifier
from .diffusion import MLPNet
from .neural import Batch, NeuralModel, label_condition


class NoisyClassifier(NeuralModel):
    """Parameters: ``channels``/``blocks``/``attention`` (the U-Net's down path, for
    images), ``hidden`` (MLP, for vectors), ``schedule`` and ``timesteps`` (the noise
    levels it trains on; those of the diffusion model it guides), ``num_classes``."""

    name = "noisy-classifier"
    generative = False
    conditional = True  # trained on labels (conditions() hands them to the Trainer)
    train_defaults: ClassVar[dict[str, Any]] = {
        "lr": 1e-3,
        "batch_size": 128,
        "steps": 2000,
        "ema_decay": 0.999,
        "warmup_steps": 100,
    }

    def __init__(
        self,
        data_shape,
        channels: tuple[int, ...] | list[int] = (16, 32, 64),
        blocks: int = 1,
        attention: bool = True,
        hidden: tuple[int, ...] | list[int] = (256, 256, 256),
        schedule: str = "linear",
        timesteps: int = 1000,
        num_classes: int = 10,
    ) -> None:
        if num_classes < 2:
            raise GenlabError(f"num_classes must be at least 2, got {num_classes}.")
        super().__init__(
            data_shape,
            channels=list(channels),
            blocks=blocks,
            attention=attention,
            hidden=list(hidden),
            schedule=schedule,
            timesteps=timesteps,
            num_classes=num_classes,
        )
        if len(self.data_shape) == 3:
            net = EncoderClassifier(
                self.data_shape[0], tuple(channels), blocks, attention, num_classes
            )
        else:
            net = MLPNet(self.data_shape[0], tuple(hidden), out_dim=num_classes)
        # net(x, sigma) -> logits; x = x0 + sigma * eps as the samplers see it.
        self.net = NoiseConditioned(net, alpha_bar(schedule, timesteps))

    def conditions(self, data: Any):
        return label_condition(self, data)

    def training_step(self, batch: Batch, update: str = "main") -> dict[str, torch.Tensor]:
        labels = batch.cond.labels  # checked by conditions(): present, below num_classes
        loss, logits = noisy_classifier_loss(self.net, batch.x, labels)
        accuracy = (logits.argmax(1) == labels).float().mean()
        return {"loss": loss.mean(), "accuracy": accuracy.detach()}

    def log_probs(self, x: Any, sigma: float | torch.Tensor) -> torch.Tensor:
        """log p(y | x, sigma) for every class y: (N, num_classes); differentiable in x."""
        x = x if isinstance(x, torch.Tensor) else self.as_batch(x)
        sigma = torch.as_tensor(sigma, dtype=x.dtype).expand(len(x))
        return torch.log_softmax(self.net(x, sigma), dim=1)

    @torch.no_grad()
    def accuracy(self, x: Any, y: Any, sigma: float, seed: int = 0) -> float:
        """The share of ``x`` noised to level ``sigma`` that is classified as ``y``."""
        self.net.eval()
        x0 = self.as_batch(x)
        g = torch.Generator().manual_seed(seed)
        noisy = x0 + sigma * torch.randn(x0.shape, generator=g)
        predicted = self.log_probs(noisy, sigma).argmax(1)
        return float((predicted == torch.as_tensor(y).long()).float().mean())

    def held_out_metrics(self, data: Any, sigmas=(0.0, 0.1, 0.3, 1.0, 3.0, 10.0)) -> dict:
        """Held-out accuracy at several noise levels sigma."""
        if data.y is None:
            raise GenlabError("A classifier is evaluated on a labelled held-out split; none here.")
        accuracy = {f"accuracy@{s:g}": self.accuracy(data.x, data.y, s) for s in sigmas}
        return {"n": len(data.x), "reference": "held-out split, noised to each sigma", **accuracy}

    def sample(self, n: int, *, cond: Any = None, seed: int | None = None, **kw: Any):
        raise NotImplementedError(
            "A noise-aware classifier generates nothing; it guides a diffusion model: "
            "genlab sample DIFFUSION_RUN --classifier THIS_RUN --cg-scale 2 --label 7."
        )
