"""Stable Diffusion checkpoints (a diffusers folder with ``model_index.json``, or one
``.safetensors`` file as stable-diffusion-webui users download them) behind genlab's
generation interface: the same GenerationRequest in, images with stable-diffusion-webui's
PNG parameters out. diffusers does the work, offline (``local_files_only``) and from
safetensors only (``use_safetensors``: a folder holding only pickled weights is refused, a
``.ckpt`` file is never opened). A single file carries weights only: its configs and
tokenizer come from a local diffusers folder of the same architecture.
The sampler name picks a diffusers scheduler built from the folder's own scheduler config,
and image i of a batch draws its noise from its own generator seeded with seed + i, so it
is the image that seed gives alone."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import GenlabError
from .request import GenerationRequest


def is_diffusers_folder(path: Path) -> bool:
    return path.is_dir() and (path / "model_index.json").is_file()


def hashed_weights(path: Path) -> Path:
    """The file a Stable Diffusion model's hash is taken from: a single file itself, or a
    diffusers folder's U-Net weights."""
    path = Path(path)
    return path if path.is_file() else path / "unet" / "diffusion_pytorch_model.safetensors"


def is_stable_diffusion(spec: str | Path) -> bool:
    """Whether a model spec names Stable Diffusion: a diffusers folder or a single file
    ("builtin" and genlab's own run folders are neither)."""
    path = Path(spec)
    return str(spec) != "builtin" and (is_diffusers_folder(path) or is_single_file(path))


def keep_outside(generated: Any, original: Any, mask: Any) -> Any:
    """``generated`` inside the mask's white (> 127) pixels, ``original`` elsewhere: the
    autoencoder's round trip would otherwise shift the pixels inpainting is to keep."""
    from PIL import Image

    return Image.composite(generated, original, mask.point(lambda v: 255 if v > 127 else 0))


