"""Latent diffusion for text-to-image (Rombach et al., 2022), genlab's small Stable Diffusion:
a frozen KL autoencoder maps images to latents (N, 4, H/4, W/4), a U-Net with cross-attention
to a text encoder's token embeddings learns to denoise those latents, and classifier-free
guidance steers sampling (captions dropped at random in training teach the unconditional
model; a negative prompt takes the unconditional branch's place).

``self.net`` holds three parts: ``vae`` (frozen, saved with the model as a Stable Diffusion
checkpoint carries its VAE), ``denoiser`` (the U-Net, trained), and ``text`` (the frozen
pretrained encoder, loaded from its package, never saved) - or, with the small trainable
encoder, the encoder lives inside the denoiser and trains with it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn

from ..conditioning import Condition
from ..diffusion.losses import diffusion_loss
from ..diffusion.precond import PREDICTIONS, Denoiser
from ..diffusion.schedules import SCHEDULES, alpha_bar
from ..errors import DataError, GenlabError
from ..nn.unet import UNet
from ..options import Option
from ..text import TextEncoder, text_encoder
from .kl_autoencoder import KLAutoencoder
from .latent_sampling import OPTIONS, draw_latents
from .neural import Batch, NeuralModel


class TextUNet(nn.Module):
    """F(z, t, cond): the U-Net with its cross-attention context built from the condition:
    the frozen encoder's token embeddings (``cond.tokens``), or token ids that the trainable
    encoder held here embeds (``cond.ids``). An unconditional sample (``cond.null``, or no
    condition) attends to one learned "no text" token instead, like the "no label" row of
    class-conditional guidance."""

    def __init__(self, unet: UNet, context_dim: int, text: TextEncoder | None = None) -> None:
        super().__init__()
        self.unet, self.text = unet, text
        self.null = nn.Parameter(torch.randn(1, 1, context_dim) * 0.02)

    def context(self, cond: Condition | None, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(tokens (n, L, D), mask (n, L)) for the cross-attention."""
        device = self.null.device
        if cond is None or (cond.tokens is None and cond.ids is None):
            return self.null.expand(n, 1, -1), torch.ones(n, 1, dtype=torch.bool, device=device)
        if cond.tokens is not None:
            tokens = cond.tokens.to(self.null.dtype)
        else:
            if self.text is None:
                raise GenlabError("Token ids need the trainable text encoder; this model has none.")
            tokens = self.text(cond.ids, cond.mask)
        mask, null = cond.mask, cond.null_mask(n, device)
        if cond.null is not None:  # null samples: the learned token first, the rest masked
            only_first = torch.zeros_like(mask)
            only_first[:, 0] = True
            mask = torch.where(null[:, None], only_first, mask)
            pad = tokens.new_zeros(n, tokens.shape[1] - 1, tokens.shape[2])
            tokens = torch.where(
                null[:, None, None], torch.cat([self.null.expand(n, 1, -1), pad], 1), tokens
            )
        return tokens, mask

    def forward(self, z: torch.Tensor, t: torch.Tensor, cond: Condition | None = None):
        return self.unet(z, t, context=self.context(cond, len(z)))


