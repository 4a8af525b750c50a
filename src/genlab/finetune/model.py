"""A LoRA of a text-to-image model: the base model (genlab's built-in one, a trained
latent-diffusion run, or a Stable Diffusion folder) frozen, low-rank adapters on its
U-Net's attention projections (and, with ``train_text_encoder``, on a Stable Diffusion
base's CLIP text encoders' attention projections, each part with its own learning rate)
trained on the user's captioned images by the same Trainer
(checkpoints, exact resume, NaN guard). Saving writes the adapters only, with the base's
sha256, so a LoRA is a few hundred kB and refuses to load onto another base; a Stable
Diffusion LoRA also writes the file diffusers' ``load_lora_weights`` reads."""

from __future__ import annotations

import copy
from typing import Any, ClassVar

import numpy as np
import torch

from ..errors import GenlabError
from ..lora.adapters import (
    BUILTIN_TARGETS,
    CLIP_TARGETS,
    DIFFUSERS_TARGETS,
    adapter_state,
    inject,
    text_model_path,
)
from ..models.latent_diffusion import LatentDiffusion
from ..models.neural import Batch, NeuralModel
from ..options import Option

ADAPTER = "default"
#: the text encoders a LoRA may train: the base's part -> the name LoRA files give it
TEXT_PARTS = {"text": "text_encoder", "text_2": "text_encoder_2"}
#: the file name diffusers' ``load_lora_weights`` looks for in a folder
DIFFUSERS_LORA = "pytorch_lora_weights.safetensors"


