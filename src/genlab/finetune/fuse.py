"""``genlab lora fuse``: a copy of the base model with a LoRA added to its weights, a model
folder like any other (no adapters left to apply): a genlab model folder, or a diffusers
folder for a Stable Diffusion base."""

from __future__ import annotations

from pathlib import Path

from ..errors import GenlabError
from ..lora.files import read_lora


def fuse_into_copy(lora_path: str | Path, out: str | Path, scale: float = 1.0) -> Path:
    """Write base + scale * alpha / r * B A into the model folder ``out``."""
    import yaml

    from ..backends import resolve
    from ..runfiles import check_folder
    from ..serialization import CONFIG, model_dir

    out = check_folder(out)  # a file of that name, an unwritable place: said before work
    if out.exists() and any(out.iterdir()):
        raise GenlabError(f"{out} is not empty; give a new folder for the fused model.")
    config = yaml.safe_load((model_dir(Path(lora_path)) / CONFIG).read_text())["config"]
    lora = read_lora(lora_path)
    backend = resolve(config["base"], config.get("base_config"))
    info = backend.describe()
    if lora.base_sha256 and lora.base_sha256 != info.model_hash:
        raise GenlabError(f"The LoRA {lora.name} was trained on another version of {info.name}.")
    return backend.fuse(lora, out, scale)
