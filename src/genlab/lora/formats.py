"""LoRA files as other tools write them, read into one form: for each part of a Stable
Diffusion model ("unet", "text_encoder", "text_encoder_2") the layers it adapts, each as
(A, B, alpha / rank), so that the weight it adds at user scale s is ``s alpha / r B A``.

Two layouts are read besides genlab's own folders:

- kohya's sd-scripts (what stable-diffusion-webui, Forge, ComfyUI and Fooocus share):
  ``lora_unet_PATH.lora_down.weight`` (A), ``.lora_up.weight`` (B) and ``.alpha``, PATH the
  module's dotted path with ``_`` for ``.``; ``lora_te_`` / ``lora_te1_`` the CLIP text
  encoder, ``lora_te2_`` SDXL's second one. SD 1.x files name diffusers' U-Net blocks
  (``down_blocks_0_attentions_0``), SDXL files the original ones (``input_blocks_4_1``).
  A missing alpha means alpha = rank, as kohya's loader reads it.
- diffusers / peft: ``unet.PATH.lora_A.weight`` / ``.lora_B.weight`` (or diffusers' older
  ``.lora.down.weight`` / ``.lora.up.weight``), alpha folded into B unless the header's
  ``lora_adapter_metadata`` says otherwise.

Underscored paths are resolved against the model's own module names when the LoRA is
applied (``adapters.resolve_path``); here only SDXL's original block names are rewritten
into diffusers' ones."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

import torch

from ..errors import GenlabError

KOHYA = {"lora_unet_": "unet", "lora_te1_": "text_encoder", "lora_te2_": "text_encoder_2",
         "lora_te_": "text_encoder"}  # fmt: skip
DIFFUSERS = {"unet.": "unet", "text_encoder.": "text_encoder",
             "text_encoder_2.": "text_encoder_2"}  # fmt: skip
#: (A suffix, B suffix) of each layout
KOHYA_PAIR = (".lora_down.weight", ".lora_up.weight")
PEFT_PAIRS = ((".lora_A.weight", ".lora_B.weight"), (".lora.down.weight", ".lora.up.weight"),
              (".lora_linear_layer.down.weight", ".lora_linear_layer.up.weight"))  # fmt: skip

SD1, SDXL = "sd1", "sdxl"
VERSION_NAMES = {SD1: "Stable Diffusion 1.x", SDXL: "SDXL", "genlab": "genlab's own models"}


@dataclass
class Parsed:
    layout: str  # "kohya" | "diffusers"
    parts: dict[str, dict[str, tuple[torch.Tensor, torch.Tensor, float]]] = field(
        default_factory=dict
    )
    base_version: str = ""  # SD1 | SDXL | "" (not known)
    rank: int = 0
    alpha: float = 0.0


def parse_file_state(
    state: dict[str, torch.Tensor], metadata: dict[str, str] | None, where: str
) -> Parsed:
    """The layers of a LoRA file's tensors in either layout; a sentence for anything else."""
    metadata = metadata or {}
    if any(k.startswith(tuple(KOHYA)) for k in state):
        parsed = _kohya(state, where)
    elif any(k.endswith(b) for k in state for _, b in PEFT_PAIRS):
        parsed = _diffusers(state, metadata, where)
    else:
        raise GenlabError(
            f"{where} holds no LoRA weights genlab knows (neither kohya's 'lora_unet_' / "
            "'lora_te_' keys nor diffusers' '.lora_A.weight' ones)."
        )
    version = metadata.get("ss_base_model_version", "")
    unet = parsed.parts.get("unet", {})
    if version.startswith("sdxl") or "text_encoder_2" in parsed.parts:
        parsed.base_version = SDXL
    elif version.startswith(("sd_v1", "sd_1")):
        parsed.base_version = SD1
    elif any(re.match(r"(input_blocks|output_blocks|middle_block)_", p) for p in unet):
        parsed.base_version = SDXL  # kohya trains SDXL on the original U-Net's block names
    if parsed.base_version == SDXL and "unet" in parsed.parts:
        parsed.parts["unet"] = {sdxl_block_path(p): v for p, v in parsed.parts["unet"].items()}
    ranks = {a.shape[0] for layers in parsed.parts.values() for a, _, _ in layers.values()}
    parsed.rank = max(ranks)
    return parsed


def _kohya(state: dict[str, torch.Tensor], where: str) -> Parsed:
    down, up = KOHYA_PAIR
    parsed = Parsed("kohya")
    for key in state:
        prefix = next((p for p in KOHYA if key.startswith(p)), None)
        name = key.split(".", 1)[0]
        if prefix is None or not key.endswith((down, up, ".alpha")):
            raise GenlabError(
                f"{where} has '{key}', which is not a kohya LoRA weight (LyCORIS, LoHa and "
                "DoRA files are not read)."
            )
        if not key.endswith(down):
            continue
        b = state.get(name + up)
        if b is None:
            raise GenlabError(f"{where} has {key} but no matching lora_up weight.")
        a = state[key]
        rank = a.shape[0]
        alpha = float(state[name + ".alpha"].item()) if name + ".alpha" in state else rank
        part = KOHYA[prefix]
        parsed.parts.setdefault(part, {})[name[len(prefix) :]] = (a, b, alpha / rank)
    if not parsed.parts:
        raise GenlabError(f"{where} holds kohya keys but no lora_down weight.")
    return parsed


