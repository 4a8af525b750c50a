"""The text-to-image contract, below every back end and front end: the frozen request
(``GenerationRequest``), what comes back (``GenerationResult``, ``Progress``), the
``Backend`` protocol, and the PNG ``parameters`` text that records a request in each image
(``pnginfo``). It imports no model, pipeline or front end."""

from .backend import Backend, ModelInfo
from .pnginfo import (
    format_parameters,
    parse_parameters,
    read_parameters,
    request_from_parameters,
    save_png,
)
from .prompt_loras import prompt_loras
from .request import GenerationRequest, parse_sampler
from .result import GenerationResult, Progress

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
