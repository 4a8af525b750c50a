"""The Dataset record every loader returns, and the checks that keep bad data out."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from ..errors import DataError


@dataclass
class Dataset:
    """Arrays plus where they came from.

    ``x`` is ``(N, d)`` for tables and 2-D toys, ``(N, C, H, W)`` for images; ``y`` holds
    integer labels where the data has them. ``log_prob`` is the exact log density of the
    generating distribution, for the toys that have one (likelihood checks). ``records``
    holds one dict per sample where the data has more than a label (a scene's captions and
    ground truth); splits and subsets keep it aligned with ``x``.
    """

    name: str
    x: np.ndarray
    y: np.ndarray | None = None
    description: str = ""
    source: str = ""
    licence: str = ""
    columns: list[str] | None = None
    log_prob: Callable[[np.ndarray], np.ndarray] | None = None
    info: dict[str, Any] = field(default_factory=dict)
    records: list[dict[str, Any]] | None = None

    def __len__(self) -> int:
        return len(self.x)

    @property
    def shape(self) -> tuple[int, ...]:
        """Shape of one sample."""
        return tuple(self.x.shape[1:])

    def split(self, test_fraction: float = 0.2, seed: int = 0) -> tuple[Dataset, Dataset]:
        """Deterministic shuffled (train, test) split; the same seed gives the same split."""
        if not 0.0 < test_fraction < 1.0:
            raise DataError(
                f"test_fraction must lie strictly between 0 and 1, got {test_fraction}."
            )
        n_test = round(len(self) * test_fraction)
        if n_test < 1 or n_test >= len(self):
            raise DataError(
                f"Dataset '{self.name}' has {len(self)} samples, too few to split off a test set."
            )
        order = np.random.default_rng(seed).permutation(len(self))
        return self.subset(order[n_test:]), self.subset(order[:n_test])

    def kfold(self, k: int = 5, seed: int = 0) -> list[tuple[Dataset, Dataset]]:
        """``k`` (train, test) pairs whose test parts partition a seeded shuffle of the data."""
        if not 2 <= k <= len(self):
            raise DataError(f"k-fold needs 2 <= k <= {len(self)} samples, got k={k}.")
        parts = np.array_split(np.random.default_rng(seed).permutation(len(self)), k)
        return [
            (self.subset(np.concatenate(parts[:i] + parts[i + 1 :])), self.subset(part))
            for i, part in enumerate(parts)
        ]

    def subset(self, index: np.ndarray) -> Dataset:
        y = None if self.y is None else self.y[index]
        records = None if self.records is None else [self.records[i] for i in index]
        return replace(self, x=self.x[index], y=y, records=records)


def check_array(x: Any, name: str, *, ndim: int | tuple[int, ...] | None = None) -> np.ndarray:
    """Return ``x`` as a float array, or raise DataError naming what is wrong with it."""
    try:
        arr = np.asarray(x, dtype=np.float64 if np.asarray(x).dtype != np.float32 else np.float32)
    except (TypeError, ValueError) as e:
        raise DataError(f"{name} is not numeric ({e}).") from e
    if arr.size == 0:
        raise DataError(f"{name} is empty.")
    dims = (ndim,) if isinstance(ndim, int) else ndim
    if dims is not None and arr.ndim not in dims:
        want = " or ".join(f"{d}-D" for d in dims)
        raise DataError(f"{name} must be a {want} array, got shape {arr.shape}.")
    bad = ~np.isfinite(arr)
    if bad.any():
        rows = np.flatnonzero(bad.reshape(len(arr), -1).any(axis=1)) if arr.ndim > 1 else None
        where = (
            f"{len(rows)} rows hold NaN or inf values (first at row {rows[0]})"
            if rows is not None
            else f"{int(bad.sum())} values are NaN or inf (first at index {np.flatnonzero(bad)[0]})"
        )
        raise DataError(f"{name}: {where}.")
    return arr


def as_table(x: Any, name: str = "data", *, dim: int | None = None) -> np.ndarray:
    """Return a finite ``(N, d)`` float64 table; a 1-D vector becomes ``(N, 1)``."""
    arr = check_array(x, name, ndim=(1, 2)).astype(np.float64, copy=False)
    if arr.ndim == 1:
        arr = arr[:, None]
    if dim is not None and arr.shape[1] != dim:
        raise DataError(f"{name} has {arr.shape[1]} columns but the model expects {dim}.")
    return arr
