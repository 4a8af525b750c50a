"""Reading a LoRA without rebuilding its base: a folder written by ``genlab finetune lora``
(its config: rank, alpha, the base's sha256; the adapters' safetensors), or one
``.safetensors`` file in kohya's or diffusers' layout (``formats``), as people share them."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..errors import GenlabError
from .formats import SD1, VERSION_NAMES

#: a part of the model -> {layer path: (A, B, alpha / rank)}
Parts = dict[str, dict[str, tuple[torch.Tensor, torch.Tensor, float]]]


@dataclass(frozen=True)
class LoraFile:
    """``state``: a genlab LoRA's U-Net adapters (peft keys), which ``factor`` scales (its
    text-encoder adapters, where it trained them, are in ``parts`` only);
    ``parts``: every LoRA's layers by the part of the model they adapt (see ``Parts``);
    ``layout``: "genlab", "kohya" or "diffusers"; ``base_version``: what the file says it
    was trained on ("sd1", "sdxl", or "" where it does not say)."""

    name: str
    state: dict[str, torch.Tensor]
    rank: int
    alpha: float
    base_sha256: str
    sha256: str
    parts: Parts = field(default_factory=dict)
    layout: str = "genlab"
    base_version: str = ""

    def factor(self, scale: float) -> float:
        """What B A is multiplied by at user scale ``scale`` (a genlab LoRA: one alpha)."""
        return scale * self.alpha / self.rank


def read_lora(path: str | Path) -> LoraFile:
    """A LoRA run or model folder written by ``genlab finetune lora``, checked: its config
    names a LoRA with a whole rank and a positive alpha, and every adapter is a (A, B) pair
    of that rank; or a single ``.safetensors`` LoRA file (``read_lora_file``)."""
    from ..hashing import sha256
    from ..serialization import WEIGHTS, read_saved
    from .adapters import pairs

    path = Path(path)
    if not path.exists():
        raise GenlabError(f"LoRA {path} does not exist.")
    if path.is_file() and path.suffix.lower() == ".safetensors":
        return read_lora_file(path)
    folder, name, config, arrays = read_saved(path)
    if name != "lora":
        raise GenlabError(f"{path} is not a LoRA (its config names a '{name}' model).")
    try:
        rank, alpha = int(config["rank"]), float(config["alpha"])
        if rank < 1 or not alpha > 0:
            raise ValueError("rank must be >= 1 and alpha > 0")
    except (KeyError, TypeError, ValueError) as e:
        raise GenlabError(f"{folder / 'config.yaml'} has no valid rank and alpha ({e}).") from e
    by_part = saved_parts({k: torch.from_numpy(v.copy()) for k, v in arrays.items()})
    parts: Parts = {}
    for part, state in by_part.items():
        for key, (a, b) in pairs(state).items():
            if a.shape[0] != rank or b.shape[1] != rank:
                raise GenlabError(
                    f"{folder / WEIGHTS}: the adapter of {key} is not of rank {rank}."
                )
        parts[part] = {key: (a, b, alpha / rank) for key, (a, b) in pairs(state).items()}
    return LoraFile(
        name=path.resolve().name,
        state=by_part.get("unet", {}),
        rank=rank,
        alpha=alpha,
        base_sha256=str(config.get("base_sha256", "")),
        sha256=sha256(folder / WEIGHTS),
        parts=parts,
    )


#: the key prefixes of a genlab LoRA folder's text-encoder adapters (the U-Net's are bare)
TEXT_PREFIXES = {"text_encoder.": "text_encoder", "text_encoder_2.": "text_encoder_2"}


def saved_parts(state: dict[str, torch.Tensor]) -> dict[str, dict[str, torch.Tensor]]:
    """A genlab LoRA folder's adapters by part: ``text_encoder.PATH...`` and
    ``text_encoder_2.PATH...`` keys (a LoRA that trained them), the rest the U-Net's."""
    out: dict[str, dict[str, torch.Tensor]] = {}
    for key, value in state.items():
        prefix = next((p for p in TEXT_PREFIXES if key.startswith(p)), "")
        part = TEXT_PREFIXES.get(prefix, "unet")
        out.setdefault(part, {})[key[len(prefix) :]] = value
    return out


