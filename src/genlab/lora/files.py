"""Reading a trained LoRA without rebuilding its base: the folder's config (rank, alpha, the
base's sha256) and the adapters' safetensors."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from ..errors import GenlabError


@dataclass(frozen=True)
class LoraFile:
    name: str
    state: dict[str, torch.Tensor]
    rank: int
    alpha: float
    base_sha256: str
    sha256: str

    def factor(self, scale: float) -> float:
        """What B A is multiplied by at user scale ``scale``."""
        return scale * self.alpha / self.rank


def read_lora(path: str | Path) -> LoraFile:
    """A LoRA run or model folder written by ``genlab finetune lora``, checked: its config
    names a LoRA with a whole rank and a positive alpha, and every adapter is a (A, B) pair
    of that rank."""
    from ..hashing import sha256
    from ..serialization import WEIGHTS, read_saved
    from .adapters import pairs

    path = Path(path)
    if not path.exists():
        raise GenlabError(f"LoRA {path} does not exist.")
    folder, name, config, arrays = read_saved(path)
    if name != "lora":
        raise GenlabError(f"{path} is not a LoRA (its config names a '{name}' model).")
    try:
        rank, alpha = int(config["rank"]), float(config["alpha"])
        if rank < 1 or not alpha > 0:
            raise ValueError("rank must be >= 1 and alpha > 0")
    except (KeyError, TypeError, ValueError) as e:
        raise GenlabError(f"{folder / 'config.yaml'} has no valid rank and alpha ({e}).") from e
    state = {k: torch.from_numpy(v.copy()) for k, v in arrays.items()}
    for key, (a, b) in pairs(state).items():
        if a.shape[0] != rank or b.shape[1] != rank:
            raise GenlabError(f"{folder / WEIGHTS}: the adapter of {key} is not of rank {rank}.")
    return LoraFile(
        name=path.resolve().name,
        state=state,
        rank=rank,
        alpha=alpha,
        base_sha256=str(config.get("base_sha256", "")),
        sha256=sha256(folder / WEIGHTS),
    )


def checked_loras(
    loras: tuple[tuple[str, float], ...], name: str, model_hash: str
) -> list[tuple[LoraFile, float]]:
    """(LoraFile, scale) of each (folder, scale) of a request, each checked against the
    base it is applied to (``name``, the sha256 of its weights)."""
    out = []
    for path, scale in loras:
        lora = read_lora(path)
        if model_hash and lora.base_sha256 and lora.base_sha256 != model_hash:
            raise GenlabError(
                f"The LoRA {lora.name} was trained on another base model (sha256 "
                f"{lora.base_sha256[:10]}), not on {name} ({model_hash[:10]})."
            )
        out.append((lora, float(scale)))
    return out


def applied_files(module, loras: list[tuple[LoraFile, float]]):
    """A block within which ``module`` carries each (LoraFile, scale) of ``loras``."""
    from .adapters import applied

    return applied(module, [(f.state, f.factor(s)) for f, s in loras])


def lora_parameters(loras: list[tuple[LoraFile, float]]) -> dict[str, str]:
    """What a PNG's parameters say of the LoRAs applied, as stable-diffusion-webui writes it."""
    if not loras:
        return {}
    return {
        "Lora hashes": ", ".join(f"{f.name}: {f.sha256[:12]}" for f, _ in loras),
        "Lora scales": ", ".join(f"{f.name}: {s:g}" for f, s in loras),
    }
