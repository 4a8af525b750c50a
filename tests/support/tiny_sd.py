"""A small Stable Diffusion pipeline of random weights, written as a diffusers folder: the
same classes as the real one (UNet2DConditionModel, AutoencoderKL, CLIPTextModel and a
CLIPTokenizer over single characters, whose vocabulary files it writes), so every Stable
Diffusion path of genlab (txt2img, img2img, inpainting, LoRA, single files) runs offline
in seconds. Tests and benchmarks build theirs with it; it draws noise, not pictures."""

from __future__ import annotations

import json
from pathlib import Path

import torch

CHARACTERS = "abcdefghijklmnopqrstuvwxyz0123456789,.:()[]!?-'"


def write_tiny_sd(
    folder: str | Path, *, latent_size: int = 8, widths: tuple[int, ...] = (32, 64),
    vae_widths: tuple[int, ...] = (16, 32), layers: int = 1, text_width: int = 32,
    groups: int = 8, seed: int = 0,
) -> Path:  # fmt: skip
    """Write the pipeline to ``folder`` (safetensors). As in Stable Diffusion, every U-Net
    level but the deepest has cross-attention; images are ``latent_size * 2 ** (len(vae_widths)
    - 1)`` pixels a side."""
    from diffusers import AutoencoderKL, PNDMScheduler, StableDiffusionPipeline
    from diffusers import UNet2DConditionModel as UNet
    from transformers import CLIPTextConfig, CLIPTextModel

    folder = Path(folder)
    tokenizer, start, end, size = _tokenizer(folder)
    torch.manual_seed(seed)
    text = CLIPTextModel(CLIPTextConfig(
        vocab_size=size, hidden_size=text_width, intermediate_size=37, num_hidden_layers=2,
        num_attention_heads=4, max_position_embeddings=77, bos_token_id=start,
        eos_token_id=end, pad_token_id=end,
    ))  # fmt: skip
    unet = UNet(
        sample_size=latent_size, in_channels=4, out_channels=4, block_out_channels=widths,
        layers_per_block=layers,
        down_block_types=("CrossAttnDownBlock2D",) * (len(widths) - 1) + ("DownBlock2D",),
        up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * (len(widths) - 1),
        cross_attention_dim=text_width, attention_head_dim=8, norm_num_groups=groups,
    )  # fmt: skip
    vae = AutoencoderKL(
        block_out_channels=vae_widths, down_block_types=("DownEncoderBlock2D",) * len(vae_widths),
        up_block_types=("UpDecoderBlock2D",) * len(vae_widths), latent_channels=4,
        layers_per_block=layers, norm_num_groups=groups,
    )  # fmt: skip
    pipe = StableDiffusionPipeline(
        vae=vae, text_encoder=text, tokenizer=tokenizer, unet=unet,
        scheduler=PNDMScheduler(skip_prk_steps=True, steps_offset=1), safety_checker=None,
        feature_extractor=None, requires_safety_checker=False,
    )  # fmt: skip
    pipe.save_pretrained(folder, safe_serialization=True)
    return folder


def _tokenizer(folder: Path):
    """A CLIPTokenizer over single characters (vocabulary files written beside ``folder``):
    (tokenizer, start id, end id, vocabulary size)."""
    from transformers import CLIPTokenizer

    vocab_dir = folder.parent / f".{folder.name}-vocab"
    vocab_dir.mkdir(parents=True, exist_ok=True)
    vocab: dict[str, int] = {}
    for c in CHARACTERS:
        vocab.setdefault(c, len(vocab))
        vocab.setdefault(c + "</w>", len(vocab))
    start, end = len(vocab), len(vocab) + 1
    vocab |= {"<|startoftext|>": start, "<|endoftext|>": end}
    (vocab_dir / "vocab.json").write_text(json.dumps(vocab))
    (vocab_dir / "merges.txt").write_text("#version: 0.2\n")  # characters only: no merges
    tokenizer = CLIPTokenizer(
        str(vocab_dir / "vocab.json"), str(vocab_dir / "merges.txt"), model_max_length=77
    )
    return tokenizer, start, end, len(vocab)


