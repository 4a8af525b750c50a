"""The text-to-image back-end contract. A back end is anything with these methods; genlab's
own latent model (``genlab.pipelines``) and diffusers' Stable Diffusion
(``genlab.interop.diffusers``) are two, and ``genlab.backends.resolve`` is the one place
that tells which a model spec names. Front ends (the CLI, the page, the HTTP API) and LoRA
training see only this."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from .request import GenerationRequest
from .result import GenerationResult


@dataclass(frozen=True)
class ModelInfo:
    """What a model list shows: its name, the sha256 of its weights, its kind ("genlab" or
    "stable-diffusion"), the size it draws by default, the multiple sizes must be, and the
    largest (width, height) it draws (None: any the request allows; genlab's latent models
    refuse sizes above the one they were trained at), and the request fields it draws with
    where a request leaves them to the model (``sampling``: a distilled few-step model's
    sampler, steps and CFG scale; empty: the request's own defaults)."""

    name: str
    model_hash: str
    kind: str
    default_size: tuple[int, int]
    size_step: int
    max_size: tuple[int, int] | None = None
    sampling: dict[str, Any] = field(default_factory=dict)


class Backend(Protocol):
    def describe(self) -> ModelInfo: ...

    def check(self, request: GenerationRequest) -> GenerationRequest:
        """The request at the model's own size where it gives none, checked (size rules,
        LoRAs that fit this model): one sentence (GenlabError) when it cannot be drawn."""

    def __call__(
        self, request: GenerationRequest, progress: Any = None, cancel: Any = None,
        *, keep_latents: bool = False,
    ) -> GenerationResult:  # fmt: skip
        """Draw ``request``; ``progress(Progress)`` after each step; ``cancel`` (an Event or
        a callable) stops it between steps with ``errors.Cancelled``. A request with
        ``hires`` goes to ``hires.hires_fix(self, ...)``; an ``init_image`` may be a list (one
        a seed) or ``hires.Latents``; ``keep_latents``: the result carries the latents before
        decoding (its images may then be left out)."""

    def lora_base(self) -> Any:
        """A fresh, frozen copy of the model for a LoRA to train on (``net.denoiser`` takes
        the adapters; ``digest`` is the sha256 a LoRA records; ``diffusers`` says its layout)."""

    def fuse(self, lora: Any, out: Path, scale: float = 1.0) -> Path:
        """A copy of the model with ``lora`` (``lora.files.read_lora``) added to its weights,
        written as a model folder at ``out``."""
