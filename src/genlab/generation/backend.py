"""The text-to-image back ends the command line and the web page call: a model spec
("builtin", a run or model folder of a latent diffusion model, a Stable Diffusion folder
or single file) -> a pipeline, loaded once and kept; ``generate(request)`` -> images with their
parameters."""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any

from ..errors import GenlabError
from ..hashing import sha256
from .placement import CPU, Placement
from .request import GenerationRequest
from .stable_diffusion import StableDiffusionBackend, hashed_weights, is_stable_diffusion

BUILTIN = "builtin"
BUILTIN_NAME = "genlab-shapes"


def builtin_folder() -> Path:
    """The shipped text-to-image model (weights, config and card) inside the package."""
    return Path(__file__).resolve().parent.parent / "assets" / "txt2img-shapes"


@lru_cache(maxsize=2)
def load_pipeline(spec: str = BUILTIN, config: str | None = None, place: Placement = CPU):
    """The text-to-image pipeline of ``spec``, built once per process; ``config``: the
    diffusers folder a single-file checkpoint takes its configs from; ``place``: device,
    precision and memory savers (Stable Diffusion only)."""
    from ..pipelines.text_to_image import TextToImagePipeline

    path = Path(spec)
    if is_stable_diffusion(spec):
        weights = hashed_weights(path)
        digest = sha256(weights) if weights.suffix == ".safetensors" and weights.is_file() else ""
        backend = StableDiffusionBackend(path, model_hash=digest, config=config)
        place.apply(backend.pipe)
        return backend
    if config is not None and (spec == BUILTIN or path.exists()):  # else: an unknown model
        raise GenlabError("--model-config applies to a single-file Stable Diffusion checkpoint.")
    if place != CPU:
        raise GenlabError(
            "--device, --dtype, --attention-slicing and --cpu-offload apply to Stable "
            "Diffusion checkpoints; genlab's own models run on the CPU in full precision."
        )
    model, name, digest = load_model(spec)
    # Convolutions run about 9% faster on a CPU with channels-last weights (the same
    # pixels; benchmarks/txt2img_speed.py). Only here: a model in training keeps its layout.
    import torch

    model.net.denoiser.to(memory_format=torch.channels_last)
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
                "latent-diffusion run, a Stable Diffusion folder (model_index.json) or a "
                "single .safetensors checkpoint."
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
