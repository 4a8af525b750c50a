"""genlab's sampler names as diffusers schedulers, for the Stable Diffusion adapter: a
pipeline's own scheduler config (its betas and timestep count) with the algorithm swapped,
as stable-diffusion-webui's sampler menu does."""

from __future__ import annotations

from typing import Any

from ..errors import GenlabError
from .request import WEBUI_SAMPLERS

#: sampler name -> (diffusers scheduler class, settings over the pipeline's config)
DIFFUSERS_SCHEDULERS: dict[str, tuple[str, dict[str, Any]]] = {
    "ddpm": ("DDPMScheduler", {}),
    "ddim": ("DDIMScheduler", {}),
    "euler": ("EulerDiscreteScheduler", {}),
    "euler-a": ("EulerAncestralDiscreteScheduler", {}),
    "heun": ("HeunDiscreteScheduler", {}),
    "dpmpp-2m": (
        "DPMSolverMultistepScheduler",
        {"algorithm_type": "dpmsolver++", "solver_order": 2},
    ),
    "dpmpp-2m-karras": (
        "DPMSolverMultistepScheduler",
        {"algorithm_type": "dpmsolver++", "solver_order": 2, "use_karras_sigmas": True},
    ),
}


def diffusers_scheduler(name: str, config: Any):
    """The diffusers scheduler for sampler ``name``, built from a scheduler ``config`` (a
    pipeline's ``scheduler.config``)."""
    import diffusers

    if name not in DIFFUSERS_SCHEDULERS:
        raise GenlabError(f"Unknown sampler '{name}'; choose one of {', '.join(WEBUI_SAMPLERS)}.")
    cls_name, settings = DIFFUSERS_SCHEDULERS[name]
    return getattr(diffusers, cls_name).from_config(config, **settings)
