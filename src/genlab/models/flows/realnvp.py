"""RealNVP (Dinh et al., 2017): a stack of affine couplings, exact log-likelihood.

log p(x) = log N(f(x); 0, I) + log |det df/dx|, with f the composition of the couplings.
2-D data: couplings with alternating masks. Images: multi-scale, as in the paper: per
level, checkerboard couplings, a squeeze, channel couplings, then half of the channels
leave as latent variables; the rest go on to the next level.

Images are first mapped from [-1, 1] to (0, 1) and through a logit. With ``levels`` > 0
(17 for digits, whose pixels take 17 values) training dequantizes them: a pixel of level v
becomes (v + u) / levels with u ~ U(0, 1), and ``bits_per_dim`` reports the discrete
negative log-likelihood bound -E[log p(u')] / (D log 2) + log2(levels).
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import torch
from torch import nn

from ..neural import Batch, NeuralModel, seeded
from .transforms import (
    Affine,
    AffineCoupling,
    ConvNet,
    Logit,
    Squeeze,
    channel_mask,
    checkerboard,
    vector_mask,
    vector_net,
)

LOG_2PI = math.log(2 * math.pi)


class _Level(nn.Module):
    """Checkerboard couplings, squeeze, channel couplings; then half the channels exit."""

    def __init__(self, shape, n_couplings: int, width: int, split: bool) -> None:
        super().__init__()
        c, h, w = shape
        self.steps = nn.ModuleList(
            AffineCoupling(checkerboard(shape, i % 2), ConvNet(c, width), c)
            for i in range(n_couplings)
        )
        self.split = split
        if split:
            sq = (4 * c, h // 2, w // 2)
            self.steps.append(Squeeze())
            self.steps.extend(
                AffineCoupling(channel_mask(sq, i % 2), ConvNet(4 * c, width), 4 * c)
                for i in range(n_couplings)
            )


class _Net(nn.Module):
    def __init__(self, shape, n_couplings, hidden, width, scales) -> None:
        super().__init__()
        if len(shape) == 1:
            self.pre = nn.ModuleList()
            self.levels = nn.ModuleList(
                [
                    nn.ModuleList(
                        AffineCoupling(
                            vector_mask(shape[0], i % 2), vector_net(shape[0], hidden), 1
                        )
                        for i in range(n_couplings)
                    )
                ]
            )
            return
        self.pre = nn.ModuleList([Affine(-1.0, 2.0), Logit(0.05)])
        levels, (c, h, w) = [], shape
        for i in range(scales):
            last = i == scales - 1
            level = _Level((c, h, w), n_couplings if not last else n_couplings + 1, width, not last)
            levels.append(level.steps)
            if not last:
                c, h, w = 2 * c, h // 2, w // 2  # 4C after the squeeze, half of it stays
        self.levels = nn.ModuleList(levels)


class RealNVP(NeuralModel):
    """Parameters: ``n_couplings`` (per level), ``hidden`` (2-D coupling MLP sizes),
    ``width`` (image coupling channels), ``scales`` (levels for images), ``levels``
    (pixel values for dequantization; 0 for continuous data)."""

    name = "realnvp"
    has_log_prob = True
    train_defaults: ClassVar[dict[str, Any]] = {
        "lr": 1e-3,
        "batch_size": 128,
        "steps": 3000,
        "ema_decay": 0.999,
        "grad_clip": 100.0,
    }

    def __init__(
        self,
        data_shape,
        n_couplings: int = 6,
        hidden: tuple[int, ...] | list[int] = (128, 128),
        width: int = 64,
        scales: int = 2,
        levels: int = 0,
    ) -> None:
        super().__init__(
            data_shape,
            n_couplings=n_couplings,
            hidden=list(hidden),
            width=width,
            scales=scales,
            levels=levels,
        )
        self.net = _Net(self.data_shape, n_couplings, tuple(hidden), width, scales)

    # --- the bijection -------------------------------------------------------------------
    def forward(self, x: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        """x -> (latent pieces, one per level, and log |det|), per sample."""
        log_det = x.new_zeros(len(x))
        for t in self.net.pre:
            x, ld = t(x)
            log_det = log_det + ld
        pieces = []
        for i, steps in enumerate(self.net.levels):
            for t in steps:
                x, ld = t(x)
                log_det = log_det + ld
            if i < len(self.net.levels) - 1:
                out, x = x.chunk(2, dim=1)
                pieces.append(out)
        pieces.append(x)
        return pieces, log_det

    def inverse(self, pieces: list[torch.Tensor]) -> torch.Tensor:
        x = pieces[-1]
        for i in reversed(range(len(self.net.levels))):
            if i < len(self.net.levels) - 1:
                x = torch.cat([pieces[i], x], dim=1)
            for t in reversed(self.net.levels[i]):
                x = t.inverse(x)
        for t in reversed(self.net.pre):
            x = t.inverse(x)
        return x

    def latent_shapes(self) -> list[tuple[int, ...]]:
        with torch.no_grad():
            pieces, _ = self.forward(torch.zeros(1, *self.data_shape))
        return [tuple(p.shape[1:]) for p in pieces]

    def _log_prob(self, x: torch.Tensor) -> torch.Tensor:
        pieces, log_det = self.forward(x)
        log_base = sum((-0.5 * p**2 - 0.5 * LOG_2PI).flatten(1).sum(1) for p in pieces)
        return log_base + log_det

    # --- training and the questions every model answers ------------------------------------
    def dequantize(self, x: torch.Tensor, generator=None) -> torch.Tensor:
        """Pixels in [-1, 1] -> level v -> (v + u) / levels, back in [-1, 1]."""
        v = torch.round((x + 1) / 2 * (self.levels - 1))
        u = torch.rand(x.shape, generator=generator, device=x.device)
        return 2 * (v + u) / self.levels - 1

    def training_step(self, batch: Batch, update: str = "main") -> dict[str, torch.Tensor]:
        x = self.dequantize(batch.x) if self.levels else batch.x
        nll = -self._log_prob(x)
        dims = math.prod(self.data_shape)
        return {"loss": nll.mean() / dims, "nll": nll.mean().detach()}

    @torch.no_grad()
    def log_prob(self, x: Any) -> torch.Tensor:
        """Exact log density of continuous x (for images: in the [-1, 1] pixel space)."""
        self.net.eval()
        return self._log_prob(self.as_batch(x))

    @torch.no_grad()
    def bits_per_dim(self, x: Any, *, seed: int | None = 0) -> torch.Tensor:
        """Per-image discrete NLL bound in bits per dimension (needs ``levels`` > 0)."""
        if not self.levels:
            raise NotImplementedError("bits_per_dim needs levels > 0 (discrete pixel data).")
        self.net.eval()
        x = self.dequantize(self.as_batch(x), seeded(seed))
        dims = math.prod(self.data_shape)
        # density on u = (v + noise) / levels in [0, 1): p_u = p_x * 2^D
        log_pu = self._log_prob(x) + dims * math.log(2)
        return -(log_pu - dims * math.log(self.levels)) / (dims * math.log(2))

    def dequantized_bits_per_dim(self, x: Any):
        return self.bits_per_dim(x) if self.levels else None

    def run_plots(self, x) -> dict[str, Any]:
        """How a 2-D flow warps space."""
        if self.data_shape != (2,):
            return {}
        from ...viz.plots import flow_grid

        return {"flow_grid": flow_grid(self, x)}

    @torch.no_grad()
    def sample(self, n: int, *, cond: Any = None, seed: int | None = None, **kw: Any):
        self.sampling(kw)
        self.net.eval()
        g = seeded(seed)
        pieces = [torch.randn((n, *s), generator=g) for s in self.latent_shapes()]
        x = self.inverse(pieces)
        return x.clamp(-1, 1) if len(self.data_shape) == 3 else x