class LoRA(NeuralModel):
    """``LoRA(data_shape, base="builtin", rank=4, alpha=4)``; ``alpha / rank`` scales the
    adapters' output (the scale a user sets at generation multiplies it)."""

    name = "lora"
    generative = True
    conditional = True
    sample_options = LatentDiffusion.sample_options
    # the training options of diffusers' train_text_to_image_lora.py and kohya's sd-scripts
    config_schema = (
        Option("rank", int, 4, "rank r of the adapters", low=1, high=4096),
        Option("alpha", float, 4.0, "adapter scale alpha (alpha / rank scales them)", low=0.0,
               high=1e6),
        Option("flip", bool, False, "mirror each image left-right with chance 1/2 a step"),
        Option("min_snr_gamma", float, 0.0, "min-SNR loss weighting gamma (0: off)", low=0.0,
               high=1e6),
        Option("noise_offset", float, 0.0, "noise offset (diffusers' --noise_offset)", low=0.0,
               high=1.0),
        Option("gradient_checkpointing", bool, False, "recompute the U-Net's activations in "
               "the backward pass (less memory, same gradients)"),
        Option("validation_prompts", list, [], "prompts drawn at each sample step", item=str),
        Option("train_text_encoder", bool, False, "Stable Diffusion: adapters on the CLIP text "
               "encoder's attention too (SDXL: both encoders)"),
        Option("unet_lr", float, None, "the U-Net adapters' learning rate (default: --lr)",
               low=0.0, high=1e3),
        Option("text_encoder_lr", float, None, "the text-encoder adapters' learning rate "
               "(default: --lr)", low=0.0, high=1e3),
    )  # fmt: skip
    # fine-tuning: a small learning rate on a few hundred steps, no averaging
    train_defaults: ClassVar[dict[str, Any]] = {
        "lr": 1e-3,
        "batch_size": 16,
        "steps": 400,
        "ema_decay": 0.0,
        "grad_clip": 1.0,
        "checkpoint_every": 100,
    }

    def __init__(
        self,
        data_shape: tuple[int, ...] | list[int],
        base: str = "builtin",
        base_sha256: str = "",
        rank: int = 4,
        alpha: float = 4.0,
        targets: str | list[str] | None = None,
        base_config: str | None = None,
        flip: bool = False,
        min_snr_gamma: float = 0.0,
        noise_offset: float = 0.0,
        gradient_checkpointing: bool = False,
        validation_prompts: list[str] | None = None,
        train_text_encoder: bool = False,
        unet_lr: float | None = None,
        text_encoder_lr: float | None = None,
    ) -> None:
        model, digest, diffusers = load_base(base, base_config)
        if gradient_checkpointing and not diffusers:
            raise GenlabError(
                "--gradient-checkpointing applies to a Stable Diffusion base (the built-in "
                "model is small enough without it)."
            )
        if train_text_encoder and not diffusers:
            raise GenlabError(
                "--train-text-encoder applies to a Stable Diffusion base (the built-in model's "
                "MiniLM encoder stays frozen)."
            )
        if text_encoder_lr is not None and not train_text_encoder:
            raise GenlabError("--text-encoder-lr needs --train-text-encoder.")
        if unet_lr is not None and float(unet_lr) == 0 and not train_text_encoder:
            # kohya's way to train the text encoder alone; without it nothing would learn
            raise GenlabError("--unet-lr 0 leaves nothing to train without --train-text-encoder.")
        if targets is None:
            targets = DIFFUSERS_TARGETS if diffusers else BUILTIN_TARGETS
        if base_sha256 and digest != base_sha256:
            raise GenlabError(
                f"This LoRA was trained on another version of '{base}' (sha256 "
                f"{base_sha256[:10]}, found {digest[:10]})."
            )
        if tuple(int(s) for s in data_shape) != model.data_shape:
            raise GenlabError(
                f"The base model draws {model.data_shape} images; the data are "
                f"{tuple(data_shape)} (load them at the base's size)."
            )
        super().__init__(
            model.data_shape, base=base, base_sha256=digest, rank=int(rank), alpha=float(alpha),
            targets=targets, base_config=base_config, flip=bool(flip),
            min_snr_gamma=float(min_snr_gamma), noise_offset=float(noise_offset),
            gradient_checkpointing=bool(gradient_checkpointing),
            validation_prompts=[str(p) for p in validation_prompts or []],
            train_text_encoder=bool(train_text_encoder),
            unet_lr=None if unet_lr is None else float(unet_lr),
            text_encoder_lr=None if text_encoder_lr is None else float(text_encoder_lr),
        )  # fmt: skip
        self.layers = inject(model.net.denoiser, int(rank), float(alpha), targets, ADAPTER)
        #: the base's text encoders with adapters (none unless train_text_encoder)
        self.text_parts = [p for p in TEXT_PARTS if train_text_encoder and p in model.net]
        for part in self.text_parts:
            self.layers += inject(model.net[part], int(rank), float(alpha), CLIP_TARGETS, ADAPTER)
        if self.text_parts:  # the captions then pass through the encoders at every step
            model.encode_every_step = True
        self.base_model = model
        self.net = model.net
        # all of the base (SDXL's second text encoder too); is_frozen spares the adapters
        second = ("text_2",) if getattr(model, "sdxl", False) else ()
        self.frozen = ("vae", "denoiser", "text", *second)
        self.diffusers = diffusers
        if gradient_checkpointing:  # diffusers' own: each block recomputed in backward
            model.net["denoiser"].enable_gradient_checkpointing()
        if diffusers:  # a preview of a few images: Stable Diffusion is slow on a CPU
            self.preview_count = 4

    @property
    def factor(self) -> float:
        return self.alpha / self.rank

    def is_frozen(self, key: str) -> bool:
        return ".lora_" not in key

    def updates(self) -> list[tuple[str, list[dict[str, Any]]]]:
        """One optimizer, one parameter group per part (kohya's ``unet_lr`` and
        ``text_encoder_lr``; a group without ``lr`` takes the run's ``--lr``), so the
        learning-rate schedule scales each group's own rate."""
        trainable = [(k, p) for k, p in self.net.named_parameters() if not self.is_frozen(k)]
        text = tuple(f"{part}." for part in self.text_parts)
        groups = [{"name": "unet", "params": [p for k, p in trainable if not k.startswith(text)],
                   "lr": self.unet_lr}]  # fmt: skip
        if self.text_parts:
            groups.append({"name": "text_encoder", "lr": self.text_encoder_lr,
                           "params": [p for k, p in trainable if k.startswith(text)]})  # fmt: skip
        return [("main", [{k: v for k, v in g.items() if v is not None} for g in groups])]

    # --- the Trainer's hooks: the base model's, with only the adapters trainable -------------
    def training_data(self, data: Any):
        """The base's cached latents (or posterior moments); with ``flip``, those of each
        image's mirror too, stacked on the channel axis, so a step can pick either (kohya
        caches both likewise: a mirrored latent is not the latent of the mirror)."""
        bucketed = _in_buckets(data)
        if bucketed and not self.diffusers:
            raise GenlabError(
                "--bucket applies to a Stable Diffusion or SDXL base (the built-in model "
                "trains on squares)."
            )
        x, cond = self.base_model.training_data(data)
        if not self.flip:
            return x, cond
        mirrored = copy.copy(data)
        if bucketed:  # each image mirrored in its own bucket
            mirrored.x = data.x.mirrored()
        else:
            mirrored.x = np.ascontiguousarray(np.asarray(data.x)[..., ::-1])
        flipped, _ = self.base_model.training_data(mirrored)
        if bucketed:
            return x.join_channels(flipped), cond
        return torch.cat([x, flipped], dim=1), cond

    def training_step(self, batch: Batch, update: str = "main") -> dict[str, torch.Tensor]:
        x = batch.x
        if self.flip:  # each sample its image or its mirror, by the run's seeded generator
            plain, mirrored = x.chunk(2, dim=1)
            pick = torch.rand(len(x), device=x.device) < 0.5
            x = torch.where(pick.view(-1, *[1] * (x.dim() - 1)), mirrored, plain)
            batch = Batch(x, batch.cond)
        if self.diffusers:
            return self.base_model.training_step(
                batch, update, min_snr_gamma=self.min_snr_gamma, noise_offset=self.noise_offset
            )
        from ..diffusion.losses import diffusion_loss

        base = self.base_model  # LatentDiffusion.training_step, with the LoRA's options
        cond = batch.cond.drop(base.cond_drop)
        loss = diffusion_loss(base.net.denoiser, x, cond, min_snr=self.min_snr_gamma,
                              noise_offset=self.noise_offset)  # fmt: skip
        return {"loss": loss.mean()}

    @torch.no_grad()
    def sample(self, n: int, *, cond: Any = None, seed: int | None = None, **kw: Any):
        return self.base_model.sample(n, cond=cond, seed=seed, **kw)

    @torch.no_grad()
    def validation_images(self, seed: int = 0) -> list[tuple[str, torch.Tensor]]:
        """One image (1, C, H, W) in [-1, 1] per validation prompt, each drawn with ``seed``
        (the same noise at every step, so the images show what training changed)."""
        out = []
        for prompt in self.validation_prompts:
            out.append((prompt, self.base_model.sample(1, seed=seed, prompt=prompt)))
        return out

    # --- persistence: the adapters only -------------------------------------------------------
    def _adapted(self) -> dict[str, tuple[str, torch.nn.Module]]:
        """{key prefix in the saved file: (the part's name in LoRA files, its module)}: the
        U-Net's keys bare (as before text encoders were trained), the text encoders' keys
        under their diffusers names (``text_encoder.PATH.lora_A.weight``)."""
        out = {"": ("unet", self.net.denoiser)}
        for part in self.text_parts:
            out[f"{TEXT_PARTS[part]}."] = (TEXT_PARTS[part], self.net[part])
        return out

    def state_arrays(self) -> dict[str, np.ndarray]:
        out = {}
        for prefix, (_, module) in self._adapted().items():
            state = adapter_state(module, ADAPTER)
            out |= {prefix + k: v.cpu().numpy() for k, v in state.items()}
        return out

    def load_state_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        named = {}
        for prefix, (_, module) in self._adapted().items():
            keys = [k for k in module.state_dict() if ".lora_" in k]
            named |= {prefix + k.replace(f".{ADAPTER}.", "."): (module, k) for k in keys}
        if set(arrays) != set(named):
            raise GenlabError("The LoRA's saved adapters do not fit its base model's layers.")
        per_module: dict[int, tuple[torch.nn.Module, dict]] = {}
        for key, value in arrays.items():
            module, name = named[key]
            per_module.setdefault(id(module), (module, {}))[1][name] = torch.from_numpy(
                np.array(value)
            )
        for module, state in per_module.values():
            module.load_state_dict(state, strict=False)

    def extra_files(self) -> dict[str, dict[str, np.ndarray]]:
        """For a Stable Diffusion base, the adapters as diffusers' ``load_lora_weights``
        reads them: ``unet.`` keys (and ``text_encoder.`` / ``text_encoder_2.`` ones), alpha
        / rank folded into B (diffusers assumes alpha = rank when a file does not say)."""
        if not self.diffusers:
            return {}
        out = {}
        for part, module in self._adapted().values():
            for key, value in adapter_state(module, ADAPTER).items():
                value = value.cpu().numpy()
                if part != "unet":  # CLIP's layers as files name them, text_model level in
                    key = text_model_path(key)
                out[f"{part}.{key}"] = value * self.factor if ".lora_B." in key else value
        return {DIFFUSERS_LORA: out}


def _in_buckets(data: Any) -> bool:
    """Whether ``data`` holds images in aspect-ratio buckets (an image folder read with
    ``bucket``) rather than one array of squares."""
    from ..data.buckets import BucketedImages

    return isinstance(getattr(data, "x", None), BucketedImages)


def load_base(base: str, config: str | None = None) -> tuple[Any, str, bool]:
    """(the frozen base, the sha256 of its weights, whether it is Stable Diffusion), as the
    base's back end gives it (``genlab.backends.lora_base``)."""
    from ..backends import lora_base

    model = lora_base(base, config)
    return model, model.digest, model.diffusers
