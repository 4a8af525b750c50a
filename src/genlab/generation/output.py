"""Writing generated images: each PNG with its parameters, a batch also as one grid."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..errors import GenlabError
from .pnginfo import save_png


def check_writable(out: str | Path) -> Path:
    """``out`` as a PNG path whose folder exists or can be made, before any work is done."""
    path = Path(out)
    if path.suffix.lower() != ".png":
        raise GenlabError(f"--out must name a .png file, got '{out}'.")
    if path.is_dir():
        raise GenlabError(f"--out {out} is a folder; give a file name ending in .png.")
    parent = path.parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise GenlabError(f"Cannot write {out}: {parent} is not a folder.")
    return path


def image_paths(out: str | Path, n: int) -> list[Path]:
    """One image: ``out`` itself; a batch: out-0.png, out-1.png ..."""
    path = Path(out)
    if n == 1:
        return [path]
    return [path.with_name(f"{path.stem}-{i}{path.suffix}") for i in range(n)]


def grid_of(images: list[Any]) -> Any:
    from ..viz.plots import image_grid

    arrays = np.stack([np.asarray(im.convert("RGB"), dtype=np.float32) / 255 for im in images])
    return image_grid(arrays.transpose(0, 3, 1, 2))


def save_result(result: Any, out: str | Path) -> list[Path]:
    """Write a GenerationResult; returns the paths written (the grid last)."""
    paths = image_paths(out, len(result.images))
    try:
        written = [
            save_png(im, p, params)
            for im, p, params in zip(result.images, paths, result.parameters, strict=True)
        ]
        if len(result.images) > 1:
            grid = Path(out).with_name(f"{Path(out).stem}-grid.png")
            written.append(save_png(grid_of(result.images), grid, result.parameters[0]))
    except OSError as e:
        raise GenlabError(f"Cannot write the images to {out} ({e.strerror or e}).") from None
    return written
