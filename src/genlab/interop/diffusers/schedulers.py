"""genlab's samplers and schedules as diffusers schedulers, for the Stable Diffusion back end:
a pipeline's own scheduler config (its betas and timestep count) with the algorithm swapped,
as stable-diffusion-webui's sampler menu does, and the schedule as the scheduler's own
settings (Karras sigmas, timestep spacing)."""

from __future__ import annotations

import inspect
from typing import Any

from ...errors import GenlabError

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
    # solver_type "heun": the warm-up second-order step genlab's 3M takes (k-diffusion's)
    "dpmpp-3m": (
        "DPMSolverMultistepScheduler",
        {"algorithm_type": "dpmsolver++", "solver_order": 3, "solver_type": "heun"},
    ),
    "dpmpp-2m-sde": (
        "DPMSolverMultistepScheduler",
        {"algorithm_type": "sde-dpmsolver++", "solver_order": 2},
    ),
    # diffusers' third-order SDE step (0.42) weighs the second difference wrongly (see
    # tests/test_samplers_vs_diffusers.py); it is still what diffusers offers for 3M SDE
    "dpmpp-3m-sde": (
        "DPMSolverMultistepScheduler",
        {"algorithm_type": "sde-dpmsolver++", "solver_order": 3, "solver_type": "heun"},
    ),
    "unipc": ("UniPCMultistepScheduler", {"solver_type": "bh2", "solver_order": 2}),
    "lcm": ("LCMScheduler", {}),
}
#: genlab's samplers that diffusers has no scheduler for
NOT_IN_DIFFUSERS = frozenset({"ipndm"})


def schedule_settings(schedule: str) -> dict[str, Any]:
    """A schedule as a diffusers scheduler's settings ("default": the folder's own)."""
    if schedule == "default":
        return {}
    if schedule == "karras":
        return {"use_karras_sigmas": True}
    return {"timestep_spacing": schedule}  # trailing, leading, linspace: diffusers' own names


def diffusers_scheduler(sampler: str, schedule: str, config: Any):
    """The diffusers scheduler for ``sampler`` and ``schedule``, built from a scheduler
    ``config`` (a pipeline's ``scheduler.config``)."""
    import diffusers

    if sampler in NOT_IN_DIFFUSERS:
        raise GenlabError(
            f"The {sampler} sampler has no diffusers scheduler, so Stable Diffusion cannot use "
            f"it; choose one of {', '.join(DIFFUSERS_SCHEDULERS)}."
        )
    if sampler not in DIFFUSERS_SCHEDULERS:
        raise GenlabError(
            f"Unknown sampler '{sampler}'; choose one of {', '.join(DIFFUSERS_SCHEDULERS)}."
        )
    cls_name, settings = DIFFUSERS_SCHEDULERS[sampler]
    cls = getattr(diffusers, cls_name)
    extra = schedule_settings(schedule)
    takes = inspect.signature(cls.__init__).parameters
    if any(k not in takes for k in extra):
        raise GenlabError(
            f"The {schedule} schedule does not apply to the {sampler} sampler on Stable "
            "Diffusion; choose another schedule or sampler."
        )
    return cls.from_config(config, **settings, **extra)
