"""``genlab lora fuse``: a copy of the base model with a LoRA added to its weights, a model
folder like any other (no adapters left to apply): a genlab model folder, or a diffusers
folder for a Stable Diffusion base."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from ..errors import GenlabError
from .adapters import fuse
from .files import read_lora


def fuse_into_copy(lora_path: str | Path, out: str | Path, scale: float = 1.0) -> Path:
    """Write base + scale * alpha / r * B A into the model folder ``out``."""
    import yaml

    from ..generation.backend import load_model
    from ..generation.stable_diffusion import is_stable_diffusion
    from ..serialization import CONFIG, model_dir, save_model

    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise GenlabError(f"{out} is not empty; give a new folder for the fused model.")
    config = yaml.safe_load((model_dir(Path(lora_path)) / CONFIG).read_text())["config"]
    lora = read_lora(lora_path)
    base = config["base"]
    if is_stable_diffusion(base):
        from .diffusers_base import DiffusersBase

        sd = DiffusersBase(base, config.get("base_config"))  # a diffusers folder out
        _check_base(lora, Path(base).name, sd.digest)
        fuse(sd.backend.pipe.unet, lora.state, lora.factor(scale))
        # written beside, then renamed: an interrupted save leaves no half folder at ``out``
        tmp = out.parent / f".{out.name}.tmp-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        try:
            sd.backend.pipe.save_pretrained(tmp, safe_serialization=True)
            shutil.rmtree(out, ignore_errors=True)  # empty, checked above
            tmp.rename(out)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return out
    model, name, digest = load_model(base)
    _check_base(lora, name, digest)
    fuse(model.net.denoiser, lora.state, lora.factor(scale))
    save_model(model, out)
    return out


def _check_base(lora, name: str, digest: str) -> None:
    if lora.base_sha256 and lora.base_sha256 != digest:
        raise GenlabError(f"The LoRA {lora.name} was trained on another version of {name}.")
