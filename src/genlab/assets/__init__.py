"""Weights shipped inside the package, each in its own folder: ``model.safetensors``,
``config.yaml`` and ``card.json`` (sha256, recipe, command, time, metric reached)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..errors import GenlabError

ROOT = Path(__file__).resolve().parent


def folder(name: str) -> Path:
    return ROOT / name


def names() -> list[str]:
    """The models shipped in genlab (each a folder with a card), by name."""
    return sorted(p.name for p in ROOT.iterdir() if (p / "card.json").is_file())


def shipped_name(path: str | Path) -> str | None:
    """The name of the shipped model whose folder ``path`` is, or None."""
    try:
        resolved = Path(path).resolve()
    except (OSError, RuntimeError):
        return None
    if resolved.parent == ROOT and (resolved / "card.json").is_file():
        return resolved.name
    return None


def run_meta(name: str) -> dict[str, Any]:
    """What a run folder's meta.json says, for the shipped model ``name``: its model, and the
    data, options and held-out split of the recipe its card names (the last, where it names
    several; the recipes hold out 20% with split seed 0), so ``genlab eval`` and ``genlab
    sample`` read it as a run."""
    import yaml

    from ..serialization import CONFIG

    info = card(name)
    meta: dict[str, Any] = {
        "model": yaml.safe_load((folder(name) / CONFIG).read_text())["model"],
        "shipped": name,
        "test_fraction": 0.2,
        "split_seed": 0,
    }
    named = info.get("recipe") or (info.get("recipes") or [""])[-1]  # the last trains it
    recipe = ROOT.parent / "recipes" / f"{named}.yaml"
    if named and recipe.is_file():
        doc = yaml.safe_load(recipe.read_text()) or {}
        meta["data"], meta["data_options"] = doc.get("data"), doc.get("data_options") or {}
    else:
        raise GenlabError(f"The shipped model '{name}' names no recipe, so no data to read it on.")
    return meta


def checked_folder(name: str) -> Path:
    """The folder of shipped weights ``name``, after checking them against their card."""
    from ..hashing import sha256
    from ..serialization import WEIGHTS

    path = folder(name)
    if not (path / WEIGHTS).is_file():
        raise GenlabError(f"The shipped model '{name}' is missing from this install ({path}).")
    if sha256(path / WEIGHTS) != json.loads((path / "card.json").read_text())["sha256"]:
        raise GenlabError(f"The shipped model '{name}' does not match its card; reinstall genlab.")
    return path


def load_shipped(name: str) -> Any:
    """A shipped model, loaded (for example ``load_shipped("ddpm-digits")``)."""
    from ..serialization import load

    return load(checked_folder(name))


def card(name: str) -> dict[str, Any]:
    return json.loads((folder(name) / "card.json").read_text())


def write_fp16(model: Any, path: Path) -> Path:
    """Write ``model`` into the folder ``path``, made afresh, as shipped weights are stored:
    float32 arrays as fp16 safetensors, and its config.yaml (the card is the caller's)."""
    import shutil

    import numpy as np
    import yaml
    from safetensors.numpy import save_file

    from ..serialization import CONFIG, WEIGHTS

    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    arrays = {
        k: np.ascontiguousarray(v.astype(np.float16) if v.dtype == np.float32 else v)
        for k, v in model.state_arrays().items()
    }
    save_file(arrays, str(path / WEIGHTS))
    doc = {"model": model.name, "config": model.get_config()}
    (path / CONFIG).write_text(yaml.safe_dump(doc, sort_keys=False))
    return path / WEIGHTS
