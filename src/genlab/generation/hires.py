"""Hires fix, as stable-diffusion-webui does it: draw at the base size, upscale (the latents
themselves, or the decoded pixels with Lanczos), then run img2img at the larger size with
``denoising_strength`` for ``steps`` steps. A model draws its composition where it was
trained and adds detail at the larger size, without the repeated objects a large canvas
drawn from noise gets.

Written once, over the ``Backend`` protocol: ``hires_fix(backend, request)`` runs the base
draw and the second pass through the back end's own ``__call__`` (each back end hands a
request with ``hires`` to it), so genlab's model, Stable Diffusion and SDXL share it.

The second pass runs exactly ``steps`` steps (0: the request's steps) as webui counts them:
the last ``steps`` of a schedule of ``int(steps / min(denoising_strength, 0.999))`` steps,
so a lower strength starts from a lower noise level without fewer steps. It may take its own
sampler, schedule, prompt and negative prompt (webui's ``hr_sampler_name``, ``hr_scheduler``,
``hr_prompt``, ``hr_negative_prompt``); each left empty is the first pass's, as webui's."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from ..errors import GenlabError

if TYPE_CHECKING:
    from .request import GenerationRequest
    from .result import GenerationResult

#: webui's latent upscale modes: (torch interpolation mode, antialias)
LATENT_MODES = {
    "Latent": ("bilinear", False),
    "Latent (antialiased)": ("bilinear", True),
    "Latent (bicubic)": ("bicubic", False),
    "Latent (bicubic antialiased)": ("bicubic", True),
    "Latent (nearest)": ("nearest", False),
    "Latent (nearest-exact)": ("nearest-exact", False),
}
#: upscalers on decoded pixels -> PIL's resampling filter; "None" resizes with Lanczos, as
#: webui's does (its resize falls back to Lanczos for whatever an upscaler leaves)
PIXEL_UPSCALERS = {"None": "LANCZOS", "Lanczos": "LANCZOS", "Nearest": "NEAREST"}
UPSCALERS = (*LATENT_MODES, *PIXEL_UPSCALERS)
MAX_SCALE = 8.0
_KEYS = {name.lower(): name for name in UPSCALERS}
#: what webui's menus and infotexts say for "the first pass's" (its paste fields' defaults)
SAME_SAMPLER, SAME_SCHEDULE = "Use same sampler", "Use same scheduler"
_SAME = {"", SAME_SAMPLER.lower(), SAME_SCHEDULE.lower(), "use same schedule type"}


@dataclass(frozen=True)
class HiresFix:
    """The second pass of a txt2img request: the upscale factor ``scale`` (or the size
    ``resize_x`` x ``resize_y`` in pixels; 0 on one side keeps the aspect ratio; either
    nonzero wins over ``scale``), the ``upscaler`` (a Latent mode or a pixel one: see
    UPSCALERS), the steps it runs (0: the request's), and its ``denoising_strength``; the
    second pass's own ``sampler``, ``schedule``, ``prompt`` and ``negative_prompt``, each
    empty for the first pass's (a sampler named with its schedule, "DPM++ 2M Karras", sets
    both; webui's "Use same sampler" / "Use same scheduler" are empty)."""

    scale: float = 2.0
    upscaler: str = "Latent"
    steps: int = 0
    denoising_strength: float = 0.7
    resize_x: int = 0
    resize_y: int = 0
    sampler: str = ""
    schedule: str = ""
    prompt: str = ""
    negative_prompt: str = ""

    def __post_init__(self) -> None:
        from .request import MAX_SIDE, MAX_STEPS

        scale = self.scale
        if (
            isinstance(scale, bool)
            or not isinstance(scale, int | float)
            or not math.isfinite(scale)
            or not 1 <= scale <= MAX_SCALE
        ):
            raise GenlabError(f"The hires scale must be a number from 1 to {MAX_SCALE:g}, got "
                              f"{scale!r}.")  # fmt: skip
        if not isinstance(self.upscaler, str) or self.upscaler.strip().lower() not in _KEYS:
            raise GenlabError(f"Unknown hires upscaler {self.upscaler!r}; choose one of "
                              f"{', '.join(UPSCALERS)}.")  # fmt: skip
        object.__setattr__(self, "upscaler", _KEYS[self.upscaler.strip().lower()])
        steps = self.steps
        if isinstance(steps, bool) or not isinstance(steps, int) or not 0 <= steps <= MAX_STEPS:
            raise GenlabError(f"The hires steps must be a whole number from 0 (the request's "
                              f"steps) to {MAX_STEPS}, got {steps!r}.")  # fmt: skip
        d = self.denoising_strength
        if isinstance(d, bool) or not isinstance(d, int | float) or not 0 < d <= 1:
            raise GenlabError(f"The hires denoising strength must lie in (0, 1], got {d!r}.")
        for name in ("resize_x", "resize_y"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_SIDE:
                raise GenlabError(f"The hires {name} must be a whole number of pixels from 0 "
                                  f"(not set) to {MAX_SIDE}, got {value!r}.")  # fmt: skip
        self._second_pass_names()

    def _second_pass_names(self) -> None:
        """The sampler and schedule in genlab's names ("" for the first pass's), the prompts
        checked as text."""
        from .request import WEBUI_SAMPLERS, WEBUI_SCHEDULES, check_text, parse_sampler

        for name in ("sampler", "schedule", "prompt", "negative_prompt"):
            if not isinstance(getattr(self, name), str):
                raise GenlabError(f"The hires {name.replace('_', ' ')} must be text (empty: "
                                  f"the first pass's), got {getattr(self, name)!r}.")  # fmt: skip
            check_text(getattr(self, name), f"hires {name.replace('_', ' ')}")
        sampler, schedule = self.sampler.strip(), self.schedule.strip()
        try:
            schedule = "" if schedule.lower() in _SAME else parse_sampler("euler", schedule)[1]
        except GenlabError:
            raise GenlabError(f"Unknown hires schedule {schedule!r}; choose one of "
                              f"{', '.join(WEBUI_SCHEDULES.values())} or '{SAME_SCHEDULE}'."
                              ) from None  # fmt: skip
        if sampler.lower() in _SAME:
            sampler = ""
        else:  # a schedule in the sampler's name counts where none is given apart
            try:
                sampler, named = parse_sampler(sampler)
            except GenlabError:
                raise GenlabError(f"Unknown hires sampler {sampler!r}; choose one of "
                                  f"{', '.join(WEBUI_SAMPLERS.values())} or '{SAME_SAMPLER}'."
                                  ) from None  # fmt: skip
            schedule = schedule or (named if named != "default" else "")
        object.__setattr__(self, "sampler", sampler)
        object.__setattr__(self, "schedule", schedule)

    def second_pass(self, request: GenerationRequest) -> dict[str, str]:
        """The sampler, schedule, prompt and negative prompt the second pass of ``request``
        draws with: this record's own where set, else the request's."""
        return {
            "sampler": self.sampler or request.sampler,
            "schedule": self.schedule or request.schedule,
            "prompt": self.prompt or request.prompt,
            "negative_prompt": self.negative_prompt or request.negative_prompt,
        }

    @property
    def latent(self) -> bool:
        return self.upscaler in LATENT_MODES

    @property
    def resized(self) -> bool:
        return bool(self.resize_x or self.resize_y)


@dataclass(frozen=True)
class Latents:
    """Latents in a back end's own space, scaled as its sampler sees them, (n, C, h, w): a
    request's ``init_image`` for the second pass of a latent upscale (no decode, no encode)."""

    tensor: Any


def upscale_size(width: int, height: int, hires: HiresFix) -> tuple[int, int]:
    """The size the base image is upscaled to, as webui computes it: ``scale`` times the base,
    or the resize size; with both sides given, the size that covers it at the base's aspect
    ratio (the excess is cropped from the middle, see ``target_size``)."""
    x, y = hires.resize_x, hires.resize_y
    if not hires.resized:
        return int(width * hires.scale), int(height * hires.scale)
    if y == 0:
        return x, x * height // width
    if x == 0:
        return y * width // height, y
    if width / height < x / y:
        return x, x * height // width
    return y * width // height, y


def target_size(width: int, height: int, hires: HiresFix, step: int = 1) -> tuple[int, int]:
    """The size of the final image: the resize size where both sides are given, else the
    upscale size; rounded down to a multiple of ``step`` (the model's size step), as webui's
    latents are."""
    w, h = upscale_size(width, height, hires)
    if hires.resize_x and hires.resize_y:
        w, h = hires.resize_x, hires.resize_y
    w, h = max(step, w // step * step), max(step, h // step * step)
    from .request import MAX_SIDE

    if w > MAX_SIDE or h > MAX_SIDE:
        raise GenlabError(f"Hires fix would draw {w}x{h}, over the {MAX_SIDE} pixels a side "
                          "genlab draws; choose a smaller scale.")  # fmt: skip
    return w, h


def second_pass_schedule(steps: int, strength: float) -> tuple[int, float]:
    """(schedule length, strength) with which a back end's img2img (which runs the last
    ``int(length * strength)`` steps of ``length``) runs exactly ``steps`` steps starting
    where webui's hires pass starts: ``length = int(steps / min(strength, 0.999))``; the
    strength is set half a step above ``steps / length`` so that the floor lands on ``steps``
    whatever the rounding."""
    length = max(steps, int(steps / min(strength, 0.999)))
    return length, min(1.0, (steps + 0.5) / length)


def planned_steps(request: GenerationRequest) -> int:
    """The steps a request runs in all: the base draw's, and the second pass's with hires."""
    if request.hires is None:
        return request.steps
    return request.steps + (request.hires.steps or request.steps)


def _offset(progress: Any, done: int, total: int) -> Any:
    """A progress callback that counts a pass's steps after the ``done`` before it."""
    if progress is None:
        return None
    from .result import Progress

    def report(p: Progress) -> None:
        progress(Progress(min(total, done + p.step), total, p.denoised, p.decode))

    return report


def upscale_latents(latents: Any, size: tuple[int, int], crop: tuple[int, int], mode: str):
    """Latents (n, C, h, w) interpolated to ``size`` (w, h, latent cells) with webui's latent
    mode ``mode``, then ``crop`` (w, h) cut from the middle."""
    import torch

    how, antialias = LATENT_MODES[mode]
    out = torch.nn.functional.interpolate(
        latents.float(), size=(size[1], size[0]), mode=how, antialias=antialias
    ).to(latents.dtype)
    return _middle(out, crop)


def _middle(x: Any, crop: tuple[int, int]) -> Any:
    """The middle ``crop`` (w, h) of (n, C, H, W), the odd cell off the far edge (webui's
    ``truncate``)."""
    dy, dx = x.shape[-2] - crop[1], x.shape[-1] - crop[0]
    return x[..., dy // 2 : x.shape[-2] - (dy + 1) // 2, dx // 2 : x.shape[-1] - (dx + 1) // 2]


def upscale_image(image: Any, size: tuple[int, int], crop: tuple[int, int], upscaler: str) -> Any:
    """A PIL image resized to ``size`` (w, h) with the pixel upscaler's filter, then the middle
    ``crop`` (w, h) cut out."""
    from PIL import Image

    out = image.convert("RGB").resize(size, getattr(Image.Resampling, PIXEL_UPSCALERS[upscaler]))
    left, top = (size[0] - crop[0]) // 2, (size[1] - crop[1]) // 2
    return out.crop((left, top, left + crop[0], top + crop[1]))


def hires_fix(
    backend: Any, request: GenerationRequest, progress: Any = None, cancel: Any = None
) -> GenerationResult:
    """Draw ``request`` (with ``hires``) on ``backend``: the base draw, the upscale, the second
    pass; the images at the target size with parameters that record the hires fields (the
    base size as "Size", as webui writes it)."""
    from .pnginfo import format_parameters, parameters_extra
    from .result import GenerationResult

    hires = request.hires
    request = backend.check(request)
    base = replace(request, hires=None)
    info = backend.describe()
    size = upscale_size(request.width, request.height, hires)
    target = target_size(request.width, request.height, hires, info.size_step)
    steps = hires.steps or request.steps
    total = request.steps + steps
    if hires.latent:  # the latents themselves: no decode at the base size, no encode
        first = backend(base, _offset(progress, 0, total), cancel, keep_latents=True)
        z = first.latents
        factor = request.height // z.shape[-2]
        init: Any = Latents(upscale_latents(
            z, (size[0] // factor, size[1] // factor),
            (target[0] // factor, target[1] // factor), hires.upscaler,
        ))  # fmt: skip
    else:
        first = backend(base, _offset(progress, 0, total), cancel)
        init = [upscale_image(im, size, target, hires.upscaler) for im in first.images]
    length, strength = second_pass_schedule(steps, hires.denoising_strength)
    second = replace(base, width=target[0], height=target[1], init_image=init,
                     strength=strength, steps=length, **hires.second_pass(base))  # fmt: skip
    result = backend(second, _offset(progress, request.steps, total), cancel)
    params = [
        format_parameters(request, seed, model=info.name, model_hash=info.model_hash,
                          extra=parameters_extra(text))
        for seed, text in zip(request.seeds, result.parameters, strict=True)
    ]  # fmt: skip
    notes = first.info | result.info
    notes["hires"] = {"from": [request.width, request.height], "to": list(target)}
    return GenerationResult(result.images, request.seeds, params, notes)
