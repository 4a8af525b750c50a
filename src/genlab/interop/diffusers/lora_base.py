"""A Stable Diffusion folder as the frozen base of a LoRA, with the training objective of
diffusers' own LoRA example: latents drawn from the autoencoder's posterior and scaled,
noise added by the folder's DDPM schedule at a uniform timestep, the U-Net's prediction
(noise, or velocity where the folder says ``v_prediction``) against its target by MSE,
captions through the CLIP text encoder(s). Both frozen encoders run once per image and
caption before training (their outputs never change); each step then draws a fresh latent
from the cached posterior, so the loss is the same as encoding every step. Where a LoRA also
trains the text encoders (``encode_every_step``), the captions' token ids are kept instead
and pass through the encoders at every step, with gradients."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ...conditioning import Condition
from ...errors import DataError
from ...generation.request import GenerationRequest
from .files import diffusers_shape

__all__ = ["DiffusersBase", "diffusers_shape"]


class DiffusersBase:
    """A diffusers folder, or a single file with ``config`` its diffusers folder (as
    StableDiffusionBackend takes them), and its weights' sha256 (``digest``, the model hash
    txt2img records; ``diffusers``: True, so a LoRA on it also writes diffusers' file).
    ``net`` holds ``denoiser`` (the U-Net, where the adapters go), ``vae``
    and ``text``; the hooks mirror a genlab model's."""

    def __init__(self, path: str | Path, config: str | Path | None = None) -> None:
        from diffusers import DDPMScheduler

        from ...hashing import sha256
        from .backend import StableDiffusionBackend
        from .files import hashed_weights
        from .speed import NONE

        # as diffusers loads it: training and fusing keep the layout their tests measured
        self.backend = StableDiffusionBackend(path, config=config, speed=NONE)
        self.digest = sha256(hashed_weights(Path(path)))
        self.diffusers = True
        pipe = self.backend.pipe
        parts = {"denoiser": pipe.unet, "vae": pipe.vae, "text": pipe.text_encoder}
        self.sdxl = self.backend.version == "sdxl"
        if self.sdxl:
            parts["text_2"] = pipe.text_encoder_2
        self.net = nn.ModuleDict(parts)
        self.tokenizer = pipe.tokenizer
        self.schedule = DDPMScheduler.from_config(pipe.scheduler.config)
        self.data_shape = (3, *reversed(self.backend.default_size()))
        #: set by a LoRA that trains the text encoders: captions then pass through them at
        #: every step (``caption_condition``, ``step_condition``) instead of once
        self.encode_every_step = False

    # --- training ---------------------------------------------------------------------------
    @torch.no_grad()
    def training_data(self, data: Any) -> tuple[torch.Tensor, Condition]:
        """Each (image, caption) pair: the posterior's mean and log-variance stacked on the
        channel axis, and the caption's CLIP token embeddings."""
        records = getattr(data, "records", None)
        if not records or "captions" not in records[0]:
            raise DataError("LoRA training needs captioned images (a caption for each image).")
        rows = [(i, c) for i, r in enumerate(records) for c in r["captions"]]
        index = torch.tensor([i for i, _ in rows])
        x = self.image_latents(data.x, index)
        cond = self.caption_condition([c for _, c in rows])
        if self.sdxl:  # each image's own size and crop where they are in buckets
            cond = replace(cond, time_ids=self.sample_time_ids(data.x, index))
        return x, cond

    # --- images: encoded once, square or in aspect-ratio buckets -----------------------------
    @torch.no_grad()
    def image_latents(self, images: Any, index: torch.Tensor) -> torch.Tensor | Any:
        """The posterior moments of the images of samples ``index``: one tensor of the
        base's size, or, for images in buckets (``data.buckets.BucketedImages``), a
        ``training.buckets.Bucketed`` cached per bucket."""
        from ...data.buckets import BucketedImages

        if isinstance(images, BucketedImages):
            return self.bucketed_latents(images, index)
        x = torch.as_tensor(images, dtype=torch.float32)
        if tuple(x.shape[1:]) != self.data_shape:
            raise DataError(f"The base draws {self.data_shape} images; got {tuple(x.shape[1:])}.")
        return self.encode_moments(x)[index]

    def encode_moments(self, x: torch.Tensor) -> torch.Tensor:
        """The autoencoder's posterior mean and log-variance of images ``x`` in [-1, 1],
        stacked on the channel axis, 16 images at a time."""
        vae = self.net["vae"]
        return torch.cat(
            [vae.encode(x[s : s + 16]).latent_dist.parameters for s in range(0, len(x), 16)]
        )

    @property
    def pixel_grid(self) -> int:
        """The pixels an image side must be a multiple of: the autoencoder's factor times the
        U-Net's downsampling (64 for Stable Diffusion 1.x and SDXL)."""
        unet = self.net["denoiser"]
        return self.backend.pipe.vae_scale_factor * 2 ** (len(unet.config.block_out_channels) - 1)

    def bucketed_latents(self, images: Any, index: torch.Tensor) -> Any:
        """Each bucket's images encoded together (kohya caches latents per bucket): a
        Bucketed whose parts are the buckets (in (height, width) order), sample i being
        image ``images.rows[index[i]]``."""
        from ...training.buckets import Bucketed

        grid = self.pixel_grid
        image_of = [int(images.rows[i]) for i in index.tolist()]
        used = sorted(set(image_of))
        keys = sorted({images.bucket(j) for j in used})
        for h, w in keys:
            if h % grid or w % grid:
                raise DataError(
                    f"A {w}x{h} bucket does not fit this model, whose image sides are "
                    f"multiples of {grid} px; give --bucket-step (and the bucket sides) in "
                    f"multiples of {grid}."
                )
        place, parts = {}, []
        for p, key in enumerate(keys):
            members = [j for j in used if images.bucket(j) == key]
            pixels = torch.as_tensor(np.stack([images.pixels[j] for j in members]))
            parts.append(self.encode_moments(pixels.float()))
            place |= {j: (p, r) for r, j in enumerate(members)}
        spots = [place[j] for j in image_of]
        return Bucketed(parts, [p for p, _ in spots], [r for _, r in spots])

    def sample_time_ids(self, images: Any, index: torch.Tensor) -> torch.Tensor | None:
        """SDXL's added time ids of samples ``index`` in buckets (n, 6): the file's original
        (height, width), the crop's (top, left) and the bucket's (height, width) as the
        target, as diffusers' train_text_to_image_sdxl.py computes them (kohya's crop differs:
        see data/buckets.py); None for square images (``time_ids`` gives theirs)."""
        from ...data.buckets import BucketedImages

        if not isinstance(images, BucketedImages):
            return None
        ids = []
        for i in index.tolist():
            j = int(images.rows[i])
            ids.append([*images.original[j], *images.crop[j], *images.bucket(j)])
        return torch.tensor(ids, dtype=torch.float32)

    # --- captions: encoded once (frozen encoders) or every step (trained ones) ----------------
    def caption_condition(self, texts: list[str]) -> Condition:
        """The training condition of each caption: its embeddings (and SDXL's pooled one),
        computed once, where the text encoders are frozen; their token ids where a LoRA
        trains them (``encode_every_step``), which ``step_condition`` encodes each step."""
        if self.encode_every_step:
            return Condition(ids=self.token_ids(texts))
        if self.sdxl:
            tokens, pooled = self.encode_text_xl(texts)
            return Condition(tokens=tokens, pooled=pooled)
        return Condition(tokens=self.encode_text(texts))

    def token_ids(self, texts: list[str]) -> torch.Tensor:
        """(n, 77) CLIP token ids as the pipeline tokenizes a prompt; SDXL: (n, 154), the
        first tokenizer's ids then the second's (a Condition has one ``ids`` field)."""
        pipe = self.backend.pipe
        tokenizers = [pipe.tokenizer, pipe.tokenizer_2] if self.sdxl else [pipe.tokenizer]
        return torch.cat([
            tok(texts, padding="max_length", max_length=tok.model_max_length, truncation=True,
                return_tensors="pt").input_ids
            for tok in tokenizers
        ], dim=1)  # fmt: skip

    def step_condition(self, cond: Condition) -> Condition:
        """A batch's condition with its captions' embeddings: the cached ones, or the token
        ids through the (trained) encoders, with gradients, as diffusers'
        train_dreambooth_lora(_sdxl).py's ``encode_prompt`` does when it trains them."""
        if cond.ids is None:
            return cond
        if not self.sdxl:
            return Condition(tokens=self.net["text"](cond.ids)[0], time_ids=cond.time_ids)
        first, second = cond.ids.chunk(2, dim=1)
        hidden = []
        for ids, encoder in ((first, self.net["text"]), (second, self.net["text_2"])):
            out = encoder(ids, output_hidden_states=True)
            hidden.append(out.hidden_states[-2])  # SDXL's penultimate layer, as the pipeline
        pooled = out[0]  # the second encoder's projected pooled embedding
        return Condition(tokens=torch.cat(hidden, dim=-1), pooled=pooled, time_ids=cond.time_ids)

    @torch.no_grad()
    def encode_text_xl(self, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """SDXL: both encoders' hidden states side by side (n, 77, D1 + D2) and the pooled
        embedding (n, D2), by the pipeline's own ``encode_prompt`` (what drawing uses)."""
        pipe = self.backend.pipe
        hidden, pooled = [], []
        for s in range(0, len(texts), 64):
            out = pipe.encode_prompt(texts[s : s + 64], do_classifier_free_guidance=False)
            hidden.append(out[0])
            pooled.append(out[2])
        return torch.cat(hidden), torch.cat(pooled)

    def time_ids(self, n: int, device: Any) -> torch.Tensor:
        """SDXL's added time ids of square training images: original size, crop (0, 0) and
        target size, all the base's size, since every image is resized and centre-cropped
        to it (images in buckets carry their own: ``sample_time_ids``)."""
        _, h, w = self.data_shape
        return torch.tensor([[h, w, 0, 0, h, w]], dtype=torch.float32, device=device).repeat(n, 1)

    @torch.no_grad()
    def encode_text(self, texts: list[str]) -> torch.Tensor:
        """(n, 77, D) CLIP embeddings, as the pipeline computes them for a prompt."""
        tok = self.tokenizer
        ids = tok(
            texts, padding="max_length", max_length=tok.model_max_length, truncation=True,
            return_tensors="pt",
        ).input_ids  # fmt: skip
        return torch.cat([self.net["text"](ids[s : s + 64])[0] for s in range(0, len(ids), 64)])

    def training_step(
        self, batch: Any, update: str = "main", *, min_snr_gamma: float = 0.0,
        noise_offset: float = 0.0,
    ) -> dict[str, torch.Tensor]:  # fmt: skip
        """diffusers' train_text_to_image_lora.py's loss, its --snr_gamma and --noise_offset
        included."""
        from diffusers.models.autoencoders.vae import DiagonalGaussianDistribution

        vae_config = self.net["vae"].config
        z = DiagonalGaussianDistribution(batch.x).sample()  # the posterior's draw, as encode()
        z = (z - (vae_config.shift_factor or 0.0)) * vae_config.scaling_factor
        noise = torch.randn_like(z)
        if noise_offset:
            noise = noise + noise_offset * torch.randn(*z.shape[:2], 1, 1, device=z.device)
        steps = self.schedule.config.num_train_timesteps
        t = torch.randint(0, steps, (len(z),), device=z.device)
        noisy = self.schedule.add_noise(z, noise, t)
        if self.schedule.config.prediction_type == "v_prediction":
            target = self.schedule.get_velocity(z, noise, t)
        else:
            target = noise
        extra = {}
        cond = self.step_condition(batch.cond)
        if self.sdxl:
            ids = cond.time_ids
            if ids is None:
                ids = self.time_ids(len(z), z.device)
            ids = ids.to(device=z.device, dtype=cond.tokens.dtype)
            extra["added_cond_kwargs"] = {"text_embeds": cond.pooled, "time_ids": ids}
        pred = self.net["denoiser"](noisy, t, encoder_hidden_states=cond.tokens, **extra)
        pred = pred.sample
        if not min_snr_gamma:
            return {"loss": nn.functional.mse_loss(pred.float(), target.float())}
        mse = (pred.float() - target.float()).pow(2).flatten(1).mean(1)
        return {"loss": (mse * self.min_snr_weights(t, min_snr_gamma)).mean()}

    def min_snr_weights(self, t: torch.Tensor, gamma: float) -> torch.Tensor:
        """Hang et al. (2023)'s weights of timesteps ``t``: min(SNR, gamma) / SNR for noise
        prediction, min(SNR, gamma) / (SNR + 1) for velocity (as diffusers' script)."""
        alphas = self.schedule.alphas_cumprod.to(t.device)[t].double()
        snr = alphas / (1 - alphas)
        weights = snr.clamp(max=gamma)
        if self.schedule.config.prediction_type == "v_prediction":
            return (weights / (snr + 1)).float()
        return (weights / snr).float()

    # --- sampling, through the same pipeline txt2img uses ------------------------------------
    @torch.no_grad()
    def sample(
        self, n: int, *, cond: Any = None, seed: int | None = None, prompt: str = "",
        negative_prompt: str = "", sampler: str = "dpmpp-2m", steps: int = 20, cfg: float = 5.0,
        callback: Any = None,
    ) -> torch.Tensor:  # fmt: skip
        """Images (n, 3, H, W) in [-1, 1] of ``prompt`` at the base's size."""
        from ...generation.images import image_tensor

        _, h, w = self.data_shape
        seed = int(torch.randint(0, 2**31, ()).item()) if seed is None else int(seed)
        request = GenerationRequest(prompt, negative_prompt, sampler, steps, cfg, seed, n, w, h)
        return torch.cat([image_tensor(im) for im in self.backend(request, callback).images])