class LatentDiffusion(NeuralModel):
    """Parameters: ``autoencoder`` (a trained kl-autoencoder's run or model folder, a latent
    diffusion model's whose first stage is reused, or "builtin": the shipped model's; read
    when training starts; a saved model carries the weights and ``autoencoder_config``),
    ``text_encoder`` ("minilm": frozen, pretrained; "minilm-words": its input embeddings;
    "tiny": trained with the U-Net),
    ``max_tokens``, the U-Net's ``channels``/``blocks``/``attention``, ``schedule``,
    ``timesteps``, ``prediction``, ``min_snr``, ``cond_drop`` (chance a caption is dropped
    in training, for classifier-free guidance), ``sampling`` (the model's own defaults of
    the sampling options ``sampler``, ``steps`` and ``cfg``, where they differ from
    everyone's: a consistency-distilled model samples with ``lcm`` in 4 steps and has its
    guidance folded in, cfg 1)."""

    name = "latent-diffusion"
    config_schema = (
        Option("schedule", str, "linear", "noise schedule", choices=tuple(SCHEDULES)),
        Option("timesteps", int, 1000, "diffusion steps of training", low=2, high=100_000),
        Option("prediction", str, "eps", "what the network predicts", choices=PREDICTIONS),
        Option("min_snr", float, 0.0, "min-SNR loss weighting (0: off)", low=0.0, high=1e6),
        Option("cond_drop", float, 0.1, "chance a caption is dropped", low=0.0, high=1.0),
        Option("max_tokens", int, 77, "tokens of a caption", low=1, high=512),
    )
    conditional = True
    sample_options = OPTIONS
    train_defaults: ClassVar[dict[str, Any]] = {
        "lr": 1e-3,
        "batch_size": 128,
        "steps": 8000,
        "ema_decay": 0.999,
        "warmup_steps": 200,
    }

    def __init__(
        self,
        data_shape,
        autoencoder: str | None = None,
        autoencoder_config: dict[str, Any] | None = None,
        text_encoder: str = "minilm",
        max_tokens: int = 77,
        channels: tuple[int, ...] | list[int] = (64, 128),
        blocks: int = 1,
        attention: bool = True,
        schedule: str = "linear",
        timesteps: int = 1000,
        prediction: str = "eps",
        min_snr: float = 0.0,
        cond_drop: float = 0.1,
        sampling: dict | None = None,
    ) -> None:
        vae = _autoencoder(int(data_shape[0]), autoencoder, autoencoder_config)
        super().__init__(
            data_shape,
            autoencoder=None,  # the weights travel with the model from now on
            autoencoder_config=vae.get_config(),
            text_encoder=text_encoder,
            max_tokens=max_tokens,
            channels=list(channels),
            blocks=blocks,
            attention=attention,
            schedule=schedule,
            timesteps=timesteps,
            prediction=prediction,
            min_snr=min_snr,
            cond_drop=cond_drop,
            **({"sampling": sampling_defaults(sampling)} if sampling else {}),
        )
        self.sampling = sampling_defaults(sampling)
        self.latent_shape = vae.latent_shape
        encoder = _text_encoder(text_encoder, max_tokens)
        unet = UNet(self.latent_shape[0], tuple(channels), blocks, attention, 0, encoder.dim)
        inner = TextUNet(unet, encoder.dim, encoder if encoder.trainable else None)
        self.net = nn.Module()
        self.net.vae = vae.net
        self.net.denoiser = Denoiser(inner, alpha_bar(schedule, timesteps), prediction)
        self.frozen, self.external = ("vae",), ()
        if not encoder.trainable:
            self.net.text = encoder
            self.frozen, self.external = ("vae", "text"), ("text",)
        self._vae = vae  # encode / decode (shares self.net.vae)

    @property
    def text_encoder_module(self) -> TextEncoder:
        inner = self.net.denoiser.net
        return inner.text if inner.text is not None else self.net.text

    # --- the Trainer's hooks -----------------------------------------------------------------
    def training_data(self, data: Any) -> tuple[torch.Tensor, Condition]:
        """Latents of the images under the frozen autoencoder (posterior means, scaled; once),
        each paired with each of its captions: a sample per (image, caption)."""
        records = getattr(data, "records", None)
        if not records or "captions" not in records[0]:
            raise DataError(
                "Text-to-image training needs captioned images (a data set whose records "
                "hold 'captions', such as shapes)."
            )
        x = self.as_batch(data.x)
        z = torch.cat([self.encode(x[s : s + 256]) for s in range(0, len(x), 256)])
        rows = [(i, c) for i, r in enumerate(records) for c in r["captions"]]
        index = torch.tensor([i for i, _ in rows])
        texts = [c for _, c in rows]
        encoder = self.text_encoder_module
        if encoder.trainable:
            tokens = encoder.tokenize(texts)
            return z[index], Condition(ids=tokens.ids, mask=tokens.mask)
        # A frozen encoder's output never changes: encode every caption once, kept in fp16.
        emb, mask, _ = encoder.encode(texts)
        return z[index], Condition(tokens=emb.half(), mask=mask)

    def fsdp_units(self) -> list[nn.Module]:
        inner = self.net.denoiser.net  # TextUNet: the U-Net and what builds its context
        # a trainable text encoder is its own unit: generation calls it outside the U-Net
        text = [inner.text] if inner.text is not None else []
        return [*inner.unet.blocks(), *text, inner]

    def training_step(self, batch: Batch, update: str = "main") -> dict[str, torch.Tensor]:
        cond = batch.cond.drop(self.cond_drop)
        return {
            "loss": diffusion_loss(self.net.denoiser, batch.x, cond, min_snr=self.min_snr).mean()
        }

    # --- the parts ---------------------------------------------------------------------------
    def encode(self, images: torch.Tensor) -> torch.Tensor:
        return self._vae.encode(images)

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        return self._vae.decode(latents)

    @torch.no_grad()
    def encode_text(self, prompts: list[str]) -> tuple[Condition, tuple[bool, ...]]:
        """The condition of ``prompts``, written with stable-diffusion-webui's emphasis
        syntax (an empty prompt is unconditional), and which were truncated."""
        from ..text.emphasis import char_weights

        plain, weights = zip(*(char_weights(p) for p in prompts), strict=True)
        tokens, mask, truncated = self.text_encoder_module.encode(list(plain), list(weights))
        null = torch.tensor([not p.strip() for p in plain])
        return Condition(tokens=tokens, mask=mask, null=null if null.any() else None), truncated

    @torch.no_grad()
    def sample(self, n: int, *, cond: Any = None, seed: int | None = None, **kw: Any):
        """Images (n, C, H, W) in [-1, 1] for a prompt (``prompt`` option; "" draws
        unconditionally); options in ``sample_options``."""
        from ..options import resolve

        opts = resolve(self.name, OPTIONS, self.sampling | kw)
        seed = int(torch.randint(0, 2**31, ()).item()) if seed is None else int(seed)
        _, h, w = self.data_shape
        latents, _ = draw_latents(
            self, [opts["prompt"]] * n, [opts["negative_prompt"]] * n, [seed + i for i in range(n)],
            sampler=opts["sampler"], schedule=opts["schedule"], steps=opts["steps"],
            cfg=opts["cfg"], width=w, height=h, callback=opts["callback"],
        )  # fmt: skip
        return self.decode(latents)

    def run_plots(self, x) -> dict[str, Any]:
        return {}


