"""The Train page's work, free of Gradio: uploaded images and captions (or a folder) -> a
LoRA run under ``<runs>/loras/NAME``, trained in a worker thread that reports each step and
stops on request with a checkpoint (so "resume" continues it)."""

from __future__ import annotations

import queue
import re
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

from ..errors import GenlabError

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff"}


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


def gather_images(files: list[str] | None, folder: str, target: Path) -> Path:
    """The training images: uploaded files (images and NAME.txt captions) copied into
    ``target``, or an existing folder of the user's."""
    if files:
        target.mkdir(parents=True, exist_ok=True)
        for f in files:
            path = Path(f)
            if path.suffix.lower() in IMAGE_SUFFIXES | {".txt"}:
                shutil.copyfile(path, target / path.name)
        return target
    if folder and Path(folder).expanduser().is_dir():
        return Path(folder).expanduser()
    raise GenlabError("Upload images (with NAME.txt captions if you have them) or give a folder.")


class LoraTraining:
    """One LoRA training at a time; ``run`` yields ("step", step, steps, metrics) and ends
    with ("done", summary, folder) or ("cancelled", step, folder)."""

    def __init__(self) -> None:
        self.cancel = threading.Event()

    def run(self, cfg: dict, out: Path, resume: bool) -> Iterator[tuple]:
        from ..finetune.train import finetune
        from ..training.trainer import Cancelled

        events: queue.Queue = queue.Queue()
        steps = cfg["train"]["steps"]
        self.cancel.clear()

        def on_step(step: int, metrics: dict) -> None:
            events.put(("step", step, steps, dict(metrics)))
            if self.cancel.is_set():
                raise Cancelled()

        def work() -> None:
            try:
                events.put(("done", finetune(cfg, out, "latest" if resume else None, on_step)))
            except Cancelled:
                events.put(("cancelled",))
            except BaseException as e:
                events.put(("error", e))

        threading.Thread(target=work, daemon=True).start()
        last = 0
        while True:
            event = events.get()
            if event[0] == "step":
                last = event[1]
                yield event
            elif event[0] == "error":
                raise event[1]
            elif event[0] == "cancelled":
                yield ("cancelled", last, out)
                return
            else:
                yield ("done", event[1], out)
                return
