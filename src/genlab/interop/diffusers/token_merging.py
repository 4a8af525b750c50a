"""Token merging (ToMe, nn/token_merging.py; LOSSY, off by default) in diffusers'
``UNet2DConditionModel``, as the reference code (tomesd) places it: in every
``BasicTransformerBlock`` of the levels the settings cover (by default the finest level with
attention: SD 1.x's 64x64 latents at 512 px, 4096 tokens; SDXL's 64x64 level at 1024 px, one
below its latents, which have no attention), the self-attention ``attn1`` runs on
the merged tokens and its output is unmerged before the residual add; the cross-attention is
left whole; the MLP merges only with ``mlp``.

Hooks, not a patched class: a forward pre-hook on each ``Transformer2DModel`` notes its map's
height and width, one on the block computes the merge plan from the block's input, and
pre-/post-hooks on ``attn1`` (and ``ff``) merge their input and unmerge their output. The
modules and their parameters' names stay diffusers' own, so LoRA files and adapters, which
wrap the projections inside ``attn1``, load and apply as without merging."""

from __future__ import annotations

from typing import Any

from ...errors import GenlabError
from ...nn.token_merging import TokenMerging


def _hidden(args: tuple, kwargs: dict) -> Any:
    return args[0] if args else kwargs["hidden_states"]


def _replaced(args: tuple, kwargs: dict, x: Any) -> tuple[tuple, dict]:
    if args:
        return (x, *args[1:]), kwargs
    return args, {**kwargs, "hidden_states": x}


def levels(unet: Any) -> list[tuple[int, Any]]:
    """(downsample factor, Transformer2DModel) of every transformer of the U-Net: down
    block i and up block len - 1 - i run at 2^i times smaller than the latents, the middle
    at the lowest resolution."""
    found = []
    count = len(unet.down_blocks)
    for i, block in enumerate(unet.down_blocks):
        found += [(2**i, t) for t in getattr(block, "attentions", ())]
    if unet.mid_block is not None:
        found += [(2 ** (count - 1), t) for t in getattr(unet.mid_block, "attentions", ())]
    for i, block in enumerate(unet.up_blocks):
        found += [(2 ** (count - 1 - i), t) for t in getattr(block, "attentions", ())]
    return found


class Patch:
    """The hooks of one U-Net; ``remove()`` gives the exact network back."""

    def __init__(self, unet: Any, merging: TokenMerging) -> None:
        self.merging, self.handles = merging, []
        found = levels(unet)
        # counted from the finest level with attention: SDXL has none at its latents'
        # resolution, and its 2x smaller level (64x64 at 1024 px) is where ToMe pays there
        finest = min((d for d, _ in found), default=1)
        for downsample, transformer in found:
            if not merging.applies(downsample // finest):
                continue
            size: dict[str, int] = {}
            self._hook_pre(transformer, self._note_size(size))
            for block in getattr(transformer, "transformer_blocks", ()):
                self._patch_block(block, size)

    def _hook_pre(self, module: Any, hook: Any) -> None:
        self.handles.append(module.register_forward_pre_hook(hook, with_kwargs=True))

    def _hook_post(self, module: Any, hook: Any) -> None:
        self.handles.append(module.register_forward_hook(hook))

    @staticmethod
    def _note_size(size: dict[str, int]):
        def hook(module: Any, args: tuple, kwargs: dict) -> None:
            h, w = _hidden(args, kwargs).shape[-2:]  # (B, C, H, W) into the transformer
            size["h"], size["w"] = int(h), int(w)

        return hook

    def _patch_block(self, block: Any, size: dict[str, int]) -> None:
        state: dict[str, Any] = {}

        def plan(module: Any, args: tuple, kwargs: dict) -> None:
            x = _hidden(args, kwargs)  # (B, HW, C): the metric is the block's input
            state["plan"] = self.merging.plan(x, size["h"], size["w"])

        def merge(module: Any, args: tuple, kwargs: dict):
            return _replaced(args, kwargs, state["plan"].merge(_hidden(args, kwargs)))

        def unmerge(module: Any, args: tuple, out: Any) -> Any:
            return state["plan"].unmerge(out)

        if self.merging.mlp and getattr(block, "_chunk_size", None) is not None:
            raise GenlabError("Token merging in the MLP cannot run with feed-forward chunking.")
        self._hook_pre(block, plan)
        parts = [block.attn1] + ([block.ff] if self.merging.mlp else [])
        for part in parts:
            self._hook_pre(part, merge)
            self._hook_post(part, unmerge)

    def remove(self) -> None:
        for handle in self.handles:
            handle.remove()
        self.handles = []


def apply(unet: Any, merging: TokenMerging | None) -> Patch | None:
    """Token merging with ``merging``'s settings on ``unet`` (None: nothing); the Patch."""
    return None if merging is None else Patch(unet, merging)