def sampling_defaults(given: dict | None) -> dict[str, Any]:
    """A model's own sampling defaults, checked against the options' schema (only the
    sampler, the steps and the CFG scale may be a model's own)."""
    from ..options import resolve

    given = dict(given or {})
    unknown = sorted(set(given) - {"sampler", "steps", "cfg"})
    if unknown:
        raise GenlabError(f"sampling may set sampler, steps and cfg, not '{unknown[0]}'.")
    checked = resolve("latent-diffusion", OPTIONS, given)
    return {k: checked[k] for k in given}


def _autoencoder(channels: int, source: str | None, config: dict[str, Any] | None) -> KLAutoencoder:
    """The frozen first stage: loaded from a kl-autoencoder folder, taken from a latent
    diffusion model's folder (its first stage; "builtin": the shipped model's, checked
    against its card, so a new U-Net reuses it without training an autoencoder again), or (a
    saved latent model being loaded) built from its config, its weights to follow."""
    if source is not None:
        from ..serialization import load

        if source == "builtin":
            from ..assets import checked_folder

            source = str(checked_folder("txt2img-shapes"))
        if not Path(source).exists():
            raise GenlabError(f"The autoencoder {source} does not exist; train one first "
                              "(genlab train kl-autoencoder-shapes --out runs/kl-ae) or give "
                              "'builtin'.")  # fmt: skip
        vae = load(source)
        if isinstance(vae, LatentDiffusion):  # a text-to-image model: its first stage
            vae = vae._vae
        if getattr(vae, "name", "") != "kl-autoencoder":
            raise GenlabError(f"{source} is neither a kl-autoencoder nor a latent-diffusion model.")
    elif config is not None:
        vae = KLAutoencoder(**config)
    else:
        raise GenlabError("Latent diffusion needs an autoencoder: set model.autoencoder.")
    if vae.data_shape[0] != channels:
        raise DataError(
            f"The autoencoder takes {vae.data_shape[0]}-channel images, the data has {channels}."
        )
    return vae


def _text_encoder(name: str, max_tokens: int) -> TextEncoder:
    if name == "tiny":
        return text_encoder("tiny", max_tokens=min(max_tokens, 32))
    return text_encoder(name, max_tokens=max_tokens)
