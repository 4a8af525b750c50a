"""``genlab lora fuse``: a copy of the base model with a LoRA added to its weights, a model
folder like any other (no adapters left to apply): a genlab model folder, or a diffusers
folder for a Stable Diffusion base."""

from __future__ import annotations

from pathlib import Path

from ..errors import GenlabError
from .adapters import fuse
from .files import read_lora


def fuse_into_copy(lora_path: str | Path, out: str | Path, scale: float = 1.0) -> Path:
    """Write base + scale * alpha / r * B A into the model folder ``out``."""
    import yaml

    from ..generation.backend import load_model
    from ..generation.stable_diffusion import is_diffusers_folder, is_single_file
    from ..serialization import CONFIG, model_dir, save_model

    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise GenlabError(f"{out} is not empty; give a new folder for the fused model.")
    config = yaml.safe_load((model_dir(Path(lora_path)) / CONFIG).read_text())["config"]
    lora = read_lora(lora_path)
    base = config["base"]
    if base != "builtin" and (is_diffusers_folder(Path(base)) or is_single_file(Path(base))):
        from .diffusers_base import DiffusersBase

        sd = DiffusersBase(base, config.get("base_config"))  # a diffusers folder out
        _check_base(lora, Path(base).name, sd.digest)
        fuse(sd.backend.pipe.unet, lora.state, lora.factor(scale))
        sd.backend.pipe.save_pretrained(out, safe_serialization=True)
        return out
    model, name, digest = load_model(base)
    _check_base(lora, name, digest)
    fuse(model.net.denoiser, lora.state, lora.factor(scale))
    save_model(model, out)
    return out


def _check_base(lora, name: str, digest: str) -> None:
    if lora.base_sha256 and lora.base_sha256 != digest:
        raise GenlabError(f"The LoRA {lora.name} was trained on another version of {name}.")
