"""Saving and loading models: ``config.yaml`` + ``model.safetensors``, never pickle.

A save writes a complete folder next to the target (with ``manifest.json``: the sha256 of
every weight file, as checkpoints have) and swaps it in with renames, so an interrupted save leaves
the previous model intact; the next successful save removes what an interrupted one left.
A load checks the files against the manifest (a folder saved before manifests has none).
"""

from __future__ import annotations

import inspect
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from .errors import GenlabError

CONFIG = "config.yaml"
WEIGHTS = "model.safetensors"
MANIFEST = "manifest.json"
# File endings that hold pickled Python objects, which can run code when loaded.
PICKLE_SUFFIXES = {".pt", ".pth", ".ckpt", ".pkl", ".pickle", ".bin", ".joblib"}


def _write_errors() -> tuple[type[BaseException], ...]:
    from safetensors import SafetensorError

    # torch.save reports a failed write as a RuntimeError, safetensors as SafetensorError
    return (OSError, RuntimeError, SafetensorError)


#: What a failed write (a full disk, a lost mount) raises on the way to a checkpoint or model.
WRITE_ERRORS = _write_errors()


def why(e: BaseException, path: str | Path | None = None) -> str:
    """The reason of a failed write in a few words ("no space left on device")."""
    from .runfiles import why as reason

    return reason(e, path)


def save_model(model: Any, path: str | Path) -> Path:
    from safetensors.numpy import save_file

    path = Path(path)
    tmp = path.parent / f".{path.name}.tmp-{os.getpid()}"
    arrays = {k: np.ascontiguousarray(v) for k, v in model.state_arrays().items()}
    doc = {"model": model.name, "config": model.get_config()}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        save_file(arrays, str(tmp / WEIGHTS))
        for name, extra in model.extra_files().items():
            save_file({k: np.ascontiguousarray(v) for k, v in extra.items()}, str(tmp / name))
        (tmp / CONFIG).write_text(yaml.safe_dump(doc, sort_keys=False))
        _write_manifest(tmp)
        _swap_in(tmp, path)
    except WRITE_ERRORS as e:
        shutil.rmtree(tmp, ignore_errors=True)
        kept = "; the model saved there before is intact" if path.exists() else ""
        raise GenlabError(f"Could not save the model to {path} ({why(e, path)}){kept}.") from None
    _clean_leftovers(path)
    return path


def _write_manifest(folder: Path) -> None:
    import json

    from .hashing import sha256

    # The weight files; config.yaml is checked on its own, key by key, when it is read.
    files = {p.name: sha256(p) for p in sorted(folder.glob("*.safetensors")) if p.is_file()}
    (folder / MANIFEST).write_text(json.dumps({"files": files}, indent=1))


def _swap_in(new: Path, path: Path) -> None:
    from .runfiles import remove

    if not os.path.lexists(path):
        new.rename(path)
        return
    old = path.parent / f".{path.name}.old-{os.getpid()}"
    if os.path.lexists(old):
        remove(old)
    path.rename(old)  # a link there is renamed itself: its target is never written
    new.rename(path)
    remove(old)


def _clean_leftovers(path: Path) -> None:
    """What saves killed between their renames left beside ``path``: the previous folders
    (``.NAME.old-PID``, no longer needed once a save has succeeded) and the temporary folders
    of processes that are gone."""
    from .runfiles import alive, remove

    for left in path.parent.glob(f".{path.name}.*-*"):
        kind, _, pid = left.name[len(path.name) + 2 :].partition("-")
        if kind == "old" or (kind == "tmp" and pid.isdigit() and not alive(int(pid))):
            try:
                remove(left)
            except OSError:
                pass  # another process's, or not ours to remove: harmless


def model_dir(path: Path) -> Path:
    """The folder holding config.yaml: the path itself, or a run folder's ``model/``."""
    if path.is_file():
        if path.suffix.lower() in PICKLE_SUFFIXES:
            raise GenlabError(
                f"{path} is a pickle-based file; genlab refuses to unpickle files because "
                "they can run arbitrary code. Convert it to safetensors first."
            )
        raise GenlabError(f"{path} is a file; genlab.load expects a model or run folder.")
    if (path / CONFIG).is_file() and (path / WEIGHTS).is_file():
        return path
    if (path / "model" / CONFIG).is_file():
        return path / "model"
    # A save interrupted between its two renames leaves only the previous folder, renamed.
    olds = sorted(path.parent.glob(f".{path.name}.old-*"))
    if not path.exists() and olds:
        return model_dir(olds[-1])
    if not path.exists():
        raise GenlabError(f"{path} does not exist.")
    raise GenlabError(f"{path} holds no genlab model ({CONFIG} and {WEIGHTS} not found).")


