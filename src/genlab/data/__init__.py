"""Datasets by name: ``genlab.data.load("faithful")``, ``load("digits", size=16)``.

Loaders for user files take a path: ``load("folder", path="photos/")``; on the command
line the same is written ``--data folder:photos/``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..errors import DataError
from . import images, shapes, tabular, toy2d
from .dataset import Dataset, as_table, check_array

# name -> (loader, one-line description). Loaders with a ``path`` argument read user files.
DATASETS: dict[str, tuple[Callable[..., Dataset], str]] = {
    "moons": (toy2d.moons, "2-D two moons (toy, seeded)"),
    "swissroll": (toy2d.swissroll, "2-D swiss roll (toy, seeded)"),
    "8gaussians": (toy2d.eight_gaussians, "2-D ring of 8 Gaussians, exact log-density"),
    "checkerboard": (toy2d.checkerboard, "2-D checkerboard, exact log-density"),
    "rings": (toy2d.rings, "2-D concentric rings, exact log-density"),
    "heights": (tabular.heights, "934 adult heights in cm (Galton 1886), 1-D"),
    "faithful": (tabular.faithful, "Old Faithful eruptions and waiting times, 272 x 2"),
    "height-weight": (tabular.height_weight, "height (cm) and weight (kg) of 200 adults, 200 x 2"),
    "shapes": (shapes.shapes, "captioned scenes of coloured shapes, 32x32 RGB, for text-to-image"),
    "digits": (images.digits, "1,797 handwritten digits 8x8 (size=16 resizes), labels"),
    "mnist": (images.mnist, "MNIST from IDX files: mnist:PATH"),
    "fashion-mnist": (images.fashion_mnist, "Fashion-MNIST from IDX files: fashion-mnist:PATH"),
    "folder": (images.folder, "your PNG/JPEG images: folder:PATH"),
    "npz": (images.npz, "arrays in a .npz file: npz:PATH"),
    "csv": (tabular.table, "numeric columns of a CSV file with a header: csv:PATH"),
    "txt": (tabular.text, "numbers in a plain text file, no header (as textbooks ship): txt:PATH"),
}

__all__ = ["DATASETS", "Dataset", "as_table", "check_array", "load", "load_spec"]


def load(name: str, **options: Any) -> Dataset:
    """Load a dataset by registered name; ``options`` go to its loader."""
    try:
        loader = DATASETS[name][0]
    except KeyError:
        raise DataError(f"Unknown dataset '{name}'; known: {', '.join(DATASETS)}.") from None
    try:
        return loader(**options)
    except TypeError as e:
        raise DataError(f"Bad options for dataset '{name}': {e}.") from e


def load_spec(spec: str, **options: Any) -> Dataset:
    """Load ``NAME`` or ``NAME:PATH`` as written on the command line."""
    name, sep, path = spec.partition(":")
    if sep:
        options = {"path": path, **options}
    return load(name, **options)
