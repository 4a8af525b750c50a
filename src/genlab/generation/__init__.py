"""The text-to-image contract, below every back end and front end: the frozen request
(``GenerationRequest``), what comes back (``GenerationResult``, ``Progress``), the
``Backend`` protocol, and the PNG ``parameters`` text that records a request in each image
(``pnginfo``). It imports no model, pipeline or front end."""

from importlib import import_module
from typing import Any

from .pnginfo import (
    format_parameters,
    parse_parameters,
    read_parameters,
    request_from_parameters,
    save_png,
)
from .prompt_loras import prompt_loras
from .request import GenerationRequest, parse_sampler

#: names whose modules import torch: loaded when first used, so that the CLI's parser
#: (which reads ``generation.hires``'s upscaler names) does not pull torch in
_LAZY = {
    "Backend": "backend", "ModelInfo": "backend", "GenerationResult": "result",
    "Progress": "result",
}  # fmt: skip


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'genlab.generation' has no attribute {name!r}")
    return getattr(import_module(f".{_LAZY[name]}", __name__), name)


__all__ = [
    "Backend",
    "GenerationRequest",
    "GenerationResult",
    "ModelInfo",
    "Progress",
    "format_parameters",
    "parse_parameters",
    "parse_sampler",
    "prompt_loras",
    "read_parameters",
    "request_from_parameters",
    "save_png",
]
