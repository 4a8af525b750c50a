"""The generation request: what a user asks of a text-to-image back end, checked once, frozen.
Every back end takes the same request; txt2img, img2img and inpainting are the same request
with different fields.

Sampler and schedule are two fields, as ComfyUI's KSampler has two lists: ``sampler`` is
one of genlab's sampler names (``genlab.diffusion.samplers.SAMPLERS``), ``schedule`` which
noise levels its steps visit. stable-diffusion-webui's names, combined ("DPM++ 2M Karras")
or apart ("DPM++ 2M" with the scheduler "Karras"), parse into the pair; PNGs print them
back in webui's words."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from ..errors import GenlabError
from .hires import HiresFix

#: genlab's sampler names -> the names stable-diffusion-webui writes in its parameters.
WEBUI_SAMPLERS = {
    "ddpm": "DDPM",
    "ddim": "DDIM",
    "euler": "Euler",
    "euler-a": "Euler a",
    "heun": "Heun",
    "dpmpp-2m": "DPM++ 2M",
    "dpmpp-3m": "DPM++ 3M",
    "dpmpp-2m-sde": "DPM++ 2M SDE",
    "dpmpp-3m-sde": "DPM++ 3M SDE",
    "unipc": "UniPC",
    "ipndm": "iPNDM",
    "lcm": "LCM",
}
#: schedules -> stable-diffusion-webui's "Schedule type" names. "default" is the model's
#: own spacing (trailing for genlab's models, the scheduler config's for Stable Diffusion).
WEBUI_SCHEDULES = {
    "default": "Automatic",
    "karras": "Karras",
    "trailing": "Uniform",
    "leading": "Leading",
    "linspace": "Linspace",
}
#: the bounds every front end shares (the page's sliders, the CLI, the API)
MAX_STEPS = 1000
MAX_SIDE = 2048
#: what every front end says of a request with an empty prompt
UNCONDITIONAL = "The prompt is empty: the model draws unconditionally, guided by no text."
MAX_BATCH = 64
SEED_RANGE = 2**32


def _key(name: str) -> str:
    return " ".join(str(name).lower().replace("-", " ").replace("_", " ").split())


_SAMPLER_KEYS = {_key(k): k for k in WEBUI_SAMPLERS} | {
    _key(v): k for k, v in WEBUI_SAMPLERS.items()
}
_SCHEDULE_KEYS = {_key(k): k for k in WEBUI_SCHEDULES} | {
    _key(v): k for k, v in WEBUI_SCHEDULES.items()
}


def parse_sampler(name: str, schedule: str | None = None) -> tuple[str, str]:
    """(sampler, schedule) of a sampler name in genlab's or webui's words, possibly with the
    schedule in it ("DPM++ 2M Karras", "dpmpp-2m-karras"); ``schedule`` given apart wins
    unless it is "default"/"Automatic"."""
    key = _key(name)
    found = _SAMPLER_KEYS.get(key)
    named = "default"
    if found is None:  # a schedule word at the end: "DPM++ 2M Karras"
        head, _, tail = key.rpartition(" ")
        if head in _SAMPLER_KEYS and tail in _SCHEDULE_KEYS:
            found, named = _SAMPLER_KEYS[head], _SCHEDULE_KEYS[tail]
    if found is None:
        raise GenlabError(
            f"Unknown sampler '{name}'; choose one of {', '.join(WEBUI_SAMPLERS)} "
            f"(or webui's names: {', '.join(WEBUI_SAMPLERS.values())})."
        )
    if schedule is not None and _key(schedule) not in _SCHEDULE_KEYS:
        raise GenlabError(
            f"Unknown schedule '{schedule}'; choose one of {', '.join(WEBUI_SCHEDULES)}."
        )
    given = _SCHEDULE_KEYS[_key(schedule)] if schedule is not None else "default"
    return found, given if given != "default" else named


def webui_sampler_name(sampler: str, schedule: str) -> str:
    """The sampler as webui's combined menu shows it: "DPM++ 2M", "DPM++ 2M Karras"."""
    name = WEBUI_SAMPLERS[sampler]
    return name if schedule in ("default", "trailing") else f"{name} {WEBUI_SCHEDULES[schedule]}"


