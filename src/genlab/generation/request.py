"""The generation request: what a user asks of a text-to-image back end, checked once, frozen.
genlab's own latent model and the Stable Diffusion adapter take the same request; txt2img,
img2img and inpainting are the same request with different fields."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from ..errors import GenlabError

#: genlab's sampler names -> the names stable-diffusion-webui writes in its parameters.
WEBUI_SAMPLERS = {
    "ddpm": "DDPM",
    "ddim": "DDIM",
    "euler": "Euler",
    "euler-a": "Euler a",
    "heun": "Heun",
    "dpmpp-2m": "DPM++ 2M",
    "dpmpp-2m-karras": "DPM++ 2M Karras",
}


@dataclass(frozen=True)
class GenerationRequest:
    """prompt, negative prompt, sampler, steps, CFG scale, seed (image i of the batch uses
    seed + i), batch size, width and height in pixels; ``init_image``/``strength`` for
    img2img and ``mask`` for inpainting; ``loras``: (path, scale) pairs."""

    prompt: str
    negative_prompt: str = ""
    sampler: str = "dpmpp-2m"
    steps: int = 20
    cfg_scale: float = 5.0
    seed: int = 0
    batch_size: int = 1
    width: int = 32
    height: int = 32
    init_image: Any = None
    strength: float | None = None
    mask: Any = None
    loras: tuple[tuple[str, float], ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.prompt, str) or not isinstance(self.negative_prompt, str):
            raise GenlabError("The prompt and the negative prompt must be text.")
        if self.sampler not in WEBUI_SAMPLERS:
            raise GenlabError(
                f"Unknown sampler '{self.sampler}'; choose one of {', '.join(WEBUI_SAMPLERS)}."
            )
        for name in ("steps", "batch_size", "width", "height"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise GenlabError(f"{name} must be a whole number of at least 1, got {value!r}.")
        if not isinstance(self.seed, int) or isinstance(self.seed, bool) or self.seed < 0:
            raise GenlabError(f"seed must be a whole number of at least 0, got {self.seed!r}.")
        cfg = self.cfg_scale
        if not isinstance(cfg, int | float) or not math.isfinite(cfg) or cfg < 0:
            raise GenlabError(f"The CFG scale must be a finite number >= 0, got {cfg!r}.")
        if self.strength is not None and not 0.0 < self.strength <= 1.0:
            raise GenlabError(f"strength must lie in (0, 1], got {self.strength!r}.")
        if self.strength is not None and self.init_image is None:
            raise GenlabError("strength applies to img2img: give an initial image.")
        if self.mask is not None and self.init_image is None:
            raise GenlabError("A mask applies to inpainting: give the image to paint into.")
        for lora in self.loras:
            scale = lora[1] if isinstance(lora, tuple | list) and len(lora) == 2 else None
            if not isinstance(scale, int | float) or not math.isfinite(scale):
                raise GenlabError(f"A LoRA is (folder, finite scale), got {lora!r}.")

    @property
    def seeds(self) -> list[int]:
        return [self.seed + i for i in range(self.batch_size)]

    def to_dict(self) -> dict[str, Any]:
        """The fields that describe the request in words (images left out)."""
        out = asdict(self)
        for name in ("init_image", "mask"):
            out.pop(name)
        return out
