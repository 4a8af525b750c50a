"""A U-Net with a sinusoidal time embedding, for noise prediction on small images.

Shape comments use (N, C, H, W). Resolution halves at each level; ResBlocks get the
embedding of the noise level (and of the class label, when there is one) added to their
features; self-attention runs at the lowest resolution; skip connections carry each
level's features to the matching decoder level. With ``context_dim`` every ResBlock is
followed by cross-attention to a text encoder's token embeddings (as in Stable Diffusion's
U-Net): queries from the image positions, keys and values from the tokens. Token merging
(``UNet.use_token_merging``, lossy, off by default) lets the attention of the finest levels
run on fewer image positions (nn/token_merging.py).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .layers import LabelEmbedding
from .token_merging import TokenMerging


def sinusoidal_embedding(t: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """Transformer position encoding of (possibly fractional) timesteps: (N,) -> (N, dim)."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=t.device) / half)
    args = t.float()[:, None] * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=1)


def _norm(channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(min(8, channels), channels)


def _merged_tokens(merging: TokenMerging, x: torch.Tensor, normed: torch.Tensor):
    """(the merge plan of the map x (N, C, H, W), the merged tokens of ``normed`` as an
    (N, C, T, 1) map): the attention's 1x1 convolutions then run on the T = HW - r tokens
    as they are, LoRA adapters on them included."""
    h, w = x.shape[-2:]
    plan = merging.plan(x.flatten(2).transpose(1, 2), h, w)  # metric: the block's input
    merged = plan.merge(normed.flatten(2).transpose(1, 2))  # N, T, C
    return plan, merged.transpose(1, 2)[..., None]


def _unmerged(plan, y: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    """(N, C, T, 1) outputs of the merged tokens -> the (N, C, H, W) map."""
    return plan.unmerge(y[..., 0].transpose(1, 2)).transpose(1, 2).reshape(shape)


class CrossAttention(nn.Module):
    """Image positions attend to the tokens of a context (N, L, D) with its padding mask
    (N, L), residually; the output projection starts at zero, so an untrained block is the
    identity."""

    def __init__(self, channels: int, context_dim: int, heads: int = 4) -> None:
        super().__init__()
        self.norm = _norm(channels)
        self.q = nn.Conv2d(channels, channels, 1)
        self.kv = nn.Linear(context_dim, 2 * channels)
        self.out = nn.Conv2d(channels, channels, 1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)
        self.heads = heads
        self.merging: TokenMerging | None = None  # set by UNet.use_token_merging

    def forward(self, x: torch.Tensor, context: tuple[torch.Tensor, torch.Tensor]):
        tokens, mask = context
        n, c = x.shape[:2]
        d = c // self.heads
        normed, plan = self.norm(x), None
        if self.merging is not None:  # queries of merged positions; keys are the text's
            plan, normed = _merged_tokens(self.merging, x, normed)
        t = normed.shape[2] * normed.shape[3]
        q = self.q(normed).view(n, self.heads, d, t).transpose(2, 3)  # N, heads, T, d
        k, v = self.kv(tokens).view(n, -1, 2, self.heads, d).permute(2, 0, 3, 1, 4)
        a = F.scaled_dot_product_attention(q, k, v, attn_mask=mask[:, None, None, :])
        out = self.out(a.transpose(2, 3).reshape(n, c, *normed.shape[2:]))
        return x + (out if plan is None else _unmerged(plan, out, x.shape))


class ResBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, emb_dim: int, context_dim: int = 0) -> None:
        super().__init__()
        self.norm1, self.conv1 = _norm(c_in), nn.Conv2d(c_in, c_out, 3, padding=1)
        self.emb = nn.Linear(emb_dim, c_out)
        self.norm2, self.conv2 = _norm(c_out), nn.Conv2d(c_out, c_out, 3, padding=1)
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()
        self.cross = CrossAttention(c_out, context_dim) if context_dim else None

    def forward(self, x: torch.Tensor, emb: torch.Tensor, context=None) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.emb(F.silu(emb))[:, :, None, None]
        h = self.conv2(F.silu(self.norm2(h))) + self.skip(x)
        return h if self.cross is None else self.cross(h, context)


class Attention(nn.Module):
    """Multi-head self-attention over the H*W positions, with a residual connection."""

    def __init__(self, channels: int, heads: int = 4) -> None:
        super().__init__()
        self.norm = _norm(channels)
        self.qkv = nn.Conv2d(channels, 3 * channels, 1)
        self.out = nn.Conv2d(channels, channels, 1)
        self.heads = heads
        self.merging: TokenMerging | None = None  # set by UNet.use_token_merging

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c = x.shape[:2]
        normed, plan = self.norm(x), None
        if self.merging is not None:  # queries, keys and values of the merged tokens
            plan, normed = _merged_tokens(self.merging, x, normed)
        t = normed.shape[2] * normed.shape[3]
        q, k, v = self.qkv(normed).view(n, 3, self.heads, c // self.heads, t).unbind(1)
        a = F.scaled_dot_product_attention(q.transpose(2, 3), k.transpose(2, 3), v.transpose(2, 3))
        out = self.out(a.transpose(2, 3).reshape(n, c, *normed.shape[2:]))
        return x + (out if plan is None else _unmerged(plan, out, x.shape))


def _time_mlp(base: int, emb_dim: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(base, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim))


def _down_path(
    channels, blocks: int, emb_dim: int, context_dim: int = 0
) -> tuple[nn.ModuleList, list[int]]:
    """ResBlocks and stride-2 convolutions from channels[0] wide inputs; also the width of
    every output (the stem's first), which the U-Net's skips need."""
    down, widths, c = nn.ModuleList(), [channels[0]], channels[0]
    for i, width in enumerate(channels):
        for _ in range(blocks):
            down.append(ResBlock(c, width, emb_dim, context_dim))
            c = width
            widths.append(c)
        if i < len(channels) - 1:
            down.append(nn.Conv2d(c, c, 3, stride=2, padding=1))  # H -> H/2
            widths.append(c)
    return down, widths


def _apply(layer: nn.Module, h: torch.Tensor, emb: torch.Tensor, context=None) -> torch.Tensor:
    return layer(h, emb, context) if isinstance(layer, ResBlock) else layer(h)


class Upsample(nn.Module):
    """A 1x1 convolution to the next level's width, then nearest-neighbour doubling.

    A 1x1 convolution commutes with nearest upsampling, so running it before the doubling
    costs a quarter of running it after; and the narrower output makes the first ResBlock
    of the finer level (which also reads the skip) cheaper. With a narrow full-resolution
    level, this is where the U-Net's training speed over diffusers' UNet2DModel comes from
    (docs/results.md)."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(c_in, c_out, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(self.proj(x), scale_factor=2.0, mode="nearest")


class UNet(nn.Module):
    """F(x, t, cond, context) -> a tensor shaped like x (the eps, x0 or v prediction).

    ``channels``: width per level, e.g. (32, 64); each level but the last halves the
    resolution. ``num_classes``: adds a label embedding (with a learned "no label" row for
    classifier-free guidance); ``cond`` is a genlab.conditioning.Condition or None.
    ``context_dim``: adds cross-attention after every ResBlock to ``context``, a pair
    (token embeddings (N, L, context_dim), mask (N, L)).
    """

    def __init__(
        self,
        in_channels: int = 1,
        channels: tuple[int, ...] = (32, 64),
        blocks: int = 1,
        attention: bool = True,
        num_classes: int = 0,
        context_dim: int = 0,
    ) -> None:
        super().__init__()
        base, k = channels[0], context_dim
        emb_dim = 4 * base
        self.time_mlp = _time_mlp(base, emb_dim)
        self.label_emb = LabelEmbedding(num_classes, emb_dim) if num_classes else None
        self.stem = nn.Conv2d(in_channels, base, 3, padding=1)
        self.down, widths = _down_path(channels, blocks, emb_dim, k)
        c = widths[-1]
        self.up = nn.ModuleList()
        self.mid1, self.mid2 = ResBlock(c, c, emb_dim, k), ResBlock(c, c, emb_dim, k)
        self.mid_attn = Attention(c) if attention else nn.Identity()
        for i, width in reversed(list(enumerate(channels))):
            for _ in range(blocks + 1):
                self.up.append(ResBlock(c + widths.pop(), width, emb_dim, k))
                c = width
            if i > 0:
                self.up.append(Upsample(c, channels[i - 1]))
                c = channels[i - 1]
        self.head = nn.Sequential(_norm(c), nn.SiLU(), nn.Conv2d(c, in_channels, 3, padding=1))
        nn.init.zeros_(self.head[-1].weight)
        nn.init.zeros_(self.head[-1].bias)

    def attention_levels(self) -> list[tuple[int, nn.Module]]:
        """(level, module) of every attention module: level 0 is the latents' resolution,
        level i is 2^i times smaller (the middle is the last level)."""
        found, level = [], 0
        for layer in self.down:
            if isinstance(layer, ResBlock) and layer.cross is not None:
                found.append((level, layer.cross))
            elif isinstance(layer, nn.Conv2d):  # the stride-2 convolution: one level down
                level += 1
        middle = [self.mid1.cross, self.mid_attn, self.mid2.cross]
        found += [(level, m) for m in middle if isinstance(m, CrossAttention | Attention)]
        for layer in self.up:
            if isinstance(layer, ResBlock) and layer.cross is not None:
                found.append((level, layer.cross))
            elif isinstance(layer, Upsample):
                level -= 1
        return found

    def use_token_merging(self, merging: TokenMerging | None) -> None:
        """Token merging (lossy) in the attention of the levels ``merging`` covers (None:
        off, the exact network again). This U-Net has self-attention only in its middle, at
        the lowest resolution; what runs at its highest is the cross-attention after every
        ResBlock, so there the merged tokens are its queries (the reference code's
        ``merge_crossattn``): the image positions, while the text tokens stay as they are."""
        found = self.attention_levels()
        finest = min((level for level, _ in found), default=0)  # counted from there
        for level, module in found:
            on = merging is not None and merging.applies(2 ** (level - finest))
            module.merging = merging if on else None

    def blocks(self) -> list[nn.Module]:
        """The blocks the forward calls one after another, in order (each a unit that
        ``--fsdp`` shards on its own)."""
        path = [*self.down, self.mid1, self.mid_attn, self.mid2, *self.up]
        return [m for m in path if any(True for _ in m.parameters())]

    def forward(self, x: torch.Tensor, t: torch.Tensor, cond=None, context=None):
        emb = self.time_mlp(sinusoidal_embedding(t, self.stem.out_channels))
        if self.label_emb is not None:
            emb = emb + self.label_emb.embed(cond, len(x), x.device)
        h = self.stem(x)
        skips = [h]
        for layer in self.down:
            h = _apply(layer, h, emb, context)
            skips.append(h)
        h = self.mid2(self.mid_attn(self.mid1(h, emb, context)), emb, context)
        for layer in self.up:
            if isinstance(layer, ResBlock):
                skip = skips.pop()
                if skip.shape[-2:] != h.shape[-2:]:  # odd sizes (7 -> 14 -> 28) round up
                    h = F.interpolate(h, size=skip.shape[-2:], mode="nearest")
                h = layer(torch.cat([h, skip], 1), emb, context)
            else:
                h = layer(h)
        return self.head(h)


class EncoderClassifier(nn.Module):
    """The U-Net's down path and middle, averaged over positions, to class logits:
    F(x, t) -> (N, num_classes). The noise-aware classifier of classifier guidance."""

    def __init__(
        self,
        in_channels: int = 1,
        channels: tuple[int, ...] = (16, 32, 64),
        blocks: int = 1,
        attention: bool = True,
        num_classes: int = 10,
    ) -> None:
        super().__init__()
        base = channels[0]
        emb_dim = 4 * base
        self.time_mlp = _time_mlp(base, emb_dim)
        self.stem = nn.Conv2d(in_channels, base, 3, padding=1)
        self.down, widths = _down_path(channels, blocks, emb_dim)
        c = widths[-1]
        self.mid = ResBlock(c, c, emb_dim)
        self.attn = Attention(c) if attention else nn.Identity()
        self.head = nn.Sequential(_norm(c), nn.SiLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.logits = nn.Linear(c, num_classes)

    def forward(self, x: torch.Tensor, t: torch.Tensor, cond=None) -> torch.Tensor:
        emb = self.time_mlp(sinusoidal_embedding(t, self.stem.out_channels))
        h = self.stem(x)
        for layer in self.down:
            h = _apply(layer, h, emb)
        return self.logits(self.head(self.attn(self.mid(h, emb))))
