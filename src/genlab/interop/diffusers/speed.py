"""Speed-ups of a Stable Diffusion pipeline on the CPU that change no picture a user would
see, each a switch so that a benchmark measures it alone (benchmarks/sd_real_size.py).

- channels-last: the U-Net's and the autoencoder's convolutions in NHWC, oneDNN's native
  layout (an NCHW tensor is reordered on every call otherwise). Only the memory layout
  changes: images equal to rounding. On a quiet 2-core EPYC it measured no faster (0.99x
  over 6 rounds; 1.16x on a loaded machine), so it is kept as free, not as a speed-up.
- VAE slicing: a batch decoded one image at a time, bit for bit the same images, a batch's
  peak memory that of one image.
- ``torch.compile`` of the U-Net (off by default: on two cores its compile time is not paid
  back within one image; see docs/results.md).

Fused attention needs no switch: diffusers' default ``AttnProcessor2_0`` already calls
PyTorch's ``scaled_dot_product_attention``. Precision (``bf16-mixed``) and VAE tiling change
pixels, so they are the user's choice, in ``generation.placement``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Speed:
    channels_last: bool = True
    vae_slicing: bool = True
    compile: bool = False

    def apply(self, pipe: Any) -> None:
        import torch

        if self.channels_last:
            for part in ("unet", "vae"):
                getattr(pipe, part).to(memory_format=torch.channels_last)
        if self.vae_slicing:
            pipe.vae.enable_slicing()
        if self.compile:
            pipe.unet.compile()  # in place: the pipeline keeps its module (LoRA, config)


#: what the back end does unless told otherwise
DEFAULT = Speed()
#: diffusers' pipeline as it loads, for comparisons
NONE = Speed(channels_last=False, vae_slicing=False, compile=False)
