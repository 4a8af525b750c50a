"""The text-to-image back ends the command line and the web page call: a model spec
("builtin", a run or model folder of a latent diffusion model, or a Stable Diffusion
folder) -> a pipeline, loaded once and kept; ``generate(request)`` -> images with their
parameters."""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any

from ..errors import GenlabError
from ..training.checkpoint import sha256
from .request import GenerationRequest
from .stable_diffusion import StableDiffusionBackend, is_diffusers_folder

BUILTIN = "builtin"
BUILTIN_NAME = "genlab-shapes"


def builtin_folder() -> Path:
    """The shipped text-to-image model (weights, config and card) inside the package."""
    return Path(__file__).resolve().parent.parent / "assets" / "txt2img-shapes"


@lru_cache(maxsize=2)
def load_pipeline(spec: str = BUILTIN):
    """The text-to-image pipeline of ``spec``, built once per process."""
    from ..pipelines.text_to_image import TextToImagePipeline

    path = Path(spec)
    if spec != BUILTIN and path.is_dir() and is_diffusers_folder(path):
        unet = path / "unet" / "diffusion_pytorch_model.safetensors"
        return StableDiffusionBackend(path, model_hash=sha256(unet) if unet.is_file() else "")
    model, name, digest = load_model(spec)
    return TextToImagePipeline(model, name, digest)


def load_model(spec: str = BUILTIN) -> tuple[Any, str, str]:
    """(genlab's latent-diffusion model, its name, the sha256 of its weights) of ``spec``:
    "builtin" or a run or model folder."""
    from ..serialization import WEIGHTS, load, model_dir

    if spec == BUILTIN:
        from ..assets import checked_folder

        folder, name = checked_folder(builtin_folder().name), BUILTIN_NAME
        digest = sha256(folder / WEIGHTS)
    else:
        path = Path(spec)
        if not path.exists():
            raise GenlabError(
                f"Unknown model '{spec}': give 'builtin', the folder of a trained "
                "latent-diffusion run, or a Stable Diffusion folder (model_index.json)."
            )
        if path.is_file() and path.suffix == ".safetensors":
            raise GenlabError(
                f"{path} is a single-file checkpoint; genlab reads Stable Diffusion as a "
                "diffusers folder (model_index.json) for now."
            )
        folder, name = model_dir(path), path.resolve().name
        digest = sha256(folder / WEIGHTS)
    model = load(folder)
    if model.name != "latent-diffusion":
        raise GenlabError(f"{spec} holds a {model.name} model, not a text-to-image one.")
    return model, name, digest


def generate(request: GenerationRequest, model: str = BUILTIN, callback: Callable | None = None):
    """Run ``request`` on the model ``model`` names; a GenerationResult."""
    return load_pipeline(model)(request, callback)
