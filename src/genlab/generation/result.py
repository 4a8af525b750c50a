"""What a back end gives back: the images with their parameters, and on the way the progress
of each step with a preview, both the same for every back end."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch


@dataclass(frozen=True)
class Progress:
    """After each step: the step (1-based) of ``steps``, and the current estimate of the
    clean image (in the back end's latent space, the same meaning for every back end),
    which ``preview()`` decodes to PIL images."""

    step: int
    steps: int
    denoised: torch.Tensor
    decode: Callable[[torch.Tensor], torch.Tensor] = field(repr=False)

    def preview(self) -> list[Any]:
        from .images import to_pil

        with torch.no_grad():
            return to_pil(self.decode(self.denoised))


@dataclass
class GenerationResult:
    """Images (PIL), each with its seed and its PNG ``parameters`` text; ``info``: what the
    back end noticed (the prompt truncated ...); ``latents``: the latents before decoding,
    where the call asked to keep them (``keep_latents``: hires fix's latent upscale)."""

    images: list[Any]
    seeds: list[int]
    parameters: list[str]
    info: dict[str, Any] = field(default_factory=dict)
    latents: Any = None


def cancel_check(cancel: Any) -> Callable[[], None]:
    """A function that raises Cancelled once ``cancel`` (a threading.Event, or any callable
    returning True) says stop; a no-op for None."""
    from ..errors import Cancelled

    if cancel is None:
        return lambda: None
    asked = cancel.is_set if hasattr(cancel, "is_set") else cancel

    def check() -> None:
        if asked():
            raise Cancelled()

    return check
