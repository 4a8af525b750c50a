"""The text-to-image contract, below every back end and front end: the frozen request
(``GenerationRequest``), what comes back (``GenerationResult``, ``Progress``), the
``Backend`` protocol, and the PNG ``parameters`` text that records a request in each image
(``pnginfo``). It imports no model, pipeline or front end."""

from importlib import import_module
from typing import Any

#: each name's module: imported when first used, so that ``genlab.generation.hires`` (the
#: CLI's parser reads its upscaler names) does not pull in torch through ``result``
_WHERE = {
    "Backend": "backend", "ModelInfo": "backend", "format_parameters": "pnginfo",
    "parse_parameters": "pnginfo", "read_parameters": "pnginfo",
    "request_from_parameters": "pnginfo", "save_png": "pnginfo", "prompt_loras": "prompt_loras",
    "GenerationRequest": "request", "parse_sampler": "request", "GenerationResult": "result",
    "Progress": "result",
}  # fmt: skip


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'genlab.generation' has no attribute {name!r}")
    return getattr(import_module(f".{_WHERE[name]}", __name__), name)


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
