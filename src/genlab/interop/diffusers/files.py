"""What a Stable Diffusion model spec is on disk: a diffusers folder (``model_index.json``)
or one original-layout ``.safetensors`` file with a local config folder; pickled
checkpoints are recognised only to be refused."""

from __future__ import annotations

import json
from pathlib import Path

from ...errors import GenlabError

#: checkpoint suffixes of pickled weights, which genlab never opens
PICKLED = (".ckpt", ".pt", ".pth", ".bin")


def is_diffusers_folder(path: Path) -> bool:
    return Path(path).is_dir() and (Path(path) / "model_index.json").is_file()


def is_single_file(path: Path) -> bool:
    path = Path(path)
    return path.is_file() and path.suffix.lower() in (".safetensors", *PICKLED)


def is_stable_diffusion(spec: str | Path) -> bool:
    """Whether a model spec names Stable Diffusion: a diffusers folder or a single file
    ("builtin", "builtin-fast" and genlab's own run folders are neither)."""
    path = Path(spec)
    return str(spec) not in ("builtin", "builtin-fast") and (
        is_diffusers_folder(path) or is_single_file(path)
    )


def hashed_weights(path: Path) -> Path:
    """The file a Stable Diffusion model's hash is taken from: a single file itself, or a
    diffusers folder's U-Net weights."""
    path = Path(path)
    return path if path.is_file() else path / "unet" / "diffusion_pytorch_model.safetensors"


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


def diffusers_shape(folder: Path) -> tuple[int, int, int]:
    """(3, H, W) a Stable Diffusion folder draws by default, read from its configs."""
    unet = json.loads((Path(folder) / "unet" / "config.json").read_text())
    vae = json.loads((Path(folder) / "vae" / "config.json").read_text())
    side = int(unet["sample_size"]) * 2 ** (len(vae["block_out_channels"]) - 1)
    return (3, side, side)


#: diffusers' pipeline class of a folder (model_index.json) -> the base LoRAs name it by
VERSIONS = {"StableDiffusionPipeline": "sd1", "StableDiffusionXLPipeline": "sdxl"}


def pipeline_version(folder: Path) -> str:
    """ "sd1" or "sdxl": what a diffusers folder's ``model_index.json`` says it is; an SD 2.x
    folder uses StableDiffusionPipeline too (its LoRAs fit by shape or are refused then)."""
    try:
        name = json.loads((Path(folder) / "model_index.json").read_text())["_class_name"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise GenlabError(f"{folder}/model_index.json names no diffusers pipeline ({e}).") from e
    if name not in VERSIONS:
        raise GenlabError(
            f"{folder} is a {name} folder; genlab runs StableDiffusionPipeline and "
            "StableDiffusionXLPipeline folders."
        )
    return VERSIONS[name]
