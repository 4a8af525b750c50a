"""Learning-rate schedules: the factor on the base learning rate at each optimizer step.

``"default"`` is genlab's own (a linear warm-up over ``warmup`` steps counted from 1, then a
cosine decay to 0 over ``decay_steps``, 0: none). The others carry the names and formulas of
diffusers' ``get_scheduler`` (what its train_text_to_image_lora.py and kohya's sd-scripts
offer), over the run's ``steps``: warm-up ``step / warmup``, then constant, a half cosine to
0, ``cycles`` cosines each restarting at the full rate, or a straight line to 0."""

from __future__ import annotations

import math

SCHEDULES = ("default", "constant", "constant_with_warmup", "cosine", "cosine_with_restarts",
             "linear")  # fmt: skip


def default_factor(step: int, warmup: int, decay: int) -> float:
    """Linear warm-up over ``warmup`` steps, then cosine decay to 0 over ``decay`` steps."""
    if warmup and step < warmup:
        return (step + 1) / warmup
    if decay:
        t = min(step - warmup, decay) / decay
        return 0.5 * (1 + math.cos(math.pi * t))
    return 1.0


def lr_factor(
    name: str, step: int, *, warmup: int = 0, decay: int = 0, total: int = 1, cycles: int = 1
) -> float:
    """The factor at optimizer step ``step`` (0 for the first) of schedule ``name``."""
    if name == "default":
        return default_factor(step, warmup, decay)
    if name == "constant":
        return 1.0
    if step < warmup:
        return step / max(1, warmup)
    if name == "constant_with_warmup":
        return 1.0
    progress = (step - warmup) / max(1, total - warmup)
    if name == "cosine":  # diffusers' default of half a cycle: from 1 down to 0
        return max(0.0, 0.5 * (1.0 + math.cos(math.pi * progress)))
    if name == "cosine_with_restarts":
        if progress >= 1.0:
            return 0.0
        return max(0.0, 0.5 * (1.0 + math.cos(math.pi * ((cycles * progress) % 1.0))))
    if name == "linear":
        return max(0.0, (total - step) / max(1, total - warmup))
    raise ValueError(f"unknown schedule {name!r}")
