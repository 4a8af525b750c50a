"""The Train page's work, free of Gradio: uploaded images and captions (or a folder inside
``--datasets-dir``, by name, or the example genlab ships) -> a LoRA run under
``<runs>/loras/NAME``, trained in a worker thread that reports each step and stops on request
with a checkpoint (so "resume" continues it). A request never names a server path."""

from __future__ import annotations

import os
import re
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..errors import Cancelled, GenlabError
from .worker import Emit, Step, Stopped, Trained, stream

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
#: the most files and folders a training folder (or an upload) may hold: walking is bounded
MAX_DATASET_FILES = 10_000
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff"}
#: the name the datasets list gives the example shipped in genlab (data/examples/teal); it
#: wins over a folder of --datasets-dir by the same name
EXAMPLE_DATASET = "example: teal shapes (shipped)"
#: what the Train tab's "try the example" button fills in: a short run of that example
EXAMPLE_SETTINGS = {"name": "teal-example", "steps": 200, "caption": ""}


def lora_root(runs_dir: str | None) -> Path:
    return Path(runs_dir or "runs").resolve() / "loras"


def check_name(name: str) -> str:
    """A LoRA's name: a folder name of letters, digits, '-', '_' and '.', nothing else."""
    name = (name or "").strip()
    if not _NAME.match(name) or name in (".", ".."):
        raise GenlabError(
            "Name the LoRA with letters, digits, '-', '_' or '.' (at most 64), e.g. 'teal'."
        )
    return name


def dataset_names(root: str | Path | None) -> list[str]:
    """The folders a request may name for training: the example genlab ships, then the
    sub-folders of ``--datasets-dir`` (none without it), those that stay inside it once
    links are followed."""
    if not root or not Path(root).is_dir():
        return [EXAMPLE_DATASET]
    root = Path(root).resolve()
    found = sorted(
        child.name for child in root.iterdir()
        if not child.name.startswith(".") and child.is_dir()
        and child.resolve().is_relative_to(root)
    )  # fmt: skip
    return [EXAMPLE_DATASET, *found]


def dataset_folder(root: str | Path | None, name: str) -> Path:
    """The folder ``name`` inside ``root`` (``--datasets-dir``), checked after every link is
    followed and walked with a bound; messages name no path, so a request that names one
    outside learns nothing about it."""
    if not root:
        raise GenlabError(
            "This page trains on uploaded images or its shipped example only; start it with "
            "--datasets-dir DIR to train on the folders inside DIR."
        )
    root = Path(root).resolve()
    name = (name or "").strip()
    folder = (root / name).resolve()
    if not name or folder == root or not folder.is_relative_to(root) or not folder.is_dir():
        raise GenlabError("Pick a folder of the datasets list (the folders inside --datasets-dir).")
    seen = 0
    for top, dirs, names in os.walk(folder, followlinks=False):
        seen += len(dirs) + len(names)
        if seen > MAX_DATASET_FILES:
            raise GenlabError(
                f"The folder '{name}' holds more than {MAX_DATASET_FILES} files and folders; "
                "give a smaller one."
            )
        for entry in names:
            if not (Path(top) / entry).resolve().is_relative_to(root):
                raise GenlabError(
                    f"The folder '{name}' holds links to files outside the datasets folder; "
                    "copy the images in instead."
                )
    return folder


def gather_images(
    files: list[str] | None, folder: str | None, target: Path, *,
    uploads: tuple[Path, ...] = (), datasets: str | Path | None = None,
) -> Path:  # fmt: skip
    """The training images: uploaded files (images and NAME.txt captions, each of which must
    lie in one of the ``uploads`` folders once links are followed) copied into ``target``, or
    a folder of ``datasets`` named by ``folder``, or the shipped example (``folder`` is
    EXAMPLE_DATASET). A request never names any other path."""
    if files:
        if len(files) > MAX_DATASET_FILES:
            raise GenlabError(f"Upload at most {MAX_DATASET_FILES} files.")
        roots = [Path(u).resolve() for u in uploads]
        paths = [Path(f).resolve() for f in files]
        if not all(any(p.is_relative_to(r) for r in roots) for p in paths):
            raise GenlabError("Only files uploaded to this page can be trained on.")
        target.mkdir(parents=True, exist_ok=True)
        for path in paths:
            if path.suffix.lower() in IMAGE_SUFFIXES | {".txt"} and path.is_file():
                shutil.copyfile(path, target / path.name)
        return target
    if folder == EXAMPLE_DATASET:
        from ..data.examples import TEAL

        return TEAL
    if folder:
        return dataset_folder(datasets, folder)
    raise GenlabError(
        "Upload images (with NAME.txt captions if you have them) or pick a folder of the "
        "datasets list."
    )


class LoraTraining:
    """One LoRA training at a time; ``run`` yields ``worker.Step`` events (with the step's
    metrics) and ends with ``worker.Trained`` or, once ``cancel`` is set (or the iterator is
    closed: the page's client left), ``worker.Stopped`` with a checkpoint kept."""

    def __init__(self) -> None:
        self.cancel = threading.Event()

    def run(self, cfg: Any, out: Path, resume: bool) -> Iterator[Any]:
        from ..finetune.train import finetune
        from ..training.runconfig import RunConfig

        steps = RunConfig.from_dict(cfg).train.steps
        self.cancel.clear()

        def work(emit: Emit, stop: threading.Event) -> Trained | Stopped:
            last = 0

            def on_step(step: int, metrics: dict) -> None:
                nonlocal last
                last = step
                emit(Step(step, steps, dict(metrics)))
                if stop.is_set():
                    raise Cancelled()

            try:
                return Trained(finetune(cfg, out, "latest" if resume else None, on_step), out)
            except Cancelled:
                return Stopped(last, out)

        return stream(work, self.cancel)
