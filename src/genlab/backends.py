"""``resolve(spec)``: the one place that tells the model kinds apart and gives the back end
that draws from it. A spec is "builtin" (the shipped text-to-image model), "builtin-fast"
(its 4-step distillation, shipped beside it), a genlab run or
model folder of a latent diffusion model, a Stable Diffusion diffusers folder, or one
original-layout ``.safetensors`` file (with ``config``, a local diffusers folder of the
same architecture). Every front end, LoRA training and fusing, and ``eval-t2i`` go through
it; a new back end is one package and one branch here."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

from .errors import GenlabError
from .generation.backend import Backend
from .generation.placement import CPU, Placement

BUILTIN = "builtin"
#: the shipped text-to-image models, by spec (pipelines.text_to_image.SHIPPED has their folders)
SHIPPED = (BUILTIN, "builtin-fast")


def kind(spec: str | Path) -> str:
    """ "stable-diffusion" for a diffusers folder or a single checkpoint file, else "genlab"."""
    from .interop.diffusers.files import is_stable_diffusion

    return "stable-diffusion" if is_stable_diffusion(spec) else "genlab"


def resolve(spec: str = BUILTIN, config: str | None = None, place: Placement = CPU) -> Backend:
    """A fresh back end of ``spec``; ``config``: the diffusers folder a single-file checkpoint
    takes its configs from; ``place``: device, precision and memory savers (Stable
    Diffusion only). Generation keeps one per process through ``load_backend``."""
    spec = str(spec)
    if kind(spec) == "stable-diffusion":
        from .hashing import sha256
        from .interop.diffusers.backend import StableDiffusionBackend
        from .interop.diffusers.files import hashed_weights

        weights = hashed_weights(Path(spec))
        digest = sha256(weights) if weights.suffix == ".safetensors" and weights.is_file() else ""
        return StableDiffusionBackend(spec, model_hash=digest, config=config, placement=place)
    if config is not None and (spec in SHIPPED or Path(spec).exists()):  # else: unknown model
        raise GenlabError("--model-config applies to a single-file Stable Diffusion checkpoint.")
    if place != CPU:
        raise GenlabError(
            "--device, --dtype, --attention-slicing, --cpu-offload and --vae-tiling apply to "
            "Stable Diffusion checkpoints; genlab's own models run on the CPU in full precision."
        )
    from .pipelines.text_to_image import TextToImagePipeline

    return TextToImagePipeline.load(spec)


@lru_cache(maxsize=2)
def load_backend(spec: str = BUILTIN, config: str | None = None, place: Placement = CPU):
    """The back end of ``spec``, built once per process (its weights stay loaded)."""
    return resolve(spec, config, place)


def lora_base(spec: str, config: str | None = None) -> Any:
    """A fresh, frozen copy of the model ``spec`` names for a LoRA to train on."""
    return resolve(spec, config).lora_base()


def generate(request: Any, model: str = BUILTIN, progress: Any = None, cancel: Any = None):
    """Run ``request`` on the model ``model`` names; a GenerationResult."""
    return load_backend(model)(request, progress, cancel)