def is_single_file(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in (".safetensors", *PICKLED)


#: checkpoint suffixes of pickled weights, which genlab never opens
PICKLED = (".ckpt", ".pt", ".pth", ".bin")


def single_file_config(path: Path, config: str | Path | None) -> Path:
    """The diffusers folder a single-file checkpoint takes its configs from, checked."""
    if path.suffix.lower() != ".safetensors":
        raise GenlabError(
            f"{path} is a pickled checkpoint, which can run code when opened; genlab reads "
            "single files in safetensors only."
        )
    if config is None:
        raise GenlabError(
            f"{path.name} is a single-file checkpoint: give --model-config DIR, a local "
            "diffusers folder of the same architecture (model_index.json, the configs and the "
            "tokenizer; its weights are not needed), since nothing is downloaded."
        )
    return config_folder(config)


def config_folder(config: str | Path) -> Path:
    """``--model-config``, checked: a diffusers folder."""
    if not is_diffusers_folder(Path(config)):
        raise GenlabError(f"--model-config {config} is not a diffusers folder (model_index.json).")
    return Path(config)


class StableDiffusionBackend:
    """``path``: a diffusers folder, or a single ``.safetensors`` checkpoint in the original
    layout with ``config``, a diffusers folder of the same architecture whose configs and
    tokenizer it takes (its weights are not read)."""

    def __init__(
        self, path: str | Path, name: str = "", model_hash: str = "",
        config: str | Path | None = None,
    ) -> None:  # fmt: skip
        try:
            from diffusers import StableDiffusionPipeline
        except ImportError:
            raise GenlabError(
                "Stable Diffusion checkpoints need diffusers: pip install 'genlab[sd]'."
            ) from None
        path = Path(path)
        quiet = {"safety_checker": None, "requires_safety_checker": False}
        try:
            if path.is_file():
                config = single_file_config(path, config)
                self.pipe = StableDiffusionPipeline.from_single_file(
                    str(path), config=str(config), local_files_only=True, **quiet
                )
            else:
                self.pipe = StableDiffusionPipeline.from_pretrained(
                    path, local_files_only=True, use_safetensors=True, **quiet
                )
        except (OSError, ValueError, KeyError, RuntimeError) as e:
            what = "checkpoint file" if path.is_file() else "folder"
            raise GenlabError(
                f"{path} is not a Stable Diffusion {what} genlab can load offline from "
                f"safetensors ({str(e).splitlines()[0] if str(e) else type(e).__name__})."
            ) from None
        self.pipe.set_progress_bar_config(disable=True)
        self.scheduler_config = self.pipe.scheduler.config
        self.name = name or (path.stem if path.is_file() else path.resolve().name)
        self.model_hash = model_hash

    def default_size(self) -> tuple[int, int]:
        side = self.pipe.unet.config.sample_size * self.pipe.vae_scale_factor
        return side, side

    def check_size(self, width: int, height: int) -> int:
        factor = max(8, self.pipe.vae_scale_factor)  # diffusers' pipeline asks for 8
        if width % factor or height % factor:
            raise GenlabError(
                f"Width and height must be multiples of {factor} for Stable Diffusion, "
                f"got {width}x{height}."
            )
        return factor

    def __call__(self, request: GenerationRequest, callback: Callable | None = None):
        import torch

        from ..lora.files import applied_files, checked_loras, lora_parameters
        from ..pipelines.text_to_image import GenerationResult, Progress
        from .pnginfo import format_parameters
        from .schedulers import diffusers_scheduler

        self.check_size(request.width, request.height)
        self.pipe.scheduler = diffusers_scheduler(request.sampler, self.scheduler_config)
        generators = [torch.Generator().manual_seed(s) for s in request.seeds]

        def on_step(pipe: Any, i: int, t: Any, state: dict) -> dict:
            # diffusers hands over the current latents (still noisy), not the denoised estimate
            callback(Progress(i + 1, request.steps, state["latents"], self._decode))
            return state

        pipe, extra = self._pipeline_for(request)
        loras = checked_loras(request.loras, self.name, self.model_hash)
        with applied_files(self.pipe.unet, loras):
            out = pipe(
                **self._prompts(request), num_inference_steps=request.steps,
                guidance_scale=request.cfg_scale,
                num_images_per_prompt=request.batch_size, generator=generators,
                output_type="pil", callback_on_step_end=on_step if callback else None, **extra,
            )  # fmt: skip
        info = lora_parameters(loras)
        params = [
            format_parameters(request, s, model=self.name, model_hash=self.model_hash, extra=info)
            for s in request.seeds
        ]
        images = list(out.images)
        if request.mask is not None:  # every pixel outside the mask kept exactly, as built in
            images = [keep_outside(im, extra["image"], extra["mask_image"]) for im in images]
        return GenerationResult(images, request.seeds, params)

    def _prompts(self, request: GenerationRequest) -> dict[str, Any]:
        """The prompt and negative prompt as diffusers takes them: the plain text (emphasis
        syntax and escapes resolved) where every weight is 1, which diffusers encodes
        itself, else token embeddings with the weights applied."""
        from .emphasis import parse_emphasis

        out: dict[str, Any] = {}
        for key, text in (("prompt", request.prompt), ("negative_prompt", request.negative_prompt)):
            runs = parse_emphasis(text)
            if all(w == 1.0 for _, w in runs):
                plain = "".join(t for t, _ in runs)
                out[key] = plain or (None if key == "negative_prompt" else "")
            else:
                out[f"{key}_embeds"] = self.weighted_embeddings(runs)
        return out

    def weighted_embeddings(self, runs: list[tuple[str, float]]):
        """The CLIP embeddings (1, 77, D) of a prompt's (text, weight) runs, weighted as
        stable-diffusion-webui does it: each run tokenized on its own, each token's
        embedding times its weight, then all rescaled to the unweighted mean."""
        import torch

        tok, encoder = self.pipe.tokenizer, self.pipe.text_encoder
        ids: list[int] = []
        weights: list[float] = []
        for text, w in runs:
            pieces = tok(text, add_special_tokens=False).input_ids
            ids, weights = ids + pieces, weights + [w] * len(pieces)
        room = tok.model_max_length - 2  # as diffusers does, what does not fit is dropped
        ids, weights = ids[:room], weights[:room]
        pad = room - len(ids)
        row = [tok.bos_token_id, *ids, tok.eos_token_id] + [tok.pad_token_id] * pad
        w = torch.tensor([1.0, *weights, 1.0] + [1.0] * pad, device=encoder.device)
        with torch.no_grad():
            z = encoder(torch.tensor([row], device=encoder.device))[0]
            weighted = z * w[None, :, None].to(z.dtype)
            return weighted * (z.mean() / weighted.mean())

    def _pipeline_for(self, request: GenerationRequest):
        """txt2img, img2img or inpainting: diffusers' pipeline of that task over the same
        components, and the arguments only it takes."""
        from diffusers import StableDiffusionImg2ImgPipeline, StableDiffusionInpaintPipeline

        from .images import open_image

        if request.init_image is None:
            return self.pipe, {"height": request.height, "width": request.width}
        image = open_image(request.init_image, "RGB", "initial image")
        if image.size != (request.width, request.height):
            raise GenlabError(
                f"The initial image is {image.size[0]}x{image.size[1]}; the request asks for "
                f"{request.width}x{request.height}."
            )
        strength = 1.0 if request.strength is None else request.strength
        if request.mask is None:
            pipe = StableDiffusionImg2ImgPipeline(**self.pipe.components)
            pipe.set_progress_bar_config(disable=True)
            return pipe, {"image": image, "strength": strength}
        mask = open_image(request.mask, "L", "mask")
        pipe = StableDiffusionInpaintPipeline(**self.pipe.components)
        pipe.set_progress_bar_config(disable=True)
        extra = {"image": image, "mask_image": mask, "strength": strength}
        return pipe, extra | {"height": request.height, "width": request.width}

    def _decode(self, latents):
        """Latents (scaled) -> images in [-1, 1], for previews."""
        import torch

        vae = self.pipe.vae
        with torch.no_grad():
            return vae.decode(latents / vae.config.scaling_factor).sample.clamp(-1, 1)