def read_lora_file(path: Path) -> LoraFile:
    """One ``.safetensors`` LoRA in kohya's or diffusers' layout; its hash is the one
    stable-diffusion-webui shows (``addnet_hash``: the tensors' bytes, so that editing the
    header's metadata does not change it)."""
    from safetensors import SafetensorError, safe_open

    from .formats import parse_file_state

    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
            state = {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise GenlabError(f"{path} is not a readable safetensors LoRA file ({reason}).") from None
    parsed = parse_file_state(state, metadata, path.name)
    alpha = float(metadata.get("ss_network_alpha") or 0) or float(parsed.rank)
    return LoraFile(
        name=path.stem,
        state={},
        rank=parsed.rank,
        alpha=alpha,
        base_sha256="",  # a shared file is used on any fine-tune of its base, as webui does
        sha256=addnet_hash(path),
        parts=parsed.parts,
        layout=parsed.layout,
        base_version=parsed.base_version,
    )


def addnet_hash(path: Path) -> str:
    """sha256 of a safetensors file's bytes after its header (kohya's and webui's LoRA hash)."""
    import hashlib

    h = hashlib.sha256()
    with Path(path).open("rb") as f:
        n = int.from_bytes(f.read(8), "little")
        f.seek(8 + n)
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def checked_loras(
    loras: tuple[tuple[str, float], ...], name: str, model_hash: str, version: str = "genlab"
) -> list[tuple[LoraFile, float]]:
    """(LoraFile, scale) of each (folder or file, scale) of a request, each checked against
    the base it is applied to (``name``, the sha256 of its weights, ``version``: "sd1",
    "sdxl" or "genlab" for genlab's own models)."""
    out = []
    for path, scale in loras:
        lora = read_lora(path)
        check_version(lora, name, version)
        if model_hash and lora.base_sha256 and lora.base_sha256 != model_hash:
            raise GenlabError(
                f"The LoRA {lora.name} was trained on another base model (sha256 "
                f"{lora.base_sha256[:10]}), not on {name} ({model_hash[:10]})."
            )
        out.append((lora, float(scale)))
    return out


def check_version(lora: LoraFile, name: str, version: str) -> None:
    """One sentence where a LoRA is for another kind of model than ``name`` is."""
    if lora.layout == "genlab":
        return  # its base's sha256 says more (checked_loras)
    if version == "genlab":
        raise GenlabError(
            f"The LoRA {lora.name} is a Stable Diffusion LoRA ({lora.layout} layout); {name} "
            "is one of genlab's own models, which take LoRAs trained by genlab on them."
        )
    if lora.base_version and lora.base_version != version:
        raise GenlabError(
            f"The LoRA {lora.name} is for {VERSION_NAMES[lora.base_version]}; {name} is "
            f"{VERSION_NAMES.get(version, version)}."
        )
    if version == SD1 and "text_encoder_2" in lora.parts:
        raise GenlabError(f"The LoRA {lora.name} adapts SDXL's second text encoder; {name} "
                          f"is {VERSION_NAMES[SD1]}.")  # fmt: skip


def applied_files(modules, loras: list[tuple[LoraFile, float]]):
    """A block within which ``modules`` (one module, the U-Net, or {part: module}) carry
    each (LoraFile, scale) of ``loras``: each layer's ``scale alpha / r B A`` added."""
    from torch import nn

    if isinstance(modules, nn.Module):
        modules = {"unet": modules}
    return _all_applied(modules, _per_part(modules, loras))


def _per_part(modules: dict, loras: list[tuple[LoraFile, float]]):
    """{part: [(adapter state, factor)]} of ``loras`` on ``modules``, checked."""
    per_part: dict[str, list[tuple[dict, float]]] = {}
    for lora, scale in loras:
        for part, layers in lora.parts.items():
            if part not in modules or modules[part] is None:
                raise GenlabError(f"The LoRA {lora.name} adapts a {part}, which this model "
                                  "does not have.")  # fmt: skip
            groups: dict[float, dict] = {}  # layers of one alpha / rank share one factor
            for path, (a, b, mult) in layers.items():
                group = groups.setdefault(mult, {})
                group[f"{path}.lora_A.weight"], group[f"{path}.lora_B.weight"] = a, b
            per_part.setdefault(part, []).extend((g, scale * m) for m, g in groups.items())
    return per_part


def fuse_parts(modules: dict, lora: LoraFile, scale: float) -> int:
    """Add ``lora`` at ``scale`` to the weights of ``modules`` ({part: module}) for good,
    every part it adapts (a Stable Diffusion LoRA's U-Net and text encoders); returns the
    layers changed."""
    from .adapters import fuse

    changed = 0
    for part, adapters in _per_part(modules, [(lora, scale)]).items():
        for state, factor in adapters:
            changed += fuse(modules[part], state, factor)
    return changed


@contextlib.contextmanager
def _all_applied(modules: dict, per_part: dict[str, list[tuple[dict, float]]]):
    from .adapters import applied

    with contextlib.ExitStack() as stack:  # a part that fails restores those before it
        for part, adapters in per_part.items():
            stack.enter_context(applied(modules[part], adapters))
        yield


def lora_parameters(loras: list[tuple[LoraFile, float]]) -> dict[str, str]:
    """What a PNG's parameters say of the LoRAs applied, as stable-diffusion-webui writes it."""
    if not loras:
        return {}
    return {
        "Lora hashes": ", ".join(f"{f.name}: {f.sha256[:12]}" for f, _ in loras),
        "Lora scales": ", ".join(f"{f.name}: {s:g}" for f, s in loras),
    }
