"""Text-to-image generation: the frozen request every back end takes (``GenerationRequest``)
and the PNG ``parameters`` text that records it in each image (``pnginfo``)."""

from .pnginfo import (
    format_parameters,
    parse_parameters,
    read_parameters,
    request_from_parameters,
    save_png,
)
from .request import GenerationRequest

__all__ = [
    "GenerationRequest",
    "format_parameters",
    "parse_parameters",
    "read_parameters",
    "request_from_parameters",
    "save_png",
]
