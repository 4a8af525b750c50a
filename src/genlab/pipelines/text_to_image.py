"""genlab's own text-to-image back end: a latent diffusion model ("builtin", the shipped one,
or a trained run or model folder) behind the generation contract. A GenerationRequest in,
images with their PNG parameters out: LoRAs applied for the draw, the initial image and mask
of img2img and inpainting encoded, the model's own sampling (``models.latent_sampling``)
run with a progress report and a cancel check after each step, the latents decoded."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from ..errors import GenlabError
from ..generation.backend import ModelInfo
from ..generation.hires import Latents, hires_fix, second_pass_schedule, target_size
from ..generation.images import image_tensor, mask_tensor, to_pil
from ..generation.pnginfo import format_parameters
from ..generation.request import GenerationRequest
from ..generation.result import GenerationResult, Progress, cancel_check
from ..hashing import sha256
from ..lora.adapters import fuse
from ..lora.files import applied_files, checked_loras, lora_parameters
from ..models.latent_sampling import Init, draw_latents, size_factor
from ..text.encoder import PromptTruncated

BUILTIN = "builtin"
BUILTIN_NAME = "genlab-shapes"
#: the text-to-image models shipped in genlab: spec -> (assets folder, the name lists show).
#: "builtin-fast" is the built-in model distilled into a 4-step one (consistency distillation,
#: recipe txt2img-shapes-lcm); it samples with its own defaults (lcm, 4 steps, cfg 1).
SHIPPED = {
    BUILTIN: ("txt2img-shapes", BUILTIN_NAME),
    "builtin-fast": ("txt2img-shapes-fast", "genlab-shapes-fast"),
}


def builtin_folder(spec: str = BUILTIN) -> Path:
    """The shipped text-to-image model ``spec`` (weights, config and card) inside the package."""
    return Path(__file__).resolve().parent.parent / "assets" / SHIPPED[spec][0]


def load_model(spec: str = BUILTIN) -> tuple[Any, str, str]:
    """(genlab's latent-diffusion model, its name, the sha256 of its weights) of ``spec``:
    "builtin", "builtin-fast" or a run or model folder; a fresh copy each call."""
    from ..models.latent_diffusion import LatentDiffusion
    from ..serialization import WEIGHTS, load, model_dir

    if spec in SHIPPED:
        from ..assets import checked_folder

        folder, name = checked_folder(SHIPPED[spec][0]), SHIPPED[spec][1]
    else:
        path = Path(spec)
        if not path.exists():
            raise GenlabError(
                f"Unknown model '{spec}': give 'builtin', 'builtin-fast', the folder of a "
                "trained latent-diffusion run, a Stable Diffusion folder (model_index.json) "
                "or a single .safetensors checkpoint."
            )
        folder, name = model_dir(path), path.resolve().name
    digest = sha256(folder / WEIGHTS)
    model = load(folder)
    # a latent-consistency run (the distillation) is a latent-diffusion model too
    if not isinstance(model, LatentDiffusion):
        raise GenlabError(f"{spec} holds a {model.name} model, not a text-to-image one.")
    return model, name, digest


class TextToImagePipeline:
    """``TextToImagePipeline(model)(GenerationRequest("a red circle", seed=1))``; a Backend."""

    def __init__(self, model: Any, name: str = "", model_hash: str = "", spec: str = "") -> None:
        self.model, self.name, self.model_hash = model, name or model.name, model_hash
        self.spec = spec
        self.token_merging: Any = None  # nn.token_merging.TokenMerging: lossy, off by default

    @classmethod
    def load(cls, spec: str = BUILTIN) -> TextToImagePipeline:
        """The back end of ``spec``, laid out for generation."""
        model, name, digest = load_model(spec)
        # Convolutions run about 9% faster on a CPU with channels-last weights (the same
        # pixels; benchmarks/txt2img_speed.py). Only here: a model in training keeps its layout.
        model.net.denoiser.to(memory_format=torch.channels_last)
        return cls(model, name, digest, spec)

    def use_token_merging(self, ratio: float = 0.0) -> None:
        """LOSSY speed-up: token merging (ToMe) of ``ratio`` of the image positions in the
        attention at the latents' resolution, for every draw from now on (0: off, the exact
        U-Net again). At the built-in model's 8x8 latents it saves nearly nothing
        (docs/results.md, "Token merging"); it is here for the same flag on every model."""
        from ..nn.token_merging import TokenMerging

        self.token_merging = TokenMerging(ratio) if ratio else None
        self.model.net.denoiser.net.unet.use_token_merging(self.token_merging)

    # --- the contract ---------------------------------------------------------------------
    def describe(self) -> ModelInfo:
        factor = self.model.data_shape[1] // self.model.latent_shape[1]
        size = self.default_size()
        return ModelInfo(self.name, self.model_hash, "genlab", size, factor, max_size=size,
                         sampling=self.sampling_defaults())  # fmt: skip

    def sampling_defaults(self) -> dict[str, Any]:
        """The request fields this model samples with by default where they differ from a
        request's own (a distilled model: its sampler, steps and CFG scale)."""
        fields = {"sampler": "sampler", "steps": "steps", "cfg": "cfg_scale"}
        return {fields[k]: v for k, v in getattr(self.model, "sampling", {}).items()}

    def default_size(self) -> tuple[int, int]:
        """(width, height) the model was trained at."""
        return self.model.data_shape[2], self.model.data_shape[1]

    def check(self, request: GenerationRequest) -> GenerationRequest:
        if not request.sized:
            request = request.at_size(*self.default_size())
        factor = size_factor(self.model, request.width, request.height)
        from_noise = request.init_image is None or (request.strength or 1.0) >= 1.0
        self._check_canvas(request.width, request.height, from_noise)
        if request.hires is not None:  # the second pass: img2img at the target size
            hires = request.hires
            target = target_size(request.width, request.height, hires, factor)
            steps = hires.steps or request.steps
            length, strength = second_pass_schedule(steps, hires.denoising_strength)
            try:
                self._check_canvas(*target, strength >= 1.0)
            except GenlabError:
                d = hires.denoising_strength
                if strength < 1.0 or d >= 1.0:
                    raise
                # the strength asked is below 1, but the pass's schedule has no step to skip
                raise GenlabError(
                    f"A hires pass of {steps} steps at denoising strength {d:g} starts from "
                    f"pure noise (its schedule, int({steps} / {d:g}) = {length} steps, has "
                    f"none to skip), which {self.name} cannot draw at {target[0]}x{target[1]}: "
                    "give the pass more steps (--hires-steps) or a lower denoising strength."
                ) from None
        checked_loras(request.loras, self.name, self.model_hash)
        return request

    def _check_canvas(self, width: int, height: int, from_noise: bool) -> None:
        """A U-Net trained on 32x32 scenes draws a larger canvas from noise as tiles of 32-px
        scenes (3, 9 and 30 circles at 64, 128 and 256 px): refused rather than misleading.
        Below strength 1 (img2img, hires fix's second pass) the layout is the initial
        image's, which the model only refines, so any size is drawn."""
        w, h = self.default_size()
        if from_noise and (width > w or height > h):
            raise GenlabError(
                f"{self.name} was trained at {w}x{h} and draws tiled copies of a scene "
                f"beyond that size from noise, so it draws at most {w}x{h} (asked for "
                f"{width}x{height}); for a larger image draw at {w}x{h} with hires fix "
                "(--hires-scale, below denoising strength 1) or upscale its image."
            )

    def __call__(
        self, request: GenerationRequest, progress: Callable | None = None, cancel: Any = None,
        *, keep_latents: bool = False,
    ) -> GenerationResult:  # fmt: skip
        if request.hires is not None:
            request = self.check(request)
            result = hires_fix(self, request, progress, cancel)
            notice = " ".join(filter(None, (result.info.get("notice"), self.hires_notice(request))))
            if notice:
                result.info["notice"] = notice
            return result
        request = self.check(request)
        loras = checked_loras(request.loras, self.name, self.model_hash)
        init, original, pixel_mask = self.init_of(request)
        with self.applied(loras), warnings.catch_warnings():
            warnings.simplefilter("ignore", PromptTruncated)  # said in info["notice"]
            latents, truncated = self.latents(request, progress, init, cancel)
        decoded = self.model.decode(latents)
        if pixel_mask is not None:  # inpainting keeps every pixel outside the mask exactly
            decoded = torch.where(pixel_mask.bool(), decoded, original)
        images = to_pil(decoded)
        extra = {"Text encoder": self.model.text_encoder}
        if truncated:
            extra["Prompt truncated"] = f"to {self.model.text_encoder_module.max_tokens} tokens"
        extra |= lora_parameters(loras)
        if self.token_merging is not None:  # stable-diffusion-webui's name for it
            extra["Token merging ratio"] = f"{self.token_merging.ratio:g}"
        params = [
            format_parameters(request, s, model=self.name, model_hash=self.model_hash, extra=extra)
            for s in request.seeds
        ]
        info = {"truncated": truncated}
        notice = self.notice(request, truncated)
        if notice:
            info["notice"] = notice
        return GenerationResult(
            images, request.seeds, params, info, latents if keep_latents else None
        )

    def notice(self, request: GenerationRequest, truncated: bool = False) -> str | None:
        """One line on what the request asks for that this model cannot draw: words and
        counts outside the built-in model's vocabulary (with a LoRA, which may teach it new
        words, none are judged), a prompt cut to the text encoder's length; or None."""
        lines = []
        folded = self.sampling_defaults().get("cfg_scale") == 1.0
        if folded and request.negative_prompt.strip() and request.cfg_scale == 1.0:
            lines.append(f"{self.name} has its guidance folded in and draws with CFG scale 1, "
                         "which reads no negative prompt; a CFG scale above 1 adds "
                         "guidance away from it.")  # fmt: skip
        if self.name in (BUILTIN_NAME, SHIPPED["builtin-fast"][1]) and not request.loras:
            from ..data.shapes import vocabulary_notice

            lines.append(vocabulary_notice(request.prompt, f"The built-in model ({self.name})"))
        if truncated:
            limit = self.model.text_encoder_module.max_tokens
            lines.append(f"The prompt is longer than the text encoder's {limit} tokens: the "
                         "words past them were not read.")  # fmt: skip
        return " ".join(line for line in lines if line) or None

    def hires_notice(self, request: GenerationRequest) -> str | None:
        """One line where a hires pass above the trained size may redraw the layout: the
        U-Net knows scenes of its trained size, and at 64x64 from a 32x32 draw it split a
        shape into copies from denoising strength 0.2 to 0.6 on the one seed looked at."""
        w, h = self.default_size()
        target = request.hires and target_size(request.width, request.height, request.hires)
        if not target or (target[0] <= w and target[1] <= h):
            return None
        return (f"{self.name} knows {w}x{h} scenes: above that size its hires pass may split "
                "shapes into copies, the less so the lower the denoising strength.")  # fmt: skip

    def applied(self, adapters: list[tuple[Any, float]]):
        """A block within which the U-Net carries ``adapters`` (see ``checked_loras``)."""
        return applied_files(self.model.net.denoiser, adapters)

    def lora_base(self) -> Any:
        """A fresh copy of the model (the adapters go into its own U-Net, not this one's)."""
        model, _, digest = load_model(self.spec or BUILTIN)
        model.digest, model.diffusers = digest, False
        return model

    def fuse(self, lora: Any, out: Path, scale: float = 1.0) -> Path:
        from ..serialization import save_model

        model = self.lora_base()
        fuse(model.net.denoiser, lora.state, lora.factor(scale))
        save_model(model, out)
        return Path(out)

    # --- the work ---------------------------------------------------------------------------
    def init_of(self, request: GenerationRequest):
        """(Init or None, the initial image (1, 3, H, W), the pixel mask (1, 1, H, W)) of an
        img2img or inpainting request."""
        if request.init_image is None:
            return None, None, None
        strength = 1.0 if request.strength is None else request.strength
        if isinstance(request.init_image, Latents):  # hires fix's upscaled latents
            latents = request.init_image.tensor
            if tuple(latents.shape[-2:]) != tuple(self._latent_size(request)):
                raise GenlabError("The initial latents do not match the size the request asks.")
            return Init(latents, strength), None, None
        images = request.init_image
        images = images if isinstance(images, list | tuple) else [images]
        tensors = [image_tensor(image) for image in images]
        for one in tensors:
            if tuple(one.shape[-2:]) != (request.height, request.width):
                raise GenlabError(
                    f"The initial image is {one.shape[-1]}x{one.shape[-2]}; the request "
                    f"asks for {request.width}x{request.height}."
                )
        original = torch.cat(tensors)
        factor = size_factor(self.model, request.width, request.height)
        latents = self.model.encode(original)
        if request.mask is None:
            return Init(latents, strength), original, None
        pixel_mask = mask_tensor(request.mask)
        if pixel_mask.shape[-2:] != original.shape[-2:]:
            raise GenlabError("The mask and the initial image differ in size.")
        # a latent is regenerated when any pixel it covers is
        latent_mask = torch.nn.functional.max_pool2d(pixel_mask, factor)
        return Init(latents, strength, latent_mask), original, pixel_mask

    def _latent_size(self, request: GenerationRequest) -> tuple[int, int]:
        factor = size_factor(self.model, request.width, request.height)
        return request.height // factor, request.width // factor

    def latents(
        self, request: GenerationRequest, progress: Callable | None = None,
        init: Init | None = None, cancel: Any = None,
    ):  # fmt: skip
        """(latents (n, C, h, w), whether the prompt or the negative prompt was truncated)."""
        request = self.check(request)
        n = request.batch_size
        if self.token_merging is not None:  # the same draws of merge grids for every image
            self.token_merging.reset()
        return draw_latents(
            self.model, [request.prompt] * n, [request.negative_prompt] * n, request.seeds,
            sampler=request.sampler, schedule=request.schedule, steps=request.steps,
            cfg=request.cfg_scale, width=request.width, height=request.height,
            callback=self.reporter(progress, cancel, request.steps, init), init=init,
            deepcache=request.deepcache, deepcache_branch=request.deepcache_branch,
        )  # fmt: skip

    def reporter(self, progress: Callable | None, cancel: Any, steps: int, init: Init | None):
        """The sampler's callback: a Progress for ``progress``, then the cancel check."""
        stop = cancel_check(cancel)
        if progress is None and cancel is None:
            return None
        if init is not None:  # img2img runs the last part of the schedule: count those steps
            steps = max(1, min(steps, int(steps * init.strength)))

        def report(d: dict) -> None:
            if progress is not None:
                progress(Progress(d["i"] + 1, steps, d["denoised"], self.model.decode))
            stop()

        return report
