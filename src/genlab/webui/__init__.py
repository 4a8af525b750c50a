"""genlab's web page (``genlab webui``, extra ``genlab[webui]``): Gradio over the library."""

from .server import create, launch

__all__ = ["create", "launch"]