def write_tiny_sdxl(
    folder: str | Path, *, latent_size: int = 8, widths: tuple[int, ...] = (32, 64),
    vae_widths: tuple[int, ...] = (16, 32), text_width: int = 32, time_dim: int = 8,
    seed: int = 0, text_width_2: int | None = None,
) -> Path:  # fmt: skip
    """A tiny SDXL pipeline (StableDiffusionXLPipeline) of random weights at ``folder``: as in
    SDXL, two CLIP text encoders (the second with a projection, whose pooled output joins the
    added time ids' embedding: ``addition_embed_type`` "text_time"), cross-attention over
    both encoders' hidden states side by side, no attention at the U-Net's first level, and
    the Euler scheduler SDXL ships with. ``text_width_2``: the second encoder's width
    (default ``text_width``; a single file needs them apart, as SDXL's 768 and 1280 are,
    since diffusers tells the two encoders' weights apart by width)."""
    from diffusers import AutoencoderKL, EulerDiscreteScheduler, StableDiffusionXLPipeline
    from diffusers import UNet2DConditionModel as UNet
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    folder = Path(folder)
    tokenizer, start, end, size = _tokenizer(folder)
    torch.manual_seed(seed)
    config = CLIPTextConfig(
        vocab_size=size, hidden_size=text_width, intermediate_size=37, num_hidden_layers=2,
        num_attention_heads=4, max_position_embeddings=77, bos_token_id=start,
        eos_token_id=end, pad_token_id=end, projection_dim=text_width, hidden_act="gelu",
    )  # fmt: skip
    width_2 = text_width_2 or text_width
    config_2 = CLIPTextConfig(**(config.to_dict() | {"hidden_size": width_2,
                                                     "projection_dim": width_2}))  # fmt: skip
    text, text_2 = CLIPTextModel(config), CLIPTextModelWithProjection(config_2)
    unet = UNet(
        sample_size=latent_size, in_channels=4, out_channels=4, block_out_channels=widths,
        layers_per_block=2, down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), attention_head_dim=(2, 4),
        use_linear_projection=True, addition_embed_type="text_time",
        addition_time_embed_dim=time_dim, transformer_layers_per_block=(1, 2),
        projection_class_embeddings_input_dim=width_2 + 6 * time_dim,
        cross_attention_dim=text_width + width_2, norm_num_groups=8,
    )  # fmt: skip
    vae = AutoencoderKL(
        block_out_channels=vae_widths, down_block_types=("DownEncoderBlock2D",) * len(vae_widths),
        up_block_types=("UpDecoderBlock2D",) * len(vae_widths), latent_channels=4,
        norm_num_groups=8, scaling_factor=0.13025,
    )  # fmt: skip
    scheduler = EulerDiscreteScheduler(
        beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", steps_offset=1,
        timestep_spacing="leading",
    )  # fmt: skip
    pipe = StableDiffusionXLPipeline(
        vae=vae, text_encoder=text, text_encoder_2=text_2, tokenizer=tokenizer,
        tokenizer_2=tokenizer, unet=unet, scheduler=scheduler,
    )  # fmt: skip
    pipe.save_pretrained(folder, safe_serialization=True)
    return folder


def write_tiny_sdxl_refiner(
    folder: str | Path, *, latent_size: int = 8, text_width: int = 32, time_dim: int = 8,
    seed: int = 1,
) -> Path:  # fmt: skip
    """A tiny SDXL refiner (StableDiffusionXLImg2ImgPipeline) of random weights, shaped as
    SDXL's: the second (projected) CLIP encoder only, and an aesthetic score in place of the
    target size among the added time ids (5 of them, not 6)."""
    from diffusers import AutoencoderKL, EulerDiscreteScheduler, StableDiffusionXLImg2ImgPipeline
    from diffusers import UNet2DConditionModel as UNet
    from transformers import CLIPTextConfig, CLIPTextModelWithProjection

    folder = Path(folder)
    tokenizer, start, end, size = _tokenizer(folder)
    torch.manual_seed(seed)
    text_2 = CLIPTextModelWithProjection(CLIPTextConfig(
        vocab_size=size, hidden_size=text_width, intermediate_size=37, num_hidden_layers=2,
        num_attention_heads=4, max_position_embeddings=77, bos_token_id=start,
        eos_token_id=end, pad_token_id=end, projection_dim=text_width, hidden_act="gelu",
    ))  # fmt: skip
    unet = UNet(
        sample_size=latent_size, in_channels=4, out_channels=4, block_out_channels=(32, 64),
        layers_per_block=2, down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), attention_head_dim=(2, 4),
        use_linear_projection=True, addition_embed_type="text_time",
        addition_time_embed_dim=time_dim, projection_class_embeddings_input_dim=text_width
        + 5 * time_dim, cross_attention_dim=text_width, norm_num_groups=8,
    )  # fmt: skip
    vae = AutoencoderKL(
        block_out_channels=(16, 32), down_block_types=("DownEncoderBlock2D",) * 2,
        up_block_types=("UpDecoderBlock2D",) * 2, latent_channels=4, norm_num_groups=8,
        scaling_factor=0.13025,
    )  # fmt: skip
    scheduler = EulerDiscreteScheduler(
        beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", steps_offset=1,
        timestep_spacing="leading",
    )  # fmt: skip
    pipe = StableDiffusionXLImg2ImgPipeline(
        vae=vae, text_encoder=None, text_encoder_2=text_2, tokenizer=None,
        tokenizer_2=tokenizer, unet=unet, scheduler=scheduler, requires_aesthetics_score=True,
        force_zeros_for_empty_prompt=False,
    )  # fmt: skip
    pipe.save_pretrained(folder, safe_serialization=True)
    return folder