def check_text(text: str, what: str) -> None:
    """A prompt the tokenizers can read: Unicode text with no lone surrogates (a JSON
    ``"\\ud800"``, or bytes that were not UTF-8 on the command line, which Python keeps as
    surrogates); they would otherwise fail deep inside a tokenizer."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise GenlabError(
            f"The {what} is not valid text: it holds characters that are not Unicode (bytes "
            "that are not UTF-8, or a lone surrogate such as \\ud800)."
        ) from None


def check_seed(seed: Any, what: str = "seed") -> int:
    """A seed as an int in [0, 2^32), or one sentence."""
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < SEED_RANGE:
        raise GenlabError(
            f"{what} must be a whole number from 0 to {SEED_RANGE - 1}, got {seed!r}."
        )
    return seed


@dataclass(frozen=True)
class GenerationRequest:
    """prompt, negative prompt, sampler and schedule, steps, CFG scale, seed (image i of the
    batch uses seed + i), batch size, width and height in pixels (None: the model's own
    size); ``init_image``/``strength`` for img2img and ``mask`` for inpainting (the initial
    image may be a list, image i for seed + i, or ``hires.Latents``); ``loras``: (path, scale)
    pairs; ``hires``: txt2img's hires fix (a ``HiresFix``, or its fields as a dict), with
    width and height the base size it draws first. ``deepcache``: step caching's interval
    (LOSSY, 1: off; every ``deepcache``-th U-Net call runs in full, the others reuse its deep
    features, ``genlab.nn.deepcache``) at the U-Net's skip branch ``deepcache_branch`` (0:
    the shallowest, the fastest)."""

    prompt: str
    negative_prompt: str = ""
    sampler: str = "dpmpp-2m"
    steps: int = 20
    cfg_scale: float = 5.0
    seed: int = 0
    batch_size: int = 1
    width: int | None = None
    height: int | None = None
    init_image: Any = None
    strength: float | None = None
    mask: Any = None
    loras: tuple[tuple[str, float], ...] = ()
    schedule: str = "default"
    hires: HiresFix | None = None
    deepcache: int = 1
    deepcache_branch: int = 0

    def __post_init__(self) -> None:
        if not isinstance(self.prompt, str) or not isinstance(self.negative_prompt, str):
            raise GenlabError("The prompt and the negative prompt must be text.")
        check_text(self.prompt, "prompt")
        check_text(self.negative_prompt, "negative prompt")
        if not isinstance(self.sampler, str) or not isinstance(self.schedule, str):
            raise GenlabError("The sampler and the schedule are names.")
        sampler, schedule = parse_sampler(self.sampler, self.schedule)
        object.__setattr__(self, "sampler", sampler)
        object.__setattr__(self, "schedule", schedule)
        for name, high in (("steps", MAX_STEPS), ("batch_size", MAX_BATCH)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= high:
                raise GenlabError(f"{name} must be a whole number from 1 to {high}, got {value!r}.")
        for name, low in (("deepcache", 1), ("deepcache_branch", 0)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= 1000:
                raise GenlabError(
                    f"{name} must be a whole number from {low} to 1000, got {value!r}"
                    + (" (1: off)." if low else ".")
                )
        if self.deepcache_branch and self.deepcache == 1:  # else silently unused
            raise GenlabError("A DeepCache branch applies only with step caching on: give "
                              "deepcache (--deepcache N) of 2 or more as well.")  # fmt: skip
        for name in ("width", "height"):
            value = getattr(self, name)
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_SIDE:
                raise GenlabError(
                    f"{name} must be a whole number of pixels from 1 to {MAX_SIDE}, got {value!r}."
                )
        check_seed(self.seed)
        cfg = self.cfg_scale
        if (
            isinstance(cfg, bool)
            or not isinstance(cfg, int | float)
            or not math.isfinite(cfg)
            or cfg < 0
        ):
            raise GenlabError(f"The CFG scale must be a finite number >= 0, got {cfg!r}.")
        if self.strength is not None and not (
            isinstance(self.strength, int | float) and 0.0 < self.strength <= 1.0
        ):
            raise GenlabError(f"strength must lie in (0, 1], got {self.strength!r}.")
        if self.strength is not None and self.init_image is None:
            raise GenlabError("strength applies to img2img: give an initial image.")
        if self.mask is not None and self.init_image is None:
            raise GenlabError("A mask applies to inpainting: give the image to paint into.")
        if isinstance(self.init_image, list | tuple):
            if len(self.init_image) != self.batch_size or self.mask is not None:
                raise GenlabError(
                    f"A list of initial images holds one image for each of the batch's "
                    f"{self.batch_size}, and takes no mask; got {len(self.init_image)}."
                )
        if isinstance(self.hires, dict):
            object.__setattr__(self, "hires", HiresFix(**self.hires))
        if self.hires is not None and not isinstance(self.hires, HiresFix):
            raise GenlabError(f"hires is a HiresFix or its fields, got {self.hires!r}.")
        if self.hires is not None and self.init_image is not None:
            raise GenlabError("Hires fix applies to txt2img: give no initial image with it.")
        for lora in self.loras:
            scale = lora[1] if isinstance(lora, tuple | list) and len(lora) == 2 else None
            if (
                isinstance(scale, bool)
                or not isinstance(scale, int | float)
                or not math.isfinite(scale)
            ):
                raise GenlabError(f"A LoRA is (folder, finite scale), got {lora!r}.")

    @property
    def seeds(self) -> list[int]:
        return [self.seed + i for i in range(self.batch_size)]

    @property
    def unconditional(self) -> bool:
        """Whether the prompt is empty (a prompt of spaces says nothing either)."""
        return not self.prompt.strip()

    @property
    def sized(self) -> bool:
        return self.width is not None and self.height is not None

    def at_size(self, width: int, height: int) -> GenerationRequest:
        """The request with its missing width or height the model's own (``width`` x
        ``height``): a back end fills in its size."""
        return replace(self, width=self.width or width, height=self.height or height)

    @property
    def work(self) -> int:
        """Network evaluations times pixels: what bounds a request's cost (with hires fix,
        the second pass's at its larger size too)."""
        w, h = self.width or 0, self.height or 0
        work = self.steps * self.batch_size * w * h
        if self.hires is not None and w and h:
            from .hires import upscale_size

            tw, th = upscale_size(w, h, self.hires)
            work += (self.hires.steps or self.steps) * self.batch_size * tw * th
        return work

    def to_dict(self) -> dict[str, Any]:
        """The fields that describe the request in words (images left out; ``hires`` as a
        dict, where it is set; step caching's two, where it is on, as the PNG parameters
        record them)."""
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        for name in ("init_image", "mask", "hires"):
            out.pop(name)
        if self.hires is not None:
            out["hires"] = asdict(self.hires)
        if self.deepcache == 1:
            del out["deepcache"], out["deepcache_branch"]
        elif self.deepcache_branch == 0:
            del out["deepcache_branch"]
        return out
