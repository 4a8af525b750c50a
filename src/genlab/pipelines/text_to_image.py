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
from ..lora.files import applied_files, checked_loras, lora_parameters
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

        loras = checked_loras(request.loras, self.name, self.model_hash)
        init, original, pixel_mask = self.init_of(request)
        with self.applied(loras):
            latents, truncated = self.latents(request, callback, init)
        decoded = self.model.decode(latents)
        if pixel_mask is not None:  # inpainting keeps every pixel outside the mask exactly
            decoded = torch.where(pixel_mask.bool(), decoded, original)
        images = to_pil(decoded)
        extra = {"Text encoder": self.model.text_encoder}
        if truncated:
            extra["Prompt truncated"] = f"to {self.model.text_encoder_module.max_tokens} tokens"
        extra |= lora_parameters(loras)
        params = [
            format_parameters(request, s, model=self.name, model_hash=self.model_hash, extra=extra)
            for s in request.seeds
        ]
        return GenerationResult(images, request.seeds, params, {"truncated": truncated})

    def default_size(self) -> tuple[int, int]:
        """(width, height) the model was trained at."""
        return self.model.data_shape[2], self.model.data_shape[1]

    def check_size(self, width: int, height: int) -> int:
        """The autoencoder's downsampling factor, which must divide the image size."""
        factor = self.model.data_shape[1] // self.model.latent_shape[1]
        if width % factor or height % factor:
            raise GenlabError(
                f"Width and height must be multiples of {factor} (the autoencoder's factor), "
                f"got {width}x{height}."
            )
        return factor

    def init_of(self, request: GenerationRequest):
        """(Init or None, the initial image (1, 3, H, W), the pixel mask (1, 1, H, W)) of an
        img2img or inpainting request."""
        from ..generation.images import image_tensor, mask_tensor

        if request.init_image is None:
            return None, None, None
        original = image_tensor(request.init_image)
        if tuple(original.shape[-2:]) != (request.height, request.width):
            raise GenlabError(
                f"The initial image is {original.shape[-1]}x{original.shape[-2]}; the request "
                f"asks for {request.width}x{request.height}."
            )
        factor = self.check_size(request.width, request.height)
        latents = self.model.encode(original)
        strength = 1.0 if request.strength is None else request.strength
        if request.mask is None:
            return Init(latents, strength), original, None
        pixel_mask = mask_tensor(request.mask)
        if pixel_mask.shape[-2:] != original.shape[-2:]:
            raise GenlabError("The mask and the initial image differ in size.")
        # a latent is regenerated when any pixel it covers is
        latent_mask = torch.nn.functional.max_pool2d(pixel_mask, factor)
        return Init(latents, strength, latent_mask), original, pixel_mask

    def applied(self, adapters: list[tuple[Any, float]]):
        """A block within which the U-Net carries ``adapters`` (see ``checked_loras``)."""
        return applied_files(self.model.net.denoiser, adapters)

    def latents(
        self, request: GenerationRequest, callback: Callable | None = None, init: Init | None = None
    ):
        """(latents (n, C, h, w), whether the prompt or the negative prompt was truncated)."""
        n = request.batch_size
        return self.run(
            [request.prompt] * n, [request.negative_prompt] * n, request.seeds,
            request.sampler, request.steps, request.cfg_scale, request.width, request.height,
            callback, init,
        )  # fmt: skip

    def run(
        self, prompts: list[str], negatives: list[str], seeds: list[int], sampler: str,
        steps: int, cfg: float, width: int, height: int, callback: Callable | None = None,
        init: Init | None = None,
    ):  # fmt: skip
        """Latents for prompt i with negative prompt i from seed i (one batch): the request's
        work, also used by evaluation to draw many prompts at once. With ``init`` (img2img,
        inpainting), the last ``strength`` of the schedule runs from the initial latents
        noised to that level, as diffusers' img2img pipelines count it."""
        from ..seeding import seeded

        model = self.model
        factor = self.check_size(width, height)
        model.net.eval()
        cond, uncond, truncated = self.conditions(prompts, negatives)
        name, spacing = SCHEDULED.get(sampler, (sampler, "trailing"))
        sigmas = sampling_sigmas(model.net.denoiser, steps, spacing)
        if init is not None:
            run_steps = max(1, min(steps, int(steps * init.strength)))
            sigmas = sigmas[steps - run_steps :]
        shape = (model.latent_shape[0], height // factor, width // factor)
        gens = [seeded(s) for s in seeds]
        x = torch.stack([torch.randn(shape, generator=g) for g in gens]) * sigmas[0]
        if init is not None:
            x = x + init.latents
        report = _reporter(callback, len(sigmas) - 1, model.decode)
        groups = (
            [slice(0, len(x))]
            if name not in STOCHASTIC
            else [slice(i, i + 1) for i in range(len(x))]
        )
        parts = []
        for part in groups:  # a stochastic sampler draws each image's noise from its seed
            guided = ClassifierFreeGuidance(model.net.denoiser, cfg, uncond[part])
            if init is not None and init.mask is not None:
                guided = KeepKnown(guided, init.latents, init.mask)
            c = None if cond is None else cond[part]
            g = gens[part.start]
            parts.append(
                SAMPLERS[name](guided, x[part], sigmas, cond=c, generator=g, callback=report)
            )
        return torch.cat(parts), truncated

    def conditions(self, prompts: list[str], negatives: list[str]):
        """(condition or None, the unconditional branch, truncated?): each distinct text
        encoded once; an empty prompt is unconditional, an empty negative prompt leaves the
        unconditional branch to the model's own "no text"."""
        texts = sorted(set(prompts) | set(negatives))
        encoded, truncated = self.model.encode_text(texts)
        at = {t: i for i, t in enumerate(texts)}
        n = len(prompts)
        cond = encoded[torch.tensor([at[p] for p in prompts])]
        uncond = encoded[torch.tensor([at[q] for q in negatives])]
        if not any(q.strip() for q in negatives):
            uncond = Condition.unconditional(n)
        if not any(p.strip() for p in prompts) and uncond.tokens is None:
            cond = None  # nothing asked at all: one unconditional pass, no guidance
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


def _reporter(callback: Callable | None, steps: int, decode: Callable):
    if callback is None:
        return None
    return lambda d: callback(Progress(d["i"] + 1, steps, d["denoised"], decode))


def to_pil(images: torch.Tensor) -> list[Any]:
    """[-1, 1] images (N, C, H, W) -> PIL images."""
    from PIL import Image

    from ..models.latent_diffusion import image_batch

    return [Image.fromarray(a.squeeze(-1) if a.shape[-1] == 1 else a) for a in image_batch(images)]
