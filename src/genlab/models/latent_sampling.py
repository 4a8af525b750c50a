"""Drawing latents from a text-conditioned latent diffusion model: encode the prompts and the
negative prompts, draw each image's starting noise from its own seed, run a sampler of
genlab.diffusion.samplers under classifier-free guidance (the negative prompt in the
unconditional branch's place). The model's own sampling, built from genlab.diffusion's pure
parts; the text-to-image pipeline (requests, LoRAs, images, PNG parameters) sits above it.

Image i of a batch uses seed + i and comes out the same as a batch of one with that seed:
every image draws its noise from its own generator (``seeding.ImageRNG``), so stochastic
samplers run the batch together too.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from ..conditioning import Condition
from ..diffusion.guidance import ClassifierFreeGuidance
from ..diffusion.samplers import SAMPLERS
from ..diffusion.schedules import STEP_SCHEDULES, sampling_sigmas
from ..errors import GenlabError
from ..nn.deepcache import deep_cache, unet_path
from ..options import CALLBACK, Option
from ..seeding import ImageRNG

OPTIONS = (
    Option("prompt", str, "", "what to draw (empty: an unconditional sample)"),
    Option(
        "negative_prompt", str, "", "what to steer away from (replaces the unconditional branch)"
    ),
    Option("sampler", str, "dpmpp-2m", "sampling algorithm", choices=tuple(SAMPLERS)),
    Option(
        "schedule", str, "default", "which noise levels the steps visit", choices=STEP_SCHEDULES
    ),
    Option("steps", int, 20, "sampling steps", low=1, high=1000),
    Option("cfg", float, 5.0, "classifier-free guidance scale", low=0),
    CALLBACK,
)


@dataclass(frozen=True)
class Init:
    """img2img and inpainting: the starting image's latents (1, C, h, w), the share of the
    schedule to run again (``strength``: 1 starts from pure noise), and for inpainting the
    latents to regenerate (``mask`` (1, 1, h, w): 1) or keep (0)."""

    latents: torch.Tensor
    strength: float = 1.0
    mask: torch.Tensor | None = None


class KeepKnown(torch.nn.Module):
    """Inpainting with any denoiser: its estimate of the clean latents is replaced by the
    known latents outside the mask at every step, so the sampler regenerates the masked
    region in agreement with what is kept around it."""

    def __init__(self, denoiser: Any, known: torch.Tensor, mask: torch.Tensor) -> None:
        super().__init__()
        self.denoiser, self.known, self.mask = denoiser, known, mask

    def forward(self, x, sigma, cond=None):
        return self.mask * self.denoiser(x, sigma, cond) + (1 - self.mask) * self.known


def size_factor(model: Any, width: int, height: int) -> int:
    """The autoencoder's downsampling factor, which must divide the image size."""
    factor = model.data_shape[1] // model.latent_shape[1]
    if width % factor or height % factor:
        raise GenlabError(
            f"Width and height must be multiples of {factor} (the autoencoder's factor), "
            f"got {width}x{height}."
        )
    return factor


@torch.no_grad()
def draw_latents(
    model: Any, prompts: list[str], negatives: list[str], seeds: list[int], *,
    sampler: str = "dpmpp-2m", schedule: str = "default", steps: int = 20, cfg: float = 5.0,
    width: int, height: int, callback: Callable | None = None, init: Init | None = None,
    deepcache: int = 1, deepcache_branch: int = 0,
) -> tuple[torch.Tensor, bool]:  # fmt: skip
    """(latents (n, C, h, w) for prompt i with negative prompt i from seed i, whether a text
    was truncated). ``callback`` gets the sampler's {"i", "x", "sigma", "denoised"} after
    each step. With ``init`` (img2img, inpainting), the last ``strength`` of the schedule
    runs from the initial latents noised to that level, as diffusers' img2img pipelines
    count it. ``deepcache`` > 1 turns on step caching (LOSSY: ``nn.deepcache``) with that
    interval at skip branch ``deepcache_branch``."""
    if sampler not in SAMPLERS:
        raise GenlabError(f"Unknown sampler '{sampler}'; choose one of {', '.join(SAMPLERS)}.")
    factor = size_factor(model, width, height)
    model.net.eval()
    cond, uncond, truncated = conditions(model, prompts, negatives)
    spacing = "trailing" if schedule == "default" else schedule
    sigmas = sampling_sigmas(model.net.denoiser, steps, spacing)
    if init is not None:
        run_steps = max(1, min(steps, int(steps * init.strength)))
        sigmas = sigmas[steps - run_steps :]
    rng = ImageRNG(seeds)
    x = rng.randn((model.latent_shape[0], height // factor, width // factor)) * sigmas[0]
    if init is not None:
        x = x + init.latents
    guided: Any = ClassifierFreeGuidance(model.net.denoiser, cfg, uncond)
    if init is not None and init.mask is not None:
        guided = KeepKnown(guided, init.latents, init.mask)
    unet = model.net.denoiser.net.unet
    with deep_cache(unet, unet_path(unet), deepcache, deepcache_branch):
        out = SAMPLERS[sampler](guided, x, sigmas, cond=cond, generator=rng, callback=callback)
    return out, truncated


def conditions(model: Any, prompts: list[str], negatives: list[str]):
    """(condition or None, the unconditional branch, truncated?): each distinct text encoded
    once; an empty prompt is unconditional, an empty negative prompt leaves the
    unconditional branch to the model's own "no text"."""
    texts = sorted(set(prompts) | set(negatives))
    encoded, truncated = model.encode_text(texts)
    at = {t: i for i, t in enumerate(texts)}
    n = len(prompts)
    cond = encoded[torch.tensor([at[p] for p in prompts])]
    uncond = encoded[torch.tensor([at[q] for q in negatives])]
    if not any(q.strip() for q in negatives):
        uncond = Condition.unconditional(n)
    if not any(p.strip() for p in prompts) and uncond.tokens is None:
        cond = None  # nothing asked at all: one unconditional pass, no guidance
    return cond, uncond, any(truncated)