def read_saved(path: str | Path) -> tuple[Path, str, dict[str, Any], dict[str, Any]]:
    """(folder, model name, config, weight arrays) of a saved model, each file checked with
    a sentence naming it; nothing is built or executed."""
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    folder = model_dir(Path(path))
    check_manifest(folder)
    from .runfiles import read_yaml

    doc = read_yaml(folder / CONFIG, links=True)
    try:
        name, config = doc["model"], doc.get("config") or {}
        if not isinstance(name, str) or not isinstance(config, dict):
            raise TypeError("'model' must be a name and 'config' a mapping")
    except (yaml.YAMLError, KeyError, TypeError) as e:
        reason = " ".join(str(e).split())  # YAML's messages span lines
        raise GenlabError(
            f"{folder / CONFIG} is not a valid genlab model config ({reason})."
        ) from e
    try:
        arrays = load_file(str(folder / WEIGHTS))
    except (SafetensorError, OSError) as e:
        raise GenlabError(f"{folder / WEIGHTS} is not a readable safetensors file ({e}).") from e
    return folder, name, config, arrays


def check_manifest(folder: Path) -> None:
    """One sentence naming the first file of a saved model that does not match the sha256 its
    ``manifest.json`` gives (a tampered or damaged weight file); no manifest: nothing to check."""
    import json

    from .hashing import sha256

    manifest = folder / MANIFEST
    if not os.path.lexists(manifest):
        return
    try:
        files = json.loads(manifest.read_text())["files"]
        if not isinstance(files, dict):
            raise TypeError("'files' is not a mapping")
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise GenlabError(f"{manifest} is not a valid manifest ({e}).") from None
    for name, digest in files.items():
        file = folder / str(name)
        if file.parent != folder or not file.is_file():
            raise GenlabError(f"{file} is listed in {manifest} but missing.")
        if sha256(file) != digest:
            raise GenlabError(
                f"{file} does not match the sha256 in {manifest}; the file was changed or "
                "damaged after it was saved."
            )


def load(path: str | Path) -> Any:
    """Load a model saved by ``model.save`` (or a run folder written by the CLI)."""
    from .registry import model_class

    folder, name, config, arrays = read_saved(path)
    try:
        cls = model_class(name)
    except GenlabError as e:
        raise GenlabError(f"{folder / CONFIG} names a model genlab does not know ({e})") from e
    model = construct(cls, name, config, folder / CONFIG)
    try:
        model.load_state_arrays(arrays)
    except (RuntimeError, ValueError, KeyError) as e:  # torch: many lines, keep one
        lines = [x.strip() for x in str(e).splitlines() if "mismatch" in x or "shape" in x]
        raise GenlabError(
            f"{folder / WEIGHTS} does not fit the model {folder / CONFIG} describes "
            f"({(lines or [str(e)])[0]})."
        ) from e
    return model


def _fits(value: Any, default: Any) -> bool:
    """Whether a saved value has the kind of the parameter's default (an int is a float)."""
    if isinstance(default, bool) or isinstance(value, bool):
        return isinstance(value, bool) and isinstance(default, bool)
    if isinstance(default, int | float):
        return isinstance(value, int | float) and (
            isinstance(default, float) or isinstance(value, int)
        )
    if isinstance(default, str):
        return isinstance(value, str)
    if isinstance(default, tuple | list):
        return isinstance(value, tuple | list)
    return True


def construct(cls: Any, name: str, config: dict[str, Any], source: Path) -> Any:
    """``cls(**config)`` for a config read from ``source``; a key the class does not take,
    a value of another kind than the parameter's default, or one the class refuses is one
    sentence naming the file (a tampered or foreign config never reaches a traceback)."""
    params = inspect.signature(cls.__init__).parameters
    if not any(p.kind is p.VAR_KEYWORD for p in params.values()):
        unknown = sorted(set(config) - set(params) - {"self"})
        if unknown:
            raise GenlabError(f"{source} sets '{unknown[0]}', which a {name} model does not have.")
    for key, value in config.items():
        default = params[key].default if key in params else inspect.Parameter.empty
        if default not in (inspect.Parameter.empty, None) and not _fits(value, default):
            raise GenlabError(
                f"{source} gives {key} = {value!r}; a {name} model takes "
                f"{type(default).__name__} values there."
            )
    try:
        return cls(**config)
    except GenlabError as e:
        raise GenlabError(f"{source}: {e}") from e
    except (TypeError, ValueError, RuntimeError, OverflowError, MemoryError) as e:
        raise GenlabError(f"{source} does not describe a valid {name} model ({e}).") from e