def write_single_file(folder: str | Path, file: str | Path) -> Path:
    """The diffusers folder ``folder`` (a Stable Diffusion 1.x layout) as one safetensors
    file in the original layout, as checkpoints are shared for stable-diffusion-webui:
    ``model.diffusion_model.`` (U-Net), ``first_stage_model.`` (autoencoder) and
    ``cond_stage_model.transformer.`` (CLIP) keys."""
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from safetensors.torch import save_file
    from transformers import CLIPTextModel

    folder = Path(folder)
    unet = UNet2DConditionModel.from_pretrained(folder, subfolder="unet")
    vae = AutoencoderKL.from_pretrained(folder, subfolder="vae")
    text = CLIPTextModel.from_pretrained(folder, subfolder="text_encoder")
    state = {f"model.diffusion_model.{_unet_key(k, unet.config)}": v
             for k, v in unet.state_dict().items()}  # fmt: skip
    levels = len(vae.config.block_out_channels)
    for k, v in vae.state_dict().items():
        key = _vae_key(k, levels)
        if ".mid.attn_1." in key and key.endswith("weight") and v.ndim == 2:
            v = v[:, :, None, None]  # the original's attention projections are 1x1 convolutions
        state[f"first_stage_model.{key}"] = v
    for k, v in text.state_dict().items():  # transformers >= 5.6 drops the "text_model." level
        k = k if k.startswith("text_model.") else f"text_model.{k}"
        state[f"cond_stage_model.transformer.{k}"] = v
    save_file({k: v.contiguous() for k, v in state.items()}, str(file))
    return Path(file)


def write_single_file_xl(folder: str | Path, file: str | Path) -> Path:
    """The SDXL diffusers folder ``folder`` as one safetensors file in the original (SGM)
    layout: ``model.diffusion_model.`` (U-Net, its added embedding as ``label_emb``),
    ``first_stage_model.`` (autoencoder), ``conditioner.embedders.0.transformer.`` (the first
    CLIP, in transformers' layout) and ``conditioner.embedders.1.model.`` (the second, in
    OpenCLIP's: q, k, v stacked in ``in_proj``, the projection transposed)."""
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from safetensors.torch import save_file
    from transformers import CLIPTextModel, CLIPTextModelWithProjection

    folder = Path(folder)
    unet = UNet2DConditionModel.from_pretrained(folder, subfolder="unet")
    vae = AutoencoderKL.from_pretrained(folder, subfolder="vae")
    text = CLIPTextModel.from_pretrained(folder, subfolder="text_encoder")
    text_2 = CLIPTextModelWithProjection.from_pretrained(folder, subfolder="text_encoder_2")
    state = {}
    for k, v in unet.state_dict().items():
        if k.startswith("add_embedding.linear_"):
            key = f"label_emb.0.{2 * (int(k[len('add_embedding.linear_')]) - 1)}{k[22:]}"
        else:
            key = _unet_key(k, unet.config)
        state[f"model.diffusion_model.{key}"] = v
    levels = len(vae.config.block_out_channels)
    for k, v in vae.state_dict().items():
        key = _vae_key(k, levels)
        if ".mid.attn_1." in key and key.endswith("weight") and v.ndim == 2:
            v = v[:, :, None, None]
        state[f"first_stage_model.{key}"] = v
    for k, v in text.state_dict().items():
        k = k if k.startswith("text_model.") else f"text_model.{k}"
        state[f"conditioner.embedders.0.transformer.{k}"] = v
    state |= {f"conditioner.embedders.1.model.{k}": v for k, v in _open_clip(text_2).items()}
    save_file({k: v.contiguous() for k, v in state.items()}, str(file))
    return Path(file)


