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
    """A LoRA run or model folder written by ``genlab finetune lora``."""
    import yaml
    from safetensors.torch import load_file

    from ..serialization import CONFIG, WEIGHTS, model_dir
    from ..training.checkpoint import sha256

    path = Path(path)
    if not path.exists():
        raise GenlabError(f"LoRA {path} does not exist.")
    folder = model_dir(path)
    doc = yaml.safe_load((folder / CONFIG).read_text())
    if not isinstance(doc, dict) or doc.get("model") != "lora":
        raise GenlabError(f"{path} is not a LoRA (its config names no 'lora' model).")
    config = doc.get("config") or {}
    return LoraFile(
        name=path.resolve().name,
        state=load_file(str(folder / WEIGHTS)),
        rank=int(config["rank"]),
        alpha=float(config["alpha"]),
        base_sha256=str(config.get("base_sha256", "")),
        sha256=sha256(folder / WEIGHTS),
    )
