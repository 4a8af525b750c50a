"""Seeded noise: CPU generators, so that the same seed gives the same sample on any device."""

from __future__ import annotations

from typing import Any

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


class ImageRNG:
    """One generator per image of a batch (stable-diffusion-webui's rule: image i of a batch
    from seed s is the image seed s + i gives alone), so stochastic samplers still run the
    batch together: each draw is one row per image, each row from its own generator."""

    def __init__(self, seeds: list[int]) -> None:
        self.seeds = [int(s) for s in seeds]
        self.generators = [seeded(s) for s in self.seeds]

    def __len__(self) -> int:
        return len(self.generators)

    def randn(self, shape: tuple[int, ...]) -> torch.Tensor:
        """(len(self), *shape) standard normal noise, row i from generator i."""
        return torch.stack([torch.randn(shape, generator=g) for g in self.generators])


def noise_like(x: torch.Tensor, generator: Any = None) -> torch.Tensor:
    """Standard normal noise shaped like ``x`` (on its device and dtype): from an ImageRNG
    row by row, from a CPU generator, or from the global RNG."""
    if isinstance(generator, ImageRNG):
        if len(generator) != len(x):
            raise ValueError(f"{len(generator)} generators for a batch of {len(x)}")
        return generator.randn(tuple(x.shape[1:])).to(device=x.device, dtype=x.dtype)
    return torch.randn(x.shape, generator=generator, dtype=x.dtype).to(x.device)