def _open_clip(model) -> dict:
    """A CLIPTextModelWithProjection's weights under OpenCLIP's names."""
    sd = {k.removeprefix("text_model."): v for k, v in model.state_dict().items()}
    out = {"positional_embedding": sd.pop("embeddings.position_embedding.weight"),
           "token_embedding.weight": sd.pop("embeddings.token_embedding.weight"),
           "text_projection": sd.pop("text_projection.weight").T}  # fmt: skip
    sd.pop("embeddings.position_ids", None)
    for k, v in sd.items():
        if k.startswith("final_layer_norm."):
            out[k.replace("final_layer_norm.", "ln_final.")] = v
            continue
        layer, rest = k.removeprefix("encoder.layers.").split(".", 1)
        base = f"transformer.resblocks.{layer}."
        if rest.startswith("self_attn.") and rest.split(".")[1] in ("q_proj", "k_proj", "v_proj"):
            if rest.startswith("self_attn.q_proj."):
                kind = rest.rsplit(".", 1)[1]
                out[base + f"attn.in_proj_{kind}"] = torch.cat(
                    [sd[f"encoder.layers.{layer}.self_attn.{n}_proj.{kind}"] for n in "qkv"]
                )
            continue
        rest = (rest.replace("self_attn.", "attn.").replace("layer_norm1", "ln_1")
                .replace("layer_norm2", "ln_2").replace("mlp.fc1", "mlp.c_fc")
                .replace("mlp.fc2", "mlp.c_proj"))  # fmt: skip
        out[base + rest] = v
    return out


_RESNET = {
    "norm1": "in_layers.0", "conv1": "in_layers.2", "time_emb_proj": "emb_layers.1",
    "norm2": "out_layers.0", "conv2": "out_layers.3", "conv_shortcut": "skip_connection",
}  # fmt: skip


def _unet_key(key: str, config) -> str:
    """A UNet2DConditionModel key -> the original U-Net's (input, middle, output blocks)."""
    fixed = {"conv_in.": "input_blocks.0.0.", "time_embedding.linear_1.": "time_embed.0.",
             "time_embedding.linear_2.": "time_embed.2.", "conv_norm_out.": "out.0.",
             "conv_out.": "out.2."}  # fmt: skip
    for old, new in fixed.items():
        if key.startswith(old):
            return new + key[len(old) :]
    per = config.layers_per_block + 1
    parts = key.split(".")
    block, kind = parts[0], parts[2] if len(parts) > 2 else ""
    if block == "mid_block":
        where = {"resnets": lambda j: f"middle_block.{2 * j}.",
                 "attentions": lambda j: "middle_block.1."}[parts[1]](int(parts[2]))  # fmt: skip
        rest, resnet = parts[3:], parts[1] == "resnets"
    else:
        i, kind, j, rest = int(parts[1]), parts[2], int(parts[3]), parts[4:]
        resnet = kind == "resnets"
        if block == "down_blocks":
            where = {"resnets": f"input_blocks.{1 + i * per + j}.0.",
                     "attentions": f"input_blocks.{1 + i * per + j}.1.",
                     "downsamplers": f"input_blocks.{(i + 1) * per}.0."}[kind]  # fmt: skip
            if kind == "downsamplers":
                rest = ["op", *rest[1:]]
        else:
            up = 2 if config.up_block_types[i].startswith("CrossAttn") else 1  # after attention
            where = {"resnets": f"output_blocks.{i * per + j}.0.",
                     "attentions": f"output_blocks.{i * per + j}.1.",
                     "upsamplers": f"output_blocks.{i * per + per - 1}.{up}."}[kind]  # fmt: skip
    if resnet and rest[0] in _RESNET:
        rest = [_RESNET[rest[0]], *rest[1:]]
    return where + ".".join(rest)


def _vae_key(key: str, levels: int) -> str:
    """An AutoencoderKL key -> the original autoencoder's."""
    parts = key.split(".")
    if parts[0] not in ("encoder", "decoder"):
        return key  # quant_conv, post_quant_conv
    side, block, rest = parts[0], parts[1], parts[2:]
    if block in ("down_blocks", "up_blocks"):
        i = int(rest[0]) if block == "down_blocks" else levels - 1 - int(rest[0])
        name = "down" if block == "down_blocks" else "up"
        if rest[1] == "resnets":
            where, rest = f"{name}.{i}.block.{rest[2]}", rest[3:]
        else:  # downsamplers.0 / upsamplers.0
            where, rest = f"{name}.{i}.{'downsample' if name == 'down' else 'upsample'}", rest[3:]
    elif block == "mid_block":
        if rest[0] == "resnets":
            where, rest = f"mid.block_{int(rest[1]) + 1}", rest[2:]
        else:
            where, rest = "mid.attn_1", rest[2:]
    else:
        where = {"conv_norm_out": "norm_out"}.get(block, block)
    inner = {"conv_shortcut": "nin_shortcut", "group_norm": "norm", "to_q": "q", "to_k": "k",
             "to_v": "v", "to_out": "proj_out"}  # fmt: skip
    if rest:
        rest = [inner.get(rest[0], rest[0]), *rest[1:]]
        if rest[0] == "proj_out" and len(rest) > 2:
            rest = ["proj_out", *rest[2:]]  # to_out.0.weight -> proj_out.weight
    return ".".join([side, where, *rest])
