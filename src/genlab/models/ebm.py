"""Energy-based models: p(x) = exp(-E(x)) / Z, sampled by Langevin dynamics.

Training is contrastive divergence with a replay buffer (Du and Mordatch, 2019): negatives
start from the buffer (or, with a small chance, fresh noise), take K Langevin steps, and
the loss pushes energy down on data and up on negatives:
    L = E(x_data) - E(x_neg) + alpha (E(x_data)^2 + E(x_neg)^2).
Z never appears. Adding energies multiplies densities: exp(-(E1 + E2)) ∝ p1 p2, which is
``product(e1, e2)``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from ..base import GenerativeModel
from ..nn.layers import ConvEncoder, mlp
from ..options import Option
from .neural import Batch, NeuralModel, seeded

STEPS = Option("steps", int, None, "Langevin steps (default: the model's)", low=0)
STEP_SIZE = Option("step_size", float, None, "Langevin step size (default: the model's)", low=0)


def langevin(
    energy: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    steps: int,
    step_size: float,
    noise: float | None = None,
    *,
    generator: torch.Generator | None = None,
    bounds: tuple[float, float] | None = None,
) -> torch.Tensor:
    """x <- x - step_size * grad E(x) + noise * eps, ``steps`` times.

    ``noise=None`` uses sqrt(2 step_size): the unadjusted Langevin algorithm, whose chains
    approach exp(-E) as step_size -> 0. Larger steps with less noise are a common, biased,
    shortcut for training (Du and Mordatch, 2019).
    """
    noise = math.sqrt(2 * step_size) if noise is None else noise
    x = x.detach()
    for _ in range(steps):
        x.requires_grad_(True)
        (grad,) = torch.autograd.grad(energy(x).sum(), x)
        eps = torch.randn(x.shape, generator=generator, device=x.device)
        x = (x - step_size * grad + noise * eps).detach()
        if bounds is not None:
            x = x.clamp(*bounds)
    return x


class _Net(nn.Module):
    def __init__(self, shape, hidden, width, buffer_size) -> None:
        super().__init__()
        if len(shape) == 3:
            self.energy = ConvEncoder(shape, 1, width)
        else:
            self.energy = mlp(shape[0], 1, hidden)
        # Persistent negatives: part of the state, so a resumed run continues the same chains.
        self.register_buffer("replay", torch.empty(0, *shape))
        self.buffer_size = buffer_size

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # The buffer grows as it fills, so a saved one may be larger than this one.
        if prefix + "replay" in state_dict:
            self.replay = torch.empty_like(state_dict[prefix + "replay"])
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)


class EBM(NeuralModel):
    """Parameters: ``hidden``/``width`` (energy network), ``train_steps`` (Langevin steps
    per training step), ``sample_steps``, ``step_size``, ``noise`` (None: sqrt(2 step)),
    ``buffer_size``, ``reinit`` (chance a negative restarts from noise), ``alpha``
    (energy magnitude penalty), ``init_range`` (noise box for new chains)."""

    name = "ebm"
    sample_options = (
        STEPS,
        STEP_SIZE,
        Option("noise", float, None, "Langevin noise scale (default: the model's)", low=0),
    )
    train_defaults: ClassVar[dict[str, Any]] = {
        "lr": 1e-3,
        "beta1": 0.0,
        "batch_size": 128,
        "steps": 2000,
        "ema_decay": 0.0,
        "grad_clip": 1.0,
    }

    def __init__(
        self,
        data_shape,
        hidden: tuple[int, ...] | list[int] = (128, 128, 128),
        width: int = 32,
        train_steps: int = 20,
        sample_steps: int = 200,
        step_size: float = 0.01,
        noise: float | None = None,
        buffer_size: int = 8192,
        reinit: float = 0.05,
        alpha: float = 0.1,
        init_range: float = 1.0,
    ) -> None:
        super().__init__(
            data_shape,
            hidden=list(hidden),
            width=width,
            train_steps=train_steps,
            sample_steps=sample_steps,
            step_size=step_size,
            noise=noise,
            buffer_size=buffer_size,
            reinit=reinit,
            alpha=alpha,
            init_range=init_range,
        )
        self.net = _Net(self.data_shape, tuple(hidden), width, buffer_size)
        self.bounds = (-1.0, 1.0) if len(self.data_shape) == 3 else None

    def energy(self, x: Any) -> torch.Tensor:
        x = x if isinstance(x, torch.Tensor) else self.as_batch(x)
        return self.net.energy(x).squeeze(-1)

    def _noise(self, n: int, generator=None, device=None) -> torch.Tensor:
        u = torch.rand((n, *self.data_shape), generator=generator, device=device)
        return (2 * u - 1) * self.init_range

    def _negatives(self, n: int, device) -> tuple[torch.Tensor, torch.Tensor | None]:
        replay = self.net.replay
        if len(replay) < n:
            return self._noise(n, device=device), None
        idx = torch.randint(0, len(replay), (n,), device=device)
        fresh = torch.rand(n, device=device) < self.reinit
        start = torch.where(
            fresh.view(-1, *[1] * len(self.data_shape)), self._noise(n, device=device), replay[idx]
        )
        return start, idx

    def training_step(self, batch: Batch, update: str = "main") -> dict[str, torch.Tensor]:
        batch = batch.x
        start, idx = self._negatives(len(batch), batch.device)
        for p in self.net.parameters():
            p.requires_grad_(False)  # the chains need gradients in x only
        neg = langevin(
            self.energy, start, self.train_steps, self.step_size, self.noise, bounds=self.bounds
        )
        for p in self.net.parameters():
            p.requires_grad_(True)
        self._remember(neg, idx)
        e_pos, e_neg = self.energy(batch), self.energy(neg)
        loss = e_pos.mean() - e_neg.mean() + self.alpha * (e_pos**2 + e_neg**2).mean()
        return {"loss": loss, "e_data": e_pos.mean().detach(), "e_neg": e_neg.mean().detach()}

    @torch.no_grad()
    def _remember(self, neg: torch.Tensor, idx: torch.Tensor | None) -> None:
        replay = self.net.replay
        if idx is None:  # still filling the buffer
            self.net.replay = torch.cat([replay, neg])[: self.net.buffer_size]
        else:
            replay[idx] = neg

    def sample(self, n: int, *, cond: Any = None, seed: int | None = None, **kw: Any):
        """Langevin chains from uniform noise (``steps``, ``step_size``, ``noise`` override
        the model's sampling settings)."""
        opts = self.sampling(kw)
        g = seeded(seed)
        start = self._noise(n, generator=g)
        steps = _default(opts["steps"], self.sample_steps)
        step_size = _default(opts["step_size"], self.step_size)
        noise = _default(opts["noise"], self.noise)
        return langevin(
            self.energy, start, steps, step_size, noise, generator=g, bounds=self.bounds
        ).detach()

    def run_plots(self, x) -> dict[str, Any]:
        """The energy landscape of 2-D data."""
        if self.data_shape != (2,):
            return {}
        from ..viz.plots import energy_landscape

        samples = self.sample(1000, seed=0).numpy()
        return {"energy": energy_landscape(self, x, samples=samples)}


class GaussianEnergy:
    """E(x) = (x - mean)^T P (x - mean) / 2, the energy of N(mean, P^-1) (up to log Z)."""

    def __init__(self, mean: Any, cov: Any) -> None:
        self.mean = torch.as_tensor(np.asarray(mean), dtype=torch.float32)
        self.data_shape = tuple(self.mean.shape)
        self.precision = torch.linalg.inv(torch.as_tensor(np.asarray(cov), dtype=torch.float32))

    def energy(self, x: torch.Tensor) -> torch.Tensor:
        d = torch.as_tensor(x, dtype=torch.float32) - self.mean
        return 0.5 * ((d @ self.precision) * d).sum(-1)


class EnergySum(GenerativeModel):
    """exp(-(E_1 + ... + E_k)) ∝ p_1 ... p_k: a product of experts, sampled by Langevin."""

    name = "energy-sum"
    sample_options = (STEPS, STEP_SIZE)

    def __init__(self, *terms: Any, steps: int = 500, step_size: float = 0.01, init_range=3.0):
        self.terms, self.steps, self.step_size, self.init_range = (
            terms,
            steps,
            step_size,
            init_range,
        )

    def energy(self, x: torch.Tensor) -> torch.Tensor:
        return sum(term.energy(x) for term in self.terms)

    def sample(self, n: int, *, cond: Any = None, seed: int | None = None, **kw: Any):
        opts = self.sampling(kw)
        g = seeded(seed)
        start = (2 * torch.rand((n, *self.terms[0].data_shape), generator=g) - 1) * self.init_range
        steps = _default(opts["steps"], self.steps)
        step_size = _default(opts["step_size"], self.step_size)
        return langevin(self.energy, start, steps, step_size, generator=g)


def product(*models: Any, **options: Any) -> EnergySum:
    """The product of the models' distributions: their energies added."""
    return EnergySum(*models, **options)


def _default(value: Any, fallback: Any) -> Any:
    return fallback if value is None else value
