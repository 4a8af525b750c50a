"""Text-to-image with a latent diffusion model: a GenerationRequest in, images with their
parameters out. Encode the prompt and the negative prompt, draw each image's starting noise
from its own seed, run a sampler of genlab.diffusion.samplers under classifier-free
guidance (the negative prompt in the unconditional branch's place), decode the latents.

Image i of a batch uses seed + i and comes out the same as a batch of one with that seed:
deterministic samplers run the batch together, stochastic ones (fresh noise each step)
image by image, each from its own generator.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from ..conditioning import Condition
from ..diffusion.guidance import ClassifierFreeGuidance
from ..diffusion.samplers import SAMPLERS, STOCHASTIC
from ..errors import GenlabError
from ..generation.request import WEBUI_SAMPLERS, GenerationRequest
from ..options import CALLBACK, Option, resolve
from .diffusion import sampling_sigmas

#: Request sampler names that are a sampler of genlab.diffusion.samplers plus a spacing.
SCHEDULED = {"dpmpp-2m-karras": ("dpmpp-2m", "karras")}

OPTIONS = (
    Option("prompt", str, "", "what to draw (empty: an unconditional sample)"),
    Option(
        "negative_prompt", str, "", "what to steer away from (replaces the unconditional branch)"
    ),
    Option("sampler", str, "dpmpp-2m", "sampling algorithm", choices=tuple(WEBUI_SAMPLERS)),
    Option("steps", int, 20, "sampling steps", low=1, high=10_000),
    Option("cfg", float, 5.0, "classifier-free guidance scale", low=0),
    CALLBACK,
)


@dataclass(frozen=True)
class Progress:
    """What a progress callback receives after each network evaluation of a step: the step
    (1-based) of ``steps``, and the current estimate of the clean latents, which
    ``preview()`` decodes to images."""

    step: int
    steps: int
    denoised: torch.Tensor
    decode: Callable[[torch.Tensor], torch.Tensor] = field(repr=False)

    def preview(self) -> list[Any]:
        return to_pil(self.decode(self.denoised))


@dataclass
class GenerationResult:
    """Images (PIL), each with its seed and its PNG ``parameters`` text."""

    images: list[Any]
    seeds: list[int]
    parameters: list[str]
    info: dict[str, Any] = field(default_factory=dict)


class TextToImagePipeline:
    """``TextToImagePipeline(model)(GenerationRequest("a red circle", seed=1))``."""

    options = OPTIONS

    def __init__(self, model: Any, name: str = "", model_hash: str = "") -> None:
        self.model, self.name, self.model_hash = model, name or model.name, model_hash

    def __call__(self, request: GenerationRequest, callback: Callable | None = None):
        from ..generation.pnginfo import format_parameters

        latents, truncated = self.latents(request, callback)
        images = to_pil(self.model.decode(latents))
        extra = {"Text encoder": self.model.text_encoder}
        if truncated:
            extra["Prompt truncated"] = f"to {self.model.text_encoder_module.max_tokens} tokens"
        params = [
            format_parameters(request, s, model=self.name, model_hash=self.model_hash, extra=extra)
            for s in request.seeds
        ]
        return GenerationResult(images, request.seeds, params, {"truncated": truncated})

    def latents(self, request: GenerationRequest, callback: Callable | None = None):
        """(latents (n, C, h, w), whether the prompt or the negative prompt was truncated)."""
        from ..models.neural import seeded

        model = self.model
        factor = model.data_shape[1] // model.latent_shape[1]
        if request.width % factor or request.height % factor:
            raise GenlabError(
                f"Width and height must be multiples of {factor} (the autoencoder's factor), "
                f"got {request.width}x{request.height}."
            )
        model.net.eval()
        n = request.batch_size
        cond, uncond, truncated = self.conditions(request, n)
        name, spacing = SCHEDULED.get(request.sampler, (request.sampler, "trailing"))
        sigmas = sampling_sigmas(model.net.denoiser, request.steps, spacing)
        shape = (model.latent_shape[0], request.height // factor, request.width // factor)
        gens = [seeded(s) for s in request.seeds]
        x = torch.stack([torch.randn(shape, generator=g) for g in gens]) * sigmas[0]
        denoiser = ClassifierFreeGuidance(model.net.denoiser, request.cfg_scale, uncond)
        report = _reporter(callback, request.steps, model.decode)
        if name not in STOCHASTIC:
            out = SAMPLERS[name](denoiser, x, sigmas, cond=cond, generator=gens[0], callback=report)
        else:
            parts = []
            for i, g in enumerate(gens):
                c = None if cond is None else cond[i : i + 1]
                guided = ClassifierFreeGuidance(
                    model.net.denoiser, request.cfg_scale, uncond[i : i + 1]
                )
                parts.append(
                    SAMPLERS[name](
                        guided, x[i : i + 1], sigmas, cond=c, generator=g, callback=report
                    )
                )
            out = torch.cat(parts)
        return out, truncated

    def conditions(self, request: GenerationRequest, n: int):
        """(condition or None, the unconditional branch, truncated?) for ``n`` images."""
        prompts = [request.prompt, request.negative_prompt]
        encoded, truncated = self.model.encode_text(prompts)
        cond = None if not request.prompt.strip() else _repeat(encoded[0:1], n)
        if request.negative_prompt.strip():
            uncond = _repeat(encoded[1:2], n)
        else:
            uncond = Condition.unconditional(n)
        if cond is None and uncond.tokens is not None:  # no prompt, only a negative one
            cond = Condition.unconditional(n)
        return cond, uncond, any(truncated)

    def sample(self, n: int, *, seed: int | None = None, **given: Any) -> torch.Tensor:
        """Images (n, C, H, W) in [-1, 1] at the training size: the model's ``sample``."""
        opts = resolve(self.model.name, self.options, given)
        seed = int(torch.randint(0, 2**31, ()).item()) if seed is None else int(seed)
        _, h, w = self.model.data_shape
        request = GenerationRequest(
            opts["prompt"], opts["negative_prompt"], opts["sampler"], opts["steps"],
            opts["cfg"], seed, n, w, h,
        )  # fmt: skip
        latents, _ = self.latents(request, opts["callback"])
        return self.model.decode(latents)


def _repeat(cond: Condition, n: int) -> Condition:
    return cond[torch.zeros(n, dtype=torch.long)]


def _reporter(callback: Callable | None, steps: int, decode: Callable):
    if callback is None:
        return None
    return lambda d: callback(Progress(d["i"] + 1, steps, d["denoised"], decode))


def to_pil(images: torch.Tensor) -> list[Any]:
    """[-1, 1] images (N, C, H, W) -> PIL images."""
    from PIL import Image

    from ..models.latent_diffusion import image_batch

    return [Image.fromarray(a.squeeze(-1) if a.shape[-1] == 1 else a) for a in image_batch(images)]