def _diffusers(state: dict[str, torch.Tensor], metadata: dict[str, str], where: str) -> Parsed:
    alphas = _adapter_alphas(metadata)
    parsed = Parsed("diffusers")
    for key in state:
        pair = next((p for p in PEFT_PAIRS if key.endswith(p[0])), None)
        if pair is None:
            if not any(key.endswith(b) for _, b in PEFT_PAIRS):
                raise GenlabError(f"{where} has '{key}', which is not a LoRA weight.")
            continue
        path = key.removesuffix(pair[0])
        b = state.get(path + pair[1])
        if b is None:
            raise GenlabError(f"{where} has {key} but no matching up / lora_B weight.")
        prefix = next((p for p in DIFFUSERS if path.startswith(p)), "")
        part = DIFFUSERS.get(prefix, "unet")  # genlab's own file: the U-Net's keys, bare
        a = state[key]
        alpha = alphas.get(part, a.shape[0])
        parsed.parts.setdefault(part, {})[path[len(prefix) :]] = (a, b, alpha / a.shape[0])
    return parsed


def _adapter_alphas(metadata: dict[str, str]) -> dict[str, float]:
    """{part: lora_alpha} where diffusers wrote the adapters' peft config into the header."""
    try:
        doc = json.loads(metadata.get("lora_adapter_metadata", "{}"))
        return {
            k.removesuffix(".lora_alpha"): float(v)
            for k, v in doc.items()
            if k.endswith(".lora_alpha")
        }
    except (ValueError, TypeError, AttributeError):
        return {}


def sdxl_block_path(path: str, layers_per_block: int = 2) -> str:
    """An SDXL U-Net path in the original block names (kohya's) -> diffusers' names, for the
    parts a LoRA adapts (the attention blocks); anything else is kept as it is."""
    per = layers_per_block + 1
    m = re.match(r"input_blocks[._](\d+)[._]1[._](.*)", path)
    if m:
        n = int(m.group(1)) - 1
        return f"down_blocks.{n // per}.attentions.{n % per}.{m.group(2)}"
    m = re.match(r"middle_block[._]1[._](.*)", path)
    if m:
        return f"mid_block.attentions.0.{m.group(1)}"
    m = re.match(r"output_blocks[._](\d+)[._]1[._](.*)", path)
    if m:
        n = int(m.group(1))
        return f"up_blocks.{n // per}.attentions.{n % per}.{m.group(2)}"
    return path


def original_block_path(path: str, layers_per_block: int = 2) -> str:
    """The inverse of ``sdxl_block_path``: a diffusers SDXL U-Net path -> the original block
    names kohya's sd-scripts trains SDXL on and webui/Forge read (``down_blocks.1.attentions.0``
    -> ``input_blocks.4.1``: input block 0 is the first convolution, then each level has
    ``layers_per_block`` blocks and a downsampler; the attention is a block's second layer)."""
    per = layers_per_block + 1
    m = re.match(r"down_blocks\.(\d+)\.attentions\.(\d+)\.(.*)", path)
    if m:
        return f"input_blocks.{int(m.group(1)) * per + int(m.group(2)) + 1}.1.{m.group(3)}"
    m = re.match(r"mid_block\.attentions\.0\.(.*)", path)
    if m:
        return f"middle_block.1.{m.group(1)}"
    m = re.match(r"up_blocks\.(\d+)\.attentions\.(\d+)\.(.*)", path)
    if m:
        return f"output_blocks.{int(m.group(1)) * per + int(m.group(2))}.1.{m.group(3)}"
    return path


def to_kohya(
    parts: dict[str, dict[str, tuple[torch.Tensor, torch.Tensor, float]]], version: str = SD1
):
    """The same layers in kohya's layout, as sd-scripts writes them and webui reads them:
    ``lora_unet_PATH.lora_down.weight`` and so on, PATH in diffusers' module names for SD 1.x
    and in the original block names for SDXL (``lora_unet_input_blocks_4_1_...``, kohya's
    SDXL layout); the text encoder ``lora_te_`` (SD 1.x) or SDXL's two ``lora_te1_`` and
    ``lora_te2_``, their paths with CLIP's ``text_model`` level
    (``lora_te_text_model_encoder_layers_0_...``)."""
    from .adapters import text_model_path

    first = "lora_te1_" if version == SDXL else "lora_te_"
    prefix = {"unet": "lora_unet_", "text_encoder": first, "text_encoder_2": "lora_te2_"}
    out = {}
    for part, layers in parts.items():
        for path, (a, b, mult) in layers.items():
            if part != "unet":
                path = text_model_path(path)
            elif version == SDXL:
                path = original_block_path(path)
            name = prefix[part] + path.replace(".", "_")
            out[f"{name}.lora_down.weight"] = a.contiguous()
            out[f"{name}.lora_up.weight"] = b.contiguous()
            out[f"{name}.alpha"] = torch.tensor(float(mult * a.shape[0]), dtype=a.dtype)
    return out
