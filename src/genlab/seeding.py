"""Seeded noise: CPU generators, so that the same seed gives the same sample on any device."""

from __future__ import annotations

import torch


def seeded(seed: int | None) -> torch.Generator:
    """A CPU generator: the same seed gives the same sample on any device."""
    g = torch.Generator()
    g.manual_seed(int(seed) if seed is not None else int(torch.randint(0, 2**62, ()).item()))
    return g


def randn_like(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Standard normal noise shaped like ``x``, on ``x``'s device: drawn there from the
    global RNG (training), or on the generator's device and moved (seeded evaluation)."""
    if generator is None:
        return torch.randn(x.shape, device=x.device, dtype=x.dtype)
    return torch.randn(x.shape, generator=generator, device=generator.device).to(x)
