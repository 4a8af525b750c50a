"""What the page can offer: the text-to-image models (the built-in one, latent-diffusion runs,
Stable Diffusion folders and single-file checkpoints found under ``--models-dir``), the
trained runs of every family (under ``--runs-dir``) and, beside them, the models shipped in
genlab (``shipped: NAME``). The page only ever loads a model by a name from this catalog, so
a request cannot make the server open an arbitrary path."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from ..backends import SHIPPED as SHIPPED_MODELS
from ..errors import GenlabError
from ..generation.placement import CPU, Placement
from ..interop.diffusers.files import is_diffusers_folder, is_stable_diffusion

#: folders not searched for runs: virtual environments, caches, version control
_SKIP = {".git", ".venv", "venv", "node_modules", "__pycache__", ".gradio"}
#: how the model lab names a model shipped in genlab (a run folder's name has no ": ")
SHIPPED = "shipped: "


@lru_cache(maxsize=1)
def shipped_runs() -> tuple[str, ...]:
    """The shipped models the model lab offers, by its names for them: those that sample
    (a guidance classifier is a part of other models), read as runs by ``genlab.runs``."""
    from .. import assets
    from ..registry import model_class
    from ..runs import read_meta

    return tuple(
        SHIPPED + name for name in assets.names()
        if model_class(read_meta(assets.folder(name))["model"]).generative
    )  # fmt: skip


def _folders(root: Path, depth: int) -> list[Path]:
    """Sub-folders of ``root`` down to ``depth`` levels, sorted, skipping hidden ones and
    the inside of a folder that is itself a model or a run."""
    if not root.is_dir() or depth < 0:
        return []
    out = []
    for child in sorted(root.iterdir()):
        if child.is_dir() and not child.name.startswith(".") and child.name not in _SKIP:
            out.append(child)
            if not ((child / "config.yaml").is_file() or is_diffusers_folder(child)):
                out.extend(_folders(child, depth - 1))
    return out


def unreadable_reason(file: Path, error: BaseException) -> str:
    """Why a .safetensors file cannot be read, in a few words for the page's list."""
    try:
        with file.open("rb") as f:
            head = f.read(4)
    except OSError as e:
        return f"cannot be opened ({e.strerror or e})"
    if head[:1] == b"\x80" or head == b"PK\x03\x04":
        return "a pickle or torch checkpoint under a .safetensors name (genlab never unpickles)"
    text = str(error).removeprefix("Error while deserializing header: ").strip()
    return f"not a readable safetensors file ({text or type(error).__name__})"


def _single_files(root: Path, unreadable: dict[Path, str] | None = None) -> list[Path]:
    """Stable Diffusion checkpoints as single .safetensors files in ``root`` and the folders
    below it: those whose header names U-Net weights in the original layout (the header is
    read, the weights are not; LoRA files and other weights are left out). A file whose
    header cannot be read goes into ``unreadable`` with its reason."""
    from safetensors import safe_open

    out = []
    for file in sorted([*root.glob("*.safetensors"), *root.glob("*/*.safetensors")]):
        try:
            with safe_open(str(file), "pt") as f:
                if any(k.startswith("model.diffusion_model.") for k in f.keys()):
                    out.append(file)
        except Exception as e:  # truncated, a huge header, a pickle: listed, never loaded
            if unreadable is not None:
                unreadable[file] = unreadable_reason(file, e)
    return out


def _model_name(folder: Path) -> str | None:
    """The registry name a run or model folder holds (from its config), or None."""
    for config in (folder / "model" / "config.yaml", folder / "config.yaml"):
        if config.is_file():
            import yaml

            try:
                doc = yaml.safe_load(config.read_text())
            except (OSError, yaml.YAMLError):
                return None
            return doc.get("model") if isinstance(doc, dict) else None
    return None


