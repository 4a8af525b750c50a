"""Checkpoints that survive crashes: written to a temporary folder, given a manifest of
sha256 sums, then renamed into place. ``latest`` skips folders that are incomplete or whose
files do not match their manifest.

A checkpoint folder ``step-N/`` holds ``model.safetensors``, ``ema.safetensors`` and
``state.pt`` (optimizer, scheduler, step, RNG: tensors and numbers only, read back with
``torch.load(weights_only=True)``), and ``manifest.json`` last.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
from pathlib import Path
from typing import Any

from ..errors import GenlabError
from ..hashing import sha256
from ..serialization import WRITE_ERRORS, why

log = logging.getLogger("genlab.training")
MANIFEST = "manifest.json"
_STEP = re.compile(r"^step-(\d+)$")


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def save_checkpoint(folder: Path, step: int, tensors: dict[str, dict], state: dict[str, Any]):
    """Write ``folder/step-{step}`` atomically. ``tensors`` maps a file stem to a dict of
    named tensors (saved as safetensors); ``state`` goes to state.pt. A write that fails
    (a full disk, a lost mount) removes its temporary folder and says so in one sentence;
    the checkpoints already there are untouched."""
    final = folder / f"step-{step}"
    tmp = folder / f".tmp-step-{step}-{os.getpid()}"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        _write(tmp, step, tensors, state)
        if final.exists():  # a re-run of the same step: replace it
            shutil.rmtree(final)
        tmp.rename(final)
        _fsync_dir(folder)
    except WRITE_ERRORS as e:
        shutil.rmtree(tmp, ignore_errors=True)
        raise GenlabError(
            f"Could not write checkpoint {final} ({why(e, folder)}); the earlier checkpoints in "
            "that folder are intact."
        ) from None
    return final


def _write(tmp: Path, step: int, tensors: dict[str, dict], state: dict[str, Any]) -> None:
    import torch
    from safetensors.torch import save_file

    files = []
    for stem, named in tensors.items():
        path = tmp / f"{stem}.safetensors"
        save_file({k: v.detach().cpu().contiguous() for k, v in named.items()}, str(path))
        files.append(path)
    torch.save(state, tmp / "state.pt")
    files.append(tmp / "state.pt")
    manifest = {"step": step, "files": {p.name: sha256(p) for p in files}}
    (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1))
    for p in [*files, tmp / MANIFEST]:
        with p.open("rb") as f:
            os.fsync(f.fileno())


def verify(path: Path) -> bool:
    """True if the folder has a manifest and every file matches its sha256."""
    try:
        manifest = json.loads((path / MANIFEST).read_text())
        return all(sha256(path / name) == digest for name, digest in manifest["files"].items())
    except (OSError, ValueError, KeyError, TypeError):
        return False


def checkpoints(folder: Path) -> list[tuple[int, Path]]:
    """Complete-looking checkpoint folders, oldest first (temporary ones are ignored)."""
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in folder.iterdir() if (m := _STEP.match(p.name))]
    return sorted(found)


def latest(folder: Path) -> Path | None:
    """The newest checkpoint whose files match its manifest; corrupt ones are skipped."""
    for _step, path in reversed(checkpoints(folder)):
        if verify(path):
            return path
        log.warning("skipping checkpoint %s: incomplete or corrupt", path)
    return None


def prune(folder: Path, keep_last: int) -> None:
    """Delete all but the newest ``keep_last`` checkpoints, and stale temporary folders."""
    for _, path in checkpoints(folder)[:-keep_last] if keep_last > 0 else []:
        shutil.rmtree(path, ignore_errors=True)
    for tmp in folder.glob(".tmp-step-*"):
        pid = tmp.name.rsplit("-", 1)[-1]
        if pid != str(os.getpid()):
            shutil.rmtree(tmp, ignore_errors=True)


def load_checkpoint(path: Path) -> tuple[dict[str, dict], dict[str, Any]]:
    """(tensors by file stem, state) of a verified checkpoint folder."""
    import torch
    from safetensors.torch import load_file

    if not verify(path):
        raise GenlabError(f"Checkpoint {path} is incomplete or corrupt (manifest mismatch).")
    try:
        tensors = {p.stem: load_file(str(p)) for p in sorted(path.glob("*.safetensors"))}
    except Exception as e:  # safetensors' own error types vary between versions
        raise GenlabError(f"Checkpoint {path} holds a weight file safetensors cannot read "
                          f"({' '.join(str(e).split())[:120]}).") from None  # fmt: skip
    # weights_only: tensors, numbers and containers, never an object's code. Whatever else
    # the file is, it is refused in genlab's words (torch's own message advises loading
    # it unsafely, which genlab never does).
    try:
        state = torch.load(path / "state.pt", weights_only=True, map_location="cpu")
    except Exception:
        raise GenlabError(
            f"Checkpoint {path / 'state.pt'} is not a genlab training state (tensors and "
            "numbers only); genlab does not load it."
        ) from None
    if not isinstance(state, dict) or not {"step", "rng", "optimizer"} <= set(state):
        raise GenlabError(f"Checkpoint {path / 'state.pt'} is not a genlab training state.")
    return tensors, state
