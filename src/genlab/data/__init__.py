"""Datasets by name: ``genlab.data.load("faithful")``, ``load("digits", size=16)``.

Loaders for user files take a path: ``load("folder", path="photos/")``; on the command
line the same is written ``--data folder:photos/``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..errors import DataError
from ..options import Option, signature_schema
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

#: the loaders' settings (``--set data.KEY=VALUE``) that need more than their default's type,
#: declared once by parameter name for every loader that takes one (see ``settings``)
SETTINGS: tuple[Option, ...] = (
    Option("n", int, 2000, "points or images drawn", low=1, high=1_000_000),
    Option("size", int, 32, "image side in pixels", low=4, high=2048),
    Option("channels", int, 3, "1 (grey) or 3 (RGB)", choices=(1, 3)),
    Option("seed", int, 0, "the data's own seed", low=0, high=2**32 - 1),
    Option("noise", float, 0.1, "noise scale", low=0.0, high=100.0),
    Option("std", float, 0.1, "standard deviation of each mode", low=0.0, high=100.0),
    Option("radius", float, 2.0, "radius of the ring of modes", low=0.0, high=1000.0),
    Option("scale", str, "pm1", "pixel range", choices=("pm1", "unit")),
    Option("captions_per_image", int, 4, "captions kept per scene", low=1, high=64),
    Option("repeats", int, 1, "times each image is seen an epoch", low=1, high=10_000),
    Option("min_bucket", int, 0, "smallest bucket side in pixels (0: half the size)", low=0,
           high=16_384),
    Option("max_bucket", int, 0, "largest bucket side in pixels (0: twice the size)", low=0,
           high=16_384),
    Option("bucket_step", int, 64, "bucket sides' grid in pixels", low=1, high=4096),
    Option("part", str, "all", "digits part", choices=images.DIGITS_PARTS),
    Option("heldout", str, "default", "shapes compositions kept out of training",
           choices=tuple(shapes.HELDOUT_SETS)),
)  # fmt: skip

__all__ = ["DATASETS", "SETTINGS", "Dataset", "as_table", "check_array", "load", "load_spec",
           "settings"]  # fmt: skip


def settings(spec: str) -> tuple[Option, ...]:
    """The typed settings the loader of ``spec`` (``NAME`` or ``NAME:PATH``) takes: its
    keyword parameters, typed by ``SETTINGS`` where named there, else by their defaults; a
    spec naming no loader: none."""
    name = str(spec).partition(":")[0]
    if name not in DATASETS:
        return ()
    loader = DATASETS[name][0]
    import dataclasses
    import inspect

    params = inspect.signature(loader).parameters
    declared = tuple(
        dataclasses.replace(o, default=params[o.name].default) for o in SETTINGS if o.name in params
    )
    return tuple(o for o in signature_schema(loader, declared) if o.name != "path")


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