@dataclass
class Catalog:
    """Names shown in the pickers -> folders on disk."""

    text_to_image: dict[str, str] = field(default_factory=lambda: {s: s for s in SHIPPED_MODELS})
    runs: dict[str, Path] = field(default_factory=dict)
    loras: dict[str, Path] = field(default_factory=dict)
    #: model files found but not readable: name -> reason (shown in the page, never loaded)
    unreadable: dict[str, str] = field(default_factory=dict)
    models_dir: str | None = None
    runs_dir: str | None = None
    model_config: str | None = None  # the diffusers folder single-file checkpoints use
    place: Placement = CPU  # where Stable Diffusion runs (genlab's own models: the CPU)
    datasets_dir: str | None = None  # the Train page's folders (by name, inside this one)

    @classmethod
    def scan(
        cls, models_dir: str | Path | None, runs_dir: str | Path | None,
        model_config: str | Path | None = None, place: Placement = CPU,
    ) -> Catalog:  # fmt: skip
        cat = cls(
            models_dir=str(models_dir) if models_dir else None,
            runs_dir=str(runs_dir) if runs_dir else None,
            model_config=str(model_config) if model_config else None,
            place=place,
        )
        for root in {Path(p).resolve() for p in (models_dir, runs_dir) if p}:
            bad: dict[Path, str] = {}
            for file in _single_files(root, bad):
                cat.text_to_image[str(file.relative_to(root))] = str(file)
            for file, reason in bad.items():
                cat.unreadable[str(file.relative_to(root))] = reason
            for folder in _folders(root, 2):
                name = str(folder.relative_to(root))
                if is_diffusers_folder(folder):
                    cat.text_to_image[name] = str(folder)
                    continue
                model = _model_name(folder)
                if model == "latent-diffusion":
                    cat.text_to_image[name] = str(folder)
                if model == "lora":
                    cat.loras[name] = folder
                if model and (folder / "meta.json").is_file():
                    cat.runs[name] = folder
        return cat

    def rescan(self) -> Catalog:
        """Look again under the same folders (a run trained, a model copied in since): the
        lists are replaced by what is found now; the folders and settings stay."""
        fresh = Catalog.scan(self.models_dir, self.runs_dir, self.model_config, self.place)
        self.text_to_image, self.runs = fresh.text_to_image, fresh.runs
        self.loras, self.unreadable = fresh.loras, fresh.unreadable
        return self

    def model_spec(self, name: str) -> tuple[str, str | None, Placement]:
        """load_backend's arguments for a text-to-image model named in the picker: its
        spec, the config folder a single file takes, and its placement (Stable Diffusion's
        from the command line; genlab's own models run on the CPU)."""
        if name not in self.text_to_image:
            raise GenlabError(f"Unknown model '{name}'; pick one of the list.")
        spec = self.text_to_image[name]
        config = self.model_config if Path(spec).is_file() else None
        return spec, config, self.place if is_stable_diffusion(spec) else CPU

    def lora(self, name: str) -> Path:
        if name not in self.loras:
            raise GenlabError(f"Unknown LoRA '{name}'; pick one of the list.")
        return self.loras[name]

    def lora_named(self, name: str) -> Path:
        """The LoRA a prompt's ``<lora:NAME:WEIGHT>`` tag names: a catalog name, or the last
        part of exactly one ("my-lora" for "loras/my-lora"), as webui names LoRA files."""
        if name in self.loras:
            return self.loras[name]
        matches = [path for key, path in self.loras.items() if Path(key).name == name]
        if len(matches) == 1:
            return matches[0]
        known = ", ".join(sorted(self.loras)) or "none"
        raise GenlabError(
            f"Unknown LoRA '{name}' in the prompt"
            + ("; its name is ambiguous" if matches else "")
            + f"; the LoRAs are: {known}."
        )

    def lab_names(self) -> list[str]:
        """The model lab's list: the user's runs, then the models shipped in genlab."""
        return [*self.runs, *shipped_runs()]

    def run(self, name: str) -> Path:
        """The folder of a run of the list (a shipped model's: checked against its card)."""
        if name in self.runs:
            return self.runs[name]
        if name in shipped_runs():
            from .. import assets

            return assets.checked_folder(name.removeprefix(SHIPPED))
        raise GenlabError(f"Unknown run '{name}'; pick one of the list.")


def inside(path: Path, folder: Path) -> bool:
    """Whether ``path`` lies inside ``folder`` once every link of both is followed (a file
    of a served folder that links elsewhere is not the folder's)."""
    try:
        return path.resolve(strict=True).is_relative_to(folder.resolve(strict=True))
    except (OSError, RuntimeError):  # missing, a loop of links
        return False


def run_summary(folder: Path) -> dict:
    """A run's meta and the metrics it wrote (metrics.json, summary.json, eval.json), or a
    shipped model's card (how it was trained, the metrics it reached); a file that links
    outside the run folder is not read."""
    out: dict = {}
    for name in ("meta.json", "summary.json", "eval.json", "metrics.json", "card.json"):
        path = folder / name
        if path.is_symlink() and not inside(path, folder):
            out[path.stem] = f"{name} links outside the run folder: not read"
        elif path.is_file():
            try:
                out[path.stem] = json.loads(path.read_text())
            except (OSError, ValueError):
                out[path.stem] = f"unreadable {name}"
    return out
