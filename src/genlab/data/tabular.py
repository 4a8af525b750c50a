"""Small classic tables shipped with genlab (heights, Old Faithful) and user CSV files."""

from __future__ import annotations

import csv
from importlib import resources
from pathlib import Path

import numpy as np

from ..errors import DataError
from .dataset import Dataset, check_array

INCH_CM = 2.54
# the first bytes of files that are often given by mistake where a table is expected
_NOT_TEXT = [
    (b"\x89PNG", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"PK\x03\x04", "a zip archive (an .npz file loads with npz:PATH)"),
    (b"\x93NUMPY", "a .npy array"),
    (b"%PDF", "a PDF document"),
]


def _read_table(name: str) -> list[dict[str, str]]:
    text = resources.files("genlab.data").joinpath("tables", name).read_text()
    return list(csv.DictReader(text.splitlines()))


def heights(sex: str | None = None, unit: str = "cm") -> Dataset:
    """Adult heights of 934 children of 205 families (Galton, 1886); ``y`` is 1 for male.

    ``sex`` keeps only "male" or "female"; ``unit`` is "cm" (default) or "in".
    """
    if unit not in ("cm", "in"):
        raise DataError(f"unit must be 'cm' or 'in', got '{unit}'.")
    rows = _read_table("galton_heights.csv")
    if sex is not None:
        if sex not in ("male", "female"):
            raise DataError(f"sex must be 'male' or 'female', got '{sex}'.")
        rows = [r for r in rows if r["sex"] == sex]
    h = np.array([float(r["height_in"]) for r in rows])
    if unit == "cm":
        h = h * INCH_CM
    y = np.array([r["sex"] == "male" for r in rows], dtype=np.int64)
    return Dataset(
        "heights",
        h[:, None],
        y,
        f"adult heights in {unit} (sons and daughters)",
        "Galton (1886) family records, as GaltonFamilies in the R package HistData",
        "public domain (1886 data); table from HistData, GPL",
        [f"height_{unit}"],
    )


def faithful() -> Dataset:
    """Old Faithful geyser: eruption time and waiting time to the next one, in minutes."""
    rows = _read_table("faithful.csv")
    x = np.array([[float(r["eruptions"]), float(r["waiting"])] for r in rows])
    return Dataset(
        "faithful",
        x,
        None,
        "Old Faithful geyser eruptions (minutes) and waiting times (minutes), 272 x 2",
        "Azzalini and Bowman (1990), as 'faithful' in R's datasets package",
        "public domain (measurements); table from R datasets, GPL",
        ["eruptions", "waiting"],
    )


def table(path: str | Path, columns: str | None = None) -> Dataset:
    """Numeric columns of a user's CSV file with a header row (``columns``: comma list)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"CSV file {path} does not exist.")
    with path.open("rb") as f:
        start = f.read(8)
    for magic, kind in _NOT_TEXT:
        if start.startswith(magic):
            raise DataError(f"{path} is {kind}, not a CSV file.")
    try:
        with path.open(newline="", encoding="utf-8-sig") as f:
            reader = csv.reader(f)
            try:
                header = next(reader)
            except StopIteration:
                raise DataError(f"CSV file {path} is empty.") from None
            rows = list(reader)
    except UnicodeDecodeError:
        raise DataError(
            f"{path} is not a text CSV file (it holds bytes that are not UTF-8)."
        ) from None
    except csv.Error as e:
        raise DataError(f"{path} is not a readable CSV file ({e}).") from None
    names = [c.strip() for c in columns.split(",")] if columns else header
    missing = [c for c in names if c not in header]
    if missing:
        raise DataError(f"{path} has no column {missing[0]!r}; it has {', '.join(header)}.")
    idx = [header.index(c) for c in names]
    try:
        x = np.array([[float(r[i]) for i in idx] for r in rows if r])
    except (ValueError, IndexError) as e:
        raise DataError(f"{path} holds a non-numeric or missing value ({e}).") from e
    x = check_array(x, str(path), ndim=2)
    return Dataset(path.stem, x, None, f"table {path.name}", str(path), "the user's own", names)


def text(path: str | Path) -> Dataset:
    """Numbers in a plain text file, separated by spaces, tabs or commas, one row per line,
    no header (as textbooks ship their data); lines starting with # are skipped."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"Text file {path} does not exist.")
    try:
        lines = path.read_text().splitlines()
    except UnicodeDecodeError:
        raise DataError(f"{path} is not a text file.") from None
    rows = [line.replace(",", " ").split() for line in lines]
    rows = [r for r in rows if r and not r[0].startswith("#")]
    if not rows:
        raise DataError(f"Text file {path} holds no numbers.")
    if len({len(r) for r in rows}) != 1:
        raise DataError(f"The rows of {path} do not all have the same number of columns.")
    try:
        x = np.array([[float(v) for v in r] for r in rows])
    except ValueError as e:
        raise DataError(f"{path} holds something that is not a number ({e}).") from e
    x = check_array(x, str(path), ndim=2)
    names = [f"x{i + 1}" for i in range(x.shape[1])]
    return Dataset(path.stem, x, None, f"numbers from {path.name}", str(path), "the user's own",
                   names)  # fmt: skip


def height_weight(sex: str | None = None) -> Dataset:
    """Measured height (cm) and weight (kg) of 200 people who exercise regularly (Davis,
    1990); ``y`` is 1 for men. One record has the two swapped in the source (weight 166 kg,
    height 57 cm, a known recording error); it is put right here."""
    rows = _read_table("davis_height_weight.csv")
    if sex is not None:
        if sex not in ("male", "female"):
            raise DataError(f"sex must be 'male' or 'female', got '{sex}'.")
        rows = [r for r in rows if r["sex"] == sex[0].upper()]
    x = np.array([[float(r["height_cm"]), float(r["weight_kg"])] for r in rows])
    swapped = x[:, 0] < x[:, 1]  # nobody in this table is taller in cm than heavy in kg
    x[swapped] = x[swapped][:, ::-1]
    y = np.array([r["sex"] == "M" for r in rows], dtype=np.int64)
    return Dataset(
        "height-weight",
        x,
        y,
        "height (cm) and weight (kg) of 200 adults, 200 x 2",
        "Davis (1990), as 'Davis' in the R package carData",
        "measurements; table from carData, GPL",
        ["height_cm", "weight_kg"],
    )
