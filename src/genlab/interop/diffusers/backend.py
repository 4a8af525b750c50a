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

from ...errors import GenlabError
from ...generation.backend import ModelInfo
from ...generation.request import GenerationRequest
from ...generation.result import GenerationResult, Progress, cancel_check
from .files import single_file_config
from .speed import DEFAULT


def keep_outside(generated: Any, original: Any, mask: Any) -> Any:
    """``generated`` inside the mask's white (> 127) pixels, ``original`` elsewhere: the
    autoencoder's round trip would otherwise shift the pixels inpainting is to keep."""
    from PIL import Image

    return Image.composite(generated, original, mask.point(lambda v: 255 if v > 127 else 0))


class StableDiffusionBackend:
    """``path``: a diffusers folder, or a single ``.safetensors`` checkpoint in the original
    layout with ``config``, a diffusers folder of the same architecture whose configs and
    tokenizer it takes (its weights are not read). The pipeline loads on first use (a LoRA
    trains on a fresh copy and never needs this one's). ``speed``: the picture-preserving
    speed-ups of ``speed.Speed`` (default: channels-last and VAE slicing)."""

    def __init__(
        self, path: str | Path, name: str = "", model_hash: str = "",
        config: str | Path | None = None, placement: Any = None, speed: Any = None,
    ) -> None:  # fmt: skip
        try:
            import diffusers  # noqa: F401
        except ImportError:
            raise GenlabError(
                "Stable Diffusion checkpoints need diffusers: pip install 'genlab[sd]'."
            ) from None
        self.path = Path(path)
        self.config = single_file_config(self.path, config) if self.path.is_file() else None
        if self.path.is_dir() and config is not None:
            raise GenlabError(
                "--model-config applies to a single-file Stable Diffusion checkpoint."
            )
        self.name = name or (self.path.stem if self.path.is_file() else self.path.resolve().name)
        self.model_hash = model_hash
        self.placement = placement
        self.speed = speed  # None: speed.DEFAULT (channels-last, VAE slicing)
        self._pipe = None
        self._scheduler_config = None
        self._embeddings: Any = None
        self.embeddings_dir: Path | None = None
        self.refiner: tuple[Path, float] | None = None  # (folder, switch) of SDXL's refiner
        self._refiner_pipe: Any = None
        self.token_merging: Any = None  # nn.token_merging.TokenMerging: lossy, off by default
        self._merge_patch: Any = None

    def use_token_merging(self, ratio: float = 0.0) -> None:
        """LOSSY speed-up: token merging (ToMe) of ``ratio`` of the tokens in the
        self-attention at the latents' resolution of the base U-Net (not the refiner's), for
        every draw from now on; 0: off, the exact U-Net again (``token_merging.py``)."""
        from ...nn.token_merging import TokenMerging

        self.token_merging = TokenMerging(ratio) if ratio else None
        if self._pipe is not None:
            self._patch_unet()

    def _patch_unet(self) -> None:
        from . import token_merging

        if self._merge_patch is not None:
            self._merge_patch.remove()
        self._merge_patch = token_merging.apply(self._pipe.unet, self.token_merging)

    def use_refiner(self, folder: str | Path | None, switch: float = 0.8) -> None:
        """Draw the last ``1 - switch`` of every txt2img's steps with the SDXL refiner (or
        any SDXL img2img model) in the diffusers folder ``folder``; None: no refiner."""
        from .files import is_diffusers_folder

        if folder is None:
            self.refiner, self._refiner_pipe = None, None
            return
        if self.version != "sdxl":
            raise GenlabError(f"--refiner applies to SDXL models; {self.name} is not one.")
        if not 0.0 < switch < 1.0:
            raise GenlabError(
                f"--refiner-switch {switch:g} must lie in (0, 1): the fraction of the steps "
                "the base model draws before the refiner takes over."
            )
        if not is_diffusers_folder(Path(folder)):
            raise GenlabError(f"--refiner {folder} is not a diffusers folder (model_index.json).")
        if self.refiner is None or self.refiner[0] != Path(folder):
            self._refiner_pipe = None
        self.refiner = (Path(folder), float(switch))

    @property
    def refiner_pipe(self) -> Any:
        """diffusers' SDXL img2img pipeline of the refiner folder (offline, safetensors)."""
        if self._refiner_pipe is None:
            folder = self.refiner[0]
            try:
                pipe = pipeline_class("sdxl", "img2img").from_pretrained(
                    folder, local_files_only=True, use_safetensors=True
                )
            except (OSError, ValueError, KeyError, RuntimeError, TypeError) as e:
                raise GenlabError(
                    f"{folder} is not an SDXL refiner folder genlab can load offline from "
                    f"safetensors ({str(e).splitlines()[0] if str(e) else type(e).__name__})."
                ) from None
            pipe.set_progress_bar_config(disable=True)
            if self.placement is not None:
                self.placement.apply(pipe)
            self._refiner_pipe = (pipe, pipe.scheduler.config)
        return self._refiner_pipe

    def use_embeddings(self, folder: str | Path | None) -> None:
        """Read textual-inversion embeddings from ``folder`` (webui's embeddings folder);
        None: none. The fitting ones are added to the pipeline when it loads (or now)."""
        folder = Path(folder) if folder is not None else None
        if folder == self.embeddings_dir and self._embeddings is not None:
            return
        # another folder: its embeddings are added; the last folder's stay in the tokenizer
        # but no prompt reaches them, since only this folder's names are rewritten
        self.embeddings_dir = folder
        self._embeddings = None
        if self._pipe is not None:
            self.embeddings.install(self._pipe)

    @property
    def embeddings(self) -> Any:
        """The embeddings of ``embeddings_dir`` for this model (loaded and skipped)."""
        from .embeddings import Embeddings, encoder_widths

        if self._embeddings is None:
            widths = encoder_widths(self.config or self.path)
            self._embeddings = Embeddings.scan(self.embeddings_dir, widths)
        return self._embeddings

    @property
    def pipe(self) -> Any:
        if self._pipe is None:
            self._pipe = load_diffusers(self.path, self.config)
            self._scheduler_config = self._pipe.scheduler.config
            self.embeddings.install(self._pipe)
            if self.placement is not None:
                self.placement.apply(self._pipe)
            (self.speed or DEFAULT).apply(self._pipe)
            self._patch_unet()
        return self._pipe

    @property
    def scheduler_config(self) -> Any:
        """The folder's own scheduler config, as loaded: each request's scheduler is built
        from it, never from the last request's (whose Karras sigmas or spacing would carry
        over into a request with the default schedule)."""
        _ = self.pipe
        return self._scheduler_config

    # --- the contract ---------------------------------------------------------------------
    def describe(self) -> ModelInfo:
        return ModelInfo(
            self.name, self.model_hash, "stable-diffusion", self.default_size(), self.size_step()
        )

    def default_size(self) -> tuple[int, int]:
        from .files import diffusers_shape

        _, h, w = diffusers_shape(self.config or self.path)
        return w, h

    def size_step(self) -> int:
        from .files import diffusers_shape

        _, h, _ = diffusers_shape(self.config or self.path)
        return max(8, h // self._latent_side())  # diffusers' pipeline asks for multiples of 8

    def _latent_side(self) -> int:
        import json

        unet = json.loads((Path(self.config or self.path) / "unet" / "config.json").read_text())
        return int(unet["sample_size"])

    def check(self, request: GenerationRequest) -> GenerationRequest:
        from ...lora.files import checked_loras

        if not request.sized:
            request = request.at_size(*self.default_size())
        factor = self.size_step()
        if request.width % factor or request.height % factor:
            raise GenlabError(
                f"Width and height must be multiples of {factor} for Stable Diffusion, "
                f"got {request.width}x{request.height}."
            )
        checked_loras(request.loras, self.name, self.model_hash, self.version)
        for text in (request.prompt, request.negative_prompt):
            self.embeddings.rewrite(text)  # an embedding that does not fit: refused before work
        return request

    @property
    def version(self) -> str:
        """ "sd1" or "sdxl", from the folder's (or the single file's config folder's)
        ``model_index.json``."""
        from .files import pipeline_version

        return pipeline_version(self.config or self.path)

    def _lora_parts(self) -> dict[str, Any]:
        """The parts of the pipeline a LoRA file may adapt, by its name for them."""
        pipe = self.pipe
        names = ("unet", "text_encoder", "text_encoder_2")
        return {n: getattr(pipe, n, None) for n in names if getattr(pipe, n, None) is not None}

    def check_size(self, width: int, height: int) -> int:
        self.check(GenerationRequest("", width=width, height=height))
        return self.size_step()

    def __call__(
        self, request: GenerationRequest, progress: Callable | None = None, cancel: Any = None,
        *, keep_latents: bool = False,
    ) -> GenerationResult:  # fmt: skip
        import torch

        from ...generation.hires import hires_fix
        from ...generation.pnginfo import format_parameters

        if request.hires is not None:
            return hires_fix(self, request, progress, cancel)
        from ...lora.files import applied_files, checked_loras, lora_parameters
        from .schedulers import diffusers_scheduler

        request = self.check(request)
        self.pipe.scheduler = diffusers_scheduler(
            request.sampler, request.schedule, self.scheduler_config
        )
        generators = [torch.Generator().manual_seed(s) for s in request.seeds]
        if self.token_merging is not None:  # the same draws of merge grids for every image
            self.token_merging.reset()
        stop = cancel_check(cancel)
        estimate = _clean_estimates(self.pipe.scheduler)

        def on_step(pipe: Any, i: int, t: Any, state: dict) -> dict:
            if progress is not None:
                steps = len(pipe.scheduler.timesteps)
                x0 = estimate.get("x0", state["latents"])
                progress(Progress(i + 1, steps, x0, self._decode))
            stop()
            return state

        pipe, extra = self._pipeline_for(request)
        loras = checked_loras(request.loras, self.name, self.model_hash, self.version)
        refine = self.refiner is not None and request.init_image is None
        if refine:  # the base draws up to the switch and hands its noisy latents over
            extra = extra | {"denoising_end": self.refiner[1]}
        with applied_files(self._lora_parts(), loras), self._deep_cache(request):
            out = pipe(
                **self._prompts(request), num_inference_steps=request.steps,
                guidance_scale=request.cfg_scale,
                num_images_per_prompt=request.batch_size, generator=generators,
                output_type="latent" if keep_latents or refine else "pil",
                callback_on_step_end=on_step if (progress or cancel) else None, **extra,
            )  # fmt: skip
        info = lora_parameters(loras)
        if self.token_merging is not None:  # stable-diffusion-webui's name for it
            info["Token merging ratio"] = f"{self.token_merging.ratio:g}"
        if refine:
            out = self._refine(request, out.images, generators, keep_latents, stop)
            info |= {"Refiner": self.refiner[0].name, "Refiner switch at": f"{self.refiner[1]:g}"}
        params = [
            format_parameters(request, s, model=self.name, model_hash=self.model_hash, extra=info)
            for s in request.seeds
        ]
        if keep_latents:  # hires fix upscales these: no decode at the base size
            return GenerationResult([], request.seeds, params, latents=out.images)
        images = list(out.images)
        if request.mask is not None:  # every pixel outside the mask kept exactly, as built in
            images = [keep_outside(im, extra["image"], extra["mask_image"]) for im in images]
        return GenerationResult(images, request.seeds, params)

    def _deep_cache(self, request: GenerationRequest):
        """Step caching (LOSSY, ``nn.deepcache``) over the base U-Net's calls of one draw,
        where the request asks for it (the refiner, a second model, runs uncached)."""
        from ...nn.deepcache import deep_cache
        from .deepcache import unet_path

        if request.deepcache > 1 and (self.speed or DEFAULT).compile:
            raise GenlabError(
                "DeepCache replays parts of the U-Net between calls, which a compiled U-Net "
                "does not allow: draw without compiling it, or with --deepcache 1."
            )
        unet = self.pipe.unet
        return deep_cache(unet, unet_path(unet), request.deepcache, request.deepcache_branch)

    def _refine(self, request, latents, generators, keep_latents, stop) -> Any:
        """The refiner's part of a txt2img: diffusers' ensemble of expert denoisers, the
        refiner starting at the switch on the base's latents with the same generators.
        Its one text encoder gets the plain prompt (weights and embeddings are the base's)."""
        from ...text.emphasis import parse_emphasis
        from .schedulers import diffusers_scheduler

        refiner, config = self.refiner_pipe
        refiner.scheduler = diffusers_scheduler(request.sampler, request.schedule, config)

        def plain(text: str) -> str:
            return "".join(t for t, _ in parse_emphasis(text))

        return refiner(
            prompt=plain(request.prompt), negative_prompt=plain(request.negative_prompt) or None,
            image=latents, denoising_start=self.refiner[1], num_inference_steps=request.steps,
            guidance_scale=request.cfg_scale, num_images_per_prompt=request.batch_size,
            generator=generators, output_type="latent" if keep_latents else "pil",
            callback_on_step_end=lambda p, i, t, state: (stop(), state)[1],
        )  # fmt: skip

    def lora_base(self) -> Any:
        from .lora_base import DiffusersBase

        return DiffusersBase(self.path, self.config)

    def fuse(self, lora: Any, out: Path, scale: float = 1.0) -> Path:
        """A diffusers folder at ``out``: written beside, then renamed, so an interrupted
        save leaves no half folder there."""
        import os
        import shutil

        from ...lora.files import fuse_parts

        base = self.lora_base()
        fuse_parts(base.backend._lora_parts(), lora, scale)  # the text encoders' too
        out = Path(out)
        tmp = out.parent / f".{out.name}.tmp-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        try:
            base.backend.pipe.save_pretrained(tmp, safe_serialization=True)
            shutil.rmtree(out, ignore_errors=True)  # empty, checked by the caller
            tmp.rename(out)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return out

    def _prompts(self, request: GenerationRequest) -> dict[str, Any]:
        """The prompt and negative prompt as diffusers takes them: the plain text (emphasis
        syntax and escapes resolved) where every weight is 1, which diffusers encodes
        itself, else token embeddings with the weights applied (SDXL: both encoders', and
        the pooled embedding of the unweighted tokens)."""
        from ...text.emphasis import parse_emphasis

        out: dict[str, Any] = {}
        for key, text in (("prompt", request.prompt), ("negative_prompt", request.negative_prompt)):
            runs = parse_emphasis(self.embeddings.rewrite(text))
            if all(w == 1.0 for _, w in runs):
                plain = "".join(t for t, _ in runs)
                out[key] = plain or (None if key == "negative_prompt" else "")
            elif self.version == "sdxl":
                pooled = {"prompt": "pooled_prompt_embeds",
                          "negative_prompt": "negative_pooled_prompt_embeds"}[key]  # fmt: skip
                out[f"{key}_embeds"], out[pooled] = self.weighted_embeddings_xl(runs)
            else:
                out[f"{key}_embeds"] = self.weighted_embeddings(runs)
        return out

    def _token_row(self, tok: Any, runs: list[tuple[str, float]]):
        """One tokenizer's ids (1, 77) of a prompt's (text, weight) runs, each run tokenized
        on its own as webui does, and each token's weight (77,)."""
        import torch

        ids: list[int] = []
        weights: list[float] = []
        for text, w in runs:
            pieces = tok(text, add_special_tokens=False).input_ids
            ids, weights = ids + pieces, weights + [w] * len(pieces)
        room = tok.model_max_length - 2  # as diffusers does, what does not fit is dropped
        ids, weights = ids[:room], weights[:room]
        pad = room - len(ids)
        row = [tok.bos_token_id, *ids, tok.eos_token_id] + [tok.pad_token_id] * pad
        return torch.tensor([row]), torch.tensor([1.0, *weights, 1.0] + [1.0] * pad)

    @staticmethod
    def _weighted(z: Any, w: Any) -> Any:
        """Hidden states (1, 77, D) times each token's weight, rescaled to the unweighted
        mean (stable-diffusion-webui's rule, per text encoder)."""
        weighted = z * w[None, :, None].to(z.device, z.dtype)
        return weighted * (z.mean() / weighted.mean())

    def weighted_embeddings(self, runs: list[tuple[str, float]]):
        """The CLIP embeddings (1, 77, D) of a prompt's (text, weight) runs, weighted as
        stable-diffusion-webui does it: each run tokenized on its own, each token's
        embedding times its weight, then all rescaled to the unweighted mean."""
        import torch

        encoder = self.pipe.text_encoder
        row, w = self._token_row(self.pipe.tokenizer, runs)
        with torch.no_grad():
            return self._weighted(encoder(row.to(encoder.device))[0], w)

    def weighted_embeddings_xl(self, runs: list[tuple[str, float]]):
        """SDXL's conditioning of weighted runs, as webui builds it: each encoder's
        penultimate hidden states (what diffusers' SDXL pipeline takes) weighted and
        rescaled on their own, side by side (1, 77, D1 + D2); and the pooled embedding
        (1, D2) of the second encoder, which the weights do not touch."""
        import torch

        hidden, pooled = [], None
        for tok, encoder in ((self.pipe.tokenizer, self.pipe.text_encoder),
                             (self.pipe.tokenizer_2, self.pipe.text_encoder_2)):  # fmt: skip
            row, w = self._token_row(tok, runs)
            with torch.no_grad():
                out = encoder(row.to(encoder.device), output_hidden_states=True)
            hidden.append(self._weighted(out.hidden_states[-2], w))
            pooled = out[0]  # the second encoder's projected pooled output (text_embeds)
        return torch.cat(hidden, dim=-1), pooled

    def _pipeline_for(self, request: GenerationRequest):
        """txt2img, img2img or inpainting: diffusers' pipeline of that task over the same
        components, and the arguments only it takes."""
        from ...generation.hires import Latents
        from ...generation.images import open_image

        if request.init_image is None:
            return self.pipe, {"height": request.height, "width": request.width}
        strength = 1.0 if request.strength is None else request.strength
        if isinstance(request.init_image, Latents):  # hires fix's upscaled latents, which
            # diffusers' img2img takes as they are (a tensor of the VAE's latent channels)
            image = request.init_image.tensor
            factor = self.pipe.vae_scale_factor
            if (image.shape[-1] * factor, image.shape[-2] * factor) != (
                request.width, request.height
            ):  # fmt: skip
                raise GenlabError("The initial latents do not match the size the request asks.")
            pipe = pipeline_class(self.version, "img2img")(**self.pipe.components)
            pipe.set_progress_bar_config(disable=True)
            return pipe, {"image": image, "strength": strength}
        if isinstance(request.init_image, list | tuple):  # one a seed (hires fix's pixels)
            image = [open_image(im, "RGB", "initial image") for im in request.init_image]
        else:
            image = open_image(request.init_image, "RGB", "initial image")
        for one in image if isinstance(image, list) else [image]:
            if one.size != (request.width, request.height):
                raise GenlabError(
                    f"The initial image is {one.size[0]}x{one.size[1]}; the request asks "
                    f"for {request.width}x{request.height}."
                )
        if request.mask is None:
            pipe = pipeline_class(self.version, "img2img")(**self.pipe.components)
            pipe.set_progress_bar_config(disable=True)
            return pipe, {"image": image, "strength": strength}
        mask = open_image(request.mask, "L", "mask")
        pipe = pipeline_class(self.version, "inpaint")(**self.pipe.components)
        pipe.set_progress_bar_config(disable=True)
        extra = {"image": image, "mask_image": mask, "strength": strength}
        return pipe, extra | {"height": request.height, "width": request.width}

    def _decode(self, latents):
        """Latents (scaled) -> images in [-1, 1], for previews."""
        import torch

        vae = self.pipe.vae
        with torch.no_grad():
            return vae.decode(latents / vae.config.scaling_factor).sample.clamp(-1, 1)


def load_diffusers(path: Path, config: Path | None) -> Any:
    """diffusers' pipeline of a folder or a single file (with its config folder), offline,
    safetensors only: StableDiffusionPipeline or StableDiffusionXLPipeline, as the folder's
    ``model_index.json`` names it."""
    from .files import pipeline_version

    cls = pipeline_class(pipeline_version(config or path), "txt2img")
    quiet = {"safety_checker": None, "requires_safety_checker": False}
    quiet = quiet if cls.__name__ == "StableDiffusionPipeline" else {}
    try:
        if path.is_file():
            pipe = cls.from_single_file(
                str(path), config=str(config), local_files_only=True, **quiet
            )
        else:
            pipe = cls.from_pretrained(path, local_files_only=True, use_safetensors=True, **quiet)
    except (OSError, ValueError, KeyError, RuntimeError) as e:
        what = "checkpoint file" if path.is_file() else "folder"
        raise GenlabError(
            f"{path} is not a Stable Diffusion {what} genlab can load offline from "
            f"safetensors ({str(e).splitlines()[0] if str(e) else type(e).__name__})."
        ) from None
    pipe.set_progress_bar_config(disable=True)
    return pipe


#: (version, task) -> diffusers' pipeline class
PIPELINES = {
    ("sd1", "txt2img"): "StableDiffusionPipeline",
    ("sd1", "img2img"): "StableDiffusionImg2ImgPipeline",
    ("sd1", "inpaint"): "StableDiffusionInpaintPipeline",
    ("sdxl", "txt2img"): "StableDiffusionXLPipeline",
    ("sdxl", "img2img"): "StableDiffusionXLImg2ImgPipeline",
    ("sdxl", "inpaint"): "StableDiffusionXLInpaintPipeline",
}


def pipeline_class(version: str, task: str) -> Any:
    import diffusers

    return getattr(diffusers, PIPELINES[version, task])


def _clean_estimates(scheduler: Any) -> dict[str, Any]:
    """Wrap ``scheduler.step`` so that each step leaves its estimate of the clean latents in
    the returned dict under "x0": the step's ``pred_original_sample`` where the scheduler
    gives one (DDIM, Euler, Heun, DDPM), LCM's ``denoised``, else its last data prediction
    (DPM-Solver++ and UniPC keep x0 estimates in ``model_outputs``). Previews then mean
    the same as the built-in model's."""
    import functools

    found: dict[str, Any] = {}
    step = scheduler.step

    # wraps: diffusers passes ``generator`` to a scheduler's step only where the step's
    # signature names it (inspect.signature follows __wrapped__); without it Euler a and DDPM
    # drew their step noise from the global RNG, not from each image's seeded generator
    @functools.wraps(step)
    def wrapped(*args: Any, return_dict: bool = True, **kwargs: Any):
        out = step(*args, return_dict=True, **kwargs)
        x0 = getattr(out, "pred_original_sample", None)
        if x0 is None:
            x0 = getattr(out, "denoised", None)
        outputs = getattr(scheduler, "model_outputs", None)
        if x0 is None and outputs and outputs[-1] is not None:
            x0 = outputs[-1]
        if x0 is not None:
            found["x0"] = x0
        return out if return_dict else (out.prev_sample,)

    scheduler.step = wrapped
    return found
