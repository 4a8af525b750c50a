"""Low-rank adapters (LoRA, Hu et al. 2021) on a network's attention projections: W x becomes
W x + (alpha / r) B A x, with A (r x in) and B (out x r), B starting at zero so that an
untrained adapter changes nothing. Training injects them with peft; generation adds
``scale (alpha / r) B A`` to the weights for the duration of a draw (several adapters at
once), and fusing adds it for good. Keys follow peft's layout (``PATH.lora_A.weight``), the
one diffusers' ``load_lora_weights`` reads under a ``unet.`` prefix."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import nn

from ..errors import GenlabError

#: genlab's U-Net: the cross-attention projections and the self-attention ones
BUILTIN_TARGETS = r".*(cross\.(q|kv|out)|attn\.(qkv|out))$"
#: diffusers' UNet2DConditionModel, as diffusers' own LoRA training targets it
DIFFUSERS_TARGETS = ["to_q", "to_k", "to_v", "to_out.0"]
#: CLIP's text encoder, as diffusers' train_dreambooth_lora(_sdxl).py targets it (kohya's
#: sd-scripts adapts CLIP's MLP layers too)
CLIP_TARGETS = ["q_proj", "k_proj", "v_proj", "out_proj"]


def text_model_path(path: str) -> str:
    """A CLIP text encoder's module path with its ``text_model.`` level, as LoRA files
    (kohya's, diffusers') name it: transformers >= 5.6's CLIPTextModel no longer has that
    level, and readers (``resolve_path``, diffusers' loader) drop it where a model lacks it."""
    return path if path.startswith("text_model.") else f"text_model.{path}"


def inject(module: nn.Module, rank: int, alpha: float, targets, name: str = "default") -> int:
    """Add trainable adapters to ``module`` in place (peft); returns how many layers got one."""
    try:
        from peft import LoraConfig, inject_adapter_in_model
    except ModuleNotFoundError:
        raise GenlabError("LoRA training needs peft: pip install 'genlab[lora]'.") from None
    if rank < 1 or alpha <= 0:
        raise GenlabError(f"LoRA needs rank >= 1 and alpha > 0, got rank {rank}, alpha {alpha}.")
    config = LoraConfig(r=rank, lora_alpha=alpha, target_modules=targets, lora_dropout=0.0)
    try:
        inject_adapter_in_model(config, module, adapter_name=name)
    except ValueError as e:  # peft's "target modules not found" (a ValueError subclass)
        raise GenlabError(f"No layer of the network matches the LoRA targets {targets!r}.") from e
    return sum(1 for n, _ in module.named_modules() if n.endswith(f"lora_A.{name}"))


def adapter_state(module: nn.Module, name: str = "default") -> dict[str, torch.Tensor]:
    """The adapter's weights as ``PATH.lora_A.weight`` / ``PATH.lora_B.weight``."""
    out = {}
    for key, value in module.state_dict().items():
        if f".lora_A.{name}." in key or f".lora_B.{name}." in key:
            out[key.replace(f".{name}.", ".")] = value.detach().clone()
    return out


def pairs(state: dict[str, torch.Tensor]) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """{layer path: (A, B)} of an adapter state; a half-pair is an error."""
    out = {}
    for key in state:
        if key.endswith(".lora_A.weight"):
            path = key.removesuffix(".lora_A.weight")
            b = state.get(f"{path}.lora_B.weight")
            if b is None:
                raise GenlabError(f"The LoRA file has {key} but no matching lora_B weight.")
            out[path] = (state[key], b)
    if not out:
        raise GenlabError("The file holds no LoRA weights (no '.lora_A.weight' keys).")
    return out


def delta(a: torch.Tensor, b: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    """B A as a weight of ``shape`` (a Linear's (out, in) or a convolution's (out, in, k, k))."""
    rank = a.shape[0]
    return (b.reshape(b.shape[0], rank).float() @ a.reshape(rank, -1).float()).reshape(shape)


def resolve_path(named: dict[str, nn.Module], flat: dict[str, str], path: str) -> str:
    """The module path a LoRA's ``path`` names: itself, or the one whose dots read as
    underscores match (kohya's keys; ``flat``: underscored name -> name), with or without
    CLIP's ``text_model`` level (which transformers >= 5.6 no longer has)."""
    if path in named:
        return path
    under = path.replace(".", "_")
    return flat.get(under) or flat.get(under.removeprefix("text_model_")) or path


def _layers(module: nn.Module, state: dict) -> dict[str, tuple[nn.Module, torch.Tensor]]:
    named = dict(module.named_modules())
    flat = {name.replace(".", "_"): name for name in named}
    out = {}
    for path, (a, b) in pairs(state).items():
        path = resolve_path(named, flat, path)
        layer = named.get(path)
        if layer is None or not hasattr(layer, "weight"):
            raise GenlabError(f"The LoRA adapts '{path}', which this model does not have.")
        try:
            d = delta(a, b, layer.weight.shape)
        except RuntimeError:  # the adapter's A or B does not fit the layer
            raise GenlabError(
                f"The LoRA's adapter of '{path}' does not fit that layer's weight "
                f"{tuple(layer.weight.shape)}."
            ) from None
        out[path] = (layer, d)
    return out


@contextlib.contextmanager
def applied(module: nn.Module, adapters: list[tuple[dict, float]]) -> Iterator[None]:
    """Within the block, ``module``'s weights carry each adapter (state, factor), factor =
    scale * alpha / rank; the exact original weights come back afterwards."""
    saved: dict[str, torch.Tensor] = {}
    try:
        with torch.no_grad():
            for state, factor in adapters:
                for path, (layer, d) in _layers(module, state).items():
                    saved.setdefault(path, layer.weight.detach().clone())
                    layer.weight += factor * d.to(layer.weight.dtype)
        yield
    finally:
        with torch.no_grad():
            named = dict(module.named_modules())
            for path, weight in saved.items():
                named[path].weight.copy_(weight)


def fuse(module: nn.Module, state: dict, factor: float) -> int:
    """Add one adapter to ``module``'s weights for good; returns the layers changed."""
    layers = _layers(module, state)
    with torch.no_grad():
        for layer, d in layers.values():
            layer.weight += factor * d.to(layer.weight.dtype)
    return len(layers)
