"""Stable Diffusion 1.5 and SDXL base 1.0 at their real size, with random weights: the
folders' configs (``configs/sd15``, ``configs/sdxl``, as the published folders have them)
built into diffusers' and transformers' classes and written as a diffusers folder. Nothing
is downloaded. The one part that is not the real one is the tokenizer: CLIP's BPE
vocabulary is a download, so the character tokenizer of ``tiny_sd`` stands in (its ids fit
the real 49,408-token embedding; tokenizing costs nothing beside the networks). The
pictures are noise; the work per step, the memory and every code path are the real ones."""

from __future__ import annotations

import gc
import json
from pathlib import Path

import torch

from .tiny_sd import _tokenizer

CONFIGS = Path(__file__).resolve().parent / "configs"

#: model_index.json of each kind: the pipeline class and each component's library and class
INDEX = {
    "sd15": {
        "_class_name": "StableDiffusionPipeline",
        "feature_extractor": [None, None],
        "safety_checker": [None, None],
        "requires_safety_checker": False,
        "scheduler": ["diffusers", "PNDMScheduler"],
        "text_encoder": ["transformers", "CLIPTextModel"],
        "tokenizer": ["transformers", "CLIPTokenizer"],
        "unet": ["diffusers", "UNet2DConditionModel"],
        "vae": ["diffusers", "AutoencoderKL"],
    },
    "sdxl": {
        "_class_name": "StableDiffusionXLPipeline",
        "force_zeros_for_empty_prompt": True,
        "scheduler": ["diffusers", "EulerDiscreteScheduler"],
        "text_encoder": ["transformers", "CLIPTextModel"],
        "text_encoder_2": ["transformers", "CLIPTextModelWithProjection"],
        "tokenizer": ["transformers", "CLIPTokenizer"],
        "tokenizer_2": ["transformers", "CLIPTokenizer"],
        "unet": ["diffusers", "UNet2DConditionModel"],
        "vae": ["diffusers", "AutoencoderKL"],
    },
}


def _config(kind: str, part: str) -> dict:
    name = "scheduler_config.json" if part == "scheduler" else "config.json"
    return json.loads((CONFIGS / kind / part / name).read_text())


def _build(kind: str, part: str):
    """One network of the pipeline, from its config, with random (default-initialised) weights."""
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    config = _config(kind, part)
    if part == "unet":
        return UNet2DConditionModel.from_config(config)
    if part == "vae":
        return AutoencoderKL.from_config(config)
    cls = CLIPTextModelWithProjection if part == "text_encoder_2" else CLIPTextModel
    return cls(CLIPTextConfig(**{k: v for k, v in config.items() if k != "architectures"}))


def write_real_sd(folder: str | Path, kind: str = "sd15", seed: int = 0) -> Path:
    """The ``kind`` ("sd15" or "sdxl") pipeline as a diffusers folder at ``folder``, one
    network at a time (built, written, freed: SDXL's 3.5 G parameters are 14 GB in float32,
    and only one network is in memory at once)."""
    import diffusers

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    index = INDEX[kind] | {"_diffusers_version": diffusers.__version__}
    (folder / "model_index.json").write_text(json.dumps(index, indent=2))
    tokenizer = _tokenizer(folder)[0]
    for name in [k for k in index if k.startswith("tokenizer")]:
        tokenizer.save_pretrained(folder / name)
    scheduler = getattr(diffusers, index["scheduler"][1]).from_config(_config(kind, "scheduler"))
    scheduler.save_pretrained(folder / "scheduler")
    for i, part in enumerate(("unet", "vae", "text_encoder", "text_encoder_2")):
        if part not in index:
            continue
        torch.manual_seed(seed + i)
        net = _build(kind, part)
        net.save_pretrained(folder / part, safe_serialization=True)
        del net
        gc.collect()
    return folder
