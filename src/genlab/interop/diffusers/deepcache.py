"""Step caching (DeepCache, LOSSY, off by default) for diffusers' UNet2DConditionModel: the
algorithm and its mechanism are ``genlab.nn.deepcache``'s; this module only lists the
leaves of diffusers' U-Net in the order its forward calls them, with the skips they make
and read (Stable Diffusion 1.x and SDXL alike).

diffusers' U-Net: ``conv_in`` makes skip 0; in each down block, every resnet (with the
attention after it, where the block has attentions) makes one skip, and so does each
downsampler; each up block's resnets read them back, deepest first, each followed by its
attention, the block's upsampler after the last. Branch 0 (the shallowest) leaves a partial
call ``conv_in``, the outermost up block's last resnet and attention, and ``conv_out``:
the choice DeepCache's own Stable Diffusion example makes."""

from __future__ import annotations

from typing import Any

from torch import nn

from ...nn.deepcache import Path


def unet_path(unet: Any) -> Path:
    """The Path of a diffusers UNet2DConditionModel."""
    down: list[tuple[nn.Module, int | None]] = []
    skip = 0
    for block in unet.down_blocks:
        attentions = list(getattr(block, "attentions", None) or [])
        for j, resnet in enumerate(block.resnets):
            skip += 1
            if j < len(attentions):
                down += [(resnet, None), (attentions[j], skip)]
            else:
                down.append((resnet, skip))
        for downsampler in getattr(block, "downsamplers", None) or []:
            skip += 1
            down.append((downsampler, skip))
    skips = skip + 1
    middle = [unet.mid_block] if getattr(unet, "mid_block", None) is not None else []
    up: list[tuple[nn.Module, int | None]] = []
    reads = skips
    for block in unet.up_blocks:
        attentions = list(getattr(block, "attentions", None) or [])
        for j, resnet in enumerate(block.resnets):
            reads -= 1
            up.append((resnet, reads))
            if j < len(attentions):
                up.append((attentions[j], None))
        for upsampler in getattr(block, "upsamplers", None) or []:
            up.append((upsampler, None))
    return Path(down, middle, up, skips)
